/**
 * `bisect`: the first patch of a series at which a scenario's verdict (or one measurement's
 * pass/fail) takes the value it has on the whole series. Each step builds the prefix 1..k
 * (trees and builds cached by content, objects reused from the profile's build directory) and
 * runs the scenario on it. A prefix that does not apply, build or boot is skipped, as `git bisect
 * skip` does; a feature a prefix does not have yet is simply that prefix's verdict.
 */
import { join } from 'node:path';
import { RigError, messageOf } from '../core/errors.js';
import { info } from '../core/log.js';
import type { Measurement, ScenarioResult, Value } from '../core/results.js';
import { SIGNATURES } from '../scenarios/signatures.js';
import type { Signature } from '../scenarios/types.js';
import { loadProfile } from '../kernel/profile.js';
import { resolveSeries, type KernelInput } from '../kernel/pipeline.js';
import { selectScenarios } from '../scenarios/catalog.js';
import type { AccelChoice } from '../vm/accel.js';
import { prepareRigKernel } from './rig-kernel.js';
import { MemoryGate } from '../vm/host-memory.js';
import { runScenarios } from './scenario-runner.js';

export interface BisectStep {
  k: number;
  /** The last patch of the prefix (k = 0: the base, no patch). */
  title: string;
  applied: boolean;
  built: boolean | null;
  booted: boolean | null;
  /** The scenario's status, or the measurement's pass / fail / recorded / absent / skipped. */
  verdict: string;
  value?: Value | null;
  note?: string;
  /** Could not be judged: did not apply, build or boot. */
  skipped: boolean;
  seconds: number;
}

export interface BisectResult {
  scenario: string;
  measurement: string | null;
  /** A known-failure signature bisected (its verdict: reproduced, not reproduced, path absent). */
  signature?: string | null;
  /**
   * Set when the prefix before the culprit could not show the signature at all (its measurements
   * absent or skipped: the path is not there yet): the defect is present from the culprit on,
   * where the path first exists, and may have been written earlier.
   */
  pathFrom?: number;
  series: string;
  /** Patches in the whole series. */
  patches: number;
  good: number;
  bad: number;
  /** The verdict on the prefix `bad` (the whole series unless --bad). */
  target: string;
  culprit: { number: number; title: string } | null;
  /** When skipped prefixes hide the first patch: the patches it is among. */
  candidates?: number[];
  steps: BisectStep[];
  /** The prefixes of each round, in order (a round's prefixes ran at once). */
  rounds: number[][];
  jobs: number;
  seconds: number;
}

export interface BisectOptions {
  profile: string;
  scenario: string;
  measurement?: string;
  /** Bisect this signature's reproduction, judged as the judge claims it (values and evidence). */
  signature?: string;
  input: KernelInput;
  good?: number;
  bad?: number;
  accel: AccelChoice;
  out: string;
  /** Prefixes built and run at once per round (builds of one profile directory take turns). */
  jobs?: number;
  /** The host memory the rounds' guests share (made by `bisect` when jobs > 1). */
  memory?: MemoryGate;
  /**
   * Runs of a scenario on a prefix already made in this process (`culprits`: the signatures of one
   * scenario are judged on the same run of each prefix, not on one run each).
   */
  prefixRuns?: PrefixRuns;
}

/** A prefix built and its scenario run, before any verdict: what the signatures of one scenario share. */
export interface PrefixRun {
  step: BisectStep;
  /** The scenario's result; absent when the prefix was skipped (did not apply, build or boot). */
  result?: ScenarioResult;
}

/** Runs by `scenario@k`, shared by the bisects of one `culprits`. */
export type PrefixRuns = Map<string, Promise<PrefixRun>>;

/** A measurement as a bisect verdict. */
export function measurementVerdict(m: Measurement | undefined): { verdict: string; value?: Value | null } {
  if (!m) return { verdict: 'absent' };
  if (m.skipped) return { verdict: 'skipped', value: null };
  if (m.ok === true) return { verdict: 'pass', value: m.value };
  if (m.ok === false) return { verdict: 'fail', value: m.value };
  return { verdict: `recorded ${JSON.stringify(m.value)}`, value: m.value };
}

