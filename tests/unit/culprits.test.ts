/**
 * Culprits as data: the cache key (series content, base, profile, the signature's definition),
 * which signatures a profile bisects, the record `culprits --record` writes, the words of the
 * known-failures table, and the culprit a run's results carry.
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { culpritKey, culpritSignatures, culpritWords, recordCulprits } from '../../runner/culprits.js';
import { loadCulprits, recordedCulpritWords, signatureSha, withCulprits } from '../../scenarios/culprit-record.js';
import { SIGNATURES } from '../../scenarios/signatures.js';
import { loadProfile } from '../../kernel/profile.js';
import type { ScenarioResult } from '../../core/results.js';

const profile = loadProfile('rfc-v2-debian');
const series = (diffs: string[]) =>
  ({ parsed: { patches: diffs.map((diff, i) => ({ number: i + 1, diff })) } }) as never;
const vfio = SIGNATURES.find((s) => s.id === 'vfio-get-dmem-pfn-null')!;

/** bisect --signature of vfio-pin over runs already made (nothing is built). */
async function bisectOn(runs: unknown, extra: { good?: number } = {}) {
  const { bisect } = await import('../../runner/bisect.js');
  return bisect({
    profile: 'rfc-v2-debian',
    scenario: 'vfio-pin',
    signature: vfio.id,
    input: {},
    accel: 'tcg' as never,
    out: mkdtempSync(join(tmpdir(), 'rig-bisect-shared-')),
    prefixRuns: runs as never,
    ...extra,
  });
}

t.test('the key moves with the series content, the signature and the profile, and with nothing else', async (t) => {
  const k = culpritKey(profile, series(['a', 'b']), vfio);
  t.equal(culpritKey(profile, series(['a', 'b']), vfio), k, 'stable');
  t.not(culpritKey(profile, series(['a', 'b2']), vfio), k, 'one patch changed');
  t.not(culpritKey(profile, series(['a']), vfio), k, 'a patch fewer');
  t.not(culpritKey(profile, series(['a', 'b']), { ...vfio, evidence: /changed/ }), k, 'the signature changed');
  t.not(culpritKey(profile, series(['a', 'b']), { ...vfio, report: { kinds: ['bug'] } }), k, 'its report pattern');
  t.not(culpritKey({ ...profile, name: 'other' }, series(['a', 'b']), vfio), k, 'another profile');
});

t.test('a profile bisects its own variant’s signatures, each tied to one scenario', async (t) => {
  const plain = culpritSignatures(profile);
  t.ok(plain.length >= 8, `${plain.length} signatures on the plain profile`);
  t.ok(plain.every((s) => !s.variant && s.scenario !== '*'));
  const debug = culpritSignatures({ variant: 'debug' });
  t.ok(debug.every((s) => s.variant === 'debug' && s.scenario !== '*'));
  t.same(
    culpritSignatures(profile, [vfio.id]).map((s) => s.id),
    [vfio.id],
    '--only',
  );
});

t.test('recorded, then read back by the table and by a run', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'rig-culprits-')), 'culprits.json');
  const row = {
    signature: vfio.id,
    scenario: 'vfio-pin',
    culprit: { number: 35, title: 'vfio: support dmem' },
    patches: 37,
    series: 'rfc-v2-on-debian-5.10.223',
    prefixes: 6,
    rounds: 4,
    seconds: 900,
  };
  recordCulprits([row, { ...row, signature: 'no-such', culprit: null }], '2026-12-04T00:00:00Z', file);
  const all = loadCulprits(file);
  t.same(Object.keys(all), [vfio.id], 'an unknown signature and a missing culprit are not recorded');
  t.equal(all[vfio.id]!.signatureSha, signatureSha(vfio));
  t.match(readFileSync(file, 'utf8'), /"measured": "2026-12-04T00:00:00Z"/);
  t.equal(recordedCulpritWords(vfio, all), 'introduced by 35/37 vfio: support dmem');
  t.equal(
    recordedCulpritWords(vfio, { [vfio.id]: { ...all[vfio.id]!, pathFrom: 35 } }),
    'present from 35/37 vfio: support dmem, where the path first exists',
  );
  t.equal(recordedCulpritWords(vfio, {}), 'not bisected yet');
  t.equal(
    recordedCulpritWords({ ...vfio, evidence: /other/ }, all),
    'bisected before the signature changed: run culprits again',
    'a culprit found under another definition is not shown as current',
  );
  t.equal(
    culpritWords({ culprit: null, patches: 37, error: 'error [bisect-not-reproduced]: x' }),
    'not found: error [bisect-not-reproduced]: x',
  );

  const scenario = {
    id: 'vfio-pin',
    signatures: [{ id: vfio.id, title: '', measurements: [], reproduced: true, detail: '' }],
  } as unknown as ScenarioResult;
  const [withIt] = withCulprits([scenario], 'rfc-v2-on-debian-5.10.223', all);
  t.same(withIt!.signatures[0]!.culprit, { number: 35, title: 'vfio: support dmem', patches: 37 });
  const [other] = withCulprits([scenario], 'unpinned-abc', all);
  t.equal(other!.signatures[0]!.culprit, undefined, 'another series: no culprit carried over');
  const own = { number: 12, title: 'y', patches: 37 };
  const carried = { ...scenario, signatures: [{ ...scenario.signatures[0]!, culprit: own }] };
  t.same(
    withCulprits([carried], 'rfc-v2-on-debian-5.10.223', all)[0]!.signatures[0]!.culprit,
    own,
    'a culprit the run carries is kept',
  );
});

