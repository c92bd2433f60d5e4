/**
 * The fidelity self-test: the series as it is (the reference), then the series with each mutant
 * (scenarios/mutants.ts), on the same scenarios. A mutant is caught when its named check changes
 * the way it says, and nothing else does: no other scenario's verdict, and no other measurement
 * of its own scenario beyond the ones it names.
 */
import type { MutantCoverage, MutantOutcome, MutantsResult } from '../scenarios/mutants.js';
import { join } from 'node:path';
import { outcomeOf, type Measurement, type RunResults, type ScenarioResult } from '../core/results.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { namedEdits } from '../kernel/edits.js';
import { selectScenarios } from '../scenarios/catalog.js';
import { loadProfile } from '../kernel/profile.js';
import type { Mutant } from '../scenarios/mutants.js';
import { RACE_DEPENDENT } from '../scenarios/races.js';
import type { ScenarioDefinition } from '../scenarios/types.js';
import type { AccelChoice } from '../vm/accel.js';
import { runScenarios } from './scenario-runner.js';
import { MemoryGate } from '../vm/host-memory.js';
import { byCost, costsFrom, runOnWorkers, shardUnits, type Costs, type Shard } from './workers.js';

const checkOf = (m: ScenarioResult['measurements'][string] | undefined) =>
  !m
    ? 'absent'
    : m.skipped
      ? 'skipped'
      : `${JSON.stringify(m.value)} (${m.ok === true ? 'ok' : m.ok === false ? 'not ok' : 'recorded'})`;

/** Whether the named check changed the way the mutant says. */
function caughtBy(m: Mutant, refS: ScenarioResult | undefined, mutS: ScenarioResult | undefined): boolean {
  if (m.effect === 'breaks')
    return refS?.measurements[m.measurement]?.ok === true && mutS?.measurements[m.measurement]?.ok !== true;
  const before = refS?.signatures.find((c) => c.id === m.signature);
  const after = mutS?.signatures.find((c) => c.id === m.signature);
  return (
    outcomeOf(before ?? { reproduced: false, outcome: 'fixed' }) === 'reproduced' &&
    !!after?.cured?.includes(m.measurement)
  );
}

/** The measurements a fixing mutant may turn from failing to passing: those of every signature it cured. */
function curedBy(refS: ScenarioResult | undefined, mutS: ScenarioResult | undefined): Set<string> {
  const cured = new Set<string>();
  for (const c of mutS?.signatures ?? []) {
    const was = refS?.signatures.find((x) => x.id === c.id);
    if (was && outcomeOf(was) === 'reproduced') for (const n of c.cured ?? []) cured.add(n);
  }
  return cured;
}

/** The scenarios other than the mutant's whose status changed. */
function otherScenariosChanged(m: Mutant, reference: RunResults, mutated: RunResults): string[] {
  return reference.scenarios.flatMap((r) => {
    const x = mutated.scenarios.find((s) => s.id === r.id);
    return r.id !== m.scenario && x && x.status !== r.status ? [`${r.id}: ${r.status} -> ${x.status}`] : [];
  });
}

/**
 * Verdicts that changed beyond the mutant's own: other scenarios, and other measurements of its
 * scenario; apart, those a race decides (changed, but not blamed on the mutant).
 */
function collateralOf(
  m: Mutant,
  reference: RunResults,
  mutated: RunResults,
): { collateral: string[]; byChance: string[] } {
  const out = otherScenariosChanged(m, reference, mutated);
  const byChance: string[] = [];
  const racy = new Set(RACE_DEPENDENT[m.scenario] ?? []);
  const refS = reference.scenarios.find((s) => s.id === m.scenario);
  const mutS = mutated.scenarios.find((s) => s.id === m.scenario);
  const allowed = new Set([m.measurement, ...(m.alsoChanges ?? [])]);
  // A fix may take the other measurements of what it cured along (failing before, passing now).
  const cured = m.effect === 'fixes' ? curedBy(refS, mutS) : new Set<string>();
  const curedHere = (name: string, rm: Measurement, xm: Measurement | undefined) =>
    cured.has(name) && rm.ok === false && xm?.ok === true;
  // ...and the measurements the failure kept from running (skipped before, held and passing now).
  const unblocked = (rm: Measurement, xm: Measurement | undefined) =>
    m.effect === 'fixes' && cured.size > 0 && !!rm.skipped && xm?.ok === true;
  const excused = (name: string, rm: Measurement, xm: Measurement | undefined) =>
    allowed.has(name) || curedHere(name, rm, xm) || unblocked(rm, xm) || (rm.ok ?? null) === (xm?.ok ?? null);
  for (const [name, rm] of Object.entries(refS?.measurements ?? {})) {
    const xm = mutS?.measurements[name];
    if (excused(name, rm, xm)) continue;
    (racy.has(name) ? byChance : out).push(`${m.scenario}/${name}: ${checkOf(rm)} -> ${checkOf(xm)}`);
  }
  return { collateral: out, byChance };
}

