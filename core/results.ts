/**
 * The vocabulary of results, shared by the stages that produce them (scenarios, runner) and
 * the stage that reads them (report): measurements and their expectations, scenario results,
 * the known-failure signatures each scenario checked, boot records and the run as a whole.
 * It sits in core/ so that data flows one way: report/ reads these types and never imports
 * runner/ or scenarios/.
 */
import type { SeriesProvenance } from './series-record.js';

export const KB_PER_GIB = 1048576;

/** Theoretical struct page cost: 64 bytes per 4 KiB page = 16 MiB per GiB. */
export const STRUCT_PAGE_KB_PER_GIB = 16384;

/** A measured value: a number, a word, a yes/no, or null when it could not be measured. */
export type Value = number | string | boolean | null;

/** What a measured value is held to. Build these with the helpers below (eq, approx, ...). */
export type Expectation =
  | { op: 'eq' | 'le' | 'ge'; value: number }
  | { op: 'between'; min: number; max: number }
  /** Relative tolerance: |v - value| <= |value| * tolerance. */
  | { op: 'approx'; value: number; tolerance: number }
  /** Absolute tolerance: |v - value| <= abs. */
  | { op: 'within'; value: number; abs: number }
  | { op: 'is'; value: string | boolean }
  | { op: 'oneOf'; values: Array<string | number | boolean> };

export const eq = (value: number): Expectation => ({ op: 'eq', value });
export const atMost = (value: number): Expectation => ({ op: 'le', value });
export const atLeast = (value: number): Expectation => ({ op: 'ge', value });
export const between = (min: number, max: number): Expectation => ({ op: 'between', min, max });
export const approx = (value: number, tolerance: number): Expectation => ({ op: 'approx', value, tolerance });
export const within = (value: number, abs: number): Expectation => ({ op: 'within', value, abs });
export const is = (value: string | boolean): Expectation => ({ op: 'is', value });
export const oneOf = (...values: Array<string | number | boolean>): Expectation => ({ op: 'oneOf', values });

/** Whether `value` meets `e`. A number expectation is never met by a non-number (or NaN). */
export function meets(value: Value, e: Expectation): boolean {
  if (e.op === 'is') return value === e.value;
  if (e.op === 'oneOf') return value !== null && e.values.includes(value);
  if (typeof value !== 'number' || Number.isNaN(value)) return false;
  switch (e.op) {
    case 'eq':
      return value === e.value;
    case 'le':
      return value <= e.value;
    case 'ge':
      return value >= e.value;
    case 'between':
      return value >= e.min && value <= e.max;
    case 'approx':
      return Math.abs(value - e.value) <= Math.abs(e.value) * e.tolerance;
    case 'within':
      return Math.abs(value - e.value) <= e.abs;
  }
}

/** The expectation in a few characters, for TAP, JUnit and the report. */
export function describeExpectation(e: Expectation): string {
  switch (e.op) {
    case 'is':
    case 'eq':
      return `= ${String(e.value)}`;
    case 'oneOf':
      return `one of ${e.values.map(String).join(', ')}`;
    case 'le':
      return `<= ${e.value}`;
    case 'ge':
      return `>= ${e.value}`;
    case 'between':
      return `${e.min}..${e.max}`;
    case 'approx':
      return `${e.value} ±${Number((e.tolerance * 100).toPrecision(2))}%`;
    case 'within':
      return `${e.value} ±${e.abs}`;
  }
}

/** Consecutive misses after which an intermittent failure counts as fixed: a miss chance below 5%. */
export function triesNeeded(hits: number, tries: number): number {
  const p = tries > 0 ? hits / tries : 0;
  if (p <= 0) return Infinity;
  if (p >= 1) return 1;
  return Math.ceil(Math.log(0.05) / Math.log(1 - p));
}

/** A kernel report (panic, Oops, WARNING, ...) seen on the console while a step ran. */
export interface KernelReport {
  kind: string;
  title: string;
  excerpt: string;
}

export interface Measurement {
  value: Value;
  unit: string;
  expected?: Expectation;
  ok?: boolean;
  note?: string;
  /** Why the expectation is what it is (the physics behind the tolerance). */
  why?: string;
  /** Evidence attached to this value, for known-failure signatures to match against. */
  evidence?: string;
  /** The kernel reports this value came from (a crash, or the WARNINGs a step caused): claimed by it. */
  reports?: KernelReport[];
  /** Set when this machine could not take the measurement: the reason. Never a pass. */
  skipped?: string;
  /** How often the step behind it was tried in this run (a race repeated until it fires); 1 when absent. */
  tries?: number;
}

export type ScenarioStatus = 'pass' | 'fail' | 'skip' | 'known-failure';

