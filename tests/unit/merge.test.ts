/**
 * report --merge (report/merge.ts) on the real full run of tests/fixtures/bundles/full-run cut
 * into shards the way run --shard cuts it: the merge gives back every scenario once with its
 * status and values, every boot, a bundle that validates; and it refuses, with one error kind
 * and nothing written, shards of another kernel, a shard twice, a missing shard, a scenario in
 * two shards, a shard that did not finish its plan.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RigError } from '../../core/errors.js';
import { projectRoot } from '../../core/paths.js';
import type { RunResults } from '../../core/results.js';
import { loadBundle } from '../../report/bundle-diff.js';
import { mergeBundles } from '../../report/merge.js';
import { cutShards } from '../helpers/shards.js';

const full = JSON.parse(
  readFileSync(join(projectRoot(), 'tests/fixtures/bundles/full-run/results.json'), 'utf8'),
) as RunResults;
const root = mkdtempSync(join(tmpdir(), 'rig-merge-'));

/** The full run as N shard bundles (results.json and one console each), as run --shard would plan it. */
const shards = (count: number, tweak?: (r: RunResults, k: number) => void) => cutShards(full, count, root, tweak);

const refusal = (dirs: string[]) => {
  const out = join(root, `out-${Math.random().toString(36).slice(2)}`);
  try {
    mergeBundles(dirs, out);
    return { kind: 'merged', written: existsSync(out) };
  } catch (e) {
    return {
      kind: e instanceof RigError ? e.kind : String(e),
      written: existsSync(out) || readdirSync(root).some((f) => f.includes('.partial-')),
    };
  }
};

t.test('two shards merge into the run they were cut from', async (t) => {
  const out = join(root, 'merged');
  const run = mergeBundles(shards(2), out);
  const again = loadBundle(out);
  t.same(
    again.scenarios.map((s) => [s.id, s.status]).sort(),
    full.scenarios.map((s) => [s.id, s.status]).sort(),
    'every scenario once, with its status',
  );
  for (const s of full.scenarios)
    t.same(again.scenarios.find((x) => x.id === s.id)?.measurements, s.measurements, `${s.id}: the same values`);
  t.equal(again.boots.length, full.boots.length, 'every boot record');
  t.equal(run.merged?.length, 2);
  t.notOk(again.shard, 'a merged bundle is not a shard');
  for (const f of ['results.tap', 'junit.xml', 'report.html', 'report.md', 'comparison.md'])
    t.ok(existsSync(join(out, f)), `${f} made again`);
  const consoles = readdirSync(join(out, 'consoles')).sort();
  t.same(consoles, ['same-name-2.log', 'same-name.log'], 'two shards with one console name: both kept');
  const second = again.boots.find((b) => b.console === 'consoles/same-name-2.log');
  t.ok(second, 'the boot records point at the renamed console');
  t.match(readFileSync(join(out, second!.console!), 'utf8'), /shard 2/);
});

t.test("each shard's proven reproducers go into the merged bundle", async (t) => {
  const dirs = shards(2);
  const proofOf = (k: number, id: string) => {
    const d = join(dirs[k]!, 'repro', id, 'proof');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'proof.json'), JSON.stringify([{ kernel: `shard ${k + 1}`, ok: true }]));
    writeFileSync(join(dirs[k]!, 'repro', id, 'repro.sh'), `echo shard ${k + 1}\n`);
  };
  proofOf(0, 'vfio-get-dmem-pfn-null');
  proofOf(1, 'dmemfs-new-file-reads-old-data');
  const out = join(root, 'merged-repro');
  mergeBundles(dirs, out);
  t.same(readdirSync(join(out, 'repro')).sort(), ['dmemfs-new-file-reads-old-data', 'vfio-get-dmem-pfn-null']);
  t.equal(readFileSync(join(out, 'repro', 'vfio-get-dmem-pfn-null', 'repro.sh'), 'utf8'), 'echo shard 1\n');
  t.match(readFileSync(join(out, 'repro', 'dmemfs-new-file-reads-old-data', 'proof', 'proof.json'), 'utf8'), 'shard 2');
});

t.test('shards that do not belong together are refused, and nothing is written', async (t) => {
  const [a, b] = shards(2);
  t.same(refusal([a!, a!]), { kind: 'duplicate-shard', written: false }, 'a shard given twice');
  t.same(refusal([a!]), { kind: 'missing-shard', written: false }, 'a missing shard');
  const other = shards(2, (r, k) => {
    if (k === 2) r.kernel = { ...r.kernel, key: 'another-build' };
  });
  t.same(refusal(other), { kind: 'shard-mismatch', written: false }, 'two kernels');
  const commit = shards(2, (r, k) => {
    if (k === 2) r.rig = { ...r.rig, commit: 'another-commit' };
  });
  t.same(refusal(commit), { kind: 'shard-mismatch', written: false }, 'two rig commits');
  const image = shards(2, (r, k) => {
    if (k === 2) r.images = { ...r.images, l1Image: 'another-image' };
  });
  t.same(refusal(image), { kind: 'shard-mismatch', written: false }, 'two L1 images');
  const twice = shards(2, (r, k) => {
    if (k === 2) r.scenarios.push(full.scenarios.find((s) => !r.scenarios.some((x) => x.id === s.id))!);
  });
  t.same(refusal(twice), { kind: 'duplicate-scenario', written: false }, 'a scenario in two shards');
  const short = shards(2, (r, k) => {
    if (k === 1) r.scenarios.pop();
  });
  t.same(refusal(short), { kind: 'shard-incomplete', written: false }, 'a shard that did not finish');
  const three = shards(3);
  t.same(refusal([a!, three[1]!]), { kind: 'shard-mismatch', written: false }, 'shards of two partitions');
  const plain = join(root, 'plain');
  mkdirSync(plain);
  writeFileSync(join(plain, 'results.json'), JSON.stringify(full));
  t.same(refusal([plain, b!]), { kind: 'not-a-shard', written: false }, 'an unsharded bundle');
});
