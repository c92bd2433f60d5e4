/**
 * The scenarios against the patched kernel of the offline profile, for real. Each scenario is
 * one test: a pass asserts every measurement against its expectation (the values are in the
 * TAP output); a skip carries its reason; a known failure of the series is a TODO with its
 * evidence, never a pass.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chooseAccel } from '../../vm/accel.js';
import { runScenarios } from '../../runner/scenario-runner.js';
import { SCENARIOS } from '../../scenarios/catalog.js';
import { describeComparison } from '../../scenarios/types.js';

// All scenarios run once (boots are shared between them); each result is then one test.
const accel = chooseAccel();
const out = mkdtempSync(join(tmpdir(), 'rig-scenarios-'));
t.comment(`accelerator ${accel.accel}: ${accel.reason}; results in ${out}/results.json`);
const run = await runScenarios({ profile: 'rfc-v2-debian', accel, scenarios: SCENARIOS, out });

t.test('every scenario produced a result', async (t) => {
  t.same(run.scenarios.map((s) => s.id), SCENARIOS.map((s) => s.id));
});

for (const s of run.scenarios) {
  const opts = s.status === 'skip' ? { skip: s.reason ?? 'skipped' } : s.status === 'known-failure' ? { todo: `known failure of the series: ${s.reason}` } : {};
  t.test(`${s.id}: ${s.title}`, opts, async (st) => {
    const entries = Object.entries(s.measurements);
    st.ok(entries.length > 0, `${entries.length} measurements`);
    for (const [name, m] of entries) {
      const text = `${name} = ${String(m.value)} ${m.unit}`.trim();
      if (m.expected) st.ok(m.ok, `${text} (expected ${describeComparison(m.expected)})`);
      else st.comment(`${text} (recorded)`);
    }
    if (s.status === 'fail') st.fail(s.reason ?? 'failed', { evidence: s.evidence.map((e) => `${e.label}:\n${e.text}`).join('\n\n').slice(-4000) });
  });
}
