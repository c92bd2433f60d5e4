/**
 * Expectations a kernel variant cannot hold, as data, each with its reason. On the debug variant
 * (KASAN and the rest) the kernel's own memory use is not the plain kernel's, so values that
 * measure it are recorded, not held; the note says what was expected and why it is waived. Every
 * other expectation, and the judge's rule that a report nobody claimed fails the scenario, stay.
 */
import type { MeasurementName, ScenarioId } from './catalog.js';
import type { Waiver } from './types.js';

export interface WaiverRule {
  scenario: ScenarioId;
  /** The measurements it covers, by name. */
  measurements: readonly string[];
  why: string;
}

/** A waiver of `scenario`'s measurements, their names checked by the compiler against the scenario's own. */
export function waiverOf<I extends ScenarioId>(
  scenario: I,
  measurements: MeasurementName<I>[],
  why: string,
): WaiverRule {
  return { scenario, measurements, why };
}

const KASAN_SHADOW =
  'KASAN keeps an eighth of the RAM it maps as its shadow, allocated per node at boot: MemTotal, and how a ' +
  "reservation moves it per node, are not the plain kernel's (the plain profile holds them)";

const DEBUG_UNMOVABLE =
  'on the debug kernel the block next to a dmem region would not go offline (EIO): its own allocations ' +
  '(KASAN quarantine and shadow, lockdep and stack-depot records) are unmovable and may sit in any block; ' +
  'the plain profile holds this';

export const DEBUG_WAIVERS: readonly WaiverRule[] = [
  waiverOf('hot-unplug-offline', ['offline_block_next_to_dmem'], DEBUG_UNMOVABLE),
  waiverOf('mem-devmem', ['memtotal_kb'], KASAN_SHADOW),
  waiverOf(
    'reservation',
    ['memtotal_plain_kb', 'node0_memtotal_drop_kb', 'node1_memtotal_drop_kb', 'memmap_memtotal_drop_kb'],
    KASAN_SHADOW,
  ),
];

/** The waiver of a variant: the reason a measurement's expectation is not held, or undefined. */
export function waiverFor(variant: 'debug' | undefined): Waiver | undefined {
  if (variant !== 'debug') return undefined;
  return (scenario, measurement) =>
    DEBUG_WAIVERS.find((w) => w.scenario === scenario && w.measurements.includes(measurement))?.why;
}
