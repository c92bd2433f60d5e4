/**
 * One bundle from the shards of a partitioned run (run --shard K/N on N runners): every scenario
 * once, every boot record and console, the kernel and image documents, and the TAP, JUnit and
 * reports made again from the merged results. Shards that do not belong together are refused
 * before anything is written: another kernel build, series, L1 image, rig commit or profile, a
 * shard given twice or missing, a scenario in two shards, a shard that ran other than its plan.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import type { BootRecord, RunResults } from '../core/results.js';
import { planOrder, SCENARIOS } from '../scenarios/catalog.js';
import { writeBundle, type BundleArtifacts } from './bundle.js';
import { loadBundle } from './bundle-diff.js';

interface Shard {
  dir: string;
  run: RunResults;
}

/** What every shard must agree on, where it says anything: a name and how to read it. */
const SAME: Array<[string, (r: RunResults) => unknown]> = [
  ['profile', (r) => r.profile],
  ['kernel build key', (r) => r.kernel.key],
  ['kernel config', (r) => r.kernel.configSha256],
  ['series provenance', (r) => (r.series ? { name: r.series.name, patches: r.series.patches } : undefined)],
  ['L1 image hash', (r) => r.images.l1Image],
  ['helpers', (r) => r.images.helpers],
  ['rig commit', (r) => r.rig.commit],
  ['accelerator', (r) => r.accel.accel],
];

const show = (v: unknown) => (typeof v === 'string' ? v.slice(0, 16) : JSON.stringify(v)?.slice(0, 60));

/** The refusals, in order; none means the shards make one run. */
export function mergeRefusal(shards: Shard[]): RigError | undefined {
  return (
    placeRefusal(shards.map((s) => ({ dir: s.dir, shard: s.run.shard }))) ??
    sameRunRefusal(shards) ??
    contentRefusal(shards)
  );
}

/** Where a piece of a partitioned run says it belongs: its directory, and its shard if it is one. */
export interface Placed {
  dir: string;
  shard?: { index: number; count: number };
}

/** Every shard of one partition, each once (bundles of run --shard, results of mutants --shard). */
export function placeRefusal(shards: Placed[]): RigError | undefined {
  const notShard = shards.find((s) => !s.shard);
  if (notShard)
    return new RigError('not-a-shard', `${notShard.dir} is not a shard (it was run without --shard K/N)`, {
      fix: 'merge the results of `--shard 1/N` ... `--shard N/N`',
    });
  const count = shards[0]!.shard!.count;
  const counts = shards.find((s) => s.shard!.count !== count);
  if (counts)
    return new RigError(
      'shard-mismatch',
      `${counts.dir} is shard ${counts.shard!.index} of ${counts.shard!.count}, ${shards[0]!.dir} is of ${count}`,
      { fix: 'merge the shards of one partitioned run' },
    );
  const seen = new Map<number, string>();
  for (const s of shards) {
    const k = s.shard!.index;
    if (seen.has(k))
      return new RigError('duplicate-shard', `shard ${k}/${count} given twice: ${seen.get(k)} and ${s.dir}`, {
        fix: 'give each shard once',
      });
    seen.set(k, s.dir);
  }
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((k) => !seen.has(k));
  if (missing.length)
    return new RigError('missing-shard', `shard(s) ${missing.map((k) => `${k}/${count}`).join(', ')} missing`, {
      fix: `give all ${count} shards of the run (a failed leg still writes its bundle: merge that one)`,
    });
  return undefined;
}

/** The same kernel, series, images, rig commit, profile and plan. */
function sameRunRefusal(shards: Shard[]): RigError | undefined {
  for (const [what, read] of SAME) {
    const stated = shards.filter((s) => read(s.run) !== undefined);
    const first = stated[0];
    const other = stated.find((s) => JSON.stringify(read(s.run)) !== JSON.stringify(read(first!.run)));
    if (first && other)
      return new RigError(
        'shard-mismatch',
        `${other.dir} and ${first.dir} differ in their ${what} (${show(read(other.run))} vs ${show(read(first.run))})`,
        { fix: 'merge shards of one run: the same kernel, series, images, rig commit and profile' },
      );
  }
  const plan = JSON.stringify(shards[0]!.run.shard!.plan);
  const planned = shards.find((s) => JSON.stringify(s.run.shard!.plan) !== plan);
  if (planned)
    return new RigError(
      'shard-mismatch',
      `${planned.dir} was planned with other scenarios or costs than ${shards[0]!.dir}`,
      {
        fix: 'run every shard with the same --scenario list and --costs',
      },
    );
  return undefined;
}

/** Each scenario in one shard, and each shard's whole plan run. */
function contentRefusal(shards: Shard[]): RigError | undefined {
  const owner = new Map<string, string>();
  for (const s of shards)
    for (const r of s.run.scenarios) {
      if (owner.has(r.id))
        return new RigError('duplicate-scenario', `scenario ${r.id} is in ${owner.get(r.id)} and in ${s.dir}`, {
          fix: 'merge shards of one partition: each scenario runs in one shard',
        });
      owner.set(r.id, s.dir);
    }
  for (const s of shards) {
    const want = [...s.run.shard!.plan[s.run.shard!.index - 1]!].sort();
    const got = s.run.scenarios.map((r) => r.id).sort();
    if (JSON.stringify(want) !== JSON.stringify(got))
      return new RigError(
        'shard-incomplete',
        `${s.dir} holds ${got.join(', ') || 'no scenario'}; its plan is ${want.join(', ')}`,
        { fix: 'run the shard again to its end, then merge' },
      );
  }
  return undefined;
}

