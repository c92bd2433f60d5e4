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
import { FULL, fullOnly } from '../helpers/tier.js';

// npm test keeps one mutant, the fix (the harder path: a known failure that no longer reproduces);
// the full run adds the break, and the nightly's mutants legs run every mutant.
const subset = MUTANTS.filter((m) => m.inTest && (FULL || m.effect === 'fixes'));
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

t.test('the subset is the fix alone, or with the full run a break and a fix', async (t) => {
  t.ok(subset.length >= 1, 'at least one mutant');
  t.ok(
    subset.some((m) => m.effect === 'fixes'),
    'a fix among them',
  );
});

t.test('the full subset covers a break and a fix', { skip: fullOnly('the nightly runs every mutant') }, async (t) => {
  t.same(
    r.outcomes.map((o) => o.effect),
    subset.map((m) => m.effect),
  );
  t.ok(r.outcomes.some((o) => o.effect === 'fixes' && /known-failure/.test(o.reference) && /^pass/.test(o.mutated)));
  t.ok(r.outcomes.some((o) => o.effect === 'breaks' && /\(ok\)/.test(o.reference) && /not ok|absent/.test(o.mutated)));
});
