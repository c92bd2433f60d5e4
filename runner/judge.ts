/**
 * The judge: turns a scenario's measurements, the kernel reports seen while it ran and the
 * known-failure signatures of the series into its verdict.
 *
 * - A failed measurement is a known failure only when a signature names it and its evidence
 *   matches (value, kernel report, attached evidence). Otherwise it is a fail, also when a
 *   signature exists for another value ("worse than known").
 * - A signature is judged measurement by measurement: the ones that match reproduce it, the ones
 *   that pass are cured ("no longer reproduces" for them, also while others still reproduce),
 *   the ones that could not be taken leave it "not re-checked". Only when every one was taken and
 *   passes is the whole signature fixed; an intermittent one needs enough tries for that.
 * - A skip never turns a verdict: a signature left unchecked by a skipped measurement keeps its
 *   known failure (not re-checked, with the reason), never a pass.
 * - A kernel report (WARNING, lockdep, KASAN, ...) seen during the scenario fails it, unless a
 *   held measurement claimed it as its evidence (then that measurement's verdict governs) or a
 *   signature names it. A value that is only recorded claims nothing.
 */
import {
  describeExpectation,
  meets,
  type KernelReport,
  type Measurement,
  type ScenarioResult,
  type ScenarioStatus,
  type SignatureCheck,
  triesNeeded,
} from '../core/results.js';
import type { Signature } from '../scenarios/types.js';

/** A console report with where it came from, so a claimed one can be told from another. */
export interface SeenReport extends KernelReport {
  guest: string;
  line: number;
}

export interface Verdict {
  status: ScenarioStatus;
  reason?: string;
  signatures: SignatureCheck[];
}

/** Why a failed measurement does (or does not) match one signature's evidence. */
export function evidenceMismatch(m: Measurement, name: string, sig: Signature): string | undefined {
  const want = sig.measurements[name];
  if (want === undefined) return `${sig.id} does not name ${name}`;
  if (want !== 'any' && !meets(m.value, want))
    return `${name} = ${String(m.value)}, where ${sig.id} has ${describeExpectation(want)}`;
  if (sig.report) {
    const reports = m.reports ?? [];
    if (reports.length === 0) return `${sig.id} needs a kernel report with ${name}, and there is none`;
    // Each report must be some matching signature's (checked over all of them in judge()).
    if (!reports.some((r) => reportMatches(r, sig.report!)))
      return `${name}'s kernel report (${reports[0]!.kind}: ${reports[0]!.title}) is not ${sig.id}'s`;
  }
  if (sig.evidence && !sig.evidence.test(m.evidence ?? ''))
    return `${name}'s evidence does not show ${String(sig.evidence)} (${sig.id})`;
  return undefined;
}

export function reportMatches(r: KernelReport, want: NonNullable<Signature['report']>): boolean {
  return (
    want.kinds.includes(r.kind) &&
    (!want.title || want.title.test(r.title)) &&
    (!want.excerpt || want.excerpt.test(r.excerpt))
  );
}

/** Where one measurement of a signature stands. */
type State =
  | { kind: 'reproduced' }
  | { kind: 'different'; why: string }
  | { kind: 'passes' }
  | { kind: 'not-seen'; hits: number; tries: number; needed: number; runTries: number }
  | { kind: 'unchecked'; reason: string };

function stateOf(sig: Signature, name: string, m: Measurement | undefined): State {
  if (!m) return { kind: 'unchecked', reason: 'not measured in this run' };
  if (m.skipped !== undefined) return { kind: 'unchecked', reason: m.skipped };
  if (m.ok === false) {
    const why = evidenceMismatch(m, name, sig);
    return why ? { kind: 'different', why } : { kind: 'reproduced' };
  }
  const rate = sig.intermittent?.[name];
  const runTries = m.tries ?? 1;
  if (rate) {
    const needed = triesNeeded(rate.hits, rate.tries);
    if (runTries < needed) return { kind: 'not-seen', hits: rate.hits, tries: rate.tries, needed, runTries };
  }
  return { kind: 'passes' };
}

type Of<K extends State['kind']> = ReadonlyArray<readonly [string, Extract<State, { kind: K }>]>;

/** The states of one signature's measurements, sorted by kind. */
interface Sorted {
  reproduced: string[];
  different: Of<'different'>;
  cured: string[];
  notSeen: Of<'not-seen'>;
  unchecked: Array<{ measurement: string; reason: string }>;
}

function sortStates(states: ReadonlyArray<readonly [string, State]>): Sorted {
  const of = <K extends State['kind']>(k: K) =>
    states.filter((x): x is readonly [string, Extract<State, { kind: K }>] => x[1].kind === k);
  return {
    reproduced: of('reproduced').map(([n]) => n),
    different: of('different'),
    cured: of('passes').map(([n]) => n),
    notSeen: of('not-seen'),
    unchecked: of('unchecked').map(([n, s]) => ({ measurement: n, reason: s.reason })),
  };
}

