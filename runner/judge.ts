/**
 * The judge: turns a scenario's measurements, the kernel reports seen while it ran and the
 * known-failure signatures of the series into its verdict.
 *
 * - A failed measurement is a known failure only when a signature names it and its evidence
 *   matches (value, kernel report, attached evidence). Otherwise it is a fail, also when a
 *   signature exists for another value ("worse than known").
 * - A signature whose measurements were all taken and all pass "no longer reproduces".
 * - A kernel report (WARNING, lockdep, KASAN, ...) seen during the scenario fails it, unless a
 *   measurement claimed it as its evidence: then that measurement's verdict governs.
 * - A skipped measurement never counts as a pass; the scenario says how many were skipped.
 */
import {
  describeExpectation,
  meets,
  type KernelReport,
  type Measurement,
  type ScenarioResult,
  type ScenarioStatus,
  type SignatureCheck,
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
    const bad = reports.find((r) => !reportMatches(r, sig.report!));
    if (bad) return `${name}'s kernel report (${bad.kind}: ${bad.title}) is not ${sig.id}'s`;
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

/** Each signature checked against the measurements: which failures it explains. */
function checkSignatures(
  measurements: Record<string, Measurement>,
  signatures: readonly Signature[],
): { checks: SignatureCheck[]; explained: Set<string>; mismatches: Map<string, string> } {
  const checks: SignatureCheck[] = [];
  const explained = new Set<string>();
  const mismatches = new Map<string, string>();
  for (const sig of signatures) {
    const names = Object.keys(sig.measurements);
    const taken = names.filter((n) => measurements[n] && measurements[n].skipped === undefined);
    if (taken.length === 0) continue; // not reached: the signature was not checked
    const failing = taken.filter((n) => measurements[n]!.ok === false);
    const matched = failing.filter((n) => {
      const why = evidenceMismatch(measurements[n]!, n, sig);
      if (why) mismatches.set(n, why);
      return !why;
    });
    for (const n of matched) explained.add(n);
    if (matched.length > 0) {
      checks.push(check(sig, true, matched.map((n) => valueText(n, measurements[n]!)).join('; ')));
    } else if (failing.length === 0 && taken.length === names.length) {
      checks.push(check(sig, false, `now: ${taken.map((n) => valueText(n, measurements[n]!)).join('; ')}`));
    }
  }
  return { checks, explained, mismatches };
}

const check = (sig: Signature, reproduced: boolean, detail: string): SignatureCheck => ({
  id: sig.id,
  title: sig.title,
  measurements: Object.keys(sig.measurements),
  reproduced,
  detail,
});

const valueText = (n: string, m: Measurement): string => {
  const reports = (m.reports ?? [])
    .map((r) => `${r.kind}: ${r.title}`)
    .filter((r) => r !== m.value)
    .join('; ');
  return `${n} = ${String(m.value)}${reports ? ` (${reports})` : ''}`;
};

/** The reports no measurement claimed: each one fails the scenario. */
export function unclaimedReports(seen: readonly SeenReport[], measurements: Record<string, Measurement>): SeenReport[] {
  const claimed = new Set(
    Object.values(measurements).flatMap((m) => (m.reports ?? []).map((r) => `${r.title}\n${r.excerpt}`)),
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

/** The verdict of a scenario whose body ran to its end (a body that threw is a fail already). */
export function judge(
  result: Pick<ScenarioResult, 'measurements'>,
  signatures: readonly Signature[],
  seen: readonly SeenReport[] = [],
): Verdict {
  const { checks, explained, mismatches } = checkSignatures(result.measurements, signatures);
  const problems: string[] = [];
  for (const [n, m] of Object.entries(result.measurements)) {
    if (m.ok !== false || explained.has(n)) continue;
    const worse = mismatches.get(n);
    problems.push(`${valueText(n, m)} (expected ${describeExpectation(m.expected!)})${worse ? `: ${worse}` : ''}`);
  }
  let unclaimed = unclaimedReports(seen, result.measurements);
  for (const sig of signatures.filter((s) => s.seen && s.report)) {
    const mine = unclaimed.filter((r) => reportMatches(r, sig.report!));
    if (!mine.length) continue;
    unclaimed = unclaimed.filter((r) => !mine.includes(r));
    checks.push(check(sig, true, `${mine.length} report(s) on ${mine[0]!.guest}: ${mine[0]!.title}`));
  }
  problems.push(...reportProblems(unclaimed));
  if (problems.length) return { status: 'fail', reason: `not met: ${problems.join('; ')}`, signatures: checks };
  const reproduced = checks.filter((c) => c.reproduced);
  if (reproduced.length)
    return {
      status: 'known-failure',
      reason: reproduced.map((c) => `${c.id}: ${c.title} (${c.detail})`).join('; '),
      signatures: checks,
    };
  return { status: 'pass', signatures: checks };
}
