/**
 * What a scenario is: data (its id, what it needs, the boots it uses, the measurements it
 * takes) plus a small body that measures. A scenario declares its measurement names; the
 * context only accepts those names, and the comparison table refers to them through the
 * scenario, so a renamed measurement is a compile error everywhere it is used.
 */
import type { Expectation, KernelReport, Measurement, Value } from '../core/results.js';
import type { GuestHandle as Guest } from '../vm/guest-handle.js';
import type { HostRole } from './machines.js';
import type { BootName } from './boots.js';
import type { SelftestBuild } from '../kernel/selftests.js';

/** What a scenario needs from the machine; missing ones make it a skip with the reason. */
export type Capability = 'patched-kernel' | 'mce-cpu' | 'iommu' | 'fs-dax' | 'soft-reserved' | 'debug-checks';

/** A first-level boot, as data. Scenarios that ask for the same request share one boot. */
export interface BootRequest {
  /** 'profile': the kernel of the run's profile; 'baseline': the profile named baseline-debian. */
  kernel: 'profile' | 'baseline';
  role: HostRole;
  nodeMiB: number;
  append: string[];
  /** Tokens passed without the rig's dmem= check: only to show what the kernel itself does with bad values. */
  unchecked?: string[];
  iommu?: boolean;
  devices?: string[];
  machineOptions?: Record<string, string>;
  /** Console report titles this boot expects (recorded, not fatal). */
  consoleAllow?: string[];
  /** Cold-plugged pc-dimm devices (hot-pluggable memory), each on a node. */
  dimms?: Array<{ id: string; sizeMiB: number; node: number }>;
  /** Memory hotplug room: slots and maxmem. */
  hotplug?: { slots: number; maxMiB: number };
  /** Makes an otherwise equal request a separate boot (a fresh kernel for the same spec). */
  tag?: string;
  /** UEFI (OVMF) instead of SeaBIOS: the kernel gets an EFI memory map (efi_fake_mem=). */
  firmware?: 'efi';
}

/** How a value is recorded: its unit, what it is held to and why, a note, its evidence. */
export interface MeasureOptions {
  unit?: string;
  /** Without one the value is recorded (shown as "recorded"), never counted as a passed check. */
  expect?: Expectation;
  /** Why the expectation is what it is (where the tolerance comes from). */
  why?: string;
  note?: string;
  /** Text a known-failure signature may match (a dmesg excerpt, a helper's JSON). */
  evidence?: string;
  /** The kernel reports this value came from: claimed by it, judged through it. */
  reports?: KernelReport[];
  /** How often the step behind the value was tried in this run (a race repeated until it fires). */
  tries?: number;
}

export interface ScenarioContext<M extends string = string> {
  /** Boot (or reuse) the named first-level guest (scenarios/boots.ts). */
  boot: (name: BootName) => Promise<Guest>;
  /** Record a measured value, with the expectation it is held to. */
  measure: (name: M, value: Value, opts?: MeasureOptions) => Measurement;
  /** A measurement this machine cannot take: recorded as skipped with the reason. */
  skipMeasure: (name: M, reason: string, opts?: Pick<MeasureOptions, 'unit'>) => Measurement;
  evidence: (label: string, text: string) => void;
  /** This scenario cannot run here: stop and report a skip with the reason. */
  skip: (reason: string) => never;
  /** Run a command in the guest and parse the last line of its stdout as JSON. */
  json: <T = Record<string, unknown>>(
    g: Guest,
    argv: string[],
  ) => Promise<T & { _code: number | null; _stderr: string }>;
  accel: 'kvm' | 'tcg';
  /**
   * A test module the series carries, built with the run's kernel (kernel/build.ts
   * SERIES_TEST_MODULES): its host path, or the build's errors; undefined when the series has none.
   */
  testModule: (name: string) => Promise<{ path?: string; error?: string } | undefined>;
  /**
   * The kernel's own mm selftests, built from the tree of the run's kernel ('profile') or of the
   * baseline's (kernel/selftests.ts); undefined when that kernel is not one the rig built.
   */
  selftests: (kernel: BootRequest['kernel']) => Promise<SelftestBuild | undefined>;
  /** Why this run cannot offer a capability (for a part of a scenario that needs more than the rest), or undefined. */
  unmet: (need: Capability) => Promise<string | undefined>;
}

