/**
 * The kernel's mm selftests as data and as a scenario: the cases name programs the build makes,
 * outcomes are classified from exit codes and output, and the scenario holds the series to the
 * baseline's outcome: a scripted guest (a fake for argument building and wiring; the real runs
 * are tests/integration's and npm start's) whose series run of one test fails must fail that
 * measurement, and a dmemfs outcome other than the data's must fail too.
 */
import t from 'tap';
import {
  SELFTEST_SCRIPTS,
  SELFTEST_TARGETS,
  makeArgs,
  selftestsKey,
  targetErrors,
  type SelftestBuild,
} from '../../kernel/selftests.js';
import { DMEMFS_CASES, EXPLAINED, SELFTESTS, caseArgv, outcomeOf } from '../../scenarios/selftests.js';
import { mmSelftests, mmSelftestsWith } from '../../scenarios/defs/mm-selftests.js';
import { scenarioRun } from '../../runner/scenario-context.js';
import { selftestRows, selftestsMarkdown } from '../../report/selftests-table.js';
import type { BootPool } from '../../runner/boot-pool.js';

const OUTCOME = /^(pass|not built|(skip|fail|timeout|report): .+)$/;

t.test('every case runs a program the build makes, under a unique id, held to a well-formed outcome', async (t) => {
  const programs = new Set<string>([...SELFTEST_TARGETS, ...SELFTEST_SCRIPTS]);
  for (const c of [...SELFTESTS, ...DMEMFS_CASES]) t.ok(programs.has(c.program), `${c.id}: ${c.program} is built`);
  t.equal(new Set(SELFTESTS.map((c) => c.id)).size, SELFTESTS.length, 'SELFTESTS ids unique');
  t.equal(new Set(DMEMFS_CASES.map((c) => c.id)).size, DMEMFS_CASES.length, 'DMEMFS_CASES ids unique');
  for (const c of SELFTESTS) {
    t.match(c.baseline, OUTCOME, `${c.id} baseline: ${c.baseline}`);
    if (c.baseline !== 'pass') t.ok(c.because, `${c.id}: a baseline outcome other than pass says why`);
    if (c.series) t.match(c.series.outcome, OUTCOME, `${c.id} series`);
    if (c.series) t.ok(c.series.because.length > 20, `${c.id}: a series outcome of its own says why`);
  }
  for (const c of DMEMFS_CASES) {
    t.match(c.dmemfs, OUTCOME, `${c.id} on dmemfs: ${c.dmemfs}`);
    t.ok(c.because.length > 20, `${c.id}: the dmemfs outcome says why`);
    t.ok(c.args.some((a) => a.includes('{mnt}')) || c.inMountParent, `${c.id} is pointed at the mount`);
  }
  t.same(
    mmSelftests.measurements,
    [...SELFTESTS.flatMap((c) => [`${c.id}_baseline`, `${c.id}_series`]), ...DMEMFS_CASES.map((c) => `${c.id}_dmemfs`)],
    'the measurements are the data’s',
  );
});

t.test('outcomes: exit codes and output, explained once', async (t) => {
  t.equal(outcomeOf(0, 'whatever\n'), 'pass');
  t.equal(outcomeOf(4, 'userfaultfd syscall not available in this kernel\n'), `skip: ${EXPLAINED[0]!.label}`);
  t.equal(outcomeOf(1, 'a\nmmap: Cannot allocate memory\n'), 'fail: exit 1: mmap: Cannot allocate memory');
  t.equal(outcomeOf(4, ''), 'skip: exit 4: (no output)');
  t.equal(outcomeOf(135, 'touching\n'), 'fail: killed by SIGBUS');
  t.equal(outcomeOf(1, 'open: No such file or directory\n', 'gup_benchmark'), `fail: ${EXPLAINED[1]!.label}`);
  t.equal(
    outcomeOf(1, 'open: No such file or directory\n', 'map_populate'),
    'fail: exit 1: open: No such file or directory',
    'a label of another program does not apply',
  );
});

t.test('command lines: the mount put in, the unprivileged user by setpriv, no shell', async (t) => {
  const ufd = SELFTESTS.find((c) => c.id === 'userfaultfd_hugetlb')!;
  t.same(caseArgv(ufd, '/bin', '/m'), ['/bin/userfaultfd', 'hugetlb', '128', '8', '/m/ufd_test_file']);
  const nobody = SELFTESTS.find((c) => c.unprivileged)!;
  t.same(caseArgv(nobody, '/bin', '/m').slice(0, 3), ['setpriv', '--reuid=65534', '--regid=65534']);
});

t.test('the build: keyed by the tree, static, and each failure with its own lines', async (t) => {
  t.not(selftestsKey('a'), selftestsKey('b'));
  t.equal(selftestsKey('a'), selftestsKey('a'));
  const args = makeArgs('/o', '/h');
  t.ok(args.includes('LDFLAGS=-static -s') && args.includes('EXTRA_CFLAGS=-I/h') && args.includes('/o/userfaultfd'));
  const log = [
    'gcc ... userfaultfd.c -lrt -lpthread -o /o/userfaultfd',
    'mlock-random-test.c:7:10: fatal error: sys/capability.h: No such file or directory',
    'make: *** [../lib.mk:139: /o/mlock-random-test] Error 1',
  ].join('\n');
  t.match(targetErrors(log, 'mlock-random-test'), /sys\/capability\.h/);
  t.notMatch(targetErrors(log, 'mlock-random-test'), /userfaultfd/);
});

