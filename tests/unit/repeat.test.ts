/** report --repeat: runs of one kernel side by side; a status that differs, or another kernel, is "not the same". */
import t from 'tap';
import { renderRepeat, repeatRuns } from '../../report/repeat.js';
import type { RunResults } from '../../core/results.js';

const run = (statuses: Record<string, string>, extra: Partial<RunResults> = {}) =>
  ({
    rig: { version: '0.1.0', commit: 'abcdef0123' },
    profile: 'rfc-v2-debian',
    kernel: { key: 'k1' },
    startedAt: '2026-12-04T21:18:00Z',
    seconds: 1500.4,
    prepareSeconds: 60.2,
    boots: [
      { quietest: { seconds: 4, command: 'vfio-dma --x' } },
      { quietest: { seconds: 12.5, command: 'pool-edge | x' } },
      {},
    ],
    scenarios: Object.entries(statuses).map(([id, status]) => ({ id, status })),
    ...extra,
  }) as unknown as RunResults;

t.test('the same statuses in every run: same, and the table says so', async (t) => {
  const a = { reservation: 'pass', 'mce-dmemfs': 'known-failure', 'debug-checks': 'skip' };
  const r = repeatRuns([run(a), run(a), run(a)], ['one', 'two', 'three']);
  t.equal(r.same, true);
  t.same(
    r.rows.map((x) => [x.scenario, x.same]),
    [
      ['reservation', true],
      ['mce-dmemfs', true],
      ['debug-checks', true],
    ],
  );
  const md = renderRepeat(r);
  t.match(md, /\| `mce-dmemfs` \| known-failure \| known-failure \| known-failure \| yes \|/);
  t.match(md, /\| 1 \(`one`\) \| 2026-12-04T21:18:00Z \| abcdef0 \| 1500 \| 60 \| 12\.5: `pool-edge \\\| x` \|/);
  t.match(md, /Every scenario has the same status in all 3 runs\./);
});

t.test('one status that differs, a scenario missing from a run, another kernel: not the same', async (t) => {
  const base = { reservation: 'pass', 'pool-boundaries': 'known-failure' };
  const flaky = repeatRuns([run(base), run({ ...base, 'pool-boundaries': 'fail' })], ['a', 'b']);
  t.equal(flaky.same, false);
  t.same(flaky.rows.find((x) => x.scenario === 'pool-boundaries')?.statuses, ['known-failure', 'fail']);
  t.match(
    renderRepeat(flaky),
    /\| `pool-boundaries` \| known-failure \| fail \| \*\*no\*\* \|[\s\S]*Not the same: pool-boundaries\./,
  );
  const missing = repeatRuns([run(base), run({ reservation: 'pass' })], ['a', 'b']);
  t.equal(missing.same, false);
  t.same(missing.rows.find((x) => x.scenario === 'pool-boundaries')?.statuses, ['known-failure', 'absent']);
  const other = repeatRuns([run(base), run(base, { kernel: { key: 'k2' } })], ['a', 'b']);
  t.equal(other.same, false, 'the same statuses on another kernel are no repeat');
  t.same(other.unlike, ['b: another kernel or profile than a']);
});
