/**
 * vfio-pin: VFIO type1 pins dmemfs memory for DMA through an emulated IOMMU. A hugetlbfs file
 * through the same device is the control; a crash while mapping is recorded with its kernel
 * report, for the known-failure signatures to judge.
 */
import { eq, is } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { dmemStats } from '../probes.js';
import { bindEduToVfio, crashReport, mountDmemfs, oneGigHugePage, waitForLine } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';
import { DEVDAX_PREPARE } from './l2-alternatives.js';

const MEASUREMENTS = [
  'edu_device_found',
  'edu_bound_to_vfio_pci',
  'control_hugetlbfs_dma_verified',
  'control_hugetlbfs_1G_dma_verified',
  'control_devdax_dma_verified',
  'control_anonymous_dma_verified',
  'mount_2M',
  'map_dma',
  'dma_round_trip_bytes_verified',
  'unmap_dma',
  'pinned',
  'dpages_held_while_pinned_after_unlink',
  'free_dpages_restored_after_unmap',
  'mount_4K',
  'map_dma_4K',
  'mount_1G',
  'map_dma_1G',
] as const;
type M = (typeof MEASUREMENTS)[number];
type DmaSteps = { ok: boolean; step?: string; steps?: Array<{ step: string; ok: boolean }> };
const stepOk = (r: DmaSteps, step: string) => r.steps?.find((x) => x.step === step)?.ok ?? false;

export const vfioPin = defineScenario({
  id: 'vfio-pin',
  title: 'VFIO type1 maps dmemfs memory for DMA through an emulated IOMMU; the pin holds the page until unmap',
  proves: `with intel-iommu in L1 and QEMU's edu device bound to vfio-pci, VFIO_IOMMU_MAP_DMA accepts
    a dmemfs mapping, a real DMA round trip lands in the right bytes, an unlinked file keeps its
    dpage while pinned, and unmapping frees it. The same round trip on hugetlbfs 2M and 1G, a
    device-dax namespace (memmap=1G!7G) and anonymous memory is the control.`,
  needs: ['patched-kernel', 'iommu'],
  boots: ['iommu-edu', 'iommu-edu-4K', 'iommu-edu-1G'],
  measurements: MEASUREMENTS,
  claims: {
    edu_device_found: { expect: is(true) },
    edu_bound_to_vfio_pci: { expect: is(true) },
    control_hugetlbfs_dma_verified: { expect: is(true) },
    control_hugetlbfs_1G_dma_verified: { expect: is(true) },
    control_devdax_dma_verified: { expect: is(true) },
    control_anonymous_dma_verified: { expect: is(true) },
    mount_2M: { expect: is(true) },
    map_dma: { expect: is(true) },
    dma_round_trip_bytes_verified: { expect: is(true) },
    unmap_dma: { expect: is(true) },
    pinned: { expect: is(true) },
    mount_4K: { expect: is(true) },
    map_dma_4K: { expect: is(true) },
    mount_1G: { expect: is(true) },
    map_dma_1G: { expect: is(true) },
    dpages_held_while_pinned_after_unlink: {
      unit: 'dpages',
      expect: eq(1),
      why: 'one 2M dpage pinned by VFIO; unlink must not return it to the pool',
    },
    // Held to the pool's size at the start, a value of the run: the body gives it.
    free_dpages_restored_after_unmap: { unit: 'dpages' },
  },
  async run(ctx) {
    const g = await ctx.boot('iommu-edu');
    const bdf = await bindEdu(ctx, g);
    if (!bdf) return;
    await hugetlbfsControl(ctx, g, bdf);
    await otherControls(ctx, g, bdf);
    await dmemfsAt2M(ctx, g, bdf);
    // The same pin at 4K and 1G, each on a fresh boot (the pool takes its page size at the first
    // mount, and a pin that oopses leaves a kernel that cannot be trusted).
    for (const size of ['4K', '1G'] as const) await dmemfsAtSize(ctx, await ctx.boot(`iommu-edu-${size}`), size);
  },
});

