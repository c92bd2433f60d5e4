/**
 * One mutants result from the shards of `mutants --shard K/N` (the nightly's mutants legs): every
 * mutant once, in the catalog's order, and the per-scenario coverage joined. Shards that do not
 * make one partition are refused as bundles are (report/merge.ts): not a shard, another count or
 * plan, a shard twice or missing, a shard that did not judge its whole plan.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import type { MutantCoverage, MutantsResult } from '../scenarios/mutants.js';
import { MUTANTS } from '../scenarios/mutants.js';
import { placeRefusal } from './merge.js';

export interface MutantShard {
  dir: string;
  result: MutantsResult;
}

/** The mutants results under `root`: each subdirectory holding a mutants.json (one per leg's artifact). */
export function loadMutantShards(root: string): MutantShard[] {
  const dirs = existsSync(root)
    ? readdirSync(root)
        .map((d) => join(root, d))
        .filter((d) => statSync(d).isDirectory() && existsSync(join(d, 'mutants.json')))
        .sort()
    : [];
  if (!dirs.length)
    throw new RigError('no-shards', `no mutants result under ${root}/ (DIR/*/mutants.json)`, {
      fix: 'download the legs of `nightly mutants --shard K/N` into one directory, one subdirectory each',
    });
  return dirs.map((dir) => {
    try {
      return { dir, result: JSON.parse(readFileSync(join(dir, 'mutants.json'), 'utf8')) as MutantsResult };
    } catch (e) {
      throw new RigError('bad-bundle', `${dir}/mutants.json cannot be read: ${(e as Error).message}`, {
        fix: 'run that leg again',
      });
    }
  });
}

/** Why these results are not one partition, or undefined. */
export function mutantShardRefusal(shards: MutantShard[]): RigError | undefined {
  const placed = placeRefusal(shards.map((s) => ({ dir: s.dir, shard: s.result.shard })));
  if (placed) return placed;
  const plan = JSON.stringify(shards[0]!.result.shard!.plan);
  const other = shards.find((s) => JSON.stringify(s.result.shard!.plan) !== plan);
  if (other)
    return new RigError('shard-mismatch', `${other.dir} was planned with other mutants than ${shards[0]!.dir}`, {
      fix: 'run every leg from the same commit, with the same --only list',
    });
  for (const s of shards) {
    const want = [...s.result.shard!.plan[s.result.shard!.index - 1]!].sort();
    const got = s.result.outcomes.map((o) => o.edit).sort();
    if (JSON.stringify(want) !== JSON.stringify(got))
      return new RigError(
        'shard-incomplete',
        `${s.dir} judged ${got.join(', ') || 'no mutant'}; its plan is ${want.join(', ')}`,
        { fix: 'run the leg again to its end, then merge' },
      );
  }
  return undefined;
}

const rank = (edit: string) => {
  const i = MUTANTS.findIndex((m) => m.edit === edit);
  return i < 0 ? MUTANTS.length : i;
};

/** The shards' results as one: what a serial `mutants` of the whole set would have printed. */
export function mergeMutantShards(shards: MutantShard[]): MutantsResult {
  const refusal = mutantShardRefusal(shards);
  if (refusal) throw refusal;
  const results = shards.map((s) => s.result);
  const outcomes = results.flatMap((r) => r.outcomes).sort((a, b) => rank(a.edit) - rank(b.edit));
  const byScenario = new Map<string, MutantCoverage>();
  for (const c of results.flatMap((r) => r.coverage)) {
    const had = byScenario.get(c.scenario);
    byScenario.set(
      c.scenario,
      had
        ? {
            scenario: c.scenario,
            held: Math.max(had.held, c.held),
            broken: [...new Set([...had.broken, ...c.broken])].sort(),
            mutants: [...had.mutants, ...c.mutants].sort((a, b) => rank(a) - rank(b)),
          }
        : c,
    );
  }
  const coverage = [...byScenario.values()].sort((a, b) => rank(a.mutants[0]!) - rank(b.mutants[0]!));
  return { outcomes, coverage, seconds: Math.max(...results.map((r) => r.seconds)) };
}