t.test(
  'the signatures of one scenario are bisected on one run of each prefix, the cheapest scenario first',
  async (t) => {
    const { byScenarioCost } = await import('../../runner/culprits.js');
    const order = byScenarioCost(culpritSignatures(profile)).map((s) => s.scenario);
    t.same(
      order.filter((s, i) => order.indexOf(s) === i).length,
      new Set(order).size,
      'each scenario’s signatures together',
    );
    t.equal(order[0], 'vfio-pin', 'vfio-pin (27 s a run) before pool-boundaries (284 s)');
    // Every prefix's run is already made (as by an earlier bisect of the same scenario): the
    // bisect judges them and builds nothing. From 20 on the run shows the signature.
    const sig = vfio;
    const taken = Object.fromEntries(
      Object.keys(sig.measurements).map((n) => [n, { name: n, value: true, ok: false }]),
    );
    const runs = new Map<string, Promise<{ step: never; result?: ScenarioResult }>>();
    const asked: number[] = [];
    for (let k = 0; k <= 37; k++) {
      const step = {
        k,
        title: `p${k}`,
        applied: true,
        built: true,
        booted: true,
        verdict: '',
        skipped: false,
        seconds: 0,
      };
      const result = {
        id: 'vfio-pin',
        status: 'fail',
        measurements: k === 0 ? {} : taken,
        signatures: [{ id: sig.id, reproduced: k >= 20, detail: null }],
      } as unknown as ScenarioResult;
      const p = Promise.resolve({ step: step as never, result });
      runs.set(`vfio-pin@${k}`, { then: (f: never, r: never) => (asked.push(k), p.then(f, r)) } as never);
    }
    const r = await bisectOn(runs);
    t.equal(r.culprit?.number, 20, 'the culprit from the shared runs');
    t.equal(r.pathFrom, undefined, 'prefix 19 took the measurements: not a path that first exists');
    t.ok(asked.length >= 5 && asked.includes(37) && asked.includes(0), `the runs judged: ${asked.join(', ')}`);
    const wrong = await bisectOn(new Map([...runs].map(([key, p]) => [key, p])), { good: 21 }).catch((e: Error) => e);
    t.match(String(wrong), /agree \(reproduced\)/, 'a good end that reproduces too is refused, not searched');
    // The base boots and the scenario skips there (dmemfs will not mount): its path is absent, and
    // a culprit right after it is where the path first exists.
    const skipped = new Map(runs);
    for (let k = 0; k < 20; k++) {
      const step = { k, title: `p${k}`, applied: true, built: true, booted: true, skipped: true, seconds: 0 };
      const made = { step: { ...step, verdict: 'scenario skipped', note: 'dmemfs would not mount' } };
      skipped.set(`vfio-pin@${k}`, Promise.resolve(made) as never);
    }
    const absent = await bisectOn(skipped);
    t.equal(absent.culprit?.number, 20);
    t.equal(absent.pathFrom, 20, 'present from 20, where the path first exists');
    t.match(
      absent.steps.find((x) => x.k === 0),
      { verdict: 'path absent', skipped: false, note: /would not mount/ },
    );
    const noEnd = new Map(skipped);
    noEnd.set('vfio-pin@37', skipped.get('vfio-pin@0')!);
    const refused = await bisectOn(noEnd).catch((e: Error) => e);
    t.match(String(refused), /does not reproduce on prefix 37 \(path absent\)/, 'a series it skips on is no bisect');
  },
);

t.test('present from a prefix whose scenario could not run before it: the words say what it said', async (t) => {
  const { beforeFromSteps } = await import('../../runner/culprits.js');
  const { presentFromWords } = await import('../../scenarios/culprit-record.js');
  const steps = [
    { k: 7, verdict: 'path absent', note: 'error [dmem-debugfs]: the dmem debugfs statistics are missing /x (at 08)' },
    { k: 8, note: undefined },
  ] as never;
  const b = beforeFromSteps(8, steps);
  t.match(b.before, /^error \[dmem-debugfs\]: the dmem debugfs statistics are missing/);
  t.same(
    beforeFromSteps(8, [{ k: 7, verdict: 'path absent', note: 'x' }] as never),
    {},
    'a plain absent path: no words',
  );
  const skip = [{ k: 7, verdict: 'path absent', note: 'the scenario skipped on this kernel: dmemfs would not mount' }];
  t.match(beforeFromSteps(8, skip as never).before, /skipped on this kernel: dmemfs would not mount/, 'a skip says so');
  t.same(beforeFromSteps(8, [{ k: 7, verdict: 'not reproduced', value: 'a = 1' }] as never), {}, 'plainly not: none');
  const race = [
    { k: 25, verdict: 'not reproduced', value: 'w_2M: not seen this run (intermittent: 6 of 27; 6 tries)' },
  ];
  t.match(beforeFromSteps(26, race as never).before, /^w_2M: not seen this run \(intermittent/, 'an intermittent miss');
  const other = [{ k: 27, verdict: 'not reproduced', value: 'failed differently: g_2M = sigbus, where x; y' }];
  t.equal(beforeFromSteps(28, other as never).before, 'failed differently: g_2M = sigbus, where x');
  t.same(beforeFromSteps(undefined, steps), {});
  const words = presentFromWords({ culprit: { number: 8, title: 'dmem: show some statistic' }, patches: 37, ...b });
  t.match(
    words,
    /^present from 8\/37 dmem: show some statistic, where the path first exists \(7\/37: error \[dmem-debugfs\]/,
  );
});
