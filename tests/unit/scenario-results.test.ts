/** Expectations, TAP of a run, the catalog and its signatures, apt parsers. */
import t from 'tap';
import {
  approx,
  atLeast,
  between,
  describeExpectation,
  eq,
  is,
  meets,
  oneOf,
  within,
  type RunResults,
} from '../../core/results.js';
import { runSummary, toTap } from '../../report/tap.js';
import { fakeRun } from '../helpers/runs.js';
import { SCENARIOS, selectScenarios, BAD_DMEM_VALUES, SIGNATURES } from '../../scenarios/catalog.js';
import { parseDmemParam } from '../../scenarios/dmem-param.js';
import { debugChecks } from '../../scenarios/defs/debug-checks.js';
import { parseShowRecords, parseSimulatedInstall } from '../../core/apt.js';

t.test('expectations', async (t) => {
  t.ok(meets(16386, approx(16384, 0.1)));
  t.notOk(meets(3752, approx(16384, 0.25)));
  t.ok(meets(128, eq(128)));
  t.notOk(meets(null, eq(0)), 'a missing value never meets a numeric expectation');
  t.notOk(meets(Number.NaN, atLeast(0)));
  t.ok(meets('EACCES', is('EACCES')));
  t.ok(meets(16385, within(16384, 1)), 'one first-touch fault more is within');
  t.notOk(meets(16386, within(16384, 1)));
  t.ok(meets(4, between(1, 8)));
  t.notOk(meets(0, between(1, 8)), 'zero large pages is outside 1..8');
  t.ok(meets('timeout', oneOf('timeout', 'sigbus')));
  t.notOk(meets(null, oneOf('timeout')));
  t.equal(describeExpectation(approx(16384, 0.1)), '16384 ±10%');
  t.equal(describeExpectation(within(16384, 512)), '16384 ±512');
  t.equal(describeExpectation(between(1, 8)), '1..8');
});

t.test(
  'TAP: skip and known failure are directives, never plain passes; fixes and skipped measurements are said',
  async (t) => {
    const run: RunResults = fakeRun([
      {
        id: 'a',
        title: 'A',
        status: 'pass',
        measurements: {
          x: { value: 1, unit: 'u', expected: eq(1), ok: true },
          y: { value: null, unit: '', skipped: 'no KVM in L1' },
        },
        signatures: [
          { id: 'sig-a', title: 'was broken', measurements: ['x'], reproduced: false, detail: 'now: x = 1' },
        ],
        evidence: [],
        seconds: 1,
        boots: [],
      },
      {
        id: 'b',
        title: 'B',
        status: 'skip',
        reason: 'no nested KVM',
        measurements: {},
        signatures: [],
        evidence: [],
        seconds: 0,
        boots: [],
      },
      {
        id: 'c',
        title: 'C',
        status: 'known-failure',
        reason: 'oops in get_dmem_pfn',
        measurements: {},
        signatures: [{ id: 'sig-c', title: 'oops', measurements: ['m'], reproduced: true, detail: 'm = bug' }],
        evidence: [],
        seconds: 0,
        boots: [],
      },
      {
        id: 'd',
        title: 'D',
        status: 'fail',
        reason: 'not met',
        measurements: {},
        signatures: [],
        evidence: [],
        seconds: 0,
        boots: [],
      },
    ]);
    const tap = toTap(run);
    t.match(tap, /^TAP version 13\n# rig [^\n]*\n1\.\.4\n/);
    t.match(tap, /ok 1 - a: A\n {2}---\n {2}x: \{"value":1,"unit":"u","expected":"= 1","ok":true\}/);
    t.match(tap, / {2}y: \{"skipped":"no KVM in L1"\}/);
    t.match(tap, /# no longer reproduces: sig-a \(was broken\); now: x = 1/);
    t.match(tap, /# skipped measurement: a y: no KVM in L1/);
    t.match(tap, /ok 2 - b: B # SKIP no nested KVM/);
    t.match(tap, /ok 3 - c: C # TODO known failure of the series: oops in get_dmem_pfn/);
    t.match(tap, /not ok 4 - d: D\n {2}---\n {2}reason: "not met"/);
    t.equal(
      runSummary(run),
      '# 1 pass, 1 fail, 1 skip, 1 known failure, 1 measurement(s) skipped, 1 known failure(s) no longer reproduce\n' +
        '# no longer reproduces: a/sig-a',
    );
  },
);

t.test('catalog: unique ids, every scenario says what it proves, bad values really are bad', async (t) => {
  const ids = SCENARIOS.map((s) => s.id);
  t.equal(new Set(ids).size, ids.length);
  for (const s of SCENARIOS) t.ok(s.proves.length > 40, `${s.id} says what it proves`);
  t.throws(() => selectScenarios(['nope']), { kind: 'unknown-scenario', message: /unknown scenario/ });
  for (const b of BAD_DMEM_VALUES)
    t.throws(
      () => parseDmemParam(b.value),
      { kind: 'bad-dmem', message: /dmem=/ },
      `dmem=${b.value} is rejected by the rig`,
    );
  const sigIds = SIGNATURES.map((x) => x.id);
  t.equal(new Set(sigIds).size, sigIds.length, 'signature ids are unique');
  for (const sig of SIGNATURES) {
    if (sig.scenario === '*') {
      t.ok(sig.seen && sig.report, `${sig.id}: a signature of every scenario claims seen reports only`);
      t.equal(sig.variant, 'debug', `${sig.id}: a debug-kernel finding`);
      t.ok(
        Object.keys(sig.measurements).every((n) => (debugChecks.measurements as readonly string[]).includes(n)) &&
          Object.keys(sig.measurements).length > 0,
        `${sig.id}: names a measurement debug-checks always takes`,
      );
      continue;
    }
    const def = SCENARIOS.find((s) => s.id === sig.scenario);
    t.ok(def, `${sig.id}: scenario ${sig.scenario} exists`);
    for (const n of Object.keys(sig.measurements))
      t.ok(def?.measurements.includes(n), `${sig.id}: ${n} is a measurement of ${sig.scenario}`);
  }
});

t.test('apt output parsers', async (t) => {
  t.same(
    parseSimulatedInstall(
      'Inst libc6 (2.36-9+deb12u14 Debian-Security:12.0/stable-security [amd64])\nConf libc6 (2.36)\nInst ' +
        'qemu-system-x86 (1:7.2+dfsg-7+deb12u18+b3 Debian:12 [amd64])\n',
    ),
    [
      { name: 'libc6', version: '2.36-9+deb12u14', arch: 'amd64' },
      { name: 'qemu-system-x86', version: '1:7.2+dfsg-7+deb12u18+b3', arch: 'amd64' },
    ],
  );
  const sha = 'a'.repeat(64);
  t.same(
    [...parseShowRecords(`Package: libc6\nVersion: 2.36\nSize: 10\nSHA256: ${sha}\n\nPackage: x\nVersion: 1\n`)],
    [['libc6=2.36', { sha256: sha, size: 10 }]],
  );
});