/** What the judge made of signature `id` on a prefix: reproduced, not reproduced, or path absent. */
export function signatureVerdict(
  s: Pick<ScenarioResult, 'signatures' | 'measurements'>,
  sig: Pick<Signature, 'id' | 'measurements'>,
): { verdict: string; value?: Value | null } {
  const check = s.signatures.find((c) => c.id === sig.id);
  if (check?.reproduced) return { verdict: 'reproduced', value: check.detail };
  const names = Object.keys(sig.measurements);
  const taken = names.filter((n) => s.measurements[n] && s.measurements[n]!.skipped === undefined);
  if (taken.length === 0) return { verdict: 'path absent', value: null };
  return { verdict: 'not reproduced', value: check?.detail ?? null };
}

/** The culprit, when the prefix just before it could not show the signature (its path absent). */
export function pathFrom(steps: readonly BisectStep[], culprit: number | null): number | undefined {
  if (culprit === null) return undefined;
  return steps.find((x) => x.k === culprit - 1)?.verdict === 'path absent' ? culprit : undefined;
}

/** The signature `bisect --signature` names, or one error that lists the known ones. */
export function signatureById(id: string): Signature {
  const sig = SIGNATURES.find((x) => x.id === id);
  if (!sig)
    throw new RigError('unknown-signature', `no known-failure signature "${id}"`, {
      fix: `the signatures: ${SIGNATURES.map((x) => x.id).join(', ')}`,
    });
  return sig;
}

/**
 * The prefixes one round tests: up to `jobs` of the open interval (lo, hi), none skipped, as
 * near as can be to the points that split it into jobs + 1 equal parts (one job: its middle).
 */
export function probes(lo: number, hi: number, jobs: number, skipped: ReadonlySet<number>): number[] {
  const open = Array.from({ length: Math.max(0, hi - lo - 1) }, (_, i) => lo + 1 + i).filter((k) => !skipped.has(k));
  const chosen: number[] = [];
  for (let i = 1; i <= jobs && chosen.length < open.length; i++) {
    const at = lo + ((hi - lo) * i) / (jobs + 1);
    const next = open
      .filter((k) => !chosen.includes(k))
      .sort((a, b) => Math.abs(a - at) - Math.abs(b - at) || a - b)[0];
    if (next !== undefined) chosen.push(next);
  }
  return chosen.sort((a, b) => a - b);
}

/**
 * Search for the first k in (good, bad] whose verdict is bad's, over an evaluation of prefixes.
 * Each round evaluates `jobs` prefixes at once (binary search at 1, k-ary above: the interval
 * splits into jobs + 1 parts). Skipped prefixes are stepped around; if they hide the answer, the
 * candidates are given. `rounds` holds the prefixes of each round, the ends first.
 */
export async function bisectSearch(
  good: number,
  bad: number,
  evaluate: (k: number) => Promise<BisectStep>,
  jobs = 1,
  /** The verdict the end must have (a signature's "reproduced"): anything else fails before the search. */
  want?: { verdict: string; fail: (got: string) => Error },
): Promise<{ target: string; culprit: number | null; candidates?: number[]; steps: BisectStep[]; rounds: number[][] }> {
  const steps = new Map<number, BisectStep>();
  const rounds: number[][] = [];
  const ev = async (k: number) => {
    if (!steps.has(k)) steps.set(k, await evaluate(k));
    return steps.get(k)!;
  };
  const target = (await judgeEnds(good, bad, ev, jobs, rounds, want)).verdict;
  let lo = good;
  let hi = bad;
  const skipped = new Set<number>();
  while (hi - lo > 1) {
    const next = probes(lo, hi, jobs, skipped);
    if (!next.length) break;
    rounds.push(next);
    if (jobs > 1) info(`bisect: ${roundWords(next)} (between ${lo} and ${hi})`);
    [lo, hi] = narrow(await Promise.all(next.map(ev)), target, lo, hi, skipped);
  }
  const all = [...steps.values()].sort((a, b) => a.k - b.k);
  if (hi - lo === 1) return { target, culprit: hi, steps: all, rounds };
  const candidates = Array.from({ length: hi - lo }, (_, i) => lo + 1 + i);
  return { target, culprit: null, candidates, steps: all, rounds };
}

