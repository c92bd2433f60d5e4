/** What a scenario is (data plus a small body) and what it produces. */
import type { Guest } from '../vm/guest.js';
import type { HostRole } from './machines.js';
import type { BootName } from './boots.js';

/** What a scenario needs from the machine; missing ones make it a skip with the reason. */
export type Capability = 'patched-kernel' | 'mce-cpu' | 'iommu' | 'fs-dax';

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
}

export type Comparison =
  | { op: 'eq' | 'le' | 'ge'; value: number }
  | { op: 'approx'; value: number; tolerance: number }
  | { op: 'is'; value: string | boolean };

export interface Measurement {
  value: number | string | boolean | null;
  unit: string;
  expected?: Comparison;
  ok?: boolean;
  note?: string;
}

export type ScenarioStatus = 'pass' | 'fail' | 'skip' | 'known-failure';

export interface ScenarioResult {
  id: string;
  title: string;
  status: ScenarioStatus;
  reason?: string;
  measurements: Record<string, Measurement>;
  evidence: Array<{ label: string; text: string }>;
  seconds: number;
  boots: string[];
}

export interface ScenarioContext {
  /** Boot (or reuse) the named first-level guest (scenarios/boots.ts). */
  boot(name: BootName): Promise<Guest>;
  /** Record a measured value, with the expectation it is held to. */
  measure(
    name: string,
    value: number | string | boolean | null,
    unit: string,
    expected?: Comparison,
    note?: string,
  ): Measurement;
  evidence(label: string, text: string): void;
  /** This scenario cannot run here: stop and report a skip with the reason. */
  skip(reason: string): never;
  /** A failed expectation is a known failure of the series (not of the rig): say which and why. */
  knownFailure(measurement: string, reason: string): void;
  /** Run a command in the guest and parse the last line of its stdout as JSON. */
  json<T = Record<string, unknown>>(g: Guest, argv: string[]): Promise<T & { _code: number | null; _stderr: string }>;
  accel: 'kvm' | 'tcg';
}

export interface ScenarioDefinition {
  id: string;
  title: string;
  /** What a pass establishes (README). */
  proves: string;
  needs: Capability[];
  /** The boots the body asks for, in order (names in scenarios/boots.ts): the runner plans reuse with them. */
  boots: BootName[];
  run(ctx: ScenarioContext): Promise<void>;
}

export function compare(value: Measurement['value'], c: Comparison): boolean {
  if (c.op === 'is') return value === c.value;
  if (typeof value !== 'number' || Number.isNaN(value)) return false;
  switch (c.op) {
    case 'eq':
      return value === c.value;
    case 'le':
      return value <= c.value;
    case 'ge':
      return value >= c.value;
    case 'approx':
      return Math.abs(value - c.value) <= Math.abs(c.value) * c.tolerance;
  }
}

export function describeComparison(c: Comparison): string {
  switch (c.op) {
    case 'is':
      return `= ${String(c.value)}`;
    case 'eq':
      return `= ${c.value}`;
    case 'le':
      return `<= ${c.value}`;
    case 'ge':
      return `>= ${c.value}`;
    case 'approx':
      return `${c.value} ±${(c.tolerance * 100).toFixed(0)}%`;
  }
}
