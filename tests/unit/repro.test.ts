/**
 * The standalone reproducers (scenarios/repros.ts, runner/repro.ts) without a guest: the data
 * against the signatures, mutants and boots; the files written; qemu.sh's words as a shell
 * reads them; and the judge of a console on the consoles recorded by `repro --all --prove`
 * (tests/fixtures/repro/, 2026-12-07) and on near misses made from them.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import { RigError } from '../../core/errors.js';
import type { RunResults } from '../../core/results.js';
import { HELPERS } from '../../images/guest-tools.js';
import {
  EXPECTED,
  helperBuildLine,
  judgeConsole,
  reproducedIn,
  reproducerFor,
  reproducible,
  reproMachineArgs,
  shellWord,
  writeReproducer,
} from '../../runner/repro.js';
import { SCENARIOS } from '../../scenarios/catalog.js';
import { MUTANTS } from '../../scenarios/mutants.js';
import { NO_REPRODUCER, REPRODUCERS, type Reproducer } from '../../scenarios/repros.js';
import { SIGNATURES } from '../../scenarios/signatures.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';

const fixture = (id: string, kernel: string) =>
  readFileSync(join(projectRoot(), 'tests', 'fixtures', 'repro', `${id}.${kernel}.log`), 'utf8');
const repro = (id: string): Reproducer => reproducerFor(id).repro;
/** The error a call throws (undefined: none). */
const thrown = (f: () => unknown): RigError | undefined => {
  try {
    f();
  } catch (e) {
    return e as RigError;
  }
  return undefined;
};

t.test('every signature has a reproducer or says why not, never both', async (t) => {
  for (const s of SIGNATURES) {
    const has = REPRODUCERS.some((r) => r.signature === s.id);
    t.ok(has !== s.id in NO_REPRODUCER, `${s.id}: ${has ? 'a reproducer' : NO_REPRODUCER[s.id]}`);
  }
  t.same(
    Object.keys(NO_REPRODUCER).filter((id) => !SIGNATURES.some((s) => s.id === id)),
    [],
    'no reason for a signature that does not exist',
  );
});

t.test("each reproducer takes a boot of its signature's scenario, helpers that exist, its fixing mutant", async (t) => {
  for (const r of REPRODUCERS) {
    const sig = SIGNATURES.find((s) => s.id === r.signature)!;
    // A signature of every scenario ('*') of the debug variant: the scenario that takes it every debug run.
    const scenario = sig.scenario === '*' ? 'debug-checks' : sig.scenario;
    t.equal(r.variant, sig.variant, `${r.signature}: written for the variant that sees it`);
    const def = SCENARIOS.find((d) => d.id === scenario);
    t.ok(def?.boots.includes(r.boot), `${r.signature}: boot ${r.boot} is one of ${scenario}'s`);
    for (const h of r.helpers) t.ok(HELPERS.includes(h), `${r.signature}: helper ${h}`);
    // Its own fixing mutant's edit; a signature with none that follows another's race takes the
    // edit of a fixing mutant of the same scenario, and its proof shows the edit cures it too.
    const fixes = MUTANTS.filter((m) => m.effect === 'fixes');
    const own = fixes.filter((m) => m.signature === r.signature).map((m) => m.edit);
    const same = fixes.filter((m) => m.scenario === scenario).map((m) => m.edit);
    if (own.length) t.same([r.fixedBy], own, `${r.signature}: the fix it is proven against is its mutant's`);
    else if (r.fixedBy)
      t.ok(same.includes(r.fixedBy), `${r.signature}: ${r.fixedBy} fixes another signature of ${scenario}`);
    else
      t.ok(
        r.variant === 'debug',
        `${r.signature}: no fix known, a debug report (proven on the series and the baseline)`,
      );
    for (const p of [...r.bug.lines, ...r.fixed.lines]) t.doesNotThrow(() => new RegExp(p), p);
  }
});

