/**
 * Golden files: the QEMU argument array of every named boot (scenarios/boots.ts) as the boot
 * pool starts it, under KVM and under TCG, and the TAP, JUnit and Markdown the report writes
 * for the full-run fixture bundle. A change to any of them shows here as a diff;
 * DMEMFS_RIG_UPDATE_GOLDEN=1 rewrites them (tests/helpers/golden.ts).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { RunResults } from '../../core/results.js';
import { toJunit } from '../../report/junit.js';
import { renderMarkdown } from '../../report/render.js';
import { toTap } from '../../report/tap.js';
import { bootOptionsOf } from '../../runner/boot-pool.js';
import { l1Spec, type L1Files } from '../../runner/l1-guest.js';
import { BOOTS, type BootName } from '../../scenarios/boots.js';
import type { AccelChoice } from '../../vm/accel.js';
import { guestArgs } from '../../vm/guest.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';
import { lineDiff, matchGolden } from '../helpers/golden.js';

/** The files of a boot, as placeholders: the arguments around them are what is held. */
const FILES = {
  image: { path: '@L1_IMAGE@' },
  kernel: { image: '@BZIMAGE@' },
  bootImage: { path: '@PVH_VMLINUX@', pvh: true },
  initrd: undefined,
  modular: false,
} as unknown as L1Files;
const WIRING = {
  runDir: '@RUN_DIR@',
  ssh: { port: 10022, publicKey: '@RUN_PUBLIC_KEY@', hostKeyFile: '@RUN_DIR@/host_key' },
};

for (const accel of ['kvm', 'tcg'] as const)
  t.test(`QEMU arguments of every boot under ${accel}`, async (t) => {
    const choice = { accel, reason: 'golden', timeoutScale: accel === 'tcg' ? 6 : 1 } as AccelChoice;
    for (const name of Object.keys(BOOTS) as BootName[]) {
      const spec = l1Spec(FILES, choice, bootOptionsOf(BOOTS[name], `scenario-${name}`));
      const { args } = guestArgs(spec, accel, WIRING);
      matchGolden(t, `qemu/${name}.${accel}.txt`, args.join('\n') + '\n');
    }
  });

t.test('the report of the full-run fixture: TAP, JUnit, Markdown', async (t) => {
  const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
  matchGolden(t, 'report/full-run.tap', toTap(run));
  matchGolden(t, 'report/full-run.junit.xml', toJunit(run));
  matchGolden(t, 'report/full-run.md', renderMarkdown(run));
});

t.test('a mismatch shows its lines: what the golden file has, and what was written', async (t) => {
  const d = lineDiff('a\nb\nc\nd\n', 'a\nB\nc\nd\ne\n', 0);
  t.equal(d, '    1 + B\n    2 - b\n...\n    4 + e', 'each change at its line, a gap as ...');
  t.equal(lineDiff('same\n', 'same\n'), '', 'nothing when equal');
});