/** A dmemfs file's first pin at 4K or 1G (2 MiB of it given to the IOMMU): only whether it maps. */
async function dmemfsAtSize(ctx: ScenarioContext<M>, g: Guest, size: '4K' | '1G'): Promise<void> {
  const edu = await bindEduToVfio(g);
  const m = await mountDmemfs(g, size);
  ctx.measure(`mount_${size}`, m.ok, m.err ? { note: m.err } : {});
  if (!m.ok) return;
  const bdf = edu.bound ? edu.bdf : undefined;
  if (!bdf) {
    ctx.skipMeasure(`map_dma_${size}`, `edu not bound to vfio-pci: ${edu.evidence.slice(0, 120)}`);
    return;
  }
  const file = ['--file', '/mnt/dmem/dma', '--create'];
  const sizes = size === '4K' ? ['--size', '8K'] : ['--size', '1G', '--align', '1G', '--dma-size', '2M'];
  await dmaOnDmemfs(ctx, g, ['vfio-dma', '--device', bdf, ...file, ...sizes], `map_dma_${size}`);
}

/** What the 2M part measures once the pin is in place. */
const AFTER_MAP = [
  'dma_round_trip_bytes_verified',
  'unmap_dma',
  'pinned',
  'dpages_held_while_pinned_after_unlink',
  'free_dpages_restored_after_unmap',
] as const satisfies readonly M[];

/** The dmemfs part at 2M: the pin, the DMA, the pin held across an unlink, the unmap. */
async function dmemfsAt2M(ctx: ScenarioContext<M>, g: Guest, bdf: string): Promise<void> {
  const m = await mountDmemfs(g, '2M');
  ctx.measure('mount_2M', m.ok, m.err ? { note: m.err } : {});
  if (!m.ok) return;
  const start = await dmemStats(g);
  const argv = ['vfio-dma', '--device', bdf, '--file', '/mnt/dmem/dma', '--create', '--size', '2M'];
  const dma = await dmaOnDmemfs(ctx, g, argv, 'map_dma');
  if (!dma) {
    const why = 'VFIO_IOMMU_MAP_DMA crashed the kernel (map_dma): nothing after it can run on this boot';
    for (const n of AFTER_MAP) ctx.skipMeasure(n, why);
    return;
  }
  ctx.measure('dma_round_trip_bytes_verified', stepOk(dma, 'bytes_verified'));
  ctx.measure('unmap_dma', stepOk(dma, 'unmap_dma'));
  await g.exec(['rm', '-f', '/mnt/dmem/dma'], { check: true });
  await pinAcrossUnlink(ctx, g, bdf, start.free_dpages);
  await g.exec(['umount', '/mnt/dmem'], { check: true });
}

/** Find QEMU's edu device and bind it to vfio-pci; its PCI address, or undefined. */
async function bindEdu(ctx: ScenarioContext<M>, g: Guest): Promise<string | undefined> {
  const edu = await bindEduToVfio(g);
  ctx.measure('edu_device_found', Boolean(edu.bdf), { note: edu.bdf ?? 'none' });
  if (!edu.bdf) return undefined;
  ctx.evidence('bind edu to vfio-pci', edu.evidence);
  ctx.measure('edu_bound_to_vfio_pci', edu.bound);
  return edu.bdf;
}

/** The same DMA through the same device on a hugetlbfs file (struct-page memory). */
async function hugetlbfsControl(ctx: ScenarioContext<M>, g: Guest, bdf: string): Promise<void> {
  await g.exec(['sh', '-c', 'echo 4 > /proc/sys/vm/nr_hugepages'], { check: true });
  const argv = ['vfio-dma', '--device', bdf, '--file', '/dev/hugepages/dma', '--create', '--size', '2M'];
  const control = await ctx.json<DmaSteps>(g, argv);
  ctx.evidence('vfio-dma on hugetlbfs (control)', JSON.stringify(control));
  ctx.measure('control_hugetlbfs_dma_verified', stepOk(control, 'bytes_verified'));
  await g.exec(['rm', '-f', '/dev/hugepages/dma'], { check: true });
}

