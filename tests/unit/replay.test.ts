/**
 * Scenario bodies against recordings of a real run: each scenario of tests/fixtures/recordings/
 * (recorded by `run --record`; its README names the run) runs here against a guest that replays
 * what the real kernel answered (tests/helpers/replay-guest.ts), in seconds. Every measurement
 * must come out as the real run measured it, and the judge must give the same status: a body that
 * parses an output differently, or asks for a command the real run did not, fails here.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import type { RunResults } from '../../core/results.js';
import { judge } from '../../runner/judge.js';
import { scenarioRun } from '../../runner/scenario-context.js';
import { SCENARIOS } from '../../scenarios/catalog.js';
import { signaturesFor } from '../../scenarios/signatures.js';
import type { GuestRecording } from '../../vm/recording.js';
import { loadRecordings, replayPool } from '../helpers/replay-guest.js';

const dir = join(projectRoot(), 'tests', 'fixtures', 'recordings');
const run = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as RunResults;
const recorded = readdirSync(join(dir, 'guests')).map((f) => join(dir, 'guests', f));

/** A scenario's body on the replayed boots: its result, verdict and the replay guests. */
async function replay(id: string, change?: (r: GuestRecording) => void) {
  const def = SCENARIOS.find((s) => s.id === id)!;
  const recordings = new Map(
    [...loadRecordings(recorded)].filter(([, r]) => r.scenario === id).map(([boot, r]) => [boot, r]),
  );
  for (const r of recordings.values()) change?.(r);
  const { pool, guests } = replayPool(recordings);
  const r = scenarioRun(def, pool, run.accel.accel as 'kvm' | 'tcg');
  await def.run(r.ctx);
  return { result: r.result, verdict: judge(r.result, signaturesFor(id), r.reports()), guests };
}

for (const real of run.scenarios)
  t.test(`${real.id}: the body on its recording measures what the real run measured`, async (t) => {
    const { result, verdict, guests } = await replay(real.id);
    t.same(Object.keys(result.measurements).sort(), Object.keys(real.measurements).sort(), 'the same measurements');
    for (const [name, m] of Object.entries(real.measurements)) {
      const got = result.measurements[name];
      t.same(got?.value, m.value, `${name} = ${JSON.stringify(m.value)}`);
      t.equal(got?.ok, m.ok, `${name}: ${m.ok ? 'met' : 'not met'} as in the real run`);
    }
    t.equal(verdict.status, real.status, `judged ${real.status}`);
    for (const [boot, g] of guests)
      t.same(
        g.unused().map((e) => e.argv),
        [],
        `${boot}: every recorded command asked for`,
      );
  });

t.test('a kernel that answered otherwise is measured otherwise: the replay holds the body, not a copy', async (t) => {
  const real = run.scenarios.find((s) => s.id === 'reservation')!;
  // MemTotal 64 MiB lower on every boot: the drops and totals the scenario holds must move.
  const { result, verdict } = await replay('reservation', (r) => {
    for (const e of r.execs)
      if (e.result)
        e.result.stdout = e.result.stdout.replace(
          /^(MemTotal:\s+)(\d+)/m,
          (_m, a: string, n: string) => `${a}${Number(n) - 65536}`,
        );
  });
  const moved = Object.keys(real.measurements).filter(
    (n) => JSON.stringify(result.measurements[n]?.value) !== JSON.stringify(real.measurements[n]!.value),
  );
  t.ok(moved.length > 0, `measurements that moved: ${moved.join(', ')}`);
  t.not(verdict.status, 'pass', 'and a MemTotal off by 64 MiB fails the scenario');
});

t.test('a body that changes a command, or a wrong output, is caught', async (t) => {
  t.ok(existsSync(dir), 'the recordings are there');
  const real = run.scenarios[0]!;
  const rec = loadRecordings(recorded);
  const one = [...rec.values()].find((r) => r.scenario === real.id)!;
  const { pool } = replayPool(new Map([[one.boot, one]]));
  const g = (
    await (
      pool as unknown as {
        boot: (s: string, n: string) => Promise<{ guest: { exec: (a: string[]) => Promise<unknown> } }>;
      }
    ).boot(real.id, one.boot)
  ).guest;
  await t.rejects(g.exec(['echo', 'a command no real run made']), /not in the recording/);
});

t.test('a claim holds unless the body says otherwise; an option left undefined does not erase it', async (t) => {
  const { withClaim } = await import('../../runner/scenario-context.js');
  const { eq } = await import('../../core/results.js');
  t.same(withClaim({ unit: 'kB', expect: eq(4), why: 'w' }, { note: 'n', expect: undefined }), {
    unit: 'kB',
    expect: eq(4),
    why: 'w',
    note: 'n',
  });
  t.same(withClaim({ expect: eq(4) }, { expect: eq(5) }).expect, eq(5), "the body's own wins");
  const rec = readdirSync(join(dir, 'guests')).map((f) => readFileSync(join(dir, 'guests', f), 'utf8'));
  t.notOk(
    rec.some((x) => /AAAAC3NzaC1lZDI1NTE5/.test(x)),
    'no run key in the recordings',
  );
});
