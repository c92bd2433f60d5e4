/**
 * nightly mutants-merge (report/merge-mutants.ts): the legs of `mutants --shard K/4`, planned as
 * runMutants plans them, join into one result with every mutant once in the catalog's order; a
 * leg missing, a leg twice, a leg of another plan, a leg that did not judge its plan and a result
 * that is not a shard are each refused with its own error kind.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RigError } from '../../core/errors.js';
import { loadProfile } from '../../kernel/profile.js';
import { loadMutantShards, mergeMutantShards, type MutantShard } from '../../report/merge-mutants.js';
import type { MutantsResult } from '../../runner/mutants.js';
import { costsFrom, shardUnits } from '../../runner/workers.js';
import { MUTANTS } from '../../scenarios/mutants.js';

const variant = loadProfile('rfc-v2-debian').variant;
const mine = MUTANTS.filter((m) => m.variant === variant);
const cost = costsFrom();
const of = (k: number, count: number) => shardUnits(mine, (m) => cost(m.scenario), { index: k, count });

function legs(count: number): MutantShard[] {
  const plan = Array.from({ length: count }, (_, k) => of(k + 1, count).map((m) => m.edit));
  return plan.map((edits, k) => ({
    dir: `leg-${k + 1}`,
    result: {
      outcomes: of(k + 1, count).map((m) => ({
        edit: m.edit,
        scenario: m.scenario,
        measurement: m.measurement,
        effect: m.effect,
        reference: 'r',
        mutated: 'm',
        caught: true,
        collateral: [],
        ok: true,
        proves: m.proves,
      })),
      coverage: [{ scenario: 'pool-boundaries', held: 88, broken: [`b${k}`], mutants: edits.slice(0, 1) }],
      seconds: 100 + k,
      shard: { index: k + 1, count, plan },
    } satisfies MutantsResult,
  }));
}

const kind = (shards: MutantShard[]) => {
  try {
    mergeMutantShards(shards);
    return 'merged';
  } catch (e) {
    return e instanceof RigError ? e.kind : String(e);
  }
};

t.test('four legs join into every mutant once, in catalog order', async (t) => {
  const r = mergeMutantShards(legs(4));
  t.same(
    r.outcomes.map((o) => o.edit),
    mine.map((m) => m.edit),
  );
  t.equal(r.seconds, 103, 'the legs ran side by side: the longest');
  t.notOk(r.shard, 'the joined result is not a shard');
  const pb = r.coverage.filter((c) => c.scenario === 'pool-boundaries');
  t.equal(pb.length, 1, 'one coverage row per scenario');
  t.same(pb[0]!.broken, ['b0', 'b1', 'b2', 'b3'], 'what each leg saw broken, joined');
});

t.test('legs that are not one partition are refused', async (t) => {
  const [a, b, c, d] = legs(4);
  t.equal(kind([a!, b!, c!]), 'missing-shard');
  t.equal(kind([a!, a!, b!, c!, d!]), 'duplicate-shard');
  t.equal(kind([a!, b!, c!, legs(3)[2]!]), 'shard-mismatch', 'a leg of another count');
  const { shard: _s, ...plain } = a!.result;
  t.equal(kind([{ dir: 'x', result: plain }, b!, c!, d!]), 'not-a-shard');
  const short = { dir: 'd', result: { ...d!.result, outcomes: d!.result.outcomes.slice(1) } };
  t.equal(kind([a!, b!, c!, short]), 'shard-incomplete');
  const other = { dir: 'd', result: { ...d!.result, shard: { ...d!.result.shard!, plan: [['x'], [], [], []] } } };
  t.equal(kind([a!, b!, c!, other]), 'shard-mismatch', 'a leg of another plan');
});

t.test('the legs are read from one directory per artifact; none is an error', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'rig-mutant-legs-'));
  t.throws(() => loadMutantShards(root), /no mutants result/);
  for (const l of legs(2)) {
    mkdirSync(join(root, `mutants-shard-${l.result.shard!.index}`));
    writeFileSync(join(root, `mutants-shard-${l.result.shard!.index}`, 'mutants.json'), JSON.stringify(l.result));
  }
  mkdirSync(join(root, 'stray'));
  const read = loadMutantShards(root);
  t.equal(read.length, 2, 'a directory without mutants.json is not a leg');
  t.equal(mergeMutantShards(read).outcomes.length, mine.length);
});
