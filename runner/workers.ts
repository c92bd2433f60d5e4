/**
 * Many guests at once. A run's scenarios (or a mutant run's pairs) are cut into units: scenarios
 * that share a boot stay together, in the order planOrder gives them, so that the second reuses
 * the first's guest. Units then go either to the workers of one host (--jobs N: each worker has
 * its own boot pool, so its own run directories, ports, QMP sockets and consoles) or to the
 * shards of a runner matrix (--shard K/N: a deterministic partition balanced by cost).
 *
 * Costs come from the last accepted bundle where there is one (--costs DIR), else from the cost
 * table (scenarios/costs.ts). Only ratios matter: they order the work, longest first.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import { info, withLogPrefix } from '../core/log.js';
import type { RunResults } from '../core/results.js';
import { BOOTS, type BootName } from '../scenarios/boots.js';
import { planOrder } from '../scenarios/catalog.js';
import { DEFAULT_COST, SCENARIO_COSTS } from '../scenarios/costs.js';
import type { ScenarioDefinition } from '../scenarios/types.js';
import { availableMiB } from '../vm/host-memory.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** The most workers or shards a run takes: more would only wait for each other. */
const MAX_PARALLEL = 64;

/** `--jobs N`: a positive integer. */
export function parseJobs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(n) || n < 1 || n > MAX_PARALLEL)
    throw new RigError(
      'bad-jobs',
      `--jobs ${text}: the number of workers must be a whole number from 1 to ${MAX_PARALLEL}`,
      {
        fix: 'give --jobs 1 for a serial run, or leave it out for the host default',
      },
    );
  return n;
}

/** `--shard K/N`: 1 <= K <= N. */
export function parseShard(text: string | undefined): Shard | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || count > MAX_PARALLEL || index < 1 || index > count)
    throw new RigError('bad-shard', `--shard ${text}: a shard is K/N with 1 <= K <= N <= ${MAX_PARALLEL}`, {
      fix: 'give --shard 1/2 and --shard 2/2 to two runners, then report --merge their bundles',
    });
  return { index, count };
}

const bootKey = (name: string): string => JSON.stringify(BOOTS[name as BootName]);

/**
 * Cut a planned order (planOrder) into units: a scenario whose first boot is one the previous
 * scenario declares joins that scenario's unit (it may reuse its guest), any other starts a new one.
 */
export function unitsOf(ordered: ScenarioDefinition[]): ScenarioDefinition[][] {
  const units: ScenarioDefinition[][] = [];
  for (const d of ordered) {
    const prev = units.at(-1)?.at(-1);
    const shares = prev && d.boots[0] !== undefined && prev.boots.map(bootKey).includes(bootKey(d.boots[0]));
    if (shares) units.at(-1)!.push(d);
    else units.push([d]);
  }
  return units;
}

/** Per-scenario costs: the accepted bundle's own times over the table's. */
export type Costs = (scenario: string) => number;

export function costsFrom(run?: Pick<RunResults, 'scenarios'>): Costs {
  const measured = new Map(
    (run?.scenarios ?? []).filter((s) => s.status !== 'skip' && s.seconds > 0).map((s) => [s.id, s.seconds]),
  );
  return (id) => measured.get(id) ?? SCENARIO_COSTS[id] ?? DEFAULT_COST;
}

/** The costs of `--costs DIR` (a bundle or an accepted base: its results.json), or the table's. */
export function loadCosts(dir: string | undefined): Costs {
  if (!dir) return costsFrom();
  const file = join(dir, 'results.json');
  if (!existsSync(file))
    throw new RigError('bad-costs', `--costs ${dir}: no results.json there`, {
      fix: 'give the accepted base directory (report --accept --into DIR) or a run bundle',
    });
  return costsFrom(JSON.parse(readFileSync(file, 'utf8')) as RunResults);
}

/** Units longest first (ties in plan order): the order workers take them, and shards are dealt. */
export function byCost<U>(units: U[], cost: (u: U) => number): U[] {
  return units
    .map((u, i) => ({ u, i, c: cost(u) }))
    .sort((a, b) => b.c - a.c || a.i - b.i)
    .map((x) => x.u);
}

/**
 * The units of shard K of N: dealt longest first, each to the shard with the least cost so far
 * (the lowest index on a tie). The same units and costs give the same partition on every runner.
 */
