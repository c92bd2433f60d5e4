/**
 * The races of the series that fire in some runs only, as data: how often each fired per try,
 * counted where the source says. The scenario that provokes one repeats it until it fires, up to
 * the tries that make a miss mean a fix (core/results.ts triesNeeded); its signature carries the
 * same rate, so that a run that did not see it says "not seen" unless it tried that often.
 */
import { triesNeeded } from '../core/results.js';

export interface RaceRate {
  hits: number;
  tries: number;
  source: string;
}

/**
 * Eight threads faulting one dmemfs file at once (pool-boundaries' threads case), per column: the
 * tries of the full runs on this machine (TCG, 2 vCPUs) that kept them, and how many fired.
 */
const COUNTED =
  'runs of 2026-12-03 on this machine (TCG): 13:03 (one try each, none fired), then 17:16, 17:33 and 22:59 ' +
  '(tries until it fired: 4K at tries 1, 1, 1; 2M at 9, 1, 6; 1G at 5, 5, 5); and the three npm start runs of ' +
  '2026-12-04 21:18, 21:32 and 21:48 (4K at 1, 1, 1; 2M at 3, 3, 4; 1G at 14, not in 15 tries, at 7: the run ' +
  'of 21:32 said "no longer reproduces" at 1G on the rate counted before, 3 of 16)';
export const THREAD_RACES = {
  dmemfs_4K: { hits: 6, tries: 7, source: COUNTED },
  dmemfs_2M: { hits: 6, tries: 27, source: COUNTED },
  dmemfs_1G: { hits: 5, tries: 52, source: COUNTED },
} as const satisfies Record<string, RaceRate>;

/** The most tries a run spends on one race (a bound on its time). */
export const MAX_RACE_TRIES = 30;

/** How often a run tries a race: enough for a miss to mean a fix, within MAX_RACE_TRIES. */
export function racePlan(r: RaceRate): number {
  return Math.min(MAX_RACE_TRIES, triesNeeded(r.hits, r.tries));
}

/**
 * The measurements whose values hang on a race firing or not, per scenario: in pool-boundaries,
 * every measurement of the threads case of a racing column (the fill, the dpages used, the reports,
 * the unlink) and the pool's state at the end, which the BUG after the race leaves unmeasured. A
 * run may differ from another there by chance alone; a mutant that does not name one of them is
 * not blamed for it (mutants list such changes as "by chance").
 */
export const RACE_DEPENDENT: Readonly<Record<string, readonly string[]>> = {
  'pool-boundaries': Object.keys(THREAD_RACES).flatMap((col) =>
    ['threads_fill', 'threads_pages_used', 'threads_kernel_reports', 'threads_unlink', 'pool_free_at_end'].map(
      (m) => `${m}_${col}`,
    ),
  ),
};
