/**
 * The fidelity self-test: the series as it is (the reference), then the series with each mutant
 * (scenarios/mutants.ts), on the same scenarios. A mutant is caught when its named check changes
 * the way it says, and nothing else does: no other scenario's verdict, and no other measurement
 * of its own scenario beyond the ones it names.
 */
import { join } from 'node:path';
import type { RunResults, ScenarioResult } from '../core/results.js';
import { info } from '../core/log.js';
import { namedEdits } from '../kernel/edits.js';
import { selectScenarios, SCENARIOS } from '../scenarios/catalog.js';
import type { Mutant } from '../scenarios/mutants.js';
import type { AccelChoice } from '../vm/accel.js';
import { runScenarios } from './scenario-runner.js';

export interface MutantOutcome {
  edit: string;
  scenario: string;
  measurement: string;
  effect: Mutant['effect'];
  /** The named check on the reference and on the mutant. */
  reference: string;
  mutated: string;
  caught: boolean;
  /** Verdicts that changed and should not have: "scenario: pass -> fail" or "scenario/measurement: ok -> not ok". */
  collateral: string[];
  ok: boolean;
  /** Why the mutant could not be judged here: its scenario was skipped (on the reference or the mutant). */
  skipped?: string;
  proves: string;
}

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
  const sig = mutS?.signatures.find((c) => c.id === m.signature);
  return refS?.status === 'known-failure' && sig?.reproduced === false && mutS?.status === 'pass';
}

/** Verdicts that changed beyond the mutant's own: other scenarios, and other measurements of its scenario. */
function collateralOf(m: Mutant, reference: RunResults, mutated: RunResults): string[] {
  const out = reference.scenarios.flatMap((r) => {
    const x = mutated.scenarios.find((s) => s.id === r.id);
    return r.id !== m.scenario && x && x.status !== r.status ? [`${r.id}: ${r.status} -> ${x.status}`] : [];
  });
  if (m.effect === 'fixes') return out;
  const allowed = new Set([m.measurement, ...(m.alsoChanges ?? [])]);
  const refS = reference.scenarios.find((s) => s.id === m.scenario);
  const mutS = mutated.scenarios.find((s) => s.id === m.scenario);
  for (const [name, rm] of Object.entries(refS?.measurements ?? {})) {
    const xm = mutS?.measurements[name];
    if (!allowed.has(name) && (rm.ok ?? null) !== (xm?.ok ?? null))
      out.push(`${m.scenario}/${name}: ${checkOf(rm)} -> ${checkOf(xm)}`);
  }
  return out;
}

/** How one mutant's run differs from the reference, judged against what the mutant says it changes. */
export function judgeMutant(m: Mutant, reference: RunResults, mutated: RunResults): MutantOutcome {
  const refS = reference.scenarios.find((s) => s.id === m.scenario);
  const mutS = mutated.scenarios.find((s) => s.id === m.scenario);
  const why = [refS, mutS].map((s) => (!s ? 'not run' : s.status === 'skip' ? (s.reason ?? 'skipped') : undefined));
  const skipped = why.find(Boolean) && `${m.scenario} was skipped: ${why.find(Boolean)}`;
  const caught = !skipped && caughtBy(m, refS, mutS);
  const collateral = collateralOf(m, reference, mutated);
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
  };
}

export interface MutantsOptions {
  profile: string;
  accel: AccelChoice;
  mutants: Mutant[];
  /** The scenarios each run covers: every scenario by default (the mutants' own ones at least). */
  scenarios?: string[];
  out: string;
}

export async function runMutants(opts: MutantsOptions): Promise<{ outcomes: MutantOutcome[]; seconds: number }> {
  const t0 = Date.now();
  const ids = opts.scenarios ?? SCENARIOS.map((s) => s.id);
  const scenarios = selectScenarios([...new Set([...ids, ...opts.mutants.map((m) => m.scenario)])]);
  info(`mutants: the reference run (${scenarios.length} scenarios)`);
  const reference = await runScenarios({ ...opts, scenarios, out: join(opts.out, 'reference') });
  const outcomes: MutantOutcome[] = [];
  for (const m of opts.mutants) {
    info(`mutants: ${m.edit} (must change ${m.scenario}/${m.measurement})`);
    const run = await runScenarios({
      ...opts,
      scenarios,
      input: { edits: namedEdits([m.edit]) },
      out: join(opts.out, m.edit),
    });
    outcomes.push(judgeMutant(m, reference, run));
  }
  return { outcomes, seconds: (Date.now() - t0) / 1000 };
}

export function mutantsTable(outcomes: MutantOutcome[]): string {
  return [
    '| mutant | must change | reference | mutant | caught | other verdicts changed |',
    '|---|---|---|---|---|---|',
    ...outcomes.map(
      (o) =>
        `| ${o.edit} | ${o.scenario}/${o.measurement} (${o.effect}) | ${o.reference} | ${o.mutated} | ` +
        `${o.skipped ? `skipped: ${o.skipped}` : o.caught ? 'yes' : 'NO'} | ${o.collateral.join('; ') || 'none'} |`,
    ),
  ].join('\n');
}