/** A guest that answers the scenario's commands from a script: exit code and output per program. */
function scriptedGuest(outcomes: Record<string, { code: number; output: string }>) {
  let last = '';
  const uploads: string[] = [];
  const guest = {
    opts: { accel: { timeoutScale: 1 }, spec: { name: 'fake' } },
    console: { reports: [] as unknown[], lines: [] as Array<{ text: string }>, reading: false },
    ssh: { upload: async (p: string) => void uploads.push(p) },
    uploads,
    async exec(argv: string[]) {
      const ok = (stdout = '') => ({ argv, code: 0, signal: undefined, stdout, stderr: '', ms: 1 });
      if (argv[3] === 'mark') {
        guest.console.lines.push({ text: argv[4]! });
        return ok();
      }
      if (argv[3] === 'bounded') {
        last = argv
          .slice(6)
          .find((a) => a.startsWith('/run/selftests-bin/'))!
          .split('/')
          .pop()!;
        last += ' ' + argv.slice(6).join(' ');
        return ok('42\n');
      }
      const program = last.split(' ')[0]!;
      const key = Object.keys(outcomes).find((k) => last.includes(k)) ?? program;
      const o = outcomes[key] ?? { code: 0, output: 'ok\n' };
      if (argv[3] === 'poll') return ok(`${o.code}\n`);
      if (argv[0] === 'cat' && argv[1] === '/run/rig-command.out') return ok(o.output);
      if (argv[0] === 'cat') return ok('1\n');
      return ok();
    },
  };
  return guest;
}

const build = (dir: string): SelftestBuild => ({
  dir,
  tree: dir,
  targets: Object.fromEntries(SELFTEST_TARGETS.map((x) => [x, { built: true }])),
  seconds: 0,
  hit: true,
});

async function runWith(
  def: ReturnType<typeof mmSelftestsWith>,
  byKernel: Record<string, Record<string, { code: number; output: string }>>,
) {
  const guests: Record<string, ReturnType<typeof scriptedGuest>> = {
    'selftests-baseline': scriptedGuest(byKernel.baseline ?? {}),
    selftests: scriptedGuest(byKernel.series ?? {}),
  };
  const pool = {
    boot: async (_s: string, name: string) => ({ guest: guests[name], reused: false }),
    testModule: async () => undefined,
    selftests: async (k: string) => build(k),
  } as unknown as BootPool;
  const run = scenarioRun(def as never, pool, 'tcg');
  await def.run(run.ctx as never);
  return { result: run.result, guests };
}

t.test('the series is held to the baseline: a test that fails only on the series fails its check', async (t) => {
  const def = mmSelftestsWith({ tests: ['map_populate', 'mremap_dontunmap'], dmemfs: [] });
  const same = await runWith(def, {});
  t.same(
    Object.values(same.result.measurements).map((m) => m.ok),
    [true, true, true, true],
    'both pass on both kernels',
  );
  const broken = await runWith(def, { series: { map_populate: { code: 1, output: 'mmap: Invalid argument\n' } } });
  const m = broken.result.measurements;
  t.equal(m.map_populate_baseline!.ok, true);
  t.equal(m.map_populate_series!.ok, false, 'failed on the series only: not met');
  t.equal(m.map_populate_series!.value, 'fail: exit 1: mmap: Invalid argument');
  t.equal(m.mremap_dontunmap_series!.ok, true, 'the other test is unaffected');
  t.ok(broken.guests.selftests!.uploads.includes('/run/selftests-bin/map_populate'), 'the program was installed');
  const table = selftestRows(broken.result);
  t.match(
    table.find((r) => r.test === 'map_populate'),
    { baseline: 'pass', series: /^\*\*fail: exit 1/ },
  );
  t.match(selftestsMarkdown(broken.result), /\| map_populate \| `\.\/map_populate` \| pass \| \*\*fail/);
});

t.test('a dmemfs outcome other than the data’s fails; the one the data holds passes', async (t) => {
  const c = DMEMFS_CASES.find((x) => x.id === 'hugepage_mmap')!;
  t.equal(c.dmemfs, 'fail: killed by SIGBUS', 'what hugepage-mmap does on dmemfs, as measured');
  const def = mmSelftestsWith({ tests: [], dmemfs: [c.id] });
  const right = await runWith(def, { series: { [c.program]: { code: 135, output: '' } } });
  t.equal(right.result.measurements.hugepage_mmap_dmemfs!.ok, true, 'SIGBUS, as held');
  const passes = await runWith(def, {});
  t.equal(passes.result.measurements.hugepage_mmap_dmemfs!.ok, false, 'a pass would be a change: not met');
  const other = await runWith(def, { series: { [c.program]: { code: 1, output: 'something nobody explained\n' } } });
  t.equal(other.result.measurements.hugepage_mmap_dmemfs!.value, 'fail: exit 1: something nobody explained');
  t.equal(other.result.measurements.hugepage_mmap_dmemfs!.ok, false, 'another failure: not met');
});

t.test('the selftests table of docs/scenarios.md states exactly the outcomes the data holds', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { projectRoot } = await import('../../core/paths.js');
  const { statedSelftestsMarkdown } = await import('../../report/selftests-table.js');
  const page = readFileSync(join(projectRoot(), 'docs', 'scenarios.md'), 'utf8');
  t.ok(page.includes(statedSelftestsMarkdown()), 'docs/scenarios.md holds the table of the held outcomes');
  const table = statedSelftestsMarkdown();
  for (const c of DMEMFS_CASES) t.ok(table.includes(c.dmemfs), `${c.id}: its outcome on dmemfs is stated`);
});