/**
 * What a scenario claims of one measurement, declared beside its name rather than inside the body:
 * its unit, the expectation it is held to and why. The body then only measures
 * (`ctx.measure(name, value, { note, evidence })`); what the body passes wins over the claim.
 */
export type Claim = Pick<MeasureOptions, 'unit' | 'expect' | 'why'>;

export interface ScenarioDefinition<M extends string = string, I extends string = string> {
  id: I;
  title: string;
  /** What a pass establishes (README). */
  proves: string;
  needs: Capability[];
  /** The boots the body asks for, in order (names in scenarios/boots.ts): the runner plans reuse with them. */
  boots: BootName[];
  /** Every measurement the body may take. */
  measurements: readonly M[];
  /** The claims, by measurement: unit, expectation, why (the body's own options override them). */
  claims?: Partial<Record<M, Claim>>;
  run(ctx: ScenarioContext<M>): Promise<void>;
}

/** Declares a scenario, inferring its id and measurement names from the definition. */
export function defineScenario<const M extends string, const I extends string>(
  def: ScenarioDefinition<M, I>,
): ScenarioDefinition<M, I> {
  return def;
}

/** The measurement names a scenario declares. */
export type MeasurementOf<S> = S extends ScenarioDefinition<infer M, string> ? M : never;

/** `names` suffixed with each of `suffixes`: per-size or per-backend measurement families. */
export function family<const P extends string, const S extends string>(
  names: readonly P[],
  suffixes: readonly S[],
): Array<`${P}_${S}`> {
  return names.flatMap((n) => suffixes.map((s) => `${n}_${s}` as const));
}

/** `names` prefixed with `prefix`: the same measurements taken for several subjects. */
export function prefixed<const P extends string, const N extends string>(
  prefix: P,
  names: readonly N[],
): Array<`${P}${N}`> {
  return names.map((n) => `${prefix}${n}` as const);
}

/**
 * A known failure of the series, as data: which measurements it explains, and what their
 * evidence must show for the failure to count as this one. A failed measurement that does not
 * match is a fail, even where a signature exists for another value; a signature whose
 * measurements all pass "no longer reproduces".
 */
export interface Signature<M extends string = string> {
  id: string;
  scenario: string;
  /** One line: what goes wrong. */
  title: string;
  /** Why, as far as it is known (the patches and kernel paths involved). */
  reason: string;
  /** Each measurement it explains, with the value it must have (a worse or different value is a fail). */
  measurements: Partial<Record<M, Expectation | 'any'>>;
  /** Every kernel report attached to the measurement must be of one of these kinds and match. */
  report?: { kinds: readonly string[]; title?: RegExp; excerpt?: RegExp };
  /** A pattern over the evidence attached to the measurement (dmesg lines, a helper's JSON). */
  evidence?: RegExp;
  /**
   * Claims the console reports matching `report` that appeared while the scenario ran, with no
   * measurement taking them: what a debug kernel reports on any use of dmemfs (a mount, a file
   * created). `scenario` may then be '*', every scenario.
   */
  seen?: true;
  /** Only on this kernel variant (the debug checks that report it exist nowhere else). */
  variant?: 'debug';
  /**
   * Measurements whose failure is a race that fires in some runs only: its recorded rate (hits of
   * tries, and where they were counted). Not firing is "not seen this run" until a run makes
   * enough tries for a miss to mean a fix.
   */
  intermittent?: Partial<Record<M, { hits: number; tries: number; source: string }>>;
}

/** Declares a signature of `scenario`, with measurement names checked against it. */
export function signatureOf<M extends string>(
  scenario: ScenarioDefinition<M, string>,
  sig: Omit<Signature<M>, 'scenario'>,
): Signature {
  return { ...sig, scenario: scenario.id } as Signature;
}

/** A waiver: why a failed measurement is excused this run, or undefined (runner/scenario-context.ts applies it). */
export type Waiver = (scenario: string, measurement: string) => string | undefined;
