/** Report pieces with fake runs: JUnit, the schema validator, compare, key redaction, charts. */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptBundle, githubAnnotations } from '../../report/baseline.js';
import { toJunit, xmlEscape } from '../../report/junit.js';
import { RESULTS_SCHEMA, validate } from '../../report/schema.js';
import { compareRuns, renderDiff } from '../../report/bundle-diff.js';
import { redactKeys } from '../../report/bundle.js';
import { faultBars, reportCharts, reservationPoints } from '../../report/charts.js';
import { renderHtml, renderMarkdown, timeSplit } from '../../report/render.js';
import { QUESTIONS, reviewersMarkdown, valuesOf } from '../../report/reviewers.js';
import type { RunResults, ScenarioResult } from '../../core/results.js';
import { fakeRun } from '../helpers/runs.js';

const scen = (
  id: string,
  status: ScenarioResult['status'],
  measurements: ScenarioResult['measurements'] = {},
  reason?: string,
): ScenarioResult => ({
  id,
  title: id.toUpperCase(),
  status,
  ...(reason ? { reason } : {}),
  measurements,
  signatures: [],
  evidence: [{ label: 'log', text: 'a < b & "c"\u0001' }],
  seconds: 2,
  boots: [],
});

const run = (scenarios: ScenarioResult[]): RunResults => fakeRun(scenarios);

const reservation = scen('reservation', 'pass', {
  memtotal_plain_kb: { value: 6101020, unit: 'kB' },
  reserved_kb: { value: 2097152, unit: 'kB' },
  memtotal_drop_kb: { value: 2064380, unit: 'kB' },
  sweep_512M_reserved_kb: { value: 1048576, unit: 'kB' },
  sweep_512M_memtotal_drop_kb: { value: 1032190, unit: 'kB' },
});

t.test(
  'JUnit: one testcase per scenario; skip and known failure are <skipped>, failure carries evidence; XML-safe',
  async (t) => {
    const x = toJunit(
      run([
        reservation,
        scen('b', 'skip', {}, 'no iommu'),
        scen('c', 'known-failure', {}, 'oops'),
        scen('d', 'fail', {}, 'x < 1'),
      ]),
    );
    t.match(x, /<testsuites name="dmemfs-rig" tests="4" failures="1" skipped="2"/);
    t.match(x, /<skipped message="no iommu"\/>/);
    t.match(x, /<skipped message="known failure of the series: oops"\/>/);
    t.match(x, /<failure message="x &lt; 1">log:\na &lt; b &amp; &quot;c&quot;<\/failure>/);
    t.notOk(x.includes(String.fromCharCode(1)), 'control bytes dropped');
    t.equal(xmlEscape('<&>"'), '&lt;&amp;&gt;&quot;');
  },
);

t.test('schema: a real-shaped run validates; missing and wrong fields are named', async (t) => {
  t.same(validate(RESULTS_SCHEMA, JSON.parse(JSON.stringify(run([reservation])))), []);
  const bad = JSON.parse(JSON.stringify(run([reservation])));
  delete bad.accel;
  bad.scenarios[0].status = 'ok';
  bad.scenarios[0].measurements.x = { value: [], unit: 'kB' };
  const errors = validate(RESULTS_SCHEMA, bad);
  t.ok(errors.includes('$: missing accel'));
  t.ok(errors.some((e) => e.startsWith('$.scenarios[0].status')));
  t.ok(errors.some((e) => e.startsWith('$.scenarios[0].measurements.x.value: expected')));
});