/** A signature's outcome: any measurement reproducing it wins, then a different failure, then a gap. */
function outcomeFrom(x: Sorted): SignatureCheck['outcome'] {
  if (x.reproduced.length) return 'reproduced';
  if (x.different.length) return 'different';
  if (x.unchecked.length) return 'not-rechecked';
  return x.notSeen.length ? 'not-seen' : 'fixed';
}

const notSeenText = ([n, s]: Of<'not-seen'>[number]): string =>
  `${n}: not seen this run (intermittent: ${s.hits} of ${s.tries}; ${s.runTries} ` +
  `${s.runTries === 1 ? 'try' : 'tries'} here, ${s.needed} needed to call it fixed)`;

/** What a check says, part by part. */
function detailOf(x: Sorted, values: (ns: readonly string[]) => string): string {
  const parts: string[] = [];
  if (x.reproduced.length) parts.push(values(x.reproduced));
  if (x.cured.length) parts.push(`no longer reproduces: ${values(x.cured)}`);
  if (x.notSeen.length) parts.push(x.notSeen.map(notSeenText).join('; '));
  if (x.unchecked.length)
    parts.push(`not re-checked: ${x.unchecked.map((u) => `${u.measurement}: ${u.reason}`).join('; ')}`);
  if (x.different.length) parts.push(`failed differently: ${x.different.map(([, s]) => s.why).join('; ')}`);
  return parts.join('; ');
}

/** One signature checked against the measurements, measurement by measurement. */
function checkSignature(
  sig: Signature,
  measurements: Record<string, Measurement>,
): { check: SignatureCheck | undefined; explained: string[]; mismatches: Array<[string, string]> } {
  const names = Object.keys(sig.measurements);
  const x = sortStates(names.map((n) => [n, stateOf(sig, n, measurements[n])] as const));
  const mismatches = x.different.map(([n, s]) => [n, s.why] as [string, string]);
  // Nothing of it was measured and nothing skipped it (a scenario that never got there): not judged.
  const skipped = x.unchecked.filter((u) => u.reason !== 'not measured in this run');
  if (names.length === 0 || (x.unchecked.length === names.length && !skipped.length))
    return { check: undefined, explained: [], mismatches };
  const values = (ns: readonly string[]) => ns.map((n) => valueText(n, measurements[n]!)).join('; ');
  const outcome = outcomeFrom(x);
  const rateOf = x.notSeen[0]?.[1];
  const check: SignatureCheck = {
    id: sig.id,
    title: sig.title,
    measurements: names,
    reproduced: outcome === 'reproduced',
    outcome,
    detail: outcome === 'fixed' ? `now: ${values(x.cured)}` : detailOf(x, values),
    ...(x.cured.length ? { cured: x.cured } : {}),
    ...(x.unchecked.length ? { unchecked: x.unchecked } : {}),
    ...(rateOf ? { rate: { hits: rateOf.hits, tries: rateOf.tries + rateOf.runTries, needed: rateOf.needed } } : {}),
  };
  return { check, explained: x.reproduced, mismatches };
}

const valueText = (n: string, m: Measurement): string => {
  const reports = (m.reports ?? [])
    .map((r) => `${r.kind}: ${r.title}`)
    .filter((r) => r !== m.value)
    .join('; ');
  return `${n} = ${String(m.value)}${reports ? ` (${reports})` : ''}`;
};

/** The reports no held measurement claimed: each one fails the scenario unless a signature names it. */
export function unclaimedReports(seen: readonly SeenReport[], measurements: Record<string, Measurement>): SeenReport[] {
  const claimed = new Set(
    Object.values(measurements)
      .filter((m) => m.expected !== undefined && m.skipped === undefined)
      .flatMap((m) => (m.reports ?? []).map((r) => `${r.title}\n${r.excerpt}`)),
  );
  return seen.filter((r) => !claimed.has(`${r.title}\n${r.excerpt}`));
}

/** One line per distinct unclaimed report (sysrq t prints one Call Trace per task): "... (x24)". */
function reportProblems(reports: SeenReport[]): string[] {
  const counts = new Map<string, number>();
  for (const r of reports) {
    const k = `kernel ${r.kind} on ${r.guest}: ${r.title}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => (n > 1 ? `${k} (x${n})` : k));
}

const STANDS: ReadonlySet<SignatureCheck['outcome']> = new Set(['reproduced', 'not-rechecked', 'not-seen']);

/** A `seen` signature reproduced by reports: added to its check, or a check of its own. */
function markSeen(checks: SignatureCheck[], sig: Signature, detail: string): void {
  const had = checks.find((c) => c.id === sig.id);
  if (had) Object.assign(had, { detail: `${had.detail}; ${detail}`, reproduced: true, outcome: 'reproduced' });
  else
    checks.push({
      id: sig.id,
      title: sig.title,
      measurements: Object.keys(sig.measurements),
      reproduced: true,
      outcome: 'reproduced',
      detail,
    });
}

/**
 * A failed measurement carrying kernel reports is explained only when every one of its reports
 * is a signature's that reproduced through it (or a `seen` one): a second, unknown report keeps it a fail.
 */
function dropStrays(
  explained: Set<string>,
  mismatches: Map<string, string>,
  ms: Record<string, Measurement>,
  signatures: readonly Signature[],
  checks: readonly SignatureCheck[],
): void {
  const seenSigs = signatures.filter((s) => s.seen && s.report);
  for (const n of [...explained]) {
    const mine = signatures.filter(
      (s) => s.report && s.measurements[n] !== undefined && checks.some((c) => c.id === s.id && c.reproduced),
    );
    const stray = (ms[n]?.reports ?? []).find((r) => ![...mine, ...seenSigs].some((s) => reportMatches(r, s.report!)));
    if (stray) {
      explained.delete(n);
      mismatches.set(n, `its kernel report (${stray.kind}: ${stray.title}) is no signature's`);
    }
  }
}

