/**
 * report --kcidb on the recorded full run (tests/fixtures/bundles/full-run), validated against
 * the KCIDB v5.0 schema the rig keeps (report/kcidb-schema.ts); the schema must refuse a file
 * with a missing origin or a wrong status word, and the status words must say what the run saw.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { kcidbErrors, kcidbOf, measurementStatus, patchsetHash, scenarioStatus } from '../../report/kcidb.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';
import type { RunResults } from '../../core/results.js';

const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
const doc = kcidbOf(run, { patchsetHash: 'a'.repeat(64), messageId: 'cover.1607332046.git.yuleixzhang@tencent.com' });

t.test('the run as KCIDB v5.0: valid against the schema', async (t) => {
  t.same(kcidbErrors(doc), []);
  t.equal(doc.checkouts.length, 1);
  t.equal(doc.builds[0]!.checkout_id, doc.checkouts[0]!.id);
  t.ok(doc.tests.every((x) => x.build_id === doc.builds[0]!.id && x.origin === 'dmemfs_rig'));
  t.ok(doc.tests.every((x) => /^dmemfs_rig\.[a-z0-9-]+(\.[A-Za-z0-9_-]+)?$/.test(x.path)));
});

t.test('the schema refuses a missing origin, a wrong status word, a bad id and a stray property', async (t) => {
  const clone = () => JSON.parse(JSON.stringify(doc)) as typeof doc & Record<string, unknown>;
  const noOrigin = clone();
  delete (noOrigin.tests[0] as Record<string, unknown>).origin;
  t.match(kcidbErrors(noOrigin).join('\n'), /\/tests\/0 must have required property 'origin'/);
  const word = clone();
  (word.tests[0] as Record<string, unknown>).status = 'PASSED';
  t.match(kcidbErrors(word).join('\n'), /\/tests\/0\/status must be equal to one of the allowed values/);
  const id = clone();
  (id.builds[0] as Record<string, unknown>).id = 'no-origin-prefix';
  t.match(kcidbErrors(id).join('\n'), /\/builds\/0\/id must match pattern/);
  const stray = clone();
  (stray.issues[0] as Record<string, unknown>).severity = 'high';
  t.match(kcidbErrors(stray).join('\n'), /\/issues\/0 must NOT have additional properties/);
  const version = clone();
  version.version = { major: 4, minor: 0 };
  t.match(kcidbErrors(version).join('\n'), /\/version\/major must be equal to constant/);
  const mid = clone();
  mid.checkouts[0]!.message_id = 'not an address';
  t.match(kcidbErrors(mid).join('\n'), /\/checkouts\/0\/message_id must match format "email"/);
});

t.test('status words: a known failure is FAIL, a skip SKIP, a declared measurement not taken MISS', async (t) => {
  t.equal(scenarioStatus({ status: 'known-failure' }), 'FAIL');
  t.equal(scenarioStatus({ status: 'pass' }), 'PASS');
  t.equal(scenarioStatus({ status: 'skip' }), 'SKIP');
  t.equal(scenarioStatus({ status: 'error' as never }), 'ERROR');
  t.equal(measurementStatus(undefined), 'MISS');
  t.equal(measurementStatus({ value: null, unit: '', skipped: 'no IOMMU' }), 'SKIP');
  t.equal(measurementStatus({ value: 3, unit: 's' }), 'DONE', 'recorded, not held: DONE');
  t.equal(measurementStatus({ value: 1, unit: '', ok: false }), 'FAIL');
  const vfio = doc.tests.find((x) => x.path === 'dmemfs_rig.vfio-pin')!;
  t.equal(vfio.status, 'FAIL');
  const mem = doc.tests.find((x) => x.path === 'dmemfs_rig.reservation.memtotal_plain_kb') as {
    status: string;
    number?: { value: number; unit?: string };
  };
  t.same([mem.status, mem.number], ['PASS', { value: mem.number!.value, unit: 'kB' }]);
});

t.test('each signature an issue, each check of one an incident', async (t) => {
  const checked = run.scenarios.flatMap((s) => s.signatures);
  t.equal(doc.issues.length, new Set(checked.map((c) => c.id)).size);
  t.equal(doc.incidents.length, checked.length);
  const inc = doc.incidents.find((x) => x.issue_id === 'dmemfs_rig:vfio-get-dmem-pfn-null')!;
  t.equal(inc.present, true);
  t.equal(inc.test_id, `${doc.builds[0]!.id}.vfio-pin`);
  t.match(
    doc.issues.find((x) => x.id === 'dmemfs_rig:vfio-get-dmem-pfn-null')!.comment,
    /^culprit patch not bisected yet\. get_dmem_pfn\(\)/,
  );
});

t.test("the patchset hash is KCIDB's: sha256 of the newline-terminated sha256 of each patch", async (t) => {
  // sha256('a') and sha256('b'), each followed by a newline, hashed again (sha256sum *.patch | cut -c-64 | sha256sum).
  t.equal(patchsetHash(['a', 'b']), 'bf75fafab8e46555836b92f1b04106b795a9ed36bd39b351f103b28819895f33');
});