/** The held measurements of `scenario` (in the reference) that a mutant broke: ok there, not ok here. */
function brokenBy(scenario: string, reference: RunResults, mutated: RunResults): string[] {
  const refS = reference.scenarios.find((s) => s.id === scenario);
  const mutS = mutated.scenarios.find((s) => s.id === scenario);
  return Object.entries(refS?.measurements ?? {})
    .filter(([n, rm]) => rm.ok === true && mutS?.measurements[n]?.ok !== true)
    .map(([n]) => n);
}

/** How one mutant's run differs from the reference, judged against what the mutant says it changes. */
export function judgeMutant(m: Mutant, reference: RunResults, mutated: RunResults): MutantOutcome {
  const refS = reference.scenarios.find((s) => s.id === m.scenario);
  const mutS = mutated.scenarios.find((s) => s.id === m.scenario);
  const why = [refS, mutS].map((s) => (!s ? 'not run' : s.status === 'skip' ? (s.reason ?? 'skipped') : undefined));
  const skipped = why.find(Boolean) && `${m.scenario} was skipped: ${why.find(Boolean)}`;
  const caught = !skipped && caughtBy(m, refS, mutS);
  const { collateral, byChance } = collateralOf(m, reference, mutated);
  const describe = (s: ScenarioResult | undefined) => {
    const check = checkOf(s?.measurements[m.measurement]);
    return m.effect === 'fixes' ? `${s?.status ?? 'not run'}; ${m.measurement} ${check}` : check;
  };
  return {
    edit: m.edit,
    scenario: m.scenario,
    measurement: m.measurement,
    effect: m.effect,
    reference: describe(refS),
    mutated: describe(mutS),
    caught,
    collateral,
    ok: caught && collateral.length === 0,
    ...(skipped ? { skipped } : {}),
    proves: m.proves,
    ...(byChance.length ? { byChance } : {}),
  };
}

export interface MutantsOptions {
  profile: string;
  accel: AccelChoice;
  mutants: Mutant[];
  /** Scenarios every run covers besides each mutant's own (default none: each mutant runs its own). */
  scenarios?: string[];
  out: string;
  /**
   * A run of the same profile and series, unedited, to judge the mutants against instead of a
   * reference run of their own (the nightly's main job): it must hold every scenario they need.
   */
  reference?: RunResults;
  /** Mutant runs at once (each its own kernel and guests; builds of one profile directory wait their turn). */
  jobs?: number;
  /** Only this shard's mutants (a deterministic partition balanced by their scenarios' costs). */
  shard?: Shard;
  costs?: Costs;
}

/** Why `ref` cannot stand as the reference for these scenarios on `profile`, or undefined. */
export function referenceGap(ref: RunResults, profile: string, scenarios: readonly string[]): string | undefined {
  if (ref.profile !== profile) return `it is a run of profile ${ref.profile}, not ${profile}`;
  if (ref.series?.edits?.length) return `its series was edited (${ref.series.edits.join(', ')})`;
  if (ref.series?.prefix !== undefined) return `it applied patches 1..${ref.series.prefix} only`;
  const missing = scenarios.filter((id) => {
    const s = ref.scenarios.find((x) => x.id === id);
    return !s || s.status === 'skip';
  });
  return missing.length ? `it did not run ${missing.join(', ')}` : undefined;
}

export type { MutantCoverage, MutantOutcome, MutantsResult } from '../scenarios/mutants.js';

