/**
 * How a run's work is spread (runner/workers.ts, vm/host-memory.ts): units that keep shared boots
 * together, a deterministic shard partition balanced by cost, the host default, workers that give
 * results back in plan order, and a memory gate that makes the next boot wait rather than fail.
 */
import t from 'tap';
import { RigError } from '../../core/errors.js';
import { planOrder, SCENARIOS } from '../../scenarios/catalog.js';
import {
  byCost,
  costsFrom,
  defaultJobs,
  parseJobs,
  parseShard,
  runOnWorkers,
  shardUnits,
  unitsOf,
} from '../../runner/workers.js';
import { MemoryGate } from '../../vm/host-memory.js';
import type { MachineSpec } from '../../vm/machine-spec.js';

const kindOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof RigError ? e.kind : 'not a RigError';
  }
  return 'no error';
};

t.test('--jobs and --shard take only what they can mean', async (t) => {
  t.equal(parseJobs('2'), 2);
  t.equal(parseJobs(undefined), undefined);
  for (const bad of ['0', '-1', '1.5', 'two', '', '65'])
    t.equal(
      kindOf(() => parseJobs(bad)),
      'bad-jobs',
      bad,
    );
  t.same(parseShard('2/3'), { index: 2, count: 3 });
  for (const bad of ['3/2', '0/2', '1/0', '1', '1/2/3', 'a/b'])
    t.equal(
      kindOf(() => parseShard(bad)),
      'bad-shard',
      bad,
    );
});

t.test('units keep the scenarios that share a boot together, in plan order', async (t) => {
  const units = unitsOf(planOrder(SCENARIOS));
  t.same(
    units.flat().map((d) => d.id),
    planOrder(SCENARIOS).map((d) => d.id),
    'every scenario once, plan order',
  );
  const unitOf = (id: string) => units.findIndex((u) => u.some((d) => d.id === id));
  // The scenarios on dmem-1G-aligned reuse one guest; alternatives-devdax reuses alternatives'.
  t.equal(unitOf('dmemfs-numa'), unitOf('dmemfs-files'));
  t.equal(unitOf('nested-guest'), unitOf('dmemfs-files'));
  t.equal(unitOf('alternatives-devdax'), unitOf('alternatives'));
  t.not(unitOf('mce-dmemfs'), unitOf('pool-boundaries'));
  t.ok(units.length >= 6, `${units.length} units: enough to spread`);
});

t.test('a shard plan is a partition, the same every time, balanced by cost', async (t) => {
  const units = unitsOf(planOrder(SCENARIOS));
  const cost = costsFrom();
  const unitCost = (u: (typeof units)[number]) => u.reduce((a, d) => a + cost(d.id), 0);
  for (const count of [1, 2, 3, 4]) {
    const shards = Array.from({ length: count }, (_, k) => shardUnits(units, unitCost, { index: k + 1, count }));
    const ids = shards.flatMap((s) => s.flat().map((d) => d.id));
    t.same([...ids].sort(), SCENARIOS.map((d) => d.id).sort(), `${count} shards: each scenario in one`);
    t.same(
      shards,
      Array.from({ length: count }, (_, k) => shardUnits(units, unitCost, { index: k + 1, count })),
      'deterministic',
    );
    const loads = shards.map((s) => s.reduce((a, u) => a + unitCost(u), 0));
    const biggest = Math.max(...units.map(unitCost));
    // Greedy longest-first: no shard exceeds the lightest by more than the biggest unit.
    t.ok(Math.max(...loads) - Math.min(...loads) <= biggest, `${count} shards: loads ${loads.join(', ')}`);
  }
  // An accepted bundle's times take precedence over the table.
  const measured = costsFrom({ scenarios: [{ id: 'reservation', status: 'pass', seconds: 999 }] as never });
  t.equal(measured('reservation'), 999);
  t.equal(measured('mce-dmemfs'), cost('mce-dmemfs'));
  t.same(
    byCost(['a', 'b', 'c'], (x) => ({ a: 1, b: 5, c: 1 })[x]!),
    ['b', 'a', 'c'],
    'longest first, ties in order',
  );
});

t.test('the default comes from cores and free RAM against the largest boot', async (t) => {
  t.equal(defaultJobs(SCENARIOS, { cores: 2, availMiB: 22000 }), 1, 'this machine: 2 cores, 2 vCPUs a guest');
  t.equal(defaultJobs(SCENARIOS, { cores: 32, availMiB: 64 * 1024 }), 8, 'a 32-core runner: RAM for 8 8-GiB guests');
  t.equal(defaultJobs(SCENARIOS, { cores: 64, availMiB: 1024 * 1024 }), unitsOf(planOrder(SCENARIOS)).length);
  t.equal(defaultJobs(SCENARIOS, { cores: 1, availMiB: 100 }), 1, 'never below one');
});

t.test('workers give results back in the order given, and the first error after the rest', async (t) => {
  const order: number[] = [];
  const r = await runOnWorkers([30, 10, 20], 2, async (ms) => {
    await new Promise((res) => setTimeout(res, ms));
    order.push(ms);
    return ms * 2;
  });
  t.same(r, [60, 20, 40], 'in the order of the units');
  t.same(order, [10, 30, 20], 'run side by side: the short one finished first');
  let ran = 0;
  await t.rejects(
    runOnWorkers([1, 2, 3], 1, async (x) => {
      ran++;
      if (x === 2) throw new Error('boom');
      return x;
    }),
    /boom/,
  );
  t.equal(ran, 2, 'a failed worker takes no more units');
});

const spec = (name: string, mib: number) => ({ name, memory: { sizeMiB: mib }, objects: [] }) as unknown as MachineSpec;

t.test('the memory gate holds the next boot until a guest gives its RAM back', async (t) => {
  const gate = new MemoryGate(10_000);
  const a = await gate.acquire(spec('a', 6000));
  let bStarted = false;
  const b = gate.acquire(spec('b', 6000)).then((r) => ((bStarted = true), r));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(bStarted, false, 'b waits: 12000 MiB would not fit');
  a();
  a(); // twice is once
  const releaseB = await b;
  t.equal(bStarted, true);
  t.equal(gate.heldMiB, 6000);
  releaseB();
  t.equal(gate.heldMiB, 0);
  t.equal(
    await gate.acquire(spec('huge', 20_000)).then(
      () => 'held',
      (e: RigError) => e.kind,
    ),
    'host-memory',
    'a guest larger than the whole budget is refused at once',
  );
});

t.test('mutant shards: every mutant of the variant in exactly one shard, balanced by its scenario', async (t) => {
  const { MUTANTS } = await import('../../scenarios/mutants.js');
  const plain = MUTANTS.filter((m) => m.variant === undefined);
  const cost = costsFrom();
  const parts = [1, 2, 3].map((index) => shardUnits(plain, (m) => cost(m.scenario), { index, count: 3 }));
  t.same(
    parts
      .flat()
      .map((m) => m.edit)
      .sort(),
    plain.map((m) => m.edit).sort(),
  );
  t.ok(
    parts.every((p) => p.length > 0),
    `sizes ${parts.map((p) => p.length).join(', ')}`,
  );
});
