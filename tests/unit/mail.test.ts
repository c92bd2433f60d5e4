/**
 * report --mail on a recorded bundle (tests/fixtures/bundles/full-run: the full run of
 * 2026-12-03 17:16), each message parsed back with mailparser: headers, threading into the
 * series as mailed (../shared/fixtures/dmemfs-rfc-v2.mbox), wrapping, the trailer; and the
 * refusals of a bundle whose mbox cannot be found. The reproducer attached to a mail is written
 * by writeReproducer and its proof judged from the consoles of tests/fixtures/repro/ (2026-12-05).
 */
import t, { type Test } from 'tap';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { simpleParser } from 'mailparser';
import { projectRoot } from '../../core/paths.js';
import { findingsOf, renderMail, reproOf, threadMbox, threadOf, WRAP, RIG_ADDRESS } from '../../report/mail.js';
import { EXPECTED, fileDigests, judgeConsole, reproducerFor, writeReproducer } from '../../runner/repro.js';
import { FULL_RUN_BUNDLE, ORIGINAL_MBOX } from '../helpers/fixtures.js';
import type { RunResults } from '../../core/results.js';

const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
const mbox = threadMbox(run.series);
const thread = threadOf(readFileSync(mbox, 'utf8'), mbox);
const original = threadOf(readFileSync(ORIGINAL_MBOX(), 'utf8'), ORIGINAL_MBOX());

t.test('the thread is the series as mailed (the rebased one says so), with its 37 patches and cover', async (t) => {
  t.equal(mbox, ORIGINAL_MBOX(), 'the mbox of rfc-v2, which rfc-v2-on-debian-5.10.223 was rebased from');
  t.equal(thread.patches.size, 37);
  t.equal(thread.cover?.messageId, '<cover.1607332046.git.yuleixzhang@tencent.com>');
});

const findings = findingsOf(run);
/** The body as one line: what wrapping splits, joined again. */
const flat = (s: string) => s.replace(/\s+/g, ' ');

t.test('one finding per reproduced signature, and none for what passed', async (t) => {
  t.same(
    findings.map((f) => f.id),
    [
      'dmemfs-4k-fault-error-spins',
      'dmemfs-racing-faults-double-allocate',
      'dmemfs-unlink-bug-after-racing-faults',
      'dmemfs-racing-huge-faults-warn',
      'dmemfs-new-file-reads-old-data',
      'kvm-dmem-4k',
      'vfio-get-dmem-pfn-null',
      'mce-dmem-no-sigbus',
      'mce-dmem-no-sigbus-huge',
      'mce-dmem-set-memory-uc-warning',
    ],
  );
  t.ok(findings.every((f) => f.known));
});

async function check(t: Test, text: string, replyTo: string, subject: RegExp, multipart = false) {
  const m = await simpleParser(text);
  t.same(
    m.from?.value.map((a) => `${a.name} <${a.address}>`),
    [RIG_ADDRESS],
  );
  t.match(m.subject ?? '', subject);
  t.equal(m.inReplyTo, replyTo);
  const refs = Array.isArray(m.references) ? m.references : [m.references];
  t.same(refs, [...new Set([original.cover!.messageId, replyTo])], 'References: the cover letter, then the patch');
  t.match(m.messageId ?? '', /^<dmemfs-rig\.[0-9a-f]{20}@dmemfs-rig\.invalid>$/);
  t.match(
    String(m.headers.get('content-type') ? (m.headers.get('content-type') as { value: string }).value : ''),
    multipart ? 'multipart/mixed' : 'text/plain',
  );
  const body = m.text ?? '';
  const [prose] = body.split('The kernel log (lines as printed, not wrapped):');
  const long = prose!.split('\n').filter((l) => l.length > WRAP);
  t.same(long, [], `every line of prose within ${WRAP} columns`);
  t.ok(
    body.split('\n').every((l) => l.length <= 998),
    'no line over RFC 5322 998',
  );
  t.match(body, /\nReported-by: dmemfs-rig <dmemfs-rig@dmemfs-rig\.invalid>\n/);
  t.notMatch(body, /^Closes:/m, 'no invented Closes: link');
  for (const line of text.split('\r\n').slice(0, text.split('\r\n').indexOf(''))) {
    t.ok(
      line.length <= 78 || !/[ ,]/.test(line.replace(/^[\w-]+: /, '').trim()),
      `header line folded where it can (never after its name alone): ${line.slice(0, 40)}`,
    );
    t.ok(line.length <= 998, 'within RFC 5322 998');
  }
  t.notMatch(text, /^(To|Cc):\s{2,}/m, 'header values without the mbox alignment blanks');
  return body;
}

