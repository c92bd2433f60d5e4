/**
 * A local fix as data, for real: the series with the one-line fix of the VFIO oops
 * (kernel/edits.ts: get_dmem_pfn-pdnode) is built as a series of its own, vfio-pin runs on it,
 * and the known failure it fixes is reported as "no longer reproduces", not as a silent pass.
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namedEdits } from '../../kernel/edits.js';
import { toTap } from '../../report/tap.js';
import { runScenarios } from '../../runner/scenario-runner.js';
import { selectScenarios } from '../../scenarios/catalog.js';
import { chooseAccel } from '../../vm/accel.js';

const out = mkdtempSync(join(tmpdir(), 'rig-edited-'));
const run = await runScenarios({
  profile: 'rfc-v2-debian',
  accel: chooseAccel(),
  scenarios: selectScenarios(['vfio-pin']),
  input: { edits: namedEdits(['get_dmem_pfn-pdnode']) },
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

t.test("the bundle says which series ran: the profile's, with the edit", async (t) => {
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  t.equal(json.kernel.series, 'rfc-v2-on-debian-5.10.223+get_dmem_pfn-pdnode');
  t.match(json.kernel.edits, /get_dmem_pfn-pdnode: patch 35, "find_dmem_region\(PFN_PHYS\(pfn\), NULL\)" -> /);
});
