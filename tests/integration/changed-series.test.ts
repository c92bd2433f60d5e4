/**
 * A series with one patch changed, run as a series of its own: the RFC V2 mbox with the one-line
 * fix of the VFIO oops in 35/37 (kernel/edits.ts: get_dmem_pfn-pdnode, written into the mbox as
 * data), passed with --series. It matches no pinned series, so it is built and run as unpinned,
 * and its provenance against the nearest pinned series goes into results.json, the TAP header
 * and the report. vfio-pin passes on it, and the known failure it fixes no longer reproduces.
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResults } from '../../core/results.js';
import { EDITS } from '../../kernel/edits.js';
import { seriesDefinition } from '../../kernel/series.js';
import { toTap } from '../../report/tap.js';
import { runScenarios } from '../../runner/scenario-runner.js';
import { selectScenarios } from '../../scenarios/catalog.js';
import { chooseAccel } from '../../vm/accel.js';
import { editedMbox, readFixture, REBASED_MBOX, writeTemp } from '../helpers/fixtures.js';

const fix = EDITS['get_dmem_pfn-pdnode'];
const mbox = writeTemp('rfc-v2-fixed-35.mbox', editedMbox(readFixture(REBASED_MBOX()), fix));
const out = mkdtempSync(join(tmpdir(), 'rig-changed-'));
const run = await runScenarios({
  profile: 'rfc-v2-debian',
  accel: chooseAccel(),
  scenarios: selectScenarios(['vfio-pin']),
  input: { series: mbox },
  out,
});
const s = run.scenarios[0]!;

t.test('vfio-pin on the fixed series: the DMA works and the known oops no longer reproduces', async (t) => {
  t.equal(s.status, 'pass', s.reason ?? '');
  t.equal(s.measurements.map_dma?.value, true, 'VFIO_IOMMU_MAP_DMA of dmemfs memory succeeds');
  t.equal(s.measurements.dma_round_trip_bytes_verified?.value, true, 'the DMA lands in the right bytes');
  t.equal(s.measurements.dpages_held_while_pinned_after_unlink?.value, 1, 'the pin holds the dpage');
  t.same(
    s.signatures.map((c) => [c.id, c.reproduced]),
    [['vfio-get-dmem-pfn-null', false]],
  );
  t.match(toTap(run), /# no longer reproduces: vfio-get-dmem-pfn-null/);
});

t.test('results.json records the provenance: unpinned, 36 identical, 35/37 content-changed', async (t) => {
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
  const p = json.series!;
  t.match(p.name, /^unpinned-[0-9a-f]{10}$/);
  t.equal(p.pinned, false);
  t.equal(p.nearest, 'rfc-v2-on-debian-5.10.223');
  t.match(p.origin, { kind: 'mbox', path: mbox });
  t.match(p.origin.sha256, /^[0-9a-f]{64}$/);
  t.same(p.counts, { identical: 36, 'context-only': 0, 'content-changed': 1, new: 0, missing: 0 });
  const row = p.patches.find((r) => r.kind === 'content-changed')!;
  t.equal(row.number, 35);
  t.equal(row.pinnedPatchId, seriesDefinition('rfc-v2-on-debian-5.10.223').patches[34]!.patchId, 'the pinned id');
  t.match(row.patchId, /^[0-9a-f]{40}$/);
  t.not(row.patchId, row.pinnedPatchId, 'and the new one');
  t.equal(json.kernel.series, p.name, 'the kernel was built from it');
});

t.test('the TAP header and the report say which series ran', async (t) => {
  t.match(
    readFileSync(join(out, 'results.tap'), 'utf8'),
    /^# series: unpinned-[0-9a-f]{10}: unpinned; against rfc-v2-on-debian-5\.10\.223: 36 identical, 1 content-changed \(35\)$/m,
  );
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  t.match(
    md,
    /\| 35 \| mm, dmem: introduce dregion->memmap for dmem \| content-changed \| [0-9a-f]{12} \| [0-9a-f]{12} \|/,
  );
});
