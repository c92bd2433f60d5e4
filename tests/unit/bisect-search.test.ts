/**
 * The bisect's search over prefixes, on verdict tables (what each prefix's run would say): the
 * first patch with the full series' verdict, prefixes that cannot be judged stepped around, and
 * the cases with nothing to find.
 */
import t from 'tap';
import {
  bisectSearch,
  measurementVerdict,
  pathFrom,
  probes,
  signatureById,
  signatureVerdict,
  type BisectStep,
} from '../../runner/bisect.js';

/** Verdicts by prefix: 'x' = could not be judged (did not build). */
function table(verdicts: string[]) {
  const asked: number[] = [];
  const seen = { inFlight: 0, most: 0 };
  const evaluate = async (k: number): Promise<BisectStep> => {
    asked.push(k);
    seen.inFlight++;
    seen.most = Math.max(seen.most, seen.inFlight);
    // A build and a boot take time: prefixes of one round are in flight together.
    await new Promise((r) => setTimeout(r, 2));
    seen.inFlight--;
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
  return { evaluate, asked, seen };
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

t.test('a round splits the interval into jobs + 1 parts, skipping what could not be judged', async (t) => {
  t.same(probes(0, 37, 1, new Set()), [18], 'one job: the middle (as the binary search always did)');
  t.same(probes(0, 37, 3, new Set()), [9, 18, 28], 'three jobs: the quarters');
  t.same(probes(24, 28, 3, new Set()), [25, 26, 27], 'an interval smaller than the jobs: every prefix in it');
  t.same(probes(24, 27, 5, new Set()), [25, 26], 'never more than the open interval holds');
  t.same(probes(0, 37, 3, new Set([9, 18])), [10, 19, 28], 'the nearest prefix that can be judged');
  t.same(probes(5, 6, 3, new Set()), [], 'nothing between neighbours');
});

t.test('a k-ary bisect finds the same first patch, in fewer rounds, N prefixes at once', async (t) => {
  for (const culprit of [1, 5, 18, 24, 28, 36, 37]) {
    const v = Array.from({ length: 38 }, (_, k): string => (k >= culprit ? 'pass' : 'fail'));
    const serial = await bisectSearch(0, 37, table(v).evaluate);
    for (const jobs of [2, 3, 4]) {
      const tb = table(v);
      const r = await bisectSearch(0, 37, tb.evaluate, jobs);
      t.equal(r.culprit, culprit, `culprit ${culprit} at ${jobs} jobs`);
      t.equal(r.target, serial.target);
      t.ok(tb.seen.most <= jobs, `never more than ${jobs} prefixes in flight (${tb.seen.most})`);
      t.ok(r.rounds.every((round) => round.length <= jobs));
      t.ok(
        r.rounds.length <= 1 + Math.ceil(Math.log(37) / Math.log(jobs + 1)),
        `${r.rounds.length} rounds at ${jobs} jobs, ${serial.rounds.length} at 1`,
      );
    }
    t.equal(serial.culprit, culprit);
  }
  const v = Array.from({ length: 38 }, (_, k): string => (k >= 24 ? 'pass' : 'fail'));
  const four = table(v);
  const r = await bisectSearch(0, 37, four.evaluate, 3);
  t.same(r.rounds[0], [37, 0], 'the ends first, together');
  t.equal(four.seen.most, 3, 'three prefixes really ran at once');
  t.equal(r.rounds.length, 4, 'the ends, then 3 rounds for 37 patches (log4 37 = 2.6)');
  const serial = await bisectSearch(0, 37, table(v).evaluate);
  const halvings = serial.rounds.length - 2;
  t.ok(halvings >= 5 && halvings <= 6, `one at a time: each end, then ${halvings} halvings (log2 37 = 5.2)`);
  t.ok(
    serial.rounds.slice(2).every((round) => round.length === 1),
    'one prefix per round',
  );
});

t.test('a k-ary bisect steps around prefixes that do not build, and gives candidates when they hide it', async (t) => {
  const v = Array.from({ length: 38 }, (_, k): string => (k >= 24 ? 'pass' : 'fail'));
  for (const k of [9, 18, 19, 22, 28]) v[k] = 'x';
  t.equal((await bisectSearch(0, 37, table(v).evaluate, 3)).culprit, 24);
  v[23] = 'x';
  const hidden = await bisectSearch(0, 37, table(v).evaluate, 3);
  t.same([hidden.culprit, hidden.candidates], [null, [22, 23, 24]], 'the two prefixes before it did not build');
  const w = Array.from({ length: 11 }, (_, k): string => (k >= 6 ? 'pass' : 'fail'));
  w[5] = 'x';
  const r = await bisectSearch(0, 10, table(w).evaluate, 3);
  t.equal(r.culprit, null);
  t.same(r.candidates, [5, 6], 'the same candidates as one at a time');
  const same = Array.from({ length: 38 }, () => 'pass');
  await t.rejects(bisectSearch(0, 37, table(same).evaluate, 3), { kind: 'bisect-nothing', message: /agree/ });
});

t.test("--signature: the judge's verdict on a prefix, the path absent, the early refusal, present-from", async (t) => {
  const sig = { id: 'vfio-get-dmem-pfn-null', measurements: { map_dma: 'any', map_dma_4K: 'any' } } as const;
  const m = (value: unknown, extra: object = {}) => ({ value, unit: '', ...extra }) as never;
  const check = (reproduced: boolean) => ({ id: sig.id, title: '', measurements: [], reproduced, detail: 'oops' });
  t.same(signatureVerdict({ signatures: [check(true)], measurements: { map_dma: m(false) } }, sig), {
    verdict: 'reproduced',
    value: 'oops',
  });
  t.equal(
    signatureVerdict({ signatures: [check(false)], measurements: { map_dma: m(true) } }, sig).verdict,
    'not reproduced',
    'a value taken, the signature not matched: the path is there and the defect is not',
  );
  t.equal(
    signatureVerdict({ signatures: [], measurements: { map_dma: m(true) } }, sig).verdict,
    'not reproduced',
    'not checked by the judge at all (the scenario passed): not reproduced',
  );
  t.equal(
    signatureVerdict({ signatures: [], measurements: { map_dma: m(null, { skipped: 'no dmem' }) } }, sig).verdict,
    'path absent',
    'every measurement skipped or absent: this prefix cannot show it',
  );
  t.equal(signatureVerdict({ signatures: [], measurements: {} }, sig).verdict, 'path absent');
  t.throws(() => signatureById('no-such-thing'), { kind: 'unknown-signature', message: /no known-failure signature/ });
  t.equal(signatureById('vfio-get-dmem-pfn-null').scenario, 'vfio-pin');

  // The whole series does not reproduce it: refused after the end, nothing else evaluated.
  const flat = table(Array.from({ length: 38 }, () => 'not reproduced'));
  const want = { verdict: 'reproduced', fail: (got: string) => Object.assign(new Error(`got ${got}`), { kind: 'nr' }) };
  await t.rejects(bisectSearch(0, 37, flat.evaluate, 1, want), { kind: 'nr', message: 'got not reproduced' });
  t.same(flat.asked, [37], 'only the end was run');

  // Path absent up to 34, reproduced from 35: present from 35, where the path first exists.
  const v = Array.from({ length: 38 }, (_, k): string => (k >= 35 ? 'reproduced' : 'path absent'));
  const r = await bisectSearch(0, 37, table(v).evaluate, 2, want);
  t.equal(r.culprit, 35);
  t.equal(pathFrom(r.steps, r.culprit), 35);
  // Not reproduced (path there) at 34: an ordinary culprit.
  const w = Array.from({ length: 38 }, (_, k): string =>
    k >= 35 ? 'reproduced' : k >= 20 ? 'not reproduced' : 'path absent',
  );
  const r2 = await bisectSearch(0, 37, table(w).evaluate, 2, want);
  t.equal(r2.culprit, 35);
  t.equal(pathFrom(r2.steps, r2.culprit), undefined);
});
