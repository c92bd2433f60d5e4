/**
 * The bisect's search over prefixes, on verdict tables (what each prefix's run would say): the
 * first patch with the full series' verdict, prefixes that cannot be judged stepped around, and
 * the cases with nothing to find.
 */
import t from 'tap';
import { bisectSearch, measurementVerdict, type BisectStep } from '../../runner/bisect.js';

/** Verdicts by prefix: 'x' = could not be judged (did not build). */
function table(verdicts: string[]) {
  const asked: number[] = [];
  const evaluate = async (k: number): Promise<BisectStep> => {
    asked.push(k);
    const v = verdicts[k]!;
    return {
      k,
      title: `patch ${k}`,
      applied: true,
      built: v !== 'x',
      booted: v === 'x' ? null : true,
      verdict: v === 'x' ? 'not built' : v,
      skipped: v === 'x',
      seconds: 0,
    };
  };
  return { evaluate, asked };
}

t.test('the first patch whose verdict is the full series verdict', async (t) => {
  const v = Array.from({ length: 38 }, (_, k): string => (k >= 24 ? 'pass' : 'fail'));
  const { evaluate, asked } = table(v);
  const r = await bisectSearch(0, 37, evaluate);
  t.equal(r.culprit, 24);
  t.equal(r.target, 'pass');
  t.ok(asked.length <= 8, `${asked.length} prefixes built for 37 patches`);
  t.same(asked.slice(0, 2), [37, 0], 'the ends first');
});

t.test('a third verdict before the change counts as "not yet"', async (t) => {
  const v = Array.from({ length: 38 }, (_, k) => (k >= 24 ? 'pass' : k >= 5 ? 'fail' : 'absent'));
  t.equal((await bisectSearch(0, 37, table(v).evaluate)).culprit, 24);
});

t.test('prefixes that do not build are skipped', async (t) => {
  const v = Array.from({ length: 38 }, (_, k): string => (k >= 24 ? 'pass' : 'fail'));
  v[18] = 'x';
  v[19] = 'x';
  t.equal((await bisectSearch(0, 37, table(v).evaluate)).culprit, 24);
  const w = Array.from({ length: 11 }, (_, k): string => (k >= 6 ? 'pass' : 'fail'));
  w[5] = 'x';
  const r = await bisectSearch(0, 10, table(w).evaluate);
  t.equal(r.culprit, null, 'when the skipped prefix hides the answer, there is no single culprit');
  t.same(r.candidates, [5, 6]);
});

t.test('nothing to find, or an end that cannot be judged', async (t) => {
  const same = Array.from({ length: 38 }, () => 'pass');
  await t.rejects(bisectSearch(0, 37, table(same).evaluate), {
    kind: 'bisect-nothing',
    message: /prefix 0 and prefix 37 agree \(pass\)/,
  });
  const v = Array.from({ length: 38 }, (_, k): string => (k >= 24 ? 'pass' : 'fail'));
  v[0] = 'x';
  await t.rejects(bisectSearch(0, 37, table(v).evaluate), { kind: 'bisect-unusable', message: /prefix 0/ });
});

t.test('a measurement as a verdict', async (t) => {
  t.same(measurementVerdict(undefined), { verdict: 'absent' });
  t.same(measurementVerdict({ value: 128, unit: 'faults', ok: true }), { verdict: 'pass', value: 128 });
  t.same(measurementVerdict({ value: 65536, unit: 'faults', ok: false }), { verdict: 'fail', value: 65536 });
  t.same(measurementVerdict({ value: null, unit: '', skipped: 'no SIGBUS' }), { verdict: 'skipped', value: null });
});
