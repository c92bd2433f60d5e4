/**
 * Expectations a kernel variant cannot hold, as data, each with its reason. On the debug variant
 * (KASAN and the rest) the kernel's own memory use is not the plain kernel's, so values that
 * measure it are recorded, not held; the note says what was expected and why it is waived. Every
 * other expectation, and the judge's rule that a report nobody claimed fails the scenario, stay.
 */
import type { Waiver } from './types.js';

export interface WaiverRule {
  scenario: string;
  /** Measurement names it covers. */
  measurement: RegExp;
  why: string;
}

const KASAN_SHADOW =
  'KASAN keeps an eighth of the RAM it maps as its shadow, allocated per node at boot: MemTotal, and how a ' +
  "reservation moves it per node, are not the plain kernel's (the plain profile holds them)";

const DEBUG_UNMOVABLE =
  'on the debug kernel the block next to a dmem region would not go offline (EIO): its own allocations ' +
  '(KASAN quarantine and shadow, lockdep and stack-depot records) are unmovable and may sit in any block; ' +
  'the plain profile holds this';

export const DEBUG_WAIVERS: readonly WaiverRule[] = [
  { scenario: 'hot-unplug-offline', measurement: /^offline_block_next_to_dmem$/, why: DEBUG_UNMOVABLE },
  { scenario: 'mem-devmem', measurement: /^memtotal_kb$/, why: KASAN_SHADOW },
  {
    scenario: 'reservation',
    measurement: /^(memtotal_plain_kb|node[01]_memtotal_drop_kb|memmap_memtotal_drop_kb)$/,
    why: KASAN_SHADOW,
  },
];

/** The waiver of a variant: the reason a measurement's expectation is not held, or undefined. */
export function waiverFor(variant: 'debug' | undefined): Waiver | undefined {
  if (variant !== 'debug') return undefined;
  return (scenario, measurement) =>
    DEBUG_WAIVERS.find((w) => w.scenario === scenario && w.measurement.test(measurement))?.why;
}
