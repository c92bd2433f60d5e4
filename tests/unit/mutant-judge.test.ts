/**
 * How a mutant's run is judged against the reference (runner/mutants.ts), on hand-made results:
 * a break is caught only when its named check went from ok to not ok, a fix only when its
 * signature reproduced before and that measurement is cured now, and anything else that changed
 * is collateral. A reference bundle from another run must be of the same profile and series.
 */
import t from 'tap';
import type { Measurement, RunResults, ScenarioResult, SignatureCheck } from '../../core/results.js';
import { judgeMutant, referenceGap } from '../../runner/mutants.js';
import type { Mutant } from '../../scenarios/mutants.js';

const m = (value: Measurement['value'], ok: boolean | undefined): Measurement => ({
  value,
  unit: '',
  ...(ok === undefined ? {} : { ok, expected: { op: 'eq', value: 0 } }),
});

function scenario(id: string, ms: Record<string, Measurement>, signatures: SignatureCheck[] = []): ScenarioResult {
  const failing = Object.values(ms).some((x) => x.ok === false);
  return {
    id,
    title: id,
    status: failing ? (signatures.length ? 'known-failure' : 'fail') : 'pass',
    seconds: 1,
    measurements: ms,
    signatures,
  } as unknown as ScenarioResult;
}

const run = (scenarios: ScenarioResult[], extra: Partial<RunResults> = {}): RunResults =>
  ({ profile: 'rfc-v2-debian', scenarios, ...extra }) as unknown as RunResults;

const breaks: Mutant = {
  edit: 'dmemfs-1g-leaks-on-truncate',
  scenario: 'dmemfs-files',
  measurement: 'free_dpages_restored_1G',
  effect: 'breaks',
  proves: 'the pool accounting after unlink',
} as Mutant;

const sig = (outcome: SignatureCheck['outcome'], cured?: string[]): SignatureCheck => ({
  id: 'vfio-get-dmem-pfn-null',
  title: 'oops',
  measurements: ['map_dma'],
  reproduced: outcome === 'reproduced',
  outcome,
  detail: '',
  ...(cured ? { cured } : {}),
});

const fixes: Mutant = {
  edit: 'get_dmem_pfn-pdnode',
  scenario: 'vfio-pin',
  measurement: 'map_dma',
  effect: 'fixes',
  signature: 'vfio-get-dmem-pfn-null',
  proves: 'a fixed known failure comes out as no longer reproduces',
} as Mutant;

const reference = run([
  scenario('dmemfs-files', { free_dpages_restored_1G: m(2, true), faults_1G: m(1, true) }),
  scenario('vfio-pin', { map_dma: m('bug: BUG', false), mount: m(true, true) }, [sig('reproduced')]),
  scenario('reservation', { registered_kb: m(1, true) }),
]);

t.test('a break is caught when its check goes from ok to not ok, and nothing else moved', async (t) => {
  const mutated = run([scenario('dmemfs-files', { free_dpages_restored_1G: m(1, false), faults_1G: m(1, true) })]);
  const o = judgeMutant(breaks, reference, mutated);
  t.equal(o.caught, true);
  t.same(o.collateral, []);
  t.equal(o.ok, true);
  t.equal(o.reference, '2 (ok)');
  t.equal(o.mutated, '1 (not ok)');
});

t.test('a break whose check still holds is not caught', async (t) => {
  const mutated = run([scenario('dmemfs-files', { free_dpages_restored_1G: m(2, true), faults_1G: m(1, true) })]);
  const o = judgeMutant(breaks, reference, mutated);
  t.equal(o.caught, false);
  t.equal(o.ok, false);
});

t.test('another measurement of the scenario that changed is collateral', async (t) => {
  const mutated = run([scenario('dmemfs-files', { free_dpages_restored_1G: m(1, false), faults_1G: m(512, false) })]);
  const o = judgeMutant(breaks, reference, mutated);
  t.equal(o.caught, true);
  t.same(o.collateral, ['dmemfs-files/faults_1G: 1 (ok) -> 512 (not ok)']);
  t.equal(o.ok, false);
});

t.test('another scenario whose verdict changed is collateral; one not run in the mutant is not', async (t) => {
  const mutated = run([
    scenario('dmemfs-files', { free_dpages_restored_1G: m(1, false), faults_1G: m(1, true) }),
    scenario('reservation', { registered_kb: m(0, false) }),
  ]);
  const o = judgeMutant(breaks, reference, mutated);
  t.same(o.collateral, ['reservation: pass -> fail']);
});

t.test('a fix is caught when its signature reproduced before and is cured now', async (t) => {
  const mutated = run([
    scenario('vfio-pin', { map_dma: m(true, true), mount: m(true, true) }, [sig('fixed', ['map_dma'])]),
  ]);
  const o = judgeMutant(fixes, reference, mutated);
  t.equal(o.caught, true);
  t.same(o.collateral, []);
  t.match(o.mutated, /^pass; map_dma true \(ok\)/);
});

t.test('a fix whose signature still reproduces is not caught', async (t) => {
  const mutated = run([
    scenario('vfio-pin', { map_dma: m('bug: BUG', false), mount: m(true, true) }, [sig('reproduced')]),
  ]);
  t.equal(judgeMutant(fixes, reference, mutated).caught, false);
});

t.test('a fix whose measurement was skipped is not a cure', async (t) => {
  const skipped = { ...m(null, undefined), skipped: 'no IOMMU' } as Measurement;
  const mutated = run([
    scenario('vfio-pin', { map_dma: skipped, mount: m(true, true) }, [
      { ...sig('not-rechecked'), unchecked: [{ measurement: 'map_dma', reason: 'no IOMMU' }] },
    ]),
  ]);
  t.equal(judgeMutant(fixes, reference, mutated).caught, false);
});

