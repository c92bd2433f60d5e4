/**
 * A real run cut into the shard bundles `run --shard K/N` would have written (the same plan by
 * cost), for the tests of report --merge and of the nightly's matrix.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResults } from '../../core/results.js';
import { costsFrom, shardUnits, unitsOf } from '../../runner/workers.js';
import { planOrder, SCENARIOS } from '../../scenarios/catalog.js';

/** Each shard's scenario ids, in the partition run --shard makes of `run`'s scenarios. */
export function shardPlan(run: RunResults, count: number): string[][] {
  const defs = planOrder(SCENARIOS.filter((d) => run.scenarios.some((s) => s.id === d.id)));
  const units = unitsOf(defs);
  const cost = costsFrom();
  const unitCost = (u: (typeof units)[number]) => u.reduce((a, d) => a + cost(d.id), 0);
  return Array.from({ length: count }, (_, k) =>
    shardUnits(units, unitCost, { index: k + 1, count })
      .flat()
      .map((d) => d.id),
  );
}

/**
 * `run` as `count` shard bundles under a new directory in `root` (results.json and one console
 * each, every shard's console with the same name); `tweak` may change a shard before it is written.
 */
export function cutShards(
  run: RunResults,
  count: number,
  root: string,
  tweak: (r: RunResults, k: number) => void = () => undefined,
): string[] {
  const plan = shardPlan(run, count);
  const set = mkdtempSync(join(root, `set-${count}-`));
  return plan.map((ids, k) => {
    const dir = join(set, `shard-${k + 1}`);
    mkdirSync(join(dir, 'consoles'), { recursive: true });
    const shard: RunResults = {
      ...structuredClone(run),
      scenarios: structuredClone(run.scenarios.filter((s) => ids.includes(s.id))),
      boots: run.boots
        .filter((b) => ids.includes(b.scenario))
        .map((b) => ({ ...b, console: 'consoles/same-name.log' })),
      shard: { index: k + 1, count, plan },
    };
    tweak(shard, k + 1);
    writeFileSync(join(dir, 'consoles', 'same-name.log'), `console of shard ${k + 1}\n`);
    writeFileSync(join(dir, 'results.json'), JSON.stringify(shard));
    return dir;
  });
}