const roundWords = (ks: number[]) => (ks.length > 1 ? `prefixes ${ks.join(', ')} at once` : `prefix ${ks[0]}`);

/** In order: the first prefix with the target verdict closes the interval, those before it open it. */
function narrow(got: BisectStep[], target: string, lo: number, hi: number, skipped: Set<number>): [number, number] {
  for (const s of got) {
    if (s.skipped) skipped.add(s.k);
    else if (s.verdict === target) return [lo, s.k];
    else lo = s.k;
  }
  return [lo, hi];
}

/**
 * The ends: one after the other on one worker (the whole series first, the base only when it
 * was judged), at once on more. Both must be judged and must differ; the whole series' verdict
 * is the one searched for.
 */
async function judgeEnds(
  good: number,
  bad: number,
  ev: (k: number) => Promise<BisectStep>,
  jobs: number,
  rounds: number[][],
  want?: { verdict: string; fail: (got: string) => Error },
): Promise<BisectStep> {
  let end: BisectStep;
  let start: BisectStep;
  if (jobs > 1) {
    rounds.push([bad, good]);
    [end, start] = await Promise.all([ev(bad), ev(good)]);
  } else {
    rounds.push([bad]);
    end = await ev(bad);
    if (want && !end.skipped && end.verdict !== want.verdict) throw want.fail(end.verdict);
    if (!end.skipped) rounds.push([good]);
    start = end.skipped ? end : await ev(good);
  }
  if (end.skipped)
    throw new RigError('bisect-unusable', `prefix ${bad} could not be judged: ${end.note ?? end.verdict}`, {
      fix: 'the series as a whole must apply, build and boot; give --bad K for a prefix that does',
    });
  if (want && end.verdict !== want.verdict) throw want.fail(end.verdict);
  if (start.skipped)
    throw new RigError('bisect-unusable', `prefix ${good} could not be judged: ${start.note ?? start.verdict}`, {
      fix: 'give --good K for a prefix that applies, builds and boots',
    });
  if (start.verdict === end.verdict)
    throw new RigError(
      'bisect-nothing',
      `prefix ${good} and prefix ${bad} agree (${end.verdict}): there is no patch at which the verdict changes`,
      { fix: 'give --good K at a prefix whose verdict differs, or bisect another --measurement' },
    );
  return end;
}

const STEP_SKIPS: Record<string, keyof Pick<BisectStep, 'applied' | 'built'>> = {
  'patch-failed': 'applied',
  'build-failed': 'built',
  'config-dropped': 'built',
};

/** Build prefix k and run the scenario on it (once per scenario and prefix when runs are shared). */
function runPrefix(opts: BisectOptions, k: number, title: string): Promise<PrefixRun> {
  const key = `${opts.scenario}@${k}`;
  const had = opts.prefixRuns?.get(key);
  if (had) {
    info(`bisect: prefix ${k} of ${opts.scenario} judged on the run made before in this process`);
    return had;
  }
  const made = buildAndRun(opts, k, title);
  opts.prefixRuns?.set(key, made);
  // A run that threw is not kept: the next bisect that needs it tries again.
  made.catch(() => opts.prefixRuns?.delete(key));
  return made;
}