t.test('a finding without a culprit replies to the cover letter', async (t) => {
  const vfio = findings.find((f) => f.id === 'vfio-get-dmem-pfn-null')!;
  const body = await check(
    t,
    renderMail(vfio, { run, thread }),
    original.cover!.messageId,
    /^Re: \[RFC V2 00\/37\] Enhance memory utilization with DMEMFS$/,
  );
  t.match(flat(body), 'on the whole series (the patch that introduced it is not bisected yet: dmemfs-rig culprits)');
  t.match(body, /\nBUG: kernel NULL pointer dereference|\] BUG: kernel NULL pointer dereference/);
  t.match(body, /RIP: 0010:get_dmem_pfn\+/, 'the oops with its RIP');
  t.match(body, /series: {3}rfc-v2-on-debian-5\.10\.223: pinned/);
  t.match(body, /npm run rig -- run --profile rfc-v2-debian \\\n\s+--scenario vfio-pin/);
});

t.test("a finding with its culprit replies to that patch's own mail", async (t) => {
  const vfio = {
    ...findings.find((f) => f.id === 'vfio-get-dmem-pfn-null')!,
    culprit: { number: 35, title: 'x', patches: 37 },
  };
  const p35 = original.patches.get(35)!;
  const body = await check(t, renderMail(vfio, { run, thread }), p35.messageId, /^Re: \[RFC V2 35\/37\] /);
  t.match(flat(body), 'from patch 35/37 on: the first prefix of the series at which it reproduces, found by bisection');
  const present = { ...vfio, culprit: { ...vfio.culprit, presentFrom: true as const } };
  t.match(
    flat((await simpleParser(renderMail(present, { run, thread }))).text ?? ''),
    'from patch 35/37 on, where the code path first exists',
  );
});

t.test('no mbox to reply into: error [no-mbox]', async (t) => {
  t.throws(() => threadMbox(undefined), { kind: 'no-mbox', message: /names no mbox/ });
  t.throws(
    () =>
      threadMbox({
        ...run.series!,
        name: 'unpinned-0123',
        origin: { ...run.series!.origin, path: '/nonexistent/x.mbox' },
      }),
    { kind: 'no-mbox', message: /\/nonexistent\/x\.mbox is not here/ },
  );
});

/** A bundle holding the VFIO reproducer as `run --repro` leaves it, proven from the recorded consoles. */
function bundleWithRepro(okOn: { baseline: boolean }): string {
  const bundle = mkdtempSync(join(tmpdir(), 'rig-mail-repro-'));
  const id = 'vfio-get-dmem-pfn-null';
  const dir = join(bundle, 'repro', id);
  const config = join(bundle, 'config');
  writeFileSync(config, '# the config of the kernel\nCONFIG_DMEMFS=y\nCONFIG_VFIO=y\n');
  writeReproducer(id, dir, { series: 'the series', culprit: 'introduced by 36/37', kernelConfig: config });
  const { repro } = reproducerFor(id);
  const rows = (['series', 'baseline', 'fixed'] as const).map((label) => {
    const console = readFileSync(join(projectRoot(), 'tests', 'fixtures', 'repro', `${id}.${label}.log`), 'utf8');
    const { outcome } = judgeConsole(repro, console);
    const ok = EXPECTED[label].includes(outcome) && (label !== 'baseline' || okOn.baseline);
    return { label, kernel: `the ${label} kernel`, outcome, seconds: 2, ok };
  });
  mkdirSync(join(dir, 'proof'), { recursive: true });
  writeFileSync(join(dir, 'proof', 'proof.json'), JSON.stringify({ files: fileDigests(dir), rows }));
  return bundle;
}

