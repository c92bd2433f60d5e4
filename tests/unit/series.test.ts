/** Series parsing and verification by patch id: missing, altered, duplicate and extra patches. */
import t from 'tap';
import { identifySeries, parseSeries, seriesDefinition, seriesDistance, verifySeries } from '../../kernel/series.js';
import { parseMbox, parseSubject } from '../../kernel/mbox.js';
import { ORIGINAL_MBOX, REBASED_MBOX, VERBATIM_MBOX, rawMessages, readFixture } from '../helpers/fixtures.js';

const original = readFixture(ORIGINAL_MBOX());
const rebased = readFixture(REBASED_MBOX());

/** The mbox with message `n` (patch number) transformed. */
function withPatch(text: string, n: number, f: (msg: string) => string | undefined): string {
  const msgs = rawMessages(text);
  const out: string[] = [];
  for (const m of msgs) {
    const subj = /^Subject: (.*(?:\n[ \t].*)*)/m.exec(m)?.[1]?.replace(/\n[ \t]+/g, ' ') ?? '';
    const s = parseSubject(subj);
    if (s && s.number === n) {
      const r = f(m);
      if (r !== undefined) out.push(r);
    } else out.push(m);
  }
  return out.join('\n');
}

t.test('subjects of both fixtures parse, folded headers included', async (t) => {
  t.same(parseSubject('[RFC V2 12/37] dmem: introduce mempolicy support'), {
    prefix: 'RFC V2',
    number: 12,
    total: 37,
    title: 'dmem: introduce mempolicy support',
  });
  t.equal(parseSubject('Re: [RFC V2 5.10.223 03/37] x')!.prefix, 'RFC V2 5.10.223');
  t.equal(parseSubject('no brackets'), undefined);
  const msgs = parseMbox(rebased);
  t.equal(msgs.length, 38);
  t.match(
    msgs[0]!.subject,
    /^\[RFC V2 5\.10\.223 00\/37\] Enhance memory utilization with DMEMFS \(rebase onto Debian 5\.10\.223\)$/,
  );
});

t.test('the original and the rebased series are complete and intact', async (t) => {
  for (const [text, name] of [
    [original, 'rfc-v2'],
    [rebased, 'rfc-v2-on-debian-5.10.223'],
  ] as const) {
    const parsed = await parseSeries(text);
    t.equal(identifySeries(parsed).name, name, `identified as ${name}`);
    const r = verifySeries(parsed, seriesDefinition(name));
    t.ok(r.ok, `${name}: ${r.problems.join('; ') || 'ok'}`);
    t.equal(r.patches.filter((p) => p.verdict === 'ok').length, 37);
  }
  const orig = await parseSeries(original);
  t.equal(orig.cover?.messageId, 'cover.1607332046.git.yuleixzhang@tencent.com');
});

t.test('an altered patch is named by number', async (t) => {
  // Change one added line of patch 7 (a real content change, not whitespace).
  const text = withPatch(original, 7, (m) => m.replace(/\n\+(\s*)(\w)/, '\n+$1/* altered */ $2'));
  const r = verifySeries(await parseSeries(text), seriesDefinition('rfc-v2'));
  t.notOk(r.ok);
  t.same(
    r.patches.filter((p) => p.verdict !== 'ok').map((p) => [p.number, p.verdict]),
    [[7, 'altered']],
  );
  t.match(r.problems.join('\n'), /patch 7 \(dmem: trace core functions\) is altered/);
});

t.test('whitespace-only damage does not count as altered (patch-id --stable)', async (t) => {
  const text = withPatch(original, 9, (m) => m.replace(/\n\+(\t+)(\S)/, '\n+$1 $2'));
  const r = verifySeries(await parseSeries(text), seriesDefinition('rfc-v2'));
  t.ok(r.ok, 'intra-line whitespace is ignored by the patch id');
});

t.test('a removed, a duplicated, a foreign-version patch and a missing cover letter', async (t) => {
  const removed = verifySeries(await parseSeries(withPatch(original, 12, () => undefined)), seriesDefinition('rfc-v2'));
  t.same(
    removed.patches.filter((p) => p.verdict !== 'ok').map((p) => [p.number, p.verdict]),
    [[12, 'missing']],
  );
  t.notOk(removed.complete);

  const dup = verifySeries(await parseSeries(withPatch(original, 3, (m) => `${m}\n${m}`)), seriesDefinition('rfc-v2'));
  t.same(
    dup.patches.filter((p) => p.verdict !== 'ok').map((p) => [p.number, p.verdict]),
    [[3, 'duplicate']],
  );

  const mixed = verifySeries(
    await parseSeries(withPatch(original, 20, (m) => m.replace('[RFC V2 20/37]', '[RFC V3 20/37]'))),
    seriesDefinition('rfc-v2'),
  );
  t.match(mixed.problems.join('\n'), /more than one version/);

  const noCover = verifySeries(await parseSeries(withPatch(original, 0, () => undefined)), seriesDefinition('rfc-v2'));
  t.match(noCover.problems.join('\n'), /no cover letter/);

  const verbatim = verifySeries(await parseSeries(readFixture(VERBATIM_MBOX())), seriesDefinition('rfc-v2'));
  t.same(
    verbatim.patches.filter((p) => p.verdict !== 'ok').map((p) => p.number),
    [3, 5],
    'the verbatim-only copy lacks the two reconstructed patches',
  );
});

t.test('not an mbox at all', async (t) => {
  await t.rejects(parseSeries('just some text\n'), /no mail messages/);
});

t.test('distance of the rebased series from the original', async (t) => {
  const rows = seriesDistance(await parseSeries(original), await parseSeries(rebased));
  t.equal(rows.length, 37);
  const by = (k: string) => rows.filter((r) => r.kind === k).map((r) => r.number);
  t.same(by('content'), [12, 19, 21, 27, 29, 36], 'content adapted (NOTES: 12 19 21 25 27 29 36; 25 moves a line)');
  t.same(by('context-only'), [2, 17, 25, 30, 32]);
  t.equal(by('identical').length, 26);
  const r21 = rows.find((r) => r.number === 21)!;
  t.same([r21.onlyInOriginal, r21.onlyInRebased], [1, 40]);
  t.match(r21.note ?? '', /^\[rebased onto 5\.10\.223:/);
});