async function buildAndRun(opts: BisectOptions, k: number, title: string): Promise<PrefixRun> {
  const t0 = Date.now();
  const input: KernelInput = { ...opts.input, prefix: k, lenientConfig: true };
  const step: BisectStep = {
    k,
    title,
    applied: true,
    built: null,
    booted: null,
    verdict: '',
    skipped: false,
    seconds: 0,
  };
  info(`bisect: prefix ${k} (${title})`);
  try {
    await prepareRigKernel({ profile: opts.profile, ...input });
    step.built = true;
  } catch (e) {
    const kind = (e as { kind?: string }).kind ?? '';
    const what = STEP_SKIPS[kind];
    if (!what) throw e;
    if (what === 'applied') step.applied = false;
    step.built = false;
    const note = messageOf(e).split('\n')[0];
    return {
      step: {
        ...step,
        verdict: `not ${what}`,
        ...(note ? { note } : {}),
        skipped: true,
        seconds: (Date.now() - t0) / 1000,
      },
    };
  }
  const def = selectScenarios([opts.scenario])[0]!;
  const run = await runScenarios({
    profile: opts.profile,
    accel: opts.accel,
    ...(opts.memory ? { memory: opts.memory } : {}),
    scenarios: [def],
    input,
    out: join(opts.out, `k${k}`),
  });
  const s = run.scenarios[0]!;
  step.booted = run.boots.some((b) => b.bootSeconds !== null);
  const seconds = (Date.now() - t0) / 1000;
  if (!step.booted && run.boots.length)
    return {
      step: { ...step, verdict: 'not booted', ...(s.reason ? { note: s.reason } : {}), skipped: true, seconds },
    };
  // A scenario this host cannot run (no IOMMU, say) says nothing about the prefix: skipped, with the reason.
  if (s.status === 'skip')
    return {
      step: { ...step, verdict: 'scenario skipped', ...(s.reason ? { note: s.reason } : {}), skipped: true, seconds },
    };
  return { step: { ...step, seconds }, result: s };
}

/** Prefix k's verdict: for the signature, the measurement, or the scenario's status. */
async function evaluatePrefix(opts: BisectOptions, k: number, title: string): Promise<BisectStep> {
  const { step, result: s } = await runPrefix(opts, k, title);
  // A signature's bisect needs the whole series to reproduce it, so this host can run its
  // scenario: a prefix that built and booted and on which the scenario skipped lacks what the
  // scenario needs from the kernel (dmemfs will not mount on the base). Its path is absent.
  if (opts.signature && step.verdict === 'scenario skipped')
    return {
      ...step,
      skipped: false,
      verdict: 'path absent',
      note: `the scenario skipped on this kernel: ${step.note ?? '(no reason)'}`,
    };
  if (!s) return step;
  const v = opts.signature
    ? signatureVerdict(s, signatureById(opts.signature))
    : opts.measurement
      ? measurementVerdict(s.measurements[opts.measurement])
      : { verdict: s.status };
  return { ...step, ...v, ...(s.reason ? { note: s.reason } : {}) };
}

