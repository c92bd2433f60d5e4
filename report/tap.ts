/**
 * TAP 13 of a run: one test point per scenario, measurements as YAML diagnostics. A known
 * failure is a TODO naming its signatures; a signature that no longer reproduces is a comment
 * line of its own under its scenario (the series changed: update the signature or drop it);
 * a skipped measurement is listed with its reason.
 */
import { provenanceLine } from '../core/series-record.js';
import {
  describeExpectation,
  fixedSignatures,
  outcomeOf,
  type RunResults,
  type ScenarioResult,
  type SignatureCheck,
} from '../core/results.js';

const directive = (s: ScenarioResult): string =>
  s.status === 'skip'
    ? ` # SKIP ${s.reason}`
    : s.status === 'known-failure'
      ? ` # TODO known failure of the series: ${s.reason}`
      : '';

function diagnostics(s: ScenarioResult): string[] {
  const ms = Object.entries(s.measurements);
  if (!ms.length && s.status !== 'fail') return [];
  const lines = ['  ---'];
  if (s.status === 'fail') lines.push(`  reason: ${JSON.stringify(s.reason)}`);
  for (const [n, m] of ms) {
    const held = m.expected ? { expected: describeExpectation(m.expected), ok: m.ok } : {};
    const body = m.skipped ? { skipped: m.skipped } : { value: m.value, unit: m.unit, ...held };
    lines.push(`  ${n}: ${JSON.stringify(body)}`);
  }
  if (s.signatures.length) lines.push(`  signatures: ${JSON.stringify(s.signatures.map(signatureBrief))}`);
  lines.push('  ...');
  return lines;
}

const signatureBrief = (c: SignatureCheck) => ({
  id: c.id,
  outcome: outcomeOf(c),
  ...(c.cured ? { cured: c.cured } : {}),
});
const curedOnly = (c: SignatureCheck) => (outcomeOf(c) === 'fixed' ? '' : ` (in ${c.cured!.join(', ')} only)`);

export function toTap(run: RunResults): string {
  const lines = ['TAP version 13', `# rig ${run.rig.version} ${run.rig.commit ?? ''}, profile ${run.profile}`];
  if (run.series) lines.push(`# series: ${provenanceLine(run.series)}`);
  lines.push(`1..${run.scenarios.length}`);
  run.scenarios.forEach((s, i) => {
    const ok = s.status !== 'fail';
    lines.push(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${s.id}: ${s.title}${directive(s)}`);
    lines.push(...diagnostics(s));
    for (const c of s.signatures.filter((x) => outcomeOf(x) === 'fixed' || (x.cured?.length ?? 0) > 0))
      lines.push(`# no longer reproduces: ${c.id}${curedOnly(c)} (${c.title}); ${c.detail}`);
    for (const c of s.signatures.filter((x) => ['not-rechecked', 'not-seen'].includes(outcomeOf(x))))
      lines.push(`# ${outcomeOf(c) === 'not-seen' ? 'not seen this run' : 'not re-checked'}: ${c.id}; ${c.detail}`);
    for (const [n, m] of Object.entries(s.measurements).filter(([, x]) => x.skipped))
      lines.push(`# skipped measurement: ${s.id} ${n}: ${m.skipped}`);
  });
  return lines.join('\n') + '\n';
}

/** The closing line of a run: every status counted, and the signatures that no longer reproduce. */
export function runSummary(run: RunResults): string {
  const count = (st: string) => run.scenarios.filter((s) => s.status === st).length;
  const skippedMeasures = run.scenarios.reduce(
    (a, s) => a + Object.values(s.measurements).filter((m) => m.skipped).length,
    0,
  );
  const fixed = fixedSignatures(run);
  return [
    `# ${count('pass')} pass, ${count('fail')} fail, ${count('skip')} skip, ${count('known-failure')} known failure`,
    `, ${skippedMeasures} measurement(s) skipped, ${fixed.length} known failure(s) no longer reproduce`,
    fixed.length ? `\n# no longer reproduces: ${fixed.map((f) => `${f.scenario}/${f.id}`).join(', ')}` : '',
  ].join('');
}
