/**
 * Many guests at once, for real: three scenarios with boots of their own (hot-unplug-dimm,
 * mem-devmem, reservation-bad-values) at --jobs 1 and --jobs 2, then as --shard 1/2 and 2/2
 * merged with report --merge. Each must give the verdicts, signature checks and held values of
 * the serial run (how much faster is for `bench run --jobs`, not for a test).
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResults } from '../../core/results.js';
import { mergeBundles } from '../../report/merge.js';
import { runScenarios } from '../../runner/scenario-runner.js';
import { selectScenarios } from '../../scenarios/catalog.js';
import { chooseAccel } from '../../vm/accel.js';

const accel = chooseAccel();
const scenarios = selectScenarios(['hot-unplug-dimm', 'mem-devmem', 'reservation-bad-values']);
const root = mkdtempSync(join(tmpdir(), 'rig-parallel-'));
const base = { profile: 'rfc-v2-debian', accel, scenarios };

/** What a verdict rests on: status, signature outcomes, and each held measurement's value and verdict. */
const verdicts = (r: RunResults) =>
  Object.fromEntries(
    r.scenarios.map((s) => [
      s.id,
      {
        status: s.status,
        signatures: s.signatures.map((c) => [c.id, c.outcome]),
        held: Object.fromEntries(
          Object.entries(s.measurements)
            .filter(([, m]) => m.expected || m.skipped)
            .map(([n, m]) => [n, m.skipped ? `skipped: ${m.skipped}` : [m.value, m.ok]]),
        ),
      },
    ]),
  );

const serial = await runScenarios({ ...base, jobs: 1, out: join(root, 'serial') });
const parallel = await runScenarios({ ...base, jobs: 2, out: join(root, 'parallel') });
const shards: RunResults[] = [];
for (const index of [1, 2])
  shards.push(await runScenarios({ ...base, shard: { index, count: 2 }, out: join(root, `shard-${index}`) }));
const merged = mergeBundles([join(root, 'shard-1'), join(root, 'shard-2')], join(root, 'merged'));

t.test('the serial run is a real one: every scenario passed with held values', async (t) => {
  for (const s of serial.scenarios) {
    t.equal(s.status, 'pass', `${s.id}: ${s.reason ?? 'pass'}`);
    t.ok(
      Object.values(s.measurements).some((m) => m.ok === true),
      `${s.id} held something`,
    );
  }
});

t.test('--jobs 2 gives the verdicts of --jobs 1', async (t) => {
  t.same(verdicts(parallel), verdicts(serial));
  t.same(
    parallel.scenarios.map((s) => s.id),
    serial.scenarios.map((s) => s.id),
    'results in plan order',
  );
  t.equal(parallel.jobs, 2);
  t.equal(parallel.boots.length, serial.boots.length, 'the same boots');
});

t.test('--shard 1/2 and 2/2, merged, give the verdicts of the unsharded run', async (t) => {
  t.same(
    shards.map((s) => s.scenarios.length).reduce((a, b) => a + b),
    serial.scenarios.length,
    'each scenario in one shard',
  );
  t.ok(
    shards.every((s) => s.scenarios.length > 0),
    'both shards got work',
  );
  t.same(verdicts(merged), verdicts(serial));
  t.equal(merged.boots.length, serial.boots.length, 'every boot record');
  t.same(
    merged.merged?.map((m) => m.index),
    [1, 2],
  );
});
