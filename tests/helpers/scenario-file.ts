/**
 * The scenarios against the patched kernel of the offline profile, for real, in two test files
 * (tests/integration/scenarios-1.test.ts and -2): each runs one shard of the catalog (the rig's
 * own `--shard K/2`, dealt by what each part cost here), so that npm test's two booting streams
 * take one each. Each scenario is one test: a pass asserts every measurement against its
 * expectation (the values are in the TAP output); a skip carries its reason; a known failure of
 * the series is a TODO with its evidence, never a pass.
 */
import t, { type Test } from 'tap';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chooseAccel } from '../../vm/accel.js';
import { runScenarios } from '../../runner/scenario-runner.js';
import { costsFrom, defaultJobs, parseJobs, shardUnits, unitsOf, type Costs } from '../../runner/workers.js';
import { planOrder, SCENARIOS } from '../../scenarios/catalog.js';
import { poolBoundariesOver } from '../../scenarios/defs/pool-boundaries.js';
import { mceWith } from '../../scenarios/defs/mce-dmemfs.js';
import { softReservedWith } from '../../scenarios/defs/soft-reserved-devdax.js';
import { l2AlternativesWith } from '../../scenarios/defs/l2-alternatives.js';
import { mmSelftestsWith } from '../../scenarios/defs/mm-selftests.js';
import { peerToolsWith } from '../../scenarios/defs/peer-tools.js';
import { fuzzWith } from '../../scenarios/defs/fuzz-dmemfs.js';
import type { ScenarioDefinition } from '../../scenarios/types.js';
import { describeExpectation, type Measurement, type ScenarioResult } from '../../core/results.js';
import { readFileSync } from 'node:fs';
import { RESULTS_SCHEMA, validate } from '../../report/schema.js';
import { comparisonTable } from '../../report/comparison-table.js';
import { reservationPoints } from '../../report/charts.js';

// The pool's edges: the 2M columns (dmemfs beside hugetlbfs: SIGBUS against ENOMEM, the
// racing-fault leak and its BUG on unlink, stale data) and one stuck helper (4K, no pool); the
// whole scenario (five columns, four stuck helpers) runs in `npm start` and the nightly.
// MCE: the first boot (dmemfs 4K and every control in it), not the three extra boots (dmemfs 2M
// and 1G, mem= with /dev/mem); soft-reserved device-dax: all but its MCE boot; the L2
// alternatives: the device-dax L2 (hugetlbfs and anonymous L2s are npm start's).
const PARTS: Record<string, ScenarioDefinition> = {
  'pool-boundaries': poolBoundariesOver(['dmemfs_2M', 'hugetlbfs_2M'], ['dmemfs_4K'], { raceTries: 2 }),
  'mce-dmemfs': mceWith({ extraBoots: false }),
  'soft-reserved-devdax': softReservedWith({ mceBoot: false }),
  'l2-alternatives': l2AlternativesWith(['devdax']),
  // The kernel's mm selftests: four on both kernels and hugepage-mmap on dmemfs; programs written
  // elsewhere: memtester and fio direct=1 on a dmemfs file; the fuzzer: 30 s at 2M. npm start and the
  // nightly run all of each (every selftest, fio and stress-ng, 120 s at 4K and 2M).
  'mm-selftests': mmSelftestsWith({
    tests: ['hugepage_mmap', 'map_fixed_noreplace', 'map_populate', 'mremap_dontunmap'],
    dmemfs: ['hugepage_mmap'],
  }),
  'peer-tools': peerToolsWith({ cases: ['memtester', 'fio_direct'], targets: ['dmemfs_2M'] }),
  'fuzz-dmemfs': fuzzWith({ seconds: 30, sizes: ['2M'] }),
};
export const TEST_SCENARIOS = SCENARIOS.map((s) => PARTS[s.id] ?? s);

/**
 * What each scenario (or its part above) took in npm test: the warm two-stream run of 2026-12-04
 * (65c32b5) on the 2-core machine under TCG, boots included. The two files' shards are dealt by these.
 */
