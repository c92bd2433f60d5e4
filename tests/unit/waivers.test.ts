/** The debug variant's waivers: data with reasons, naming real measurements, never touching the plain profile. */
import t from 'tap';
import { eq } from '../../core/results.js';
import { waived } from '../../runner/scenario-context.js';
import { SCENARIOS } from '../../scenarios/catalog.js';
import { DEBUG_WAIVERS, waiverFor } from '../../scenarios/waivers.js';

t.test('every waiver names a scenario and at least one of its measurements, with a reason', async (t) => {
  for (const w of DEBUG_WAIVERS) {
    const s = SCENARIOS.find((x) => x.id === w.scenario);
    t.ok(s, `${w.scenario} is a scenario`);
    for (const m of w.measurements) t.ok(s?.measurements.includes(m), `${m} is a measurement of it`);
    t.ok(w.measurements.length > 0, 'names at least one');
    t.ok(w.why.length > 40, 'says why');
  }
});

t.test('only the debug variant waives, and only what its rules name', async (t) => {
  t.equal(waiverFor(undefined), undefined, 'the plain profile holds every expectation');
  const w = waiverFor('debug')!;
  t.match(w('reservation', 'memtotal_plain_kb') ?? '', /KASAN/);
  t.equal(w('reservation', 'reserved_kb'), undefined);
  t.equal(w('dmemfs-files', 'memtotal_plain_kb'), undefined, 'another scenario: held');
});

t.test('a waived measurement is recorded: its expectation taken off and said in the note', async (t) => {
  const o = waived({ unit: 'kB', expect: eq(5), note: 'n' }, 'because');
  t.equal(o?.expect, undefined);
  t.equal(o?.note, 'n; not held on this kernel (expected = 5): because');
  t.same(waived({ expect: eq(5) }, undefined), { expect: eq(5) }, 'no waiver: unchanged');
});
