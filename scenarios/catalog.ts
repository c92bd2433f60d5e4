/**
 * The catalog: every scenario (one file each under scenarios/defs/), in the order a run takes
 * them unless planning moves one next to a scenario it can share a boot with. To add a
 * scenario: write scenarios/defs/<id>.ts and list it here. MISSION.md, "What a run must
 * establish", is the source of every expectation.
 */
import { RigError } from '../core/errors.js';
import { BOOTS } from './boots.js';
import { alternatives } from './defs/alternatives.js';
import { alternativesDevdax } from './defs/alternatives-devdax.js';
import { dmemfsFiles } from './defs/dmemfs-files.js';
import { dmemTestModule } from './defs/dmem-test-module.js';
import { debugChecks } from './defs/debug-checks.js';
import { poolBoundaries } from './defs/pool-boundaries.js';
import { dmemfsNuma } from './defs/dmemfs-numa.js';
import { hotUnplugOffline } from './defs/hot-unplug-offline.js';
import { hotUnplugDimm } from './defs/hot-unplug-dimm.js';
import { l2Alternatives } from './defs/l2-alternatives.js';
import { memDevmem } from './defs/mem-devmem.js';
import { mceDmemfs } from './defs/mce-dmemfs.js';
import { nestedGuest } from './defs/nested-guest.js';
import { reservationBadValues } from './defs/reservation-bad-values.js';
import { reservation } from './defs/reservation.js';
import { vfioPin } from './defs/vfio-pin.js';
import { softReservedDevdax } from './defs/soft-reserved-devdax.js';
import { mmSelftests } from './defs/mm-selftests.js';
import { peerTools } from './defs/peer-tools.js';
import { fuzzDmemfs } from './defs/fuzz-dmemfs.js';
import type { MeasurementOf, ScenarioDefinition } from './types.js';

export { BAD_DMEM_VALUES } from './boots.js';
export { SIGNATURES } from './signatures.js';

/** The catalog as a typed list: scenario ids and their measurement names are known to the compiler. */
const CATALOG = [
  reservation,
  reservationBadValues,
  dmemfsFiles,
  dmemfsNuma,
  nestedGuest,
  hotUnplugOffline,
  hotUnplugDimm,
  memDevmem,
  alternatives,
  alternativesDevdax,
  l2Alternatives,
  softReservedDevdax,
  vfioPin,
  mceDmemfs,
  dmemTestModule,
  poolBoundaries,
  debugChecks,
  mmSelftests,
  peerTools,
  fuzzDmemfs,
] as const;

export const SCENARIOS: ScenarioDefinition[] = [...CATALOG];

export type ScenarioId = (typeof CATALOG)[number]['id'];
/** The measurement names of one scenario: the comparison table refers to measurements through this. */
export type MeasurementName<I extends ScenarioId> = MeasurementOf<Extract<(typeof CATALOG)[number], { id: I }>>;

export function selectScenarios(ids: string[] | undefined): ScenarioDefinition[] {
  if (!ids || ids.length === 0) return SCENARIOS;
  const unknown = ids.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length)
    throw new RigError('unknown-scenario', `unknown scenario(s): ${unknown.join(', ')}`, {
      fix: `known: ${SCENARIOS.map((s) => s.id).join(', ')}`,
    });
  return SCENARIOS.filter((s) => ids.includes(s.id));
}

const bootKey = (name: string): string => JSON.stringify(BOOTS[name as keyof typeof BOOTS]);

/**
 * The order a run takes: catalog order, except that after each scenario the next one whose
 * first boot equals one the previous scenario used comes first, so the two can share it.
 */
export function planOrder(defs: ScenarioDefinition[]): ScenarioDefinition[] {
  const left = [...defs];
  const out: ScenarioDefinition[] = [];
  while (left.length) {
    const prev = out.at(-1);
    // Any boot the previous scenario declared may be the one still running (later ones are often fallbacks).
    const running = new Set((prev?.boots ?? []).map(bootKey));
    let i = left.findIndex((d) => d.boots[0] !== undefined && running.has(bootKey(d.boots[0])));
    if (i < 0) i = 0;
    out.push(left.splice(i, 1)[0]!);
  }
  return out;
}
