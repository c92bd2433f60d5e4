/**
 * The scenarios against the patched kernel of the offline profile, for real. Each scenario is
 * one test: a pass asserts every measurement against its expectation (the values are in the
 * TAP output); a skip carries its reason; a known failure of the series is a TODO with its
 * evidence, never a pass.
 */
import t, { type Test } from 'tap';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chooseAccel } from '../../vm/accel.js';
import { runScenarios } from '../../runner/scenario-runner.js';
import { defaultJobs, parseJobs } from '../../runner/workers.js';
import { SCENARIOS } from '../../scenarios/catalog.js';
import { poolBoundariesOver } from '../../scenarios/defs/pool-boundaries.js';
import { mceWith } from '../../scenarios/defs/mce-dmemfs.js';
import { softReservedWith } from '../../scenarios/defs/soft-reserved-devdax.js';
import type { ScenarioDefinition } from '../../scenarios/types.js';
import { describeExpectation, type Measurement, type ScenarioResult } from '../../core/results.js';
import { readFileSync } from 'node:fs';
import { RESULTS_SCHEMA, validate } from '../../report/schema.js';
import { comparisonTable } from '../../report/comparison.js';
import { reservationPoints } from '../../report/charts.js';

// All scenarios run once (boots are shared between them); each result is then one test. Three
// run in part. The pool's edges: the 2M columns (dmemfs beside hugetlbfs: SIGBUS against ENOMEM, the
// racing-fault leak and its BUG on unlink, stale data) and one stuck helper (4K, no pool); the
// whole scenario (five columns, four stuck helpers) runs in `npm start` and the nightly.
const accel = chooseAccel();
const out = process.env.DMEMFS_RIG_SCENARIO_OUT ?? mkdtempSync(join(tmpdir(), 'rig-scenarios-'));
t.comment(`accelerator ${accel.accel}: ${accel.reason}; results in ${out}/results.json`);
// MCE: the first boot (dmemfs 4K and every control in it), not the three extra boots (dmemfs 2M
// and 1G, mem= with /dev/mem); soft-reserved device-dax: all but its MCE boot.
const PARTS: Record<string, ScenarioDefinition> = {
  'pool-boundaries': poolBoundariesOver(['dmemfs_2M', 'hugetlbfs_2M'], ['dmemfs_4K'], { raceTries: 2 }),
  'mce-dmemfs': mceWith({ extraBoots: false }),
  'soft-reserved-devdax': softReservedWith({ mceBoot: false }),
};
const scenarios = SCENARIOS.map((s) => PARTS[s.id] ?? s);
// As many workers as the host holds (1 on a 2-core machine; DMEMFS_RIG_JOBS says otherwise).
const jobs = parseJobs(process.env.DMEMFS_RIG_JOBS) ?? defaultJobs(scenarios);
t.comment(`${jobs} worker(s)`);
const run = await runScenarios({ profile: 'rfc-v2-debian', accel, scenarios, out, jobs });

t.test('every scenario produced a result', async (t) => {
  t.same(run.scenarios.map((s) => s.id).sort(), SCENARIOS.map((s) => s.id).sort());
});

t.test("the full run's bundle: schema, comparison table, chart points", async (t) => {
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  t.same(validate(RESULTS_SCHEMA, json), []);
  const table = comparisonTable(run.scenarios);
  t.equal(table.columns.length, 9);
  const faults = table.rows.find((r) => /minor faults/.test(r.row))!;
  t.same(
    faults.cells.map((c) => c.kind === 'value' || c.kind === 'skipped'),
    Array(9).fill(true),
    'every fault cell is a value or a skip with its reason',
  );
  const points = reservationPoints(run.scenarios);
  t.equal(points.saved.length, 3, 'struct-page chart: three reserved sizes measured');
  for (const p of points.saved)
    t.ok(Math.abs(p.y - p.x * 16) < p.x * 1.6, `${p.x} GiB: ${p.y.toFixed(2)} MiB saved, theory ${p.x * 16}`);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  t.equal((/<svg id="chart-struct-page"[\s\S]*?<\/svg>/.exec(html)?.[0].match(/class="measured"/g) ?? []).length, 3);
  t.equal(run.boots.filter((b) => b.console).length, run.boots.length, "every boot's console is in the bundle");
});

/**
 * Each scenario is one test; each measurement held to an expectation is one assertion in it. A
 * failed value that a reproduced signature explains is a TODO naming the signature (never a
 * pass); a measurement this machine could not take is a skip with its reason; a signature that
 * no longer reproduces is said in a comment the closing summary lists.
 */
for (const s of run.scenarios) {
  const opts = s.status === 'skip' ? { skip: s.reason ?? 'skipped' } : {};
  const def = scenarios.find((d) => d.id === s.id)!;
  t.test(`${s.id}: ${s.title}`, opts, async (st) => {
    const entries = Object.entries(s.measurements);
    // Every measurement the scenario declares is there: taken, or skipped with its reason (a part
    // of a scenario lists what it leaves to npm start as skips).
    st.same(
      entries.map(([n]) => n).sort(),
      [...def.measurements].sort(),
      `all ${def.measurements.length} declared measurements taken or skipped with a reason`,
    );
    for (const [name, m] of entries) assertMeasurement(st, s, name, m);
    for (const c of s.signatures.filter((x) => x.outcome === 'fixed' || (x.cured?.length ?? 0) > 0))
      st.comment(`no longer reproduces: ${s.id}/${c.id}: ${c.title} (${c.detail})`);
    for (const c of s.signatures.filter((x) => x.outcome === 'not-rechecked' || x.outcome === 'not-seen'))
      st.comment(`${c.outcome === 'not-seen' ? 'not seen this run' : 'not re-checked'}: ${s.id}/${c.id}: ${c.detail}`);
    if (s.status === 'fail')
      st.fail(s.reason ?? 'failed', {
        evidence: s.evidence
          .map((e) => `${e.label}:\n${e.text}`)
          .join('\n\n')
          .slice(-4000),
      });
  });
}

function assertMeasurement(st: Test, s: ScenarioResult, name: string, m: Measurement): void {
  const text = `${name} = ${String(m.value)} ${m.unit}`.trim();
  if (m.skipped !== undefined) return void st.pass(name, { skip: m.skipped });
  if (!m.expected) return void st.comment(`${text} (recorded)`);
  const sig = s.signatures.find((c) => c.reproduced && c.measurements.includes(name));
  const held = `${text} (expected ${describeExpectation(m.expected)})`;
  if (m.ok === false && sig) st.fail(held, { todo: `known failure of the series: ${sig.id}: ${sig.title}` });
  else st.ok(m.ok, held);
}
