/** TAP 13 of a run: one test point per scenario, measurements as YAML diagnostics. */
import { describeComparison } from '../scenarios/types.js';
import type { RunResults } from '../runner/scenario-runner.js';

export function toTap(run: RunResults): string {
  const lines = ['TAP version 13', `1..${run.scenarios.length}`];
  run.scenarios.forEach((s, i) => {
    const ok = s.status === 'pass' || s.status === 'skip' || s.status === 'known-failure';
    const directive =
      s.status === 'skip'
        ? ` # SKIP ${s.reason}`
        : s.status === 'known-failure'
          ? ` # TODO known failure: ${s.reason}`
          : '';
    lines.push(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${s.id}: ${s.title}${directive}`);
    const ms = Object.entries(s.measurements);
    if (ms.length || s.status === 'fail') {
      lines.push('  ---');
      if (s.status === 'fail') lines.push(`  reason: ${JSON.stringify(s.reason)}`);
      for (const [n, m] of ms)
        lines.push(
          `  ${n}: ${JSON.stringify({ value: m.value, unit: m.unit, ...(m.expected ? { expected: describeComparison(m.expected), ok: m.ok } : {}) })}`,
        );
      lines.push('  ...');
    }
  });
  return lines.join('\n') + '\n';
}
