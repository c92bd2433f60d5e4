/** npm test's closing counts: leaf assertions at any depth, skips and known failures listed, crashes counted. */
import t from 'tap';
import { Parser } from 'tap-parser';
import { tally } from '../../scripts/tap-tally.js';

const SAMPLE = `TAP version 14
# Subtest: dist/tests/integration/scenarios.test.js
    # Subtest: nested-guest: an L2 guest
        ok 1 - 12 measurements
        ok 2 - populate_faults = 128 faults (expected = 128)
        not ok 3 - kvm_largepages = 4 mappings (expected >= 32) # TODO known failure: kvm-dmem-4k
        ok 4 - l2_seconds # SKIP L2 runs under TCG in L1
        # no longer reproduces: vfio-pin/vfio-get-dmem-pfn-null: oops (now: map_dma = true)
        1..4
    ok 1 - nested-guest: an L2 guest
    # Subtest: crashed
        ok 1 - first
        1..2
    not ok 2 - crashed
    ok 3 - skipped scenario # SKIP no iommu
    1..3
not ok 1 - dist/tests/integration/scenarios.test.js
# Subtest: dist/tests/unit/broken.test.js
    1..0
not ok 2 - dist/tests/unit/broken.test.js
1..2
`;

t.test('leaf assertions are counted once; a crashed subtest and a dead file are failures', async (t) => {
  const p = new Parser();
  const counts = tally(p);
  p.end(SAMPLE);
  t.equal(counts.passed, 3, 'measurements, populate_faults, first');
  t.equal(counts.skipped, 3, 'the TODO known failure, the skipped measurement, the skipped scenario');
  t.equal(counts.failed, 2, 'the crashed subtest and the file that failed before any test');
  t.match(counts.skips.join('\n'), /known failure: .*kvm_largepages.*kvm-dmem-4k/);
  t.match(counts.skips.join('\n'), /skipped: .*l2_seconds: L2 runs under TCG in L1/);
  t.same(counts.fixed, ['vfio-pin/vfio-get-dmem-pfn-null: oops (now: map_dma = true)']);
  t.match(counts.failures.join('\n'), /crashed/);
});