t.test('unknown signatures and signatures with no reproducer are refused by kind', async (t) => {
  t.equal(thrown(() => reproducerFor('no-such-signature'))?.kind, 'unknown-signature');
  const e = thrown(() => reproducerFor('kvm-dmem-4k'));
  t.equal(e?.kind, 'no-reproducer');
  t.match(e?.message, /second-level guest/, 'says why');
});

t.test("a bundle's run must have reproduced the signature", async (t) => {
  const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
  t.equal(reproducedIn(run, 'B', 'vfio-get-dmem-pfn-null').scenario, 'vfio-pin');
  t.same(
    reproducible(run),
    REPRODUCERS.map((r) => r.signature).filter((id) =>
      run.scenarios.some((s) => s.signatures.some((c) => c.id === id && c.reproduced)),
    ),
    'those the run reproduced, in the order of REPRODUCERS',
  );
  t.ok(reproducible(run).includes('vfio-get-dmem-pfn-null'));
  const cured = structuredClone(run);
  for (const s of cured.scenarios)
    for (const c of s.signatures) if (c.id === 'vfio-get-dmem-pfn-null') Object.assign(c, { reproduced: false });
  t.equal(thrown(() => reproducedIn(cured, 'B', 'vfio-get-dmem-pfn-null'))?.kind, 'not-reproduced');
  const unchecked = thrown(() => reproducedIn(run, 'B', 'dmemfs-inode-alloc-sleeps-under-spinlock'));
  t.equal(unchecked?.kind, 'not-reproduced');
  t.match(unchecked?.message, /not checked there/);
  t.same(
    reproducible(cured),
    reproducible(run).filter((id) => id !== 'vfio-get-dmem-pfn-null'),
  );
});

t.test("the machine: the boot's, the initramfs as root, nothing of the rig's wiring", async (t) => {
  const { args, append } = reproMachineArgs(repro('vfio-get-dmem-pfn-null'));
  for (const gone of ['-qmp', '-netdev', '-drive', '-fw_cfg', '-pidfile']) t.notOk(args.includes(gone), `no ${gone}`);
  t.ok(args.includes('intel-iommu,intremap=on,caching-mode=on') && args.includes('edu'), 'the IOMMU and edu');
  t.match(append, /\brdinit=\/init\b/);
  t.notMatch(append, /\broot=|rig\.key/);
  t.match(append, /\bdmem=1G:1G\b.*\bmemmap=1G!7G\b/, "the boot's own tokens");
  t.match(append, /\boops=panic\b/, 'an oops ends the guest with its report');
  t.ok(args.includes('@KERNEL@') && args.includes('@INITRD@'), 'kernel and initrd are inputs');
  t.match(args[args.indexOf('-machine') + 1], /^q35,accel=@ACCEL@,/);
  t.same(reproMachineArgs(repro('dmemfs-4k-fault-error-spins')).append.match(/dmem=/g), null, 'plain: no pool');
});

t.test('shell words: quotes, and the inputs as variables', async (t) => {
  t.equal(shellWord("it's"), `'it'\\''s'`);
  t.equal(shellWord('q35,accel=@ACCEL@,x=1'), `'q35,accel='"$ACCEL"',x=1'`);
  t.equal(shellWord('@KERNEL@'), '"$KERNEL"');
});

