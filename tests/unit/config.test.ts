/** Config fragments: merged values checked, and an option that did not survive named with its unmet dependency. */
import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  absentInTree,
  checkFragments,
  explainMismatches,
  formatMismatches,
  parseConfig,
  symbolsOf,
} from '../../kernel/config.js';

t.test('parse .config and fragments', async (t) => {
  const c = parseConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="str"\nCONFIG_D=0x10\n# comment\n');
  t.same(
    [...c],
    [
      ['A', 'y'],
      ['B', 'n'],
      ['C', '"str"'],
      ['D', '0x10'],
    ],
  );
  t.same(symbolsOf('DMEM && (TRANSPARENT_HUGEPAGE || X86_64) && !FOO=y'), [
    'DMEM',
    'TRANSPARENT_HUGEPAGE',
    'X86_64',
    'FOO',
  ]);
});

t.test('an option that did not survive is named with its unmet dependency', async (t) => {
  const src = mkdtempSync(join(tmpdir(), 'rig-kconfig-'));
  mkdirSync(join(src, 'fs', 'dmemfs'), { recursive: true });
  writeFileSync(
    join(src, 'fs', 'dmemfs', 'Kconfig'),
    'config DMEM_FS\n\ttristate "Direct Memory Reservation Filesystem"\n\tdepends on DMEM\n\tdepends on ' +
      'TRANSPARENT_HUGEPAGE\n\thelp\n\t  if you say Y here...\n',
  );
  writeFileSync(
    join(src, 'Kconfig'),
    'menuconfig HYPERVISOR_GUEST\n\tbool "guest"\n\nif HYPERVISOR_GUEST\n\nconfig PVH\n\tbool "PVH"\n\thelp\n\t ' +
      ' if you have one of these machines.\n\nendif\n',
  );
  const final = parseConfig(
    'CONFIG_DMEM=y\n# CONFIG_TRANSPARENT_HUGEPAGE is not set\n# CONFIG_DMEM_FS is not set\n# CONFIG_PVH is not set\n',
  );
  const mismatches = checkFragments(final, [
    { name: 'dmem.config', text: 'CONFIG_DMEM=y\nCONFIG_DMEM_FS=y\n' },
    { name: 'guest.config', text: 'CONFIG_PVH=y\nCONFIG_NOT_IN_THIS_TREE=y\n# CONFIG_DRM is not set\n' },
  ]);
  t.same(
    mismatches.map((m) => m.option),
    ['DMEM_FS', 'PVH', 'NOT_IN_THIS_TREE'],
    'an asked-off option that is off is fine',
  );
  const ex = explainMismatches(src, mismatches, final);
  t.same(ex.find((m) => m.option === 'DMEM_FS')!.unmet, ['TRANSPARENT_HUGEPAGE']);
  t.same(
    ex.find((m) => m.option === 'PVH')!.unmet,
    ['HYPERVISOR_GUEST'],
    'an enclosing "if" block counts; help text does not',
  );
  const text = formatMismatches(ex);
  t.match(
    text,
    /CONFIG_DMEM_FS: dmem\.config asks y, got n \(depends on DMEM && TRANSPARENT_HUGEPAGE; not met: CONFIG_TRANSPARENT_HUGEPAGE\)/,
  );
  t.match(text, /CONFIG_NOT_IN_THIS_TREE: guest\.config asks y, got n \(no such option in this tree's Kconfig\)/);
});

t.test('a prefix of the series: options its tree does not define yet are told apart from dropped ones', async (t) => {
  // The tree of a prefix: DMEM_FS exists (01/37) but DMEM, which it depends on, does not yet (02/37).
  const src = mkdtempSync(join(tmpdir(), 'rig-kconfig-prefix-'));
  writeFileSync(
    join(src, 'Kconfig'),
    'config DMEM_FS\n\ttristate "dmemfs"\n\tdepends on DMEM\n\nconfig NUMA\n\tbool "NUMA"\n\tdepends on SMP\n\n' +
      'config SMP\n\tbool "SMP"\n',
  );
  const final = parseConfig('# CONFIG_DMEM_FS is not set\n# CONFIG_NUMA is not set\n# CONFIG_SMP is not set\n');
  const ms = explainMismatches(
    src,
    checkFragments(final, [{ name: 'f', text: 'CONFIG_DMEM=y\nCONFIG_DMEM_FS=y\nCONFIG_NUMA=y\n' }]),
    final,
  );
  t.same(
    absentInTree(src, ms).map((m) => m.option),
    ['DMEM', 'DMEM_FS'],
    'DMEM is not defined; DMEM_FS depends on it; NUMA is dropped for a reason this tree has (SMP off)',
  );
});