/** The merged results: the first shard's header, every scenario in plan order, every boot. */
export function mergedResults(shards: Shard[], consoles: Map<string, string>): RunResults {
  const ordered = [...shards].sort((a, b) => a.run.shard!.index - b.run.shard!.index);
  const header = ordered.find((s) => s.run.kernel.key !== undefined) ?? ordered[0]!;
  const ids = ordered.flatMap((s) => s.run.scenarios.map((r) => r.id));
  const plan = planOrder(SCENARIOS.filter((d) => ids.includes(d.id))).map((d) => d.id);
  const rank = (id: string) => (plan.includes(id) ? plan.indexOf(id) : plan.length + ids.indexOf(id));
  const { shard: _shard, jobs: _jobs, ...rest } = header.run;
  const boots: BootRecord[] = ordered.flatMap((s) =>
    s.run.boots.map((b) => (b.console ? { ...b, console: consoles.get(`${s.dir}\0${b.console}`) ?? b.console } : b)),
  );
  return {
    ...rest,
    startedAt: ordered.map((s) => s.run.startedAt).sort()[0]!,
    // The shards ran side by side: the run took as long as its longest shard.
    seconds: Math.max(...ordered.map((s) => s.run.seconds)),
    prepareSeconds: Math.max(...ordered.map((s) => s.run.prepareSeconds ?? 0)),
    boots: boots.sort((a, b) => rank(a.scenario) - rank(b.scenario)),
    scenarios: ordered.flatMap((s) => s.run.scenarios).sort((a, b) => rank(a.id) - rank(b.id)),
    merged: ordered.map((s) => ({ index: s.run.shard!.index, bundle: s.dir, seconds: s.run.seconds })),
  };
}

/** Each shard's consoles under one consoles/ directory: a name two shards share gets a suffix. */
function consolePlan(shards: Shard[]): Map<string, string> {
  const taken = new Set<string>();
  const plan = new Map<string, string>();
  for (const s of shards) {
    const dir = join(s.dir, 'consoles');
    for (const f of existsSync(dir) ? readdirSync(dir).sort() : []) {
      let rel = join('consoles', f);
      for (let i = 2; taken.has(rel); i++) rel = join('consoles', f.replace(/\.log$/, `-${i}.log`));
      taken.add(rel);
      plan.set(`${s.dir}\0${join('consoles', f)}`, rel);
    }
  }
  return plan;
}

/** The kernel and image documents of the shard that built the kernel (the same on every shard). */
function artifactsOf(dir: string): BundleArtifacts {
  const json: Record<string, unknown> = {};
  const copies: Record<string, string> = {};
  for (const sub of ['kernel', 'images']) {
    const d = join(dir, sub);
    for (const f of existsSync(d) ? readdirSync(d) : []) {
      const rel = join(sub, f);
      if (f.endsWith('.json')) json[rel] = JSON.parse(readFileSync(join(dir, rel), 'utf8'));
      else copies[rel] = join(dir, rel);
    }
  }
  return { patches: [], json, copies };
}

/** Merge shard bundles into `out` (written whole into a staging directory, then renamed). */
export function mergeBundles(dirs: string[], out: string): RunResults {
  if (dirs.length === 0)
    throw new RigError('usage', 'report --merge needs the shard bundles', {
      fix: 'dmemfs-rig report --merge shard-1/ shard-2/ --out merged/',
    });
  if (existsSync(out))
    throw new RigError('out-exists', `${out} exists: a merge writes a new bundle`, {
      fix: 'give --out a directory that does not exist yet',
    });
  const shards = dirs.map((dir) => ({ dir, run: loadBundle(dir) }));
  const refusal = mergeRefusal(shards);
  if (refusal) throw refusal;
  const consoles = consolePlan(shards);
  const run = mergedResults(shards, consoles);
  const staging = `${out}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    mkdirSync(join(staging, 'consoles'), { recursive: true });
    for (const [from, rel] of consoles) {
      const [dir, src] = from.split('\0') as [string, string];
      copyFileSync(join(dir, src), join(staging, rel));
    }
    const builder = shards.find((s) => s.run.kernel.key === run.kernel.key) ?? shards[0]!;
    writeBundle(staging, run, artifactsOf(builder.dir));
    // The reproducers each shard proved (run --repro) for the signatures it reproduced: one shard
    // runs a scenario, so an id comes from one shard; a second copy would be of the same run's kernel.
    for (const s of shards)
      for (const id of existsSync(join(s.dir, 'repro')) ? readdirSync(join(s.dir, 'repro')) : [])
        if (!existsSync(join(staging, 'repro', id)))
          cpSync(join(s.dir, 'repro', id), join(staging, 'repro', id), { recursive: true });
    for (const s of shards)
      if (existsSync(join(s.dir, 'mutants')))
        cpSync(join(s.dir, 'mutants'), join(staging, 'mutants', `shard-${s.run.shard!.index}`), { recursive: true });
    renameSync(staging, out);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  return run;
}