export async function runMutants(opts: MutantsOptions): Promise<MutantsResult> {
  const t0 = Date.now();
  const variant = loadProfile(opts.profile).variant;
  const cost = opts.costs ?? costsFrom();
  const ofVariant = opts.mutants.filter((m) => m.variant === variant);
  const mutants = opts.shard ? shardUnits(ofVariant, (m) => cost(m.scenario), opts.shard) : ofVariant;
  const extra = opts.scenarios ?? [];
  const all = selectScenarios([...new Set([...extra, ...mutants.map((m) => m.scenario)])]);
  const gap =
    opts.reference &&
    referenceGap(
      opts.reference,
      opts.profile,
      all.map((d) => d.id),
    );
  if (gap)
    throw new RigError('bad-reference', `the reference bundle cannot judge these mutants: ${gap}`, {
      fix: 'give a full run of the same profile and series (out/run-...), or leave --reference out',
    });
  const reference = opts.reference ?? (await referenceRun(opts, all));
  const outcomes: MutantOutcome[] = [];
  const broken = new Map<string, Set<string>>();
  // Each mutant's run is serial inside; --jobs runs several mutants at once, longest first.
  const queue = byCost(mutants, (m) => cost(m.scenario));
  const memory = (opts.jobs ?? 1) > 1 ? new MemoryGate() : undefined;
  const runs = await runOnWorkers(queue, opts.jobs ?? 1, async (m) => {
    info(`mutants: ${m.edit} (must change ${m.scenario}/${m.measurement})`);
    const { jobs: _jobs, shard: _shard, ...serial } = opts;
    return runScenarios({
      ...serial,
      scenarios: selectScenarios([...new Set([...extra, m.scenario])]),
      input: { edits: namedEdits([m.edit]) },
      out: join(opts.out, m.edit),
      ...(memory ? { memory } : {}),
    });
  });
  for (const m of mutants) {
    const run = runs[queue.indexOf(m)]!;
    outcomes.push(judgeMutant(m, reference, run));
    const set = broken.get(m.scenario) ?? new Set<string>();
    for (const n of brokenBy(m.scenario, reference, run)) set.add(n);
    broken.set(m.scenario, set);
  }
  const coverage = [...new Set(mutants.map((m) => m.scenario))].map((id) => {
    const refS = reference.scenarios.find((s) => s.id === id);
    return {
      scenario: id,
      held: Object.values(refS?.measurements ?? {}).filter((x) => x.expected && x.skipped === undefined).length,
      broken: [...(broken.get(id) ?? [])].sort(),
      mutants: mutants.filter((m) => m.scenario === id).map((m) => m.edit),
    };
  });
  const seconds = (Date.now() - t0) / 1000;
  if (!opts.shard) return { outcomes, coverage, seconds };
  const { count } = opts.shard;
  const plan = Array.from({ length: count }, (_, k) =>
    shardUnits(ofVariant, (m) => cost(m.scenario), { index: k + 1, count }).map((m) => m.edit),
  );
  return { outcomes, coverage, seconds, shard: { ...opts.shard, plan } };
}

async function referenceRun(opts: MutantsOptions, all: ScenarioDefinition[]): Promise<RunResults> {
  info(`mutants: the reference run (${all.length} scenarios)`);
  const { shard: _shard, ...whole } = opts;
  return runScenarios({ ...whole, scenarios: all, out: join(opts.out, 'reference') });
}

/** How many held measurements of each scenario some mutant broke. */
export function coverageTable(coverage: MutantCoverage[]): string {
  return [
    '| scenario | held measurements | broken by some mutant | mutants |',
    '|---|---|---|---|',
    ...coverage.map(
      (c) =>
        `| ${c.scenario} | ${c.held} | ${c.broken.length}: ${c.broken.join(', ') || '-'} | ${c.mutants.join(', ')} |`,
    ),
  ].join('\n');
}

/** Text for a Markdown table cell: one line, no bare pipe. */
const cell = (s: string) => s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');

export function mutantsTable(outcomes: MutantOutcome[]): string {
  return [
    '| mutant | must change | proves that this check can fail | reference | mutant | caught | other verdicts changed |',
    '|---|---|---|---|---|---|---|',
    ...outcomes.map(
      (o) =>
        `| ${o.edit} | ${o.scenario}/${o.measurement} (${o.effect}) | ${cell(o.proves)} | ${cell(o.reference)} | ` +
        `${cell(o.mutated)} | ` +
        `${o.skipped ? `skipped: ${o.skipped}` : o.caught ? 'yes' : 'NO'} | ${o.collateral.join('; ') || 'none'}` +
        `${o.byChance?.length ? ` (by chance, a race: ${o.byChance.join('; ')})` : ''} |`,
    ),
  ].join('\n');
}
