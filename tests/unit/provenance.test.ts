/** A series stated against the nearest pinned one: identical, context-only, content-changed, new, missing. */
import t from 'tap';
import { EDITS } from '../../kernel/edits.js';
import { editSeries } from '../../kernel/patch-edit.js';
import { checkShape, classifyAgainst, countKinds, nearestPinned } from '../../kernel/provenance.js';
import { parseSeries, readMbox, seriesDefinition, seriesDistance, type ParsedSeries } from '../../kernel/series.js';
import { provenanceLine } from '../../core/series-record.js';
import { ORIGINAL_MBOX, REBASED_MBOX } from '../helpers/fixtures.js';

const rebased = await parseSeries(readMbox(REBASED_MBOX()));
const original = await parseSeries(readMbox(ORIGINAL_MBOX()));
const onDebian = seriesDefinition('rfc-v2-on-debian-5.10.223');

t.test('the nearest pinned series is the one sharing most patch ids', async (t) => {
  t.equal(nearestPinned(rebased)?.name, 'rfc-v2-on-debian-5.10.223');
  t.equal(nearestPinned(original)?.name, 'rfc-v2');
  const unrelated: ParsedSeries = {
    cover: undefined,
    strays: [],
    patches: [{ ...rebased.patches[0]!, title: 'x', patchId: 'f'.repeat(40) }],
  };
  t.equal(nearestPinned(unrelated), undefined);
});

t.test('the pinned series against itself: every patch identical', async (t) => {
  const rows = classifyAgainst(rebased, onDebian);
  t.same(countKinds(rows), { identical: 37, 'context-only': 0, 'content-changed': 0, new: 0, missing: 0 });
});

t.test('one line changed in 35/37: content-changed, with both patch ids', async (t) => {
  const edited = await editSeries(rebased, [EDITS['get_dmem_pfn-pdnode']]);
  const rows = classifyAgainst(edited, onDebian, rebased);
  t.same(countKinds(rows), { identical: 36, 'context-only': 0, 'content-changed': 1, new: 0, missing: 0 });
  const r = rows.find((x) => x.kind !== 'identical')!;
  t.equal(r.number, 35);
  t.equal(r.pinnedPatchId, onDebian.patches[34]!.patchId);
  t.equal(r.patchId, edited.patches[34]!.patchId);
  t.not(r.patchId, r.pinnedPatchId);
  t.equal(
    provenanceLine({
      name: 'unpinned-x',
      pinned: false,
      nearest: onDebian.name,
      counts: countKinds(rows),
      patches: rows,
    }),
    'unpinned-x: unpinned; against rfc-v2-on-debian-5.10.223: 36 identical, 1 content-changed (35)',
  );
});

t.test('the mailed series against the rebased one: the same kinds as `series compare`', async (t) => {
  const rows = classifyAgainst(original, onDebian, rebased);
  const distance = seriesDistance(original, rebased);
  for (const d of distance) {
    const r = rows.find((x) => x.number === d.number)!;
    const want = d.kind === 'content' ? 'content-changed' : d.kind;
    t.equal(r.kind, want, `patch ${d.number}: ${want}`);
  }
  t.ok(
    rows.some((r) => r.kind === 'context-only'),
    'some patches differ in context only',
  );
});

t.test('a dropped patch is missing, an added one is new', async (t) => {
  const extra = { ...rebased.patches[0]!, number: 37, title: 'a new patch', patchId: 'e'.repeat(40) };
  const changed: ParsedSeries = { ...rebased, patches: [...rebased.patches.slice(0, 36), extra] };
  const rows = classifyAgainst(changed, onDebian, rebased);
  t.same(countKinds(rows), { identical: 36, 'context-only': 0, 'content-changed': 0, new: 1, missing: 1 });
  t.match(
    rows.find((r) => r.kind === 'missing'),
    { number: 37, title: 'Add documentation for dmemfs' },
  );
  t.match(
    rows.find((r) => r.kind === 'new'),
    { number: 37, title: 'a new patch' },
  );
});

t.test('the shape a series must have', async (t) => {
  t.doesNotThrow(() => checkShape(rebased, 'rebased'));
  const mixed = { ...rebased, patches: [{ ...original.patches[0]! }, ...rebased.patches.slice(1)] };
  t.throws(() => checkShape(mixed, 'm'), {
    kind: 'series-mixed',
    message: /mixes \[RFC V2\] and \[RFC V2 5\.10\.223\]/,
  });
  const dup = { ...rebased, patches: [...rebased.patches, rebased.patches[3]!] };
  t.throws(() => checkShape(dup, 'd'), { kind: 'series-mixed', message: /patch 4 more than once/ });
  const gap = { ...rebased, patches: rebased.patches.filter((p) => p.number !== 21) };
  t.throws(() => checkShape(gap, 'g'), { kind: 'series-incomplete', message: /patches 21 of 37 are missing/ });
  t.throws(() => checkShape({ ...rebased, patches: [] }, 'e'), { kind: 'bad-mbox', message: /no numbered patches/ });
});

t.test('the line names a prefix and edits on top of the series', async (t) => {
  const rows = classifyAgainst(rebased, onDebian);
  const base = { name: onDebian.name, pinned: true, nearest: onDebian.name, counts: countKinds(rows), patches: rows };
  t.equal(
    provenanceLine({ ...base, prefix: 28 }),
    'rfc-v2-on-debian-5.10.223: pinned, every patch id matches (only patches 1..28 applied)',
  );
  t.equal(
    provenanceLine({ ...base, prefix: 0, edits: ['get_dmem_pfn-pdnode: patch 35, "a" -> "b"'] }),
    'rfc-v2-on-debian-5.10.223: pinned, every patch id matches (no patch applied; edited: get_dmem_pfn-pdnode)',
  );
});
