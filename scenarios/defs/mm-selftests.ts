/**
 * mm-selftests: the kernel's own mm selftests (tools/testing/selftests/vm), built from the tree
 * under test and from the baseline's, run one by one with their own bound on the baseline kernel
 * and on the series in the same machine; then the path-taking ones pointed at a dmemfs mount
 * where their hugetlbfs one was. Which test runs how, and the outcome each is held to on each
 * kernel, is data (scenarios/selftests.ts): a test the baseline passes and the series does not
 * fails here, unless the data says why (a finding, with its signature).
 */
import { is } from '../../core/results.js';
import type { SelftestBuild } from '../../kernel/selftests.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { programOutcome } from '../steps.js';
import {
  DMEMFS_CASES,
  HUGE_MNT,
  HUGE_PARENT,
  SELFTESTS,
  caseArgv,
  outcomeOf,
  type DmemfsCase,
  type SelftestCase,
} from '../selftests.js';
import { defineScenario, type ScenarioContext } from '../types.js';

const BIN = '/run/selftests-bin';
const DMEM_PARENT = '/run/selftests-dmem';
const DMEM_MNT = `${DMEM_PARENT}/huge`;

export interface SelftestsParts {
  /** The ids of SELFTESTS to run (default: all). */
  tests?: readonly string[];
  /** The ids of DMEMFS_CASES to run (default: all). */
  dmemfs?: readonly string[];
}

type Ctx = ScenarioContext<string>;
type Kernel = 'baseline' | 'series';

export function mmSelftestsWith(parts: SelftestsParts = {}) {
  const tests = SELFTESTS.filter((c) => !parts.tests || parts.tests.includes(c.id));
  const onDmemfs = DMEMFS_CASES.filter((c) => !parts.dmemfs || parts.dmemfs.includes(c.id));
  const measurements = [
    ...tests.flatMap((c) => [`${c.id}_baseline`, `${c.id}_series`]),
    ...onDmemfs.map((c) => `${c.id}_dmemfs`),
  ];
  return defineScenario({
    id: 'mm-selftests',
    title: "the kernel's own mm selftests on the baseline and on the series, and pointed at dmemfs",
    proves: `tools/testing/selftests/vm, built from each kernel's own tree, gives on the series the
      outcome it gives on the unpatched 5.10.223 (baseline-debian) in the same machine, test by
      test; and what its path-taking tests (hugepage-mmap, userfaultfd hugetlb_shared,
      write_to_hugetlbfs) do on a dmemfs mount, each outcome with its reason.`,
    needs: ['patched-kernel'],
    boots: ['selftests-baseline', 'selftests'],
    measurements,
    async run(ctx) {
      const series = await ctx.selftests('profile');
      if (!series)
        return ctx.skip("the run's kernel is not one the rig built: there is no tree to build its selftests from");
      const baseline = await ctx.selftests('baseline');
      if (baseline) await onKernel(ctx, 'baseline', baseline, tests);
      else for (const c of tests) ctx.skipMeasure(`${c.id}_baseline`, 'the baseline kernel is not one the rig built');
      const g = await onKernel(ctx, 'series', series, tests);
      if (g && onDmemfs.length) await dmemfsCases(ctx, g, series, onDmemfs);
    },
  });
}

export const mmSelftests = mmSelftestsWith();

/** Boot the kernel's machine, install its build's tests, and run each case; the guest if it lives. */
async function onKernel(
  ctx: Ctx,
  kernel: Kernel,
  build: SelftestBuild,
  cases: readonly SelftestCase[],
): Promise<Guest | undefined> {
  const g = await ctx.boot(kernel === 'baseline' ? 'selftests-baseline' : 'selftests');
  await install(
    g,
    build,
    cases.map((c) => c.program),
  );
  await mount(g, ['mkdir', '-p', HUGE_MNT], ['mount', '-t', 'hugetlbfs', 'none', HUGE_MNT]);
  for (const [i, c] of cases.entries()) {
    const expected = kernel === 'baseline' ? c.baseline : (c.series?.outcome ?? c.baseline);
    const why =
      kernel === 'baseline'
        ? (c.because ?? 'the unpatched kernel passes it in this machine')
        : (c.series?.because ?? "the series' kernel is held to the baseline's outcome");
    const done = await runCase(ctx, g, build, c, `${c.id}_${kernel}`, expected, why, HUGE_MNT, HUGE_PARENT);
    if (!done) {
      for (const rest of cases.slice(i + 1))
        ctx.skipMeasure(`${rest.id}_${kernel}`, `the guest died in ${c.id} (its measurement has the report)`);
      return undefined;
    }
  }
  return g;
}