t.test('the directory: every file, and qemu.sh passes exactly the machine to QEMU', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'rig-repro-'));
  const files = writeReproducer('vfio-get-dmem-pfn-null', out, {
    series: 'the series',
    culprit: 'introduced by 36/37',
  });
  t.same(files, [
    'README',
    'build.sh',
    'cmdline',
    'expected.txt',
    'init',
    'mkinitramfs.sh',
    'qemu.sh',
    'repro.sh',
    'rig-helper.h',
    'vfio-dma.c',
  ]);
  t.same(readdirSync(out).sort(), files, 'one flat directory: every attachment of a mail saved side by side');
  t.match(readFileSync(join(out, 'build.sh'), 'utf8'), helperBuildLine('vfio-dma'));
  t.equal(helperBuildLine('vfio-dma'), 'gcc -static -O2 -Wall -Wextra -o vfio-dma vfio-dma.c');
  // QEMU replaced by a program that prints its arguments, one per line.
  const echo = join(out, 'args');
  writeFileSync(echo, '#!/bin/sh\nprintf "%s\\n" "$@"\n');
  chmodSync(echo, 0o755);
  const printed = execFileSync('sh', [join(out, 'qemu.sh')], {
    env: { PATH: process.env.PATH ?? '', QEMU: echo, KERNEL: '/k/bz Image', ACCEL: 'tcg' },
    encoding: 'utf8',
  });
  const { args } = reproMachineArgs(repro('vfio-get-dmem-pfn-null'));
  const want = args.map((a) =>
    a.replace('@KERNEL@', '/k/bz Image').replace('@INITRD@', `${out}/initramfs.cpio.gz`).replace('@ACCEL@', 'tcg'),
  );
  t.same(printed.trimEnd().split('\n'), want, 'word for word, a path with a space kept whole');
  t.equal(readFileSync(join(out, 'cmdline'), 'utf8').trim(), want[want.indexOf('-append') + 1]);
  const text = files.map((f) => readFileSync(join(out, f), 'utf8')).join('\n');
  t.notMatch(text, /\.cache\/dmemfs-rig|\/dist\//, 'nothing points into the rig or its cache');
  t.notMatch(text, new RegExp(projectRoot().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), 'nor into its checkout');
});

t.test('a host script and variables: inject.sh beside qemu.sh, which passes extra options on', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'rig-repro-'));
  const files = writeReproducer('mce-dmem-no-sigbus', out, { series: 'the series', culprit: 'not bisected yet' });
  t.ok(files.includes('inject.sh'), 'the host script is written');
  t.equal(
    readFileSync(join(out, 'inject.sh'), 'utf8'),
    readFileSync(join(projectRoot(), 'images', 'repro', 'inject-mce.sh'), 'utf8'),
  );
  t.match(readFileSync(join(out, 'README'), 'utf8'), /sh inject\.sh 2>&1 \| tee console\.log/, 'the README runs it');
  const script = readFileSync(join(out, 'repro.sh'), 'utf8').split('\n');
  t.same(script.slice(1, 4), ['SIZE=4K', 'EARLY_KILL=1', 'CHECK=sigbus'], "the reproducer's variables come first");
  const echo = join(out, 'args');
  writeFileSync(echo, '#!/bin/sh\nprintf "%s\\n" "$@"\n');
  chmodSync(echo, 0o755);
  const printed = execFileSync('sh', [join(out, 'qemu.sh'), '-mon', 'chardev=mon'], {
    env: { PATH: process.env.PATH ?? '', QEMU: echo, KERNEL: '/k', ACCEL: 'tcg' },
    encoding: 'utf8',
  });
  t.same(printed.trimEnd().split('\n').slice(-2), ['-mon', 'chardev=mon'], "qemu.sh's own arguments go last to QEMU");
  // One script, three signatures: each sets what it reads.
  const race = mkdtempSync(join(tmpdir(), 'rig-repro-'));
  writeReproducer('dmemfs-racing-huge-faults-warn', race, { series: 's', culprit: 'c' });
  t.match(
    readFileSync(join(race, 'repro.sh'), 'utf8'),
    /^# dmemfs-racing-huge-faults-warn: .*\nSIZE=2M\nUNTIL=warn\nTRIES=30\n/,
  );
  t.notOk(readdirSync(race).includes('inject.sh'), 'no host script where the guest does it all');
});

t.test('the steps fit a mail (72 columns, tabs as 4, 2 of indent) and parse as sh', async (t) => {
  const dir = join(projectRoot(), 'images', 'repro');
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.sh'))) {
    const long = readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l.replace(/\t/g, '    ').length > 70);
    t.same(long, [], `${f}: no line over 70`);
    t.doesNotThrow(() => execFileSync('sh', ['-n', join(dir, f)]), `${f}: sh -n`);
  }
});