/**
 * A held measurement that failed only because of reports a debug kernel makes on any use of
 * dmemfs (the `seen` signatures) is theirs: each report matched, the signature reproduced.
 */
function explainBySeen(
  explained: Set<string>,
  mismatches: Map<string, string>,
  ms: Record<string, Measurement>,
  signatures: readonly Signature[],
  checks: SignatureCheck[],
): void {
  for (const [n, m] of Object.entries(ms)) {
    if (m.ok !== false || explained.has(n) || mismatches.has(n) || !m.reports?.length) continue;
    const by = m.reports.map((r) => signatures.find((s) => s.seen && s.report && reportMatches(r, s.report)));
    if (by.some((s) => !s)) continue;
    explained.add(n);
    for (const sig of new Set(by as Signature[])) {
      const count = m.reports.filter((r) => reportMatches(r, sig.report!)).length;
      markSeen(checks, sig, `${n} = ${String(m.value)}: ${count} report(s)`);
    }
  }
}

/** The reports no held measurement claimed, less those a `seen` signature names (those reproduce it). */
function strayReports(
  seen: readonly SeenReport[],
  ms: Record<string, Measurement>,
  signatures: readonly Signature[],
  checks: SignatureCheck[],
): SeenReport[] {
  let unclaimed = unclaimedReports(seen, ms);
  for (const sig of signatures.filter((s) => s.seen && s.report)) {
    const mine = unclaimed.filter((r) => reportMatches(r, sig.report!));
    if (!mine.length) continue;
    unclaimed = unclaimed.filter((r) => !mine.includes(r));
    markSeen(checks, sig, `seen: ${mine.length} report(s) on ${mine[0]!.guest}: ${mine[0]!.title}`);
  }
  return unclaimed;
}

const standingText = (c: SignatureCheck): string => {
  const how = c.outcome === 'reproduced' ? '' : c.outcome === 'not-seen' ? ' [not seen this run]' : ' [not re-checked]';
  return `${c.id}${how}: ${c.title} (${c.detail})`;
};

/** The verdict of a scenario whose body ran to its end (a body that threw is a fail already). */
export function judge(
  result: Pick<ScenarioResult, 'measurements'>,
  signatures: readonly Signature[],
  seen: readonly SeenReport[] = [],
): Verdict {
  const ms = result.measurements;
  const checks: SignatureCheck[] = [];
  const explained = new Set<string>();
  const mismatches = new Map<string, string>();
  for (const sig of signatures.filter((s) => Object.keys(s.measurements).length > 0)) {
    const r = checkSignature(sig, ms);
    if (r.check) checks.push(r.check);
    for (const n of r.explained) explained.add(n);
    for (const [n, why] of r.mismatches) if (!mismatches.has(n)) mismatches.set(n, why);
  }
  dropStrays(explained, mismatches, ms, signatures, checks);
  explainBySeen(explained, mismatches, ms, signatures, checks);
  const problems = Object.entries(ms)
    .filter(([n, m]) => m.ok === false && !explained.has(n))
    .map(([n, m]) => {
      const worse = mismatches.get(n);
      return `${valueText(n, m)} (expected ${describeExpectation(m.expected!)})${worse ? `: ${worse}` : ''}`;
    });
  problems.push(...reportProblems(strayReports(seen, ms, signatures, checks)));
  const cured = checks
    .filter((c) => (c.cured?.length ?? 0) > 0)
    .map((c) => `${c.id}${c.outcome === 'fixed' ? '' : ` (${c.cured!.join(', ')})`}`);
  const curedText = cured.length ? `; no longer reproduces: ${cured.join(', ')}` : '';
  if (problems.length)
    return { status: 'fail', reason: `not met: ${problems.join('; ')}${curedText}`, signatures: checks };
  const standing = checks.filter((c) => STANDS.has(c.outcome));
  if (standing.length)
    return { status: 'known-failure', reason: standing.map(standingText).join('; '), signatures: checks };
  return { status: 'pass', signatures: checks };
}