export function shardUnits<U>(units: U[], cost: (u: U) => number, shard: Shard): U[] {
  const load = Array.from({ length: shard.count }, () => 0);
  const mine = new Set<U>();
  for (const u of byCost(units, cost)) {
    const k = load.indexOf(Math.min(...load));
    load[k]! += cost(u);
    if (k === shard.index - 1) mine.add(u);
  }
  return units.filter((u) => mine.has(u));
}

/** What one host holds: cores, and MiB of RAM available. */
export interface HostShape {
  cores: number;
  availMiB: number;
}

export function hostShape(): HostShape {
  return { cores: cpus().length, availMiB: availableMiB() };
}

/** The RAM and vCPUs of a scenario's largest boot. */
function largestBoot(defs: ScenarioDefinition[]): { mib: number; vcpus: number } {
  let mib = 0;
  for (const d of defs)
    for (const b of d.boots) {
      const r = BOOTS[b as BootName];
      mib = Math.max(mib, 2 * r.nodeMiB + (r.dimms ?? []).reduce((a, x) => a + x.sizeMiB, 0));
    }
  return { mib, vcpus: 2 };
}

/**
 * The default number of workers: as many guests as the host has cores for (each first-level
 * guest has two vCPUs) and RAM for (the largest boot the scenarios ask for), and no more than
 * there are units. A 2-core host gets 1; a 32-core runner with 64 GiB gets 8 for the full run.
 */
export function defaultJobs(defs: ScenarioDefinition[], host: HostShape = hostShape()): number {
  const { mib, vcpus } = largestBoot(defs);
  const byCores = Math.floor(host.cores / vcpus);
  const byRam = mib > 0 ? Math.floor(host.availMiB / mib) : byCores;
  return Math.max(1, Math.min(byCores, byRam, unitsOf(planOrder(defs)).length, MAX_PARALLEL));
}

/** Progress of a run on workers: one line per unit end, with done of total and an estimate of the rest. */
export class RunProgress {
  private done = 0;
  private doneCost = 0;
  private readonly started = Date.now();
  constructor(
    private readonly total: number,
    private readonly totalCost: number,
    private readonly jobs: number,
  ) {}

  /** One scenario finished: say how far the run is. */
  finished(cost: number): string {
    this.done += 1;
    this.doneCost += cost;
    const elapsed = (Date.now() - this.started) / 1000;
    // The rest at the pace so far (elapsed per unit of cost done), spread over the workers.
    const left = this.doneCost > 0 ? ((this.totalCost - this.doneCost) * elapsed) / this.doneCost : 0;
    const rest = this.done === this.total ? '' : `, about ${formatSeconds(left)} left`;
    const done = `${this.done} of ${this.total} scenarios done on ${this.jobs} worker(s)`;
    return `progress: ${done}, ${formatSeconds(elapsed)} elapsed${rest}`;
  }
}

export function formatSeconds(s: number): string {
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/**
 * Run `units` on `jobs` workers: each worker takes the next unit of the queue (the queue is in
 * the order given) and runs it with `work`; its log lines are prefixed "wK". The results come
 * back in the order of `units`, whatever order they finished in. A worker that throws stops
 * taking units; the others finish theirs, and the first error is thrown at the end.
 */
export async function runOnWorkers<U, R>(
  units: U[],
  jobs: number,
  work: (unit: U, worker: number) => Promise<R>,
): Promise<R[]> {
  const results = new Map<number, R>();
  let next = 0;
  let failure: { e: unknown } | undefined;
  const worker = async (w: number) => {
    while (!failure && next < units.length) {
      const i = next++;
      try {
        results.set(i, await work(units[i]!, w));
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  const n = Math.max(1, Math.min(jobs, units.length));
  if (n === 1) await worker(1);
  else await Promise.all(Array.from({ length: n }, (_, k) => withLogPrefix(`w${k + 1}`, () => worker(k + 1))));
  if (failure) throw failure.e;
  return units.map((_, i) => results.get(i)!);
}

/** Say how the work is spread, once, before it starts. */
export function announce(units: ScenarioDefinition[][], jobs: number, shard?: Shard): void {
  const ids = units.flat().map((d) => d.id);
  const where = shard ? `shard ${shard.index}/${shard.count}: ` : '';
  info(`${where}${ids.length} scenario(s) in ${units.length} unit(s) on ${jobs} worker(s): ${ids.join(', ')}`);
}