t.test('a skipped scenario leaves the mutant unjudged, with the reason', async (t) => {
  const mutated = run([{ ...scenario('dmemfs-files', {}), status: 'skip', reason: 'no KVM' } as ScenarioResult]);
  const o = judgeMutant(breaks, reference, mutated);
  t.equal(o.caught, false);
  t.equal(o.skipped, 'dmemfs-files was skipped: no KVM');
});

t.test('a reference bundle from another run must match profile and series and hold the scenarios', async (t) => {
  t.equal(referenceGap(reference, 'rfc-v2-debian', ['dmemfs-files', 'vfio-pin']), undefined);
  t.equal(
    referenceGap(reference, 'rfc-v2-debian-debug', ['dmemfs-files']),
    'it is a run of profile rfc-v2-debian, not rfc-v2-debian-debug',
  );
  t.equal(referenceGap(reference, 'rfc-v2-debian', ['mce-dmemfs']), 'it did not run mce-dmemfs');
  const edited = run(reference.scenarios, { series: { edits: ['x:05'] } as RunResults['series'] });
  t.equal(referenceGap(edited, 'rfc-v2-debian', ['vfio-pin']), 'its series was edited (x:05)');
  const prefix = run(reference.scenarios, { series: { prefix: 12 } as RunResults['series'] });
  t.equal(referenceGap(prefix, 'rfc-v2-debian', ['vfio-pin']), 'it applied patches 1..12 only');
  const skipped = run([{ ...scenario('vfio-pin', {}), status: 'skip' } as ScenarioResult]);
  t.equal(referenceGap(skipped, 'rfc-v2-debian', ['vfio-pin']), 'it did not run vfio-pin');
});

// The CI run of 2026-12-03 22:29: the cured oops had kept vfio-pin's later steps from running;
// with the fix they ran and passed, which is the fix's doing, not collateral.
t.test(
  'a fix may turn the measurements its failure kept from running into passing ones, not failing ones',
  async (t) => {
    const skippedByOops = { ...m(null, undefined), skipped: 'map_dma oopsed' } as Measurement;
    const ref = run([
      scenario('vfio-pin', { map_dma: m('bug: BUG', false), unmap_dma: skippedByOops, pinned: skippedByOops }, [
        sig('reproduced'),
      ]),
    ]);
    const passing = run([
      scenario('vfio-pin', { map_dma: m(true, true), unmap_dma: m(true, true), pinned: m(true, true) }, [
        sig('fixed', ['map_dma']),
      ]),
    ]);
    const o = judgeMutant(fixes, ref, passing);
    t.equal(o.caught, true);
    t.same(o.collateral, []);
    const failing = run([
      scenario('vfio-pin', { map_dma: m(true, true), unmap_dma: m(false, false), pinned: m(true, true) }, [
        sig('fixed', ['map_dma']),
      ]),
    ]);
    t.same(judgeMutant(fixes, ref, failing).collateral, ['vfio-pin/unmap_dma: skipped -> false (not ok)']);
    const breaksHere = { ...breaks, scenario: 'vfio-pin', measurement: 'map_dma' } as Mutant;
    t.same(
      judgeMutant(breaksHere, ref, passing).collateral,
      ['vfio-pin/unmap_dma: skipped -> true (ok)', 'vfio-pin/pinned: skipped -> true (ok)'],
      'a break gets no such allowance',
    );
  },
);

t.test("a race's measurements that moved by chance are listed, not blamed; any other is collateral", async (t) => {
  // The mutant run of 2026-12-04 06:39 (dmem-other-pagesize-not-busy): the 1G race did not fire in
  // its 15 tries, where it had fired in the reference, and the rest of pool-boundaries held.
  const pb: Mutant = {
    edit: 'dmem-other-pagesize-not-busy',
    scenario: 'pool-boundaries',
    measurement: 'second_mount_other_size_dmemfs_2M',
    effect: 'breaks',
    proves: 'a mount of another size is refused while the pool is busy',
  } as Mutant;
  const before = {
    second_mount_other_size_dmemfs_2M: m('refused:EBUSY', true),
    threads_pages_used_dmemfs_1G: m(2, false),
    threads_unlink_dmemfs_1G: m('bug: kernel BUG at ../src/fs/inode.c:538!', false),
    bad_option_dmemfs: m('refused:EINVAL', true),
  };
  const ref = run([scenario('pool-boundaries', before)]);
  const chance = run([
    scenario('pool-boundaries', {
      ...before,
      second_mount_other_size_dmemfs_2M: m('mounted', false),
      threads_pages_used_dmemfs_1G: m(1, true),
      threads_unlink_dmemfs_1G: m('unlinked', true),
    }),
  ]);
  const o = judgeMutant(pb, ref, chance);
  t.equal(o.ok, true, 'caught cleanly');
  t.same(o.collateral, []);
  t.same(o.byChance, [
    'pool-boundaries/threads_pages_used_dmemfs_1G: 2 (not ok) -> 1 (ok)',
    'pool-boundaries/threads_unlink_dmemfs_1G: "bug: kernel BUG at ../src/fs/inode.c:538!" (not ok) -> "unlinked" (ok)',
  ]);
  const other = run([
    scenario('pool-boundaries', {
      ...before,
      second_mount_other_size_dmemfs_2M: m('mounted', false),
      bad_option_dmemfs: m('mounted', false),
    }),
  ]);
  const x = judgeMutant(pb, ref, other);
  t.equal(x.ok, false, 'a measurement no race decides is still collateral');
  t.same(x.collateral, ['pool-boundaries/bad_option_dmemfs: "refused:EINVAL" (ok) -> "mounted" (not ok)']);
  t.notOk(x.byChance);
});