export async function bisect(given: BisectOptions): Promise<BisectResult> {
  const t0 = Date.now();
  const opts = withSignature(given);
  const def = selectScenarios([opts.scenario])[0]!;
  if (opts.measurement && !(def.measurements as readonly string[]).includes(opts.measurement))
    throw new RigError('unknown-measurement', `scenario ${def.id} has no measurement "${opts.measurement}"`, {
      fix: `its measurements: ${def.measurements.join(', ')}`,
    });
  const series = await resolveSeries(loadProfile(opts.profile), opts.input);
  if (!series)
    throw new RigError('no-series', `profile ${opts.profile} has no series to bisect`, { fix: 'pass --series' });
  const n = series.parsed.patches.length;
  const [good, bad] = bisectRange(opts.good, opts.bad, n);
  const title = (k: number) =>
    k === 0 ? '(the base, no patch)' : series.parsed.patches.find((p) => p.number === k)!.title;
  const jobs = opts.jobs ?? 1;
  const shared = jobs > 1 && !opts.memory ? { ...opts, memory: new MemoryGate() } : opts;
  const want = opts.signature
    ? {
        verdict: 'reproduced',
        fail: (got: string) =>
          new RigError(
            'bisect-not-reproduced',
            `signature ${opts.signature} does not reproduce on prefix ${bad} (${got}): there is nothing to bisect`,
            { fix: 'bisect a signature the whole series reproduces (see the last run), or give --bad K where it does' },
          ),
      }
    : undefined;
  const r = await bisectSearch(good, bad, (k) => evaluatePrefix(shared, k, title(k)), jobs, want);
  const from = opts.signature ? pathFrom(r.steps, r.culprit) : undefined;
  return {
    scenario: def.id,
    measurement: opts.measurement ?? null,
    ...(opts.signature ? { signature: opts.signature } : {}),
    ...(from !== undefined ? { pathFrom: from } : {}),
    series: series.name,
    patches: n,
    good,
    bad,
    target: r.target,
    culprit: r.culprit === null ? null : { number: r.culprit, title: title(r.culprit) },
    ...(r.candidates ? { candidates: r.candidates } : {}),
    steps: r.steps,
    rounds: r.rounds,
    jobs,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** With --signature: its scenario (a --scenario given must be the same), and no --measurement. */
function withSignature(opts: BisectOptions): BisectOptions {
  if (!opts.signature) return opts;
  const sig = signatureById(opts.signature);
  if (sig.scenario === '*')
    throw new RigError('usage', `signature ${sig.id} is seen in every scenario: bisect it with --scenario ID`, {
      fix: 'give --scenario with one scenario where it reproduces',
    });
  if (opts.measurement)
    throw new RigError('usage', '--signature and --measurement exclude each other', {
      fix: 'a signature is judged on its own measurements',
    });
  if (opts.scenario && opts.scenario !== sig.scenario)
    throw new RigError('usage', `signature ${sig.id} belongs to scenario ${sig.scenario}, not ${opts.scenario}`, {
      fix: `drop --scenario, or give --scenario ${sig.scenario}`,
    });
  return { ...opts, scenario: sig.scenario };
}

/** `--good` (default the base) and `--bad` (default the whole series), checked against n patches. */
function bisectRange(goodOpt: number | undefined, badOpt: number | undefined, n: number): [number, number] {
  const good = goodOpt ?? 0;
  const bad = badOpt ?? n;
  if (!(Number.isInteger(good) && Number.isInteger(bad) && good >= 0 && bad <= n && good < bad))
    throw new RigError('bad-range', `--good ${good} --bad ${bad}: need 0 <= good < bad <= ${n}`, {
      fix: `give prefixes of the series: 0 (the base) .. ${n}`,
    });
  return [good, bad];
}

/** The table `bisect` prints. */
export function bisectTable(r: BisectResult): string {
  const yn = (b: boolean | null) => (b === null ? '-' : b ? 'yes' : 'no');
  const lines = [
    `bisect ${r.scenario}${r.measurement ? ` / ${r.measurement}` : ''}` +
      `${r.signature ? ` / signature ${r.signature}` : ''} over ${r.series} (prefixes ${r.good}..${r.bad})`,
    '',
    '|  k | applied | built | booted | verdict | value | last patch |',
    '|---:|---|---|---|---|---|---|',
    ...r.steps.map(
      (s) =>
        `| ${String(s.k).padStart(2)} | ${yn(s.applied)} | ${yn(s.built)} | ${yn(s.booted)} | ${s.verdict} | ` +
        `${s.value === undefined ? '-' : JSON.stringify(s.value)} | ${s.title} |`,
    ),
    '',
    r.culprit && r.pathFrom
      ? `present from ${r.culprit.number}/${r.patches} ${r.culprit.title}, where the path first exists`
      : r.culprit
        ? `first patch with the verdict "${r.target}": ${r.culprit.number}/${r.patches} ${r.culprit.title}`
        : `the first patch with the verdict "${r.target}" is one of ${r.candidates?.join(', ')} ` +
          '(the prefixes between could not be judged)',
    `time: ${r.seconds.toFixed(0)} s for ${r.steps.length} prefixes in ${r.rounds.length} rounds` +
      (r.jobs > 1 ? ` (${r.jobs} at once)` : ''),
  ];
  return lines.join('\n');
}