t.test('compare: status regressions, expectations that stopped holding, values beyond the tolerance', async (t) => {
  const before = run([
    scen('a', 'pass', {
      f: { value: 128, unit: 'faults', expected: { op: 'eq', value: 128 }, ok: true },
      s: { value: 10, unit: 's' },
    }),
    scen('b', 'known-failure'),
    scen('gone', 'pass'),
  ]);
  const after = run([
    scen('a', 'fail', {
      f: { value: 130, unit: 'faults', expected: { op: 'eq', value: 128 }, ok: false },
      s: { value: 10.5, unit: 's' },
    }),
    scen('b', 'pass'),
    scen('new', 'skip'),
  ]);
  const d = compareRuns(before, after, { tolerance: 0.01 });
  t.same(d.statusChanges, [
    { scenario: 'a', from: 'pass', to: 'fail', regression: true },
    { scenario: 'b', from: 'known-failure', to: 'pass', regression: false },
  ]);
  t.same(d.expectationChanges, [{ scenario: 'a', measurement: 'f', from: true, to: false, regression: true }]);
  t.same(
    d.moved.map((m) => m.measurement),
    ['f', 's'],
  );
  t.equal(compareRuns(before, after, { tolerance: 0.1 }).moved.length, 0, 'within 10%: not moved');
  t.same(d.onlyIn, { a: ['gone'], b: ['new'] });
  t.same(
    d.moved.map((m) => [m.measurement, m.regression]),
    [
      ['f', true],
      ['s', false],
    ],
    'a held value that moved is a regression, a timing is not',
  );
  t.same(d.missing, [{ scenario: 'gone', regression: true }], 'a scenario the new run lacks');
  t.equal(d.regressions, 4, 'a: pass -> fail, f stopped holding, f moved; gone is missing');
  t.match(renderDiff(d, 0.01), /REGRESSED a: pass -> fail/);
});

t.test('compare: a known failure that no longer reproduces is its own change, never a regression', async (t) => {
  const sig = (reproduced: boolean) => ({
    id: 'kvm-dmem-4k',
    title: 'KVM maps dmem at 4K',
    measurements: ['k'],
    reproduced,
    detail: reproduced ? 'k = 4' : 'now: k = 40',
  });
  const before = run([{ ...scen('n', 'known-failure'), signatures: [sig(true)] }]);
  const after = run([{ ...scen('n', 'pass'), signatures: [sig(false)] }]);
  const d = compareRuns(before, after, { tolerance: 0.1 });
  t.same(
    d.fixed.map((f) => f.signature),
    ['kvm-dmem-4k'],
  );
  t.equal(d.regressions, 0);
  t.match(renderDiff(d, 0.1), /NO LONGER REPRODUCES n\/kvm-dmem-4k: KVM maps dmem at 4K \(now: k = 40\)/);
  const worse = compareRuns(before, run([{ ...scen('n', 'fail'), signatures: [] }]), { tolerance: 0.1 });
  t.equal(worse.regressions, 1, 'known failure -> fail is a regression');
});

t.test('keys are redacted from arguments and text', async (t) => {
  t.same(redactKeys(['-append', 'console=ttyS0 rig.key=AAAAC3NzaC1lZDI1NTE5AAAAIB+x/y= panic=-1']), [
    '-append',
    'console=ttyS0 rig.key=<per-run public key, not kept> panic=-1',
  ]);
  t.equal(
    redactKeys('a\n-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\nb'),
    'a\n<private key removed>\nb',
  );
  // Seen in a console under load (CI, 2026-12-04): bytes of "rig.key=" lost, the blob itself whole.
  t.equal(
    redactKeys('mem=4G rig.keAAAAC3NzaC1lZDI1NTE5AAAAIH8Znbq8bBQH4o2fYHJb15hHwzRi5XBm6/HgLHIG4E31 softlockup_panic=1'),
    'mem=4G rig.ke<per-run public key, not kept> softlockup_panic=1',
  );
});

t.test('charts and report from measurements', async (t) => {
  const r = reservationPoints([reservation]);
  t.equal(r.saved.length, 2);
  t.equal(r.saved[1]!.x, 2);
  t.equal(Math.round(r.saved[1]!.y), 32, '2 GiB reserved saved 32 MiB');
  const bars = faultBars([scen('dmemfs-files', 'pass', { faults_4K: { value: 16384, unit: 'faults for 64 MiB' } })]);
  t.equal(bars[0]!.value, 262144, '64 MiB at 4K = 262144 faults per GiB');
  t.equal(bars[3]!.value, undefined);
  const charts = reportCharts([reservation]);
  t.same(
    charts.map((c) => c.id),
    ['chart-struct-page', 'chart-memtotal', 'chart-faults'],
  );
  t.equal((charts[0]!.svg.match(/class="measured"/g) ?? []).length, 2);
  const html = renderHtml(run([reservation]));
  t.match(html, /<table id="comparison">/);
  t.match(html, /<svg id="chart-struct-page"/);
  t.notMatch(html, /<script/, 'a static page');
  t.match(renderMarkdown(run([reservation])), /\| measurement \| dmemfs 4K \|/);
});

