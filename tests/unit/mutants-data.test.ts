/** The mutants are data that holds together: each edit names one line of its patch, each check exists. */
import t from 'tap';
import { EDITS } from '../../kernel/edits.js';
import { editSeries } from '../../kernel/patch-edit.js';
import { parseSeries, readMbox } from '../../kernel/series.js';
import { SCENARIOS } from '../../scenarios/catalog.js';
import { MUTANTS } from '../../scenarios/mutants.js';
import { signaturesFor } from '../../scenarios/signatures.js';
import { REBASED_MBOX } from '../helpers/fixtures.js';

const series = await parseSeries(readMbox(REBASED_MBOX()));

for (const m of MUTANTS)
  t.test(`mutant ${m.edit}`, async (t) => {
    const edited = await editSeries(series, [EDITS[m.edit]]);
    const changed = edited.patches.filter((p, i) => p.patchId !== series.patches[i]!.patchId).map((p) => p.number);
    t.same(changed, [EDITS[m.edit].patch], 'the edit changes exactly its patch');
    const def = SCENARIOS.find((s) => s.id === m.scenario);
    t.ok(def, `scenario ${m.scenario} exists`);
    const names = def?.measurements as readonly string[];
    for (const n of [m.measurement, ...(m.alsoChanges ?? [])]) t.ok(names.includes(n), `${m.scenario} measures ${n}`);
    if (m.effect === 'fixes')
      t.ok(
        signaturesFor(m.scenario, m.variant).some((s) => s.id === m.signature),
        `signature ${m.signature} belongs to ${m.scenario}`,
      );
    t.ok(m.proves.length > 20, 'says which check it proves can fail');
  });

t.test('the mutants cover what the fidelity test asks for', async (t) => {
  t.ok(
    MUTANTS.some((m) => m.edit.includes('maps-at')),
    'a mapping-size regression',
  );
  t.ok(
    MUTANTS.some((m) => m.measurement.startsWith('free_dpages_restored')),
    "a leak in the pool's accounting",
  );
  t.ok(
    MUTANTS.some((m) => m.edit.includes('bug')),
    'a new crash',
  );
  t.ok(
    MUTANTS.some((m) => m.effect === 'fixes'),
    'a fix of a known failure',
  );
  t.ok(MUTANTS.filter((m) => m.inTest).length >= 2, 'a subset runs in npm test');
});
