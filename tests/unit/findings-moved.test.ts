/**
 * findingsMoved (report/bundle-diff.ts), the gate of `nightly findings`: on the recorded full run
 * (tests/fixtures/bundles/full-run) against itself nothing moved; a patch of another patch id, an
 * edit, a prefix, or one signature's outcome each move it, and say what.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { RunResults } from '../../core/results.js';
import { findingsMoved } from '../../report/bundle-diff.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';

const load = () => JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;

t.same(findingsMoved(load(), load()), [], 'the same run: nothing moved');
t.same(findingsMoved(undefined, load()), ['no accepted base yet']);

const patched = load();
patched.series!.patches[34] = { ...patched.series!.patches[34]!, patchId: 'f'.repeat(40) };
t.match(findingsMoved(load(), patched), [/^the series changed/], 'one patch of another patch id');

const edited = load();
edited.series!.edits = ['get_dmem_pfn-pdnode'];
t.match(findingsMoved(load(), edited), [/^the series changed/], 'an edit on top');

const prefix = load();
prefix.series!.prefix = 36;
t.match(findingsMoved(load(), prefix), [/^the series changed/], 'a prefix');

const cured = load();
const c = cured.scenarios.find((s) => s.id === 'pool-boundaries')!.signatures[0]!;
Object.assign(c, { reproduced: false, outcome: 'not-rechecked' });
const movedCured = findingsMoved(load(), cured);
t.ok(movedCured.includes(`pool-boundaries/${c.id}: reproduced -> not-rechecked`), 'the outcome moved');
t.ok(
  c.measurements.every((n) => movedCured.includes(`a new finding: pool-boundaries/${n}`)),
  'and its measurements, no longer claimed, are findings of their own',
);

const unexpected = load();
const files = unexpected.scenarios.find((s) => s.id === 'dmemfs-files')!;
const [name] = Object.keys(files.measurements).filter((n) => files.measurements[n]!.expected);
Object.assign(files.measurements[name!]!, { ok: false });
t.same(
  findingsMoved(load(), unexpected),
  [`a new finding: dmemfs-files/${name}`],
  'an unexpected failure is a finding',
);
t.same(findingsMoved(unexpected, load()), [`a finding gone: dmemfs-files/${name}`]);

const bisected = load();
const vfio = bisected.scenarios
  .find((s) => s.id === 'vfio-pin')!
  .signatures.find((x) => x.id === 'vfio-get-dmem-pfn-null')!;
vfio.culprit = { number: 36, title: 'vfio: support dmempage refcount for vfio', patches: 37 };
t.same(findingsMoved(load(), bisected), ['vfio-get-dmem-pfn-null: culprit none -> 36/37'], 'a culprit found since');
