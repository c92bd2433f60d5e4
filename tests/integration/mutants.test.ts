/**
 * The mutant subset of npm test (scenarios/mutants.ts, `inTest`): the series as it is, then with
 * each mutant, on the mutants' own scenarios. Each mutant must change its named check and
 * nothing else: not the other scenario's verdict, not the other measurements of its own
 * scenario. `dmemfs-rig mutants` runs every mutant against every scenario.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mutantsTable, runMutants } from '../../runner/mutants.js';
import { MUTANTS } from '../../scenarios/mutants.js';
import { chooseAccel } from '../../vm/accel.js';

const subset = MUTANTS.filter((m) => m.inTest);
const r = await runMutants({
  profile: 'rfc-v2-debian',
  accel: chooseAccel(),
  mutants: subset,
  scenarios: [],
  out: mkdtempSync(join(tmpdir(), 'rig-mutants-')),
});
t.comment(mutantsTable(r.outcomes));

for (const o of r.outcomes)
  t.test(
    `${o.edit} changes ${o.scenario}/${o.measurement} and nothing else`,
    { skip: o.skipped ?? false },
    async (t) => {
      t.ok(o.caught, `caught: ${o.reference} -> ${o.mutated}`);
      t.same(o.collateral, [], 'no other verdict changed');
    },
  );

t.test('the subset covers a break and a fix', async (t) => {
  t.same(
    r.outcomes.map((o) => o.effect),
    subset.map((m) => m.effect),
  );
  t.ok(r.outcomes.some((o) => o.effect === 'fixes' && /known-failure/.test(o.reference) && /^pass/.test(o.mutated)));
  t.ok(r.outcomes.some((o) => o.effect === 'breaks' && /\(ok\)/.test(o.reference) && /not ok|absent/.test(o.mutated)));
});