const TEST_SECONDS: Record<string, number> = {
  reservation: 27,
  'pool-boundaries': 63,
  'dmemfs-files': 10,
  'dmemfs-numa': 8,
  'nested-guest': 28,
  'hot-unplug-offline': 2,
  'dmem-test-module': 1,
  'reservation-bad-values': 4,
  'hot-unplug-dimm': 11,
  'mem-devmem': 5,
  alternatives: 9,
  'alternatives-devdax': 1,
  // Its device-dax L2 only: a third of the 78 s of the whole.
  'l2-alternatives': 30,
  'soft-reserved-devdax': 63,
  'vfio-pin': 22,
  'mce-dmemfs': 183,
  'debug-checks': 1,
  // Not in that run, and not yet measured as npm test's parts: estimates from the whole scenarios run
  // alone on 2026-12-07 (121 s, 39 s, 284 s): two boots and five runs; one boot and two runs; one boot and 30 s.
  'mm-selftests': 40,
  'peer-tools': 12,
  'fuzz-dmemfs': 45,
};
export const TEST_COSTS: Costs = costsFrom({
  scenarios: Object.entries(TEST_SECONDS).map(([id, seconds]) => ({ id, seconds, status: 'pass' }) as never),
});

export const SHARDS = 2;
/** The scenario ids of shard K of the test's two. */
export function shardIds(index: number): string[] {
  const cost = (u: ScenarioDefinition[]) => u.reduce((a, d) => a + TEST_COSTS(d.id), 0);
  return shardUnits(unitsOf(planOrder(TEST_SCENARIOS)), cost, { index, count: SHARDS })
    .flat()
    .map((d) => d.id);
}

/** Run shard `index` of the scenarios and make each result one test. */
export async function scenarioFile(index: number): Promise<void> {
  const accel = chooseAccel();
  const out = process.env.DMEMFS_RIG_SCENARIO_OUT
    ? `${process.env.DMEMFS_RIG_SCENARIO_OUT}-${index}`
    : mkdtempSync(join(tmpdir(), `rig-scenarios-${index}-`));
  t.comment(`accelerator ${accel.accel}: ${accel.reason}; results in ${out}/results.json`);
  const scenarios = TEST_SCENARIOS;
  const mine = shardIds(index);
  // As many workers as the host holds (1 on a 2-core machine; DMEMFS_RIG_JOBS says otherwise).
  const jobs = parseJobs(process.env.DMEMFS_RIG_JOBS) ?? defaultJobs(scenarios.filter((d) => mine.includes(d.id)));
  t.comment(`shard ${index} of ${SHARDS}: ${mine.join(', ')}; ${jobs} worker(s)`);
  const run = await runScenarios({
    profile: 'rfc-v2-debian',
    accel,
    scenarios,
    out,
    jobs,
    shard: { index, count: SHARDS },
    costs: TEST_COSTS,
  });

  t.test("this file ran its shard's scenarios, and the shards together are the catalog", async (t) => {
    t.same(run.scenarios.map((s) => s.id).sort(), [...mine].sort());
    const all = Array.from({ length: SHARDS }, (_, k) => shardIds(k + 1)).flat();
    t.same([...all].sort(), SCENARIOS.map((s) => s.id).sort(), 'every scenario in exactly one shard');
    t.equal(run.shard?.index, index, 'the bundle names its shard');
  });

  t.test("the shard's bundle: schema, comparison table, chart points", async (t) => {
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    t.same(validate(RESULTS_SCHEMA, json), []);
    t.equal(run.boots.filter((b) => b.console).length, run.boots.length, "every boot's console is in the bundle");
    const table = comparisonTable(run.scenarios);
    t.equal(table.columns.length, 9);
    const faults = table.rows.find((r) => /minor faults/.test(r.row))!;
    for (const c of faults.cells) {
      // A cell of a scenario of the other shard says so; every other is a value or a skip with its reason.
      const other = /^skipped: scenario (\S+) not run/.exec(c.text)?.[1];
      if (other) t.notOk(mine.includes(other), `${other} is in the other shard`);
      else t.ok(c.kind === 'value' || c.kind === 'skipped', `${c.kind}: ${c.text}`);
    }
    const points = reservationPoints(run.scenarios);
    t.equal(
      points.saved.length,
      mine.includes('reservation') ? 3 : 0,
      'struct-page chart: three reserved sizes measured',
    );
    for (const p of points.saved)
      t.ok(Math.abs(p.y - p.x * 16) < p.x * 1.6, `${p.x} GiB: ${p.y.toFixed(2)} MiB saved, theory ${p.x * 16}`);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    t.equal(
      (/<svg id="chart-struct-page"[\s\S]*?<\/svg>/.exec(html)?.[0].match(/class="measured"/g) ?? []).length,
      points.saved.length,
    );
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
        st.comment(
          `${c.outcome === 'not-seen' ? 'not seen this run' : 'not re-checked'}: ${s.id}/${c.id}: ${c.detail}`,
        );
      if (s.status === 'fail')
        st.fail(s.reason ?? 'failed', {
          evidence: s.evidence
            .map((e) => `${e.label}:\n${e.text}`)
            .join('\n\n')
            .slice(-4000),
        });
    });
  }
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