t.test('accept: a bundle becomes the base whole; annotations say regressions and fixes apart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rig-accept-'));
  const bundle = join(dir, 'run-1');
  mkdirSync(bundle);
  const before = run([{ ...scen('n', 'known-failure'), signatures: [] }]);
  writeFileSync(join(bundle, 'results.json'), JSON.stringify(before));
  const a = acceptBundle(bundle, join(dir, 'base'), 'first night');
  t.same(a.statuses, { n: 'known-failure' });
  t.ok(existsSync(join(dir, 'base', 'results.json')) && existsSync(join(dir, 'base', 'accepted.json')));
  t.same(readdirSync(dir).sort(), ['base', 'run-1'], 'no staging directory left');
  writeFileSync(join(bundle, 'results.json'), '{ not json');
  t.throws(
    () => acceptBundle(bundle, join(dir, 'base'), 'x'),
    { message: /cannot read/ },
    'a broken bundle is refused',
  );
  t.ok(existsSync(join(dir, 'base', 'accepted.json')), 'and the base it would have replaced is intact');
  const d = compareRuns(before, run([{ ...scen('n', 'fail'), signatures: [] }]), { tolerance: 0.1 });
  t.same(githubAnnotations(d), ['::error title=regression::n: known-failure -> fail']);
});

t.test("the reviewers' questions: each answered from the run's values, a missing one says why", async (t) => {
  const results = [
    scen('mem-devmem', 'pass', {
      unprivileged_devmem_even_mode_666: { value: 'EPERM', unit: '' },
      devmem_kernel_page_kb: { value: 4, unit: 'kB' },
      devmem_vfio_dma_verified: { value: true, unit: '' },
    }),
    scen('dmemfs-files', 'pass', { smaps_kernel_page_kb_1G: { value: 1048576, unit: 'kB' } }),
    scen('soft-reserved-devdax', 'skip', {}, 'no OVMF'),
  ];
  const v = valuesOf(results);
  const q = (id: string) => QUESTIONS.find((x) => x.id === id)!;
  t.same(
    QUESTIONS.map((x) => x.id),
    ['hot-unplug', 'poisoning', 'dev-mem', 'devdax-subdivision', 'vm-pfnmap'],
  );
  t.equal(
    q('dev-mem').answer(v),
    'only root may map it (an unprivileged user even at mode 666: EPERM), only in 4 kB pages and with no ' +
      'allocator (dmemfs maps 1048576 kB pages by file mode); VFIO does pin it: yes.',
  );
  t.match(q('devdax-subdivision').answer(v), /\(hmem_devices_created not measured: skip\)/);
  t.match(q('hot-unplug').answer(v), /\(hot-unplug-offline not run\)/);
  const md = reviewersMarkdown(results);
  t.equal(md.split('\n').filter((l) => l.startsWith('- **')).length, QUESTIONS.length, 'one item per question');
  t.match(md, /`mem-devmem` devmem_vfio_dma_verified/, 'with the measurements behind each answer');
  t.match(renderHtml(run(results)), /<ul id="reviewers">[\s\S]*Why not mem= plus \/dev\/mem\?/);
});

t.test('the report counts kernel and image preparation apart from the scenarios', async (t) => {
  const r = { ...run([scen('a', 'pass'), scen('b', 'pass')]), seconds: 900, prepareSeconds: 880 };
  t.equal(
    timeSplit(r),
    'Kernel and images (build, or the cache): 880 s; the scenarios: 4 s (their times below do not include it). ',
  );
  t.equal(timeSplit({ ...r, prepareSeconds: undefined }), '', 'older results: nothing said');
  t.match(renderMarkdown(r), /Kernel and images \(build, or the cache\): 880 s/);
});
