/** A change to one patch written as data: one added line found and replaced, patch ids recomputed. */
import t from 'tap';
import { mailBodyWithDiff } from '../../kernel/apply.js';
import { editedName, namedEdits } from '../../kernel/edits.js';
import { editDiff, editSeries } from '../../kernel/patch-edit.js';
import { parseSeries, readMbox } from '../../kernel/series.js';
import { BENCH_EDIT } from '../../runner/bench-build.js';
import { REBASED_MBOX } from '../helpers/fixtures.js';

const series = await parseSeries(readMbox(REBASED_MBOX()));

t.test("the bench's edit changes exactly one line of patch 35 and only its patch id", async (t) => {
  const edited = await editSeries(series, [BENCH_EDIT]);
  const changed = edited.patches.filter((p, i) => p.patchId !== series.patches[i]!.patchId).map((p) => p.number);
  t.same(changed, [35]);
  const before = series.patches.find((p) => p.number === 35)!.diff.split('\n');
  const after = edited.patches.find((p) => p.number === 35)!.diff.split('\n');
  const diffs = after.filter((l, i) => l !== before[i]);
  t.same(diffs, ['+\tstruct dmem_region *dregion = find_dmem_region(PFN_PHYS(pfn), &(struct dmem_node *){ NULL });']);
  t.equal(series.patches.find((p) => p.number === 35)!.diff.split('\n').length, after.length, 'same line count');
});

t.test('an edit that names no line, or several, is refused', async (t) => {
  const p35 = series.patches.find((p) => p.number === 35)!;
  t.throws(() => editDiff(p35, { ...BENCH_EDIT, find: 'no such text' }), {
    message: /adds 0 lines containing "no such text", not one/,
  });
  t.throws(() => editDiff(p35, { ...BENCH_EDIT, find: 'dmempage' }), { message: /adds \d+ lines containing/ });
  await t.rejects(editSeries(series, [{ ...BENCH_EDIT, patch: 99 }]), { message: /has no patch 99/ });
});

t.test('the mail git am applies carries the diff the patch id was computed from', async (t) => {
  const same = series.patches.filter((p) => mailBodyWithDiff(p) === p.message.body).length;
  t.equal(same, series.patches.length, 'every patch as mailed: the mail is the body itself');
  const edited = (await editSeries(series, [BENCH_EDIT])).patches.find((p) => p.number === 35)!;
  const mail = mailBodyWithDiff(edited);
  t.ok(mail.includes(BENCH_EDIT.replace), 'the edited patch: its mail has the edited line');
  t.notOk(mail.includes(`dregion = ${BENCH_EDIT.find}`), 'and not the original one');
});

t.test('named edits: known by name, an unknown one refused with the list', async (t) => {
  t.same(
    namedEdits(['get_dmem_pfn-pdnode']).map((e) => e.patch),
    [35],
  );
  t.throws(() => namedEdits(['nope']), { message: /no edit named "nope"/ });
  t.equal(editedName('rfc-v2', [BENCH_EDIT]), 'rfc-v2+get_dmem_pfn-pdnode');
});