t.test('recorded consoles are judged as they were recorded', async (t) => {
  // Every reproducer, on each kernel of its proof: a new one without its recordings fails here.
  const cases = REPRODUCERS.flatMap((r) =>
    (r.fixedBy ? (['series', 'baseline', 'fixed'] as const) : (['series', 'baseline'] as const)).map(
      (k) => [r.signature, k, EXPECTED[k][0]!] as const,
    ),
  );
  for (const [id, kernel, outcome] of cases)
    t.equal(judgeConsole(repro(id), fixture(id, kernel)).outcome, outcome, `${id} on ${kernel}`);
});

t.test('near misses of the race, MCE and debug reproducers are not the bug', async (t) => {
  const race = fixture('dmemfs-racing-faults-double-allocate', 'series');
  const allocate = repro('dmemfs-racing-faults-double-allocate');
  t.equal(
    judgeConsole(allocate, race.replace(/"verified":true/, '"verified":false')).outcome,
    'inconclusive',
    'a fill that failed half way is not the race',
  );
  const unlink = repro('dmemfs-unlink-bug-after-racing-faults');
  t.equal(judgeConsole(unlink, race).outcome, 'bug', 'the same console shows the BUG on unlink');
  t.equal(
    judgeConsole(unlink, race.replace(/ do_unlinkat\+/g, ' do_exit+')).outcome,
    'inconclusive',
    'a BUG there from another path',
  );
  const mce = fixture('mce-dmem-no-sigbus', 'series');
  const nosig = repro('mce-dmem-no-sigbus');
  t.equal(
    judgeConsole(nosig, mce.replace(/MCE 0x[0-9a-f]+: handled by dmem/g, 'Memory failure: recovered')).outcome,
    'inconclusive',
    'no SIGBUS where the dmem handler never took the error is not this',
  );
  const uc = repro('mce-dmem-set-memory-uc-warning');
  t.equal(judgeConsole(uc, mce).outcome, 'bug', 'the 4K console shows the WARNING too');
  t.equal(judgeConsole(uc, mce.replace(/memtype_reserve/g, 'memtype_free')).outcome, 'inconclusive', 'another WARNING');
  const rcu = repro('dmemfs-fault-sleeps-under-rcu');
  const create = fixture('dmemfs-inode-alloc-sleeps-under-spinlock', 'series');
  t.equal(
    judgeConsole(rcu, create.replace(/after step create/, 'after step fault')).outcome,
    'inconclusive',
    "the mount's report is not the fault's",
  );
});

t.test('near misses are not the bug', async (t) => {
  const vfio = repro('vfio-get-dmem-pfn-null');
  const oops = fixture('vfio-get-dmem-pfn-null', 'series');
  t.equal(judgeConsole(vfio, oops.replace(/get_dmem_pfn\+/g, 'vaddr_get_pfn+')).outcome, 'inconclusive', 'another RIP');
  t.equal(
    judgeConsole(vfio, oops.replace(/supervisor write access/g, 'supervisor read access')).outcome,
    'inconclusive',
    'a read at NULL is another bug',
  );
  t.equal(judgeConsole(vfio, '').outcome, 'inconclusive', 'no console');
  t.equal(judgeConsole(vfio, oops.split('\n').slice(0, 280).join('\n')).outcome, 'inconclusive', 'cut before it');
  const stale = repro('dmemfs-new-file-reads-old-data');
  const seen = fixture('dmemfs-new-file-reads-old-data', 'series');
  t.equal(
    judgeConsole(stale, seen.replace(/"after_grow_word":"0x5a5a5a5a/, '"after_grow_word":"0x00000001')).outcome,
    'inconclusive',
    'a word the fill did not write is not old data',
  );
  const spin = repro('dmemfs-4k-fault-error-spins');
  t.equal(
    judgeConsole(spin, fixture('dmemfs-4k-fault-error-spins', 'series').replace(/state R, /m, 'state D, ')).outcome,
    'inconclusive',
    'stuck asleep is not the spin',
  );
});