t.test('a proven reproducer goes with the mail: inline steps, every file attached as it ran', async (t) => {
  const bundle = bundleWithRepro({ baseline: true });
  const repro = reproOf(bundle, 'vfio-get-dmem-pfn-null');
  t.ok(repro, 'the bundle holds a proven reproducer');
  const vfio = findingsOf(run).find((f) => f.id === 'vfio-get-dmem-pfn-null')!;
  const text = renderMail(vfio, { run, thread, repro: repro! });
  const body = await check(t, text, original.cover!.messageId, /^Re: \[RFC V2 00\/37\] /, true);
  t.match(body, /To reproduce with nothing of dmemfs-rig: save the attached files/);
  t.match(
    body,
    /\n {2}sh build\.sh && sh mkinitramfs\.sh\n {2}KERNEL=\/path\/to\/arch\/x86\/boot\/bzImage sh qemu\.sh\n/,
  );
  t.match(
    body,
    /\n {2}the series kernel: bug, 2 s\n {2}the baseline kernel: absent, 2 s\n {2}the fixed kernel: no-bug, 2 s\n/,
  );
  const script = readFileSync(join(bundle, 'repro', 'vfio-get-dmem-pfn-null', 'repro.sh'), 'utf8');
  for (const l of script.split('\n').filter(Boolean))
    t.ok(body.includes(`\n  ${l}\n`), `repro.sh inline: ${l.slice(0, 30)}`);
  t.match(body, /Or, in a clone of dmemfs-rig:\n {2}npm ci\n/, "the rig's own command stays as the other way");
  const m = await simpleParser(text);
  const names = m.attachments.map((a) => a.filename).sort();
  t.same(names, [...repro!.files.map((f) => (f.name === 'kernel.config' ? 'kernel.config.gz' : f.name))].sort());
  t.ok(names.includes('qemu.sh') && names.includes('vfio-dma.c') && names.includes('rig-helper.h'));
  for (const f of repro!.files) {
    const a = m.attachments.find((x) => x.filename === (f.name === 'kernel.config' ? 'kernel.config.gz' : f.name))!;
    const bytes = f.name === 'kernel.config' ? gunzipSync(a.content) : a.content;
    t.equal(bytes.toString('utf8'), f.text, `${f.name}: byte for byte the file that ran`);
  }
  t.ok(
    text.split('\r\n').every((l) => l.length <= 998),
    'every line of the message within RFC 5322 998',
  );
  t.notOk(text.replace(/\r\n/g, '').includes('\n'), 'CRLF line ends throughout');
});

t.test('a reproducer with no fixing edit is proven on the series and the baseline alone', async (t) => {
  const id = 'dmemfs-fault-sleeps-under-rcu';
  const bundle = mkdtempSync(join(tmpdir(), 'rig-mail-'));
  const dir = join(bundle, 'repro', id);
  writeReproducer(id, dir, { series: 'the series', culprit: 'seen in every scenario' });
  const { repro } = reproducerFor(id);
  t.equal(repro.fixedBy, undefined, 'no one-line fix is known for it');
  const rows = (['series', 'baseline'] as const).map((label) => {
    const console = readFileSync(join(projectRoot(), 'tests', 'fixtures', 'repro', `${id}.${label}.log`), 'utf8');
    const { outcome } = judgeConsole(repro, console);
    return { label, kernel: `the ${label} kernel`, outcome, seconds: 2, ok: EXPECTED[label].includes(outcome) };
  });
  mkdirSync(join(dir, 'proof'), { recursive: true });
  writeFileSync(join(dir, 'proof', 'proof.json'), JSON.stringify({ files: fileDigests(dir), rows }));
  t.ok(reproOf(bundle, id), 'proven without a fixed row');
  const pf = join(dir, 'proof', 'proof.json');
  writeFileSync(pf, JSON.stringify({ files: fileDigests(dir), rows: rows.filter((r) => r.label !== 'baseline') }));
  t.equal(reproOf(bundle, id), undefined, 'the baseline row stays required');
});

t.test('a reproducer whose proof failed, or none, is not offered: the rig command alone', async (t) => {
  const failed = bundleWithRepro({ baseline: false });
  t.equal(reproOf(failed, 'vfio-get-dmem-pfn-null'), undefined, 'one proof not met: no reproducer');
  t.equal(reproOf(failed, 'kvm-dmem-4k'), undefined, 'none written');
  const id = 'vfio-get-dmem-pfn-null';
  const tampered = bundleWithRepro({ baseline: true });
  appendFileSync(join(tampered, 'repro', id, 'repro.sh'), 'echo changed after the proof\n');
  t.equal(reproOf(tampered, id), undefined, 'a file changed since the proof ran: not the proven one');
  const partial = bundleWithRepro({ baseline: true });
  const pf = join(partial, 'repro', id, 'proof', 'proof.json');
  const rec = JSON.parse(readFileSync(pf, 'utf8')) as { rows: Array<{ label: string }> };
  writeFileSync(pf, JSON.stringify({ ...rec, rows: rec.rows.filter((r) => r.label !== 'fixed') }));
  t.equal(reproOf(partial, id), undefined, 'a proof without the fixed kernel: not proven');
  const again = bundleWithRepro({ baseline: true });
  writeReproducer(id, join(again, 'repro', id), { series: 'the series', culprit: 'x' });
  t.notOk(existsSync(join(again, 'repro', id, 'proof')), 'written again: the old proof is gone with the old files');
  t.equal(reproOf(again, id), undefined);
  const vfio = findingsOf(run).find((f) => f.id === 'vfio-get-dmem-pfn-null')!;
  const text = renderMail(vfio, { run, thread });
  const body = await check(t, text, original.cover!.messageId, /^Re: /);
  t.notOk(text.replace(/\r\n/g, '').includes('\n'), 'CRLF line ends throughout');
  t.notMatch(body, /attached/);
  t.match(body, /To reproduce, in a clone of dmemfs-rig:\n {2}npm ci\n/);
});
