/** A run's results made up for unit tests (fakes are fine there): every field the schema needs. */
import type { RunResults, ScenarioResult } from '../../core/results.js';

export function fakeRun(scenarios: ScenarioResult[], extra: Partial<RunResults> = {}): RunResults {
  return {
    schemaVersion: 2,
    rig: { version: '0.1.0', commit: 'abc' },
    profile: 'rfc-v2-debian',
    kernel: { release: '5.10.223+', key: 'k' },
    images: {},
    accel: { accel: 'tcg', reason: 'no KVM' },
    qemu: { binary: 'qemu-system-x86_64', version: 'QEMU emulator version 7.2.22' },
    startedAt: '2026-11-22T00:00:00Z',
    seconds: 10,
    boots: [],
    scenarios,
    ...extra,
  };
}