/** The path-taking cases on a dmemfs mount at 2M (series only). */
async function dmemfsCases(ctx: Ctx, g: Guest, build: SelftestBuild, cases: readonly DmemfsCase[]): Promise<void> {
  const m = await mount(g, ['mkdir', '-p', DMEM_MNT], ['mount', '-t', 'dmemfs', '-o', 'pagesize=2M', 'none', DMEM_MNT]);
  if (!m.ok) {
    for (const c of cases) ctx.skipMeasure(`${c.id}_dmemfs`, `dmemfs would not mount at 2M: ${m.err}`);
    return;
  }
  for (const [i, c] of cases.entries()) {
    const done = await runCase(ctx, g, build, c, `${c.id}_dmemfs`, c.dmemfs, c.because, DMEM_MNT, DMEM_PARENT);
    if (!done) {
      for (const rest of cases.slice(i + 1))
        ctx.skipMeasure(`${rest.id}_dmemfs`, `the guest died in ${c.id} (its measurement has the report)`);
      return;
    }
  }
}

async function mount(g: Guest, mkdir: string[], argv: string[]): Promise<{ ok: boolean; err: string }> {
  await g.exec(mkdir, { check: true });
  const r = await g.exec(argv);
  return { ok: r.code === 0, err: r.stderr.trim() };
}

/** Upload the programs the cases run (the build's own files, executable). */
async function install(g: Guest, build: SelftestBuild, programs: readonly string[]): Promise<void> {
  await g.exec(['mkdir', '-p', BIN], { check: true });
  for (const p of new Set(programs)) {
    if (build.targets[p] && !build.targets[p]!.built) continue;
    await g.ssh!.upload(`${BIN}/${p}`, { localPath: `${build.dir}/${p}` }, 0o755);
  }
}

/**
 * Run one case and measure its outcome; false when the guest did not survive it. A kernel
 * report on the console while it ran is its outcome (`report: TITLE`), attached to the measurement.
 */
async function runCase(
  ctx: Ctx,
  g: Guest,
  build: SelftestBuild,
  c: SelftestCase | DmemfsCase,
  name: string,
  expected: string,
  why: string,
  mnt: string,
  parent: string,
): Promise<boolean> {
  const target = build.targets[c.program];
  if (target && !target.built) {
    ctx.measure(name, 'not built', { expect: is(expected), why, evidence: target.error ?? '' });
    return true;
  }
  const restore = await setSysctls(g, c.sysctls ?? {});
  const argv = caseArgv(c, BIN, mnt);
  const r = await programOutcome(g, argv, { maxS: c.maxS, ...(c.inMountParent ? { cwd: parent } : {}) }, (code, out) =>
    outcomeOf(code, out, c.program),
  );
  if (!r.alive) {
    ctx.measure(name, r.outcome, { expect: is(expected), why, reports: r.reports });
    return false;
  }
  await setSysctls(g, restore);
  // What a test left in the mount holds its pages: the next test starts with none of it.
  await g.exec(['sh', '-c', 'rm -f "$1"/*', 'clean', mnt]);
  ctx.measure(name, r.outcome, {
    expect: is(expected),
    why,
    note: `${r.seconds} s: ${caseArgv(c, '.', mnt).join(' ')}${c.why ? ` (${c.why})` : ''}`,
    evidence: r.evidence,
    ...(r.reports.length ? { reports: r.reports } : {}),
  });
  return true;
}

/** Set sysctls (name -> value); returns the values they had, to set back. */
async function setSysctls(g: Guest, want: Record<string, string>): Promise<Record<string, string>> {
  const before: Record<string, string> = {};
  for (const [k, v] of Object.entries(want)) {
    const path = `/proc/sys/${k.replaceAll('.', '/')}`;
    before[k] = (await g.exec(['cat', path], { check: true })).stdout.trim();
    await g.exec(['sh', '-c', 'echo "$2" > "$1"', 'sysctl', path, v], { check: true });
  }
  return before;
}