/** The DMA round trip on the other kinds of memory, before dmemfs (whose mapping may crash the kernel). */
async function otherControls(ctx: ScenarioContext<M>, g: Guest, bdf: string): Promise<void> {
  const dma = (extra: string[]) => ctx.json<DmaSteps>(g, ['vfio-dma', '--device', bdf, ...extra]);
  const no1G = await oneGigHugePage(g, '/mnt/huge1g');
  if (no1G) ctx.skipMeasure('control_hugetlbfs_1G_dma_verified', no1G);
  else {
    const huge1G = await dma(['--file', '/mnt/huge1g/dma', '--create', '--size', '1G', '--dma-size', '2M']);
    ctx.evidence('vfio-dma on hugetlbfs 1G', JSON.stringify(huge1G));
    ctx.measure('control_hugetlbfs_1G_dma_verified', stepOk(huge1G, 'bytes_verified'));
    await g.exec(['rm', '-f', '/mnt/huge1g/dma']);
  }
  const ns = await g.exec(DEVDAX_PREPARE);
  ctx.evidence('devdax namespace over memmap=1G!7G', `${ns.stdout}${ns.stderr}`);
  const devdax = await dma(['--file', '/dev/dax0.0', '--size', '2M', '--align', '2M']);
  ctx.evidence('vfio-dma on device-dax', JSON.stringify(devdax));
  ctx.measure('control_devdax_dma_verified', stepOk(devdax, 'bytes_verified'));
  const anon = await dma(['--anon', '--size', '2M']);
  ctx.evidence('vfio-dma on anonymous memory', JSON.stringify(anon));
  ctx.measure('control_anonymous_dma_verified', stepOk(anon, 'bytes_verified'));
}

/** VFIO_IOMMU_MAP_DMA of a dmemfs file; a kernel crash becomes the map_dma value with its report. */
async function dmaOnDmemfs(
  ctx: ScenarioContext<M>,
  g: Guest,
  argv: string[],
  name: 'map_dma' | 'map_dma_4K' | 'map_dma_1G',
): Promise<DmaSteps | undefined> {
  try {
    const dma = await ctx.json<DmaSteps>(g, argv);
    ctx.evidence(`vfio-dma (${name})`, JSON.stringify(dma));
    ctx.measure(name, stepOk(dma, 'map_dma'));
    return dma;
  } catch (e) {
    const report = crashReport(e, g);
    if (!report) throw e;
    ctx.evidence(`kernel report during VFIO_IOMMU_MAP_DMA (${name})`, report.excerpt);
    ctx.measure(name, `${report.kind}: ${report.title}`, { reports: [report] });
    return undefined;
  }
}

/** An unlinked file keeps its dpage while VFIO holds the pin; unmapping frees it. */
async function pinAcrossUnlink(ctx: ScenarioContext<M>, g: Guest, bdf: string, freeAtStart: number) {
  await g.exec(
    [
      'sh',
      '-c',
      'vfio-dma --device "$1" --file /mnt/dmem/pinned --create --size 2M --hold 20 > /tmp/vfio-hold.json 2>&1 &',
      'hold',
      bdf,
    ],
    { check: true },
  );
  const pinned = await waitForLine(g, '/tmp/vfio-hold.json', /"event":"pinned"/, 120_000);
  ctx.measure('pinned', Boolean(pinned));
  await g.exec(['rm', '-f', '/mnt/dmem/pinned'], { check: true });
  const whilePinned = await dmemStats(g);
  ctx.measure('dpages_held_while_pinned_after_unlink', freeAtStart - whilePinned.free_dpages);
  const done = await waitForLine(g, '/tmp/vfio-hold.json', /"ok":(true|false)/, 180_000);
  ctx.evidence('vfio-dma --hold', done ?? '(no final line)');
  const after = await dmemStats(g);
  ctx.measure('free_dpages_restored_after_unmap', after.free_dpages, { expect: eq(freeAtStart) });
}