/**
 * What became of one known-failure signature in a run:
 * - reproduced: a failed measurement matched it (value and evidence);
 * - fixed: every measurement it names was taken and passes ("no longer reproduces"); for an
 *   intermittent one, only after enough tries (see `rate`);
 * - not-rechecked: a measurement it needs could not be taken (skipped, with the reason): the known
 *   failure stands, unconfirmed;
 * - not-seen: an intermittent failure did not fire in this run's tries (too few to call it fixed);
 * - different: its measurements failed, but not the way it describes (the failure is judged as it is).
 */
export type SignatureOutcome = 'reproduced' | 'fixed' | 'not-rechecked' | 'not-seen' | 'different';

/** One known-failure signature a scenario was judged against, measurement by measurement. */
export interface SignatureCheck {
  id: string;
  title: string;
  measurements: string[];
  /** true: its evidence matched (outcome reproduced). */
  reproduced: boolean;
  /** Absent in bundles written before outcomes: derived from `reproduced` (outcomeOf). */
  outcome?: SignatureOutcome;
  /** What was seen: the values, and the report or evidence that matched. */
  detail: string;
  /** Its measurements that pass now ("no longer reproduces" for them), also while others still reproduce. */
  cured?: string[];
  /** Its measurements that could not be taken, and why. */
  unchecked?: Array<{ measurement: string; reason: string }>;
  /** An intermittent failure's record: hits of tries (history plus this run) and the tries a fix needs. */
  rate?: { hits: number; tries: number; needed: number };
  /**
   * The first patch at which it reproduces on this run's series (recorded by `culprits`);
   * presentFrom: the prefix before could not show it, so it is present from there on.
   */
  culprit?: { number: number; title: string; patches: number; presentFrom?: true };
}

/** A check's outcome, also for bundles written before outcomes existed. */
export function outcomeOf(c: Pick<SignatureCheck, 'outcome' | 'reproduced'>): SignatureOutcome {
  return c.outcome ?? (c.reproduced ? 'reproduced' : 'fixed');
}

export interface ScenarioResult {
  id: string;
  title: string;
  status: ScenarioStatus;
  reason?: string;
  measurements: Record<string, Measurement>;
  /** Every signature of this scenario that the judge checked. */
  signatures: SignatureCheck[];
  evidence: Array<{ label: string; text: string }>;
  seconds: number;
  boots: string[];
}

/** One first-level boot of a run: what QEMU was given and where its console went. */
export interface BootRecord {
  scenario: string;
  name: string;
  guest: string;
  /** The boot request as data (scenarios/boots.ts). */
  request: object;
  qemu: { binary: string; args: string[] };
  /** Console log inside the bundle (relative), written when the guest stops. */
  console: string | undefined;
  bootSeconds: number | null;
  /** Boots of this guest that stalled and were booted again (reason; the stalled console's path). */
  restarts?: string[];
  /** A guest that flooded its console: what was dropped ("console flooded: N bytes dropped ..."). */
  consoleFlood?: string;
  /** The fingerprint of the SSH host key the rig made for this boot (the client accepted no other). */
  hostKey?: string;
  /** The longest time a command and the console were both quiet (what the silence bound must exceed). */
  quietest?: { seconds: number; command: string };
}

/** A whole run: what results.json holds. */
export interface RunResults {
  schemaVersion: 2;
  rig: { version: string; commit: string | undefined };
  profile: string;
  kernel: Record<string, unknown>;
  /** The series applied: where it came from, pinned or not, and patch by patch against the nearest pinned one. */
  series?: SeriesProvenance;
  images: Record<string, unknown>;
  accel: { accel: string; reason: string };
  qemu: { binary: string; version: string };
  startedAt: string;
  seconds: number;
  /** Seconds spent preparing the kernel and the images, apart from the scenarios' own time. */
  prepareSeconds?: number;
  /** Workers the run had (run --jobs). */
  jobs?: number;
  /** The shard of a partitioned run: its place, and the scenarios of every shard (the same plan on each). */
  shard?: { index: number; count: number; plan: string[][] };
  /** The shard bundles a merged bundle was made from (report --merge). */
  merged?: Array<{ index: number; bundle: string; seconds: number }>;
  boots: BootRecord[];
  scenarios: ScenarioResult[];
}

/**
 * What no longer reproduces, across a run's scenarios: whole signatures (outcome fixed) and the
 * cured measurements of signatures that still reproduce in others.
 */
export function fixedSignatures(
  run: Pick<RunResults, 'scenarios'>,
): Array<SignatureCheck & { scenario: string; partial: boolean }> {
  return run.scenarios.flatMap((s) =>
    s.signatures
      .filter((c) => outcomeOf(c) === 'fixed' || (c.cured?.length ?? 0) > 0)
      .map((c) => ({ ...c, scenario: s.id, partial: outcomeOf(c) !== 'fixed' })),
  );
}
