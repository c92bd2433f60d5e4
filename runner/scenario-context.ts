/**
 * The context a scenario body works through: boots from the pool (only those the scenario
 * declares), measurements held to their expectations, evidence, skips, helper JSON. It also
 * remembers which guests the scenario used and where their consoles stood, so the judge sees
 * exactly the kernel reports that appeared while this scenario ran.
 */
import type { Waiver } from '../scenarios/types.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { describeExpectation, meets, type Measurement, type ScenarioResult } from '../core/results.js';
import type { MeasureOptions, ScenarioContext, ScenarioDefinition } from '../scenarios/types.js';
import type { Guest } from '../vm/guest.js';
import type { GuestHandle } from '../vm/guest-handle.js';
import { undeclaredBoot, type BootPool } from './boot-pool.js';
import type { SeenReport } from './judge.js';

export class SkipSignal extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** What a scenario accumulates while it runs. */
export interface ScenarioRun {
  result: ScenarioResult;
  ctx: ScenarioContext;
  /** The kernel reports that appeared on this scenario's guests while it ran. */
  reports(): SeenReport[];
}

export function newResult(def: ScenarioDefinition): ScenarioResult {
  return {
    id: def.id,
    title: def.title,
    status: 'pass',
    measurements: {},
    signatures: [],
    evidence: [],
    seconds: 0,
    boots: [],
  };
}

function record(result: ScenarioResult, name: string, m: Measurement): Measurement {
  result.measurements[name] = m;
  const held = m.expected ? ` (expected ${describeExpectation(m.expected)}: ${m.ok ? 'ok' : 'NOT MET'})` : '';
  info(`  ${name} = ${m.skipped ? `skipped: ${m.skipped}` : `${String(m.value)} ${m.unit}`}${held}`);
  return m;
}

export function measurementOf(value: Measurement['value'], o: MeasureOptions = {}): Measurement {
  return {
    value,
    unit: o.unit ?? '',
    ...(o.expect ? { expected: o.expect, ok: meets(value, o.expect) } : {}),
    ...(o.note ? { note: o.note } : {}),
    ...(o.why ? { why: o.why } : {}),
    ...(o.evidence ? { evidence: o.evidence.slice(-8000) } : {}),
    ...(o.reports?.length ? { reports: o.reports } : {}),
    ...(o.tries !== undefined ? { tries: o.tries } : {}),
  };
}

async function helperJson(g: GuestHandle, argv: string[]) {
  const r = await g.exec(argv);
  const line = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  if (!line)
    throw new RigError('helper-output', `${argv[0]} printed no JSON (exit ${r.code})`, {
      evidence: `${r.stdout}\n${r.stderr}`.slice(-3000),
    });
  return { ...JSON.parse(line), _code: r.code, _stderr: r.stderr };
}

/** Why a measurement's expectation is not held on this run's kernel (a debug variant's waivers), or undefined. */
export type { Waiver } from '../scenarios/types.js';

/** The options with the expectation taken off and said in the note, when a waiver applies. */
export function waived(o: MeasureOptions | undefined, why: string | undefined): MeasureOptions | undefined {
  if (!why || !o?.expect) return o;
  const { expect, ...rest } = o;
  const said = `not held on this kernel (expected ${describeExpectation(expect)}): ${why}`;
  return { ...rest, note: rest.note ? `${rest.note}; ${said}` : said };
}

/**
 * A measurement's options: its declared claim, then what the body gives. A body's option left
 * undefined does not erase the claim's (an `expect: undefined` would turn a held value into a
 * recorded one without a word).
 */
export function withClaim(claim: MeasureOptions | undefined, opts: MeasureOptions | undefined): MeasureOptions {
  const given = Object.fromEntries(Object.entries(opts ?? {}).filter(([, v]) => v !== undefined));
  return { ...claim, ...given };
}

export function scenarioRun(
  def: ScenarioDefinition,
  pool: BootPool,
  accel: 'kvm' | 'tcg',
  waiver?: Waiver,
  unmet: ScenarioContext['unmet'] = async () => undefined,
): ScenarioRun {
  const result = newResult(def);
  // Each guest this scenario used, with the number of console reports it had before.
  const marks = new Map<Guest, number>();
  const ctx: ScenarioContext = {
    accel,
    async boot(name) {
      if (!def.boots.includes(name)) throw undeclaredBoot(def.id, name);
      const { guest, reused } = await pool.boot(def.id, name);
      if (!marks.has(guest)) marks.set(guest, reused ? guest.console.reports.length : 0);
      result.boots.push(reused ? `${name} (reused)` : name);
      return guest;
    },
    measure: (name, value, opts) =>
      record(result, name, measurementOf(value, waived(withClaim(def.claims?.[name], opts), waiver?.(def.id, name)))),
    skipMeasure: (name, reason, opts) => record(result, name, { value: null, unit: opts?.unit ?? '', skipped: reason }),
    evidence(label, text) {
      result.evidence.push({ label, text: text.length > 20000 ? text.slice(-20000) : text });
    },
    skip(reason): never {
      throw new SkipSignal(reason);
    },
    json: helperJson,
    testModule: (name) => pool.testModule(name),
    selftests: (kernel) => pool.selftests(kernel),
    unmet,
  };
  const reports = () =>
    [...marks].flatMap(([g, from]) =>
      g.console.reports.slice(from).map((r) => ({
        kind: r.kind,
        title: r.title,
        excerpt: r.excerpt.join('\n'),
        guest: g.opts.spec.name,
        line: r.lineIndex,
      })),
    );
  return { result, ctx, reports };
}
