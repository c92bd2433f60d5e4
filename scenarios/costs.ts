/**
 * What each scenario costs, in seconds of one worker, when no accepted bundle says better: the
 * scenarios' own times (kernel and image preparation apart) in the full run of 2026-12-03 17:16
 * on this project's 2-core machine under TCG (out/run-2026-12-03T17-16-13-573Z). A shard plan
 * (run --shard) and the order workers take scenarios in (run --jobs) balance by these figures,
 * or by those of the last accepted bundle (--costs DIR). Only their ratios matter.
 */
export const SCENARIO_COSTS: Readonly<Record<string, number>> = {
  reservation: 26,
  'pool-boundaries': 284,
  'dmemfs-files': 8,
  'dmemfs-numa': 10,
  'nested-guest': 28,
  'hot-unplug-offline': 1,
  'dmem-test-module': 1,
  'reservation-bad-values': 3,
  'hot-unplug-dimm': 9,
  'mem-devmem': 5,
  alternatives: 10,
  'alternatives-devdax': 1,
  'l2-alternatives': 72,
  'soft-reserved-devdax': 107,
  'vfio-pin': 27,
  'mce-dmemfs': 323,
  // Skipped on the plain kernel; on the debug variant (two boots of a slow kernel), an estimate.
  'debug-checks': 120,
  // Measured alone on 2026-12-07 here (out of the run above: runs /work/runs/st-3, st-4, st-2).
  'mm-selftests': 121,
  'peer-tools': 39,
  'fuzz-dmemfs': 284,
};

/** What a scenario without a figure is taken to cost. */
export const DEFAULT_COST = 60;
