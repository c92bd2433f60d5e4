/**
 * vfio-pin: VFIO type1 pins dmemfs memory for DMA through an emulated IOMMU. A hugetlbfs file
 * through the same device is the control; a crash while mapping is recorded with its kernel
 * report, for the known-failure signatures to judge.
 */
import { eq, is } from '../../core/results.js';
import type { Guest } from '../../vm/guest.js';
import { dmemStats } from '../probes.js';
import { crashReport, mountDmemfs, waitForLine } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';

const MEASUREMENTS = [
  'edu_device_found',
  'edu_bound_to_vfio_pci',
  'control_hugetlbfs_dma_verified',
  'mount_2M',
  'map_dma',
  'dma_round_trip_bytes_verified',
  'unmap_dma',
  'pinned',
  'dpages_held_while_pinned_after_unlink',
  'free_dpages_restored_after_unmap',
] as const;
type M = (typeof MEASUREMENTS)[number];
type DmaSteps = { ok: boolean; step?: string; steps: Array<{ step: string; ok: boolean }> };
const stepOk = (r: DmaSteps, step: string) => r.steps.find((x) => x.step === step)?.ok ?? false;

export const vfioPin = defineScenario({
  id: 'vfio-pin',
  title: 'VFIO type1 maps dmemfs memory for DMA through an emulated IOMMU; the pin holds the page until unmap',
  proves: `with intel-iommu in L1 and QEMU's edu device bound to vfio-pci, VFIO_IOMMU_MAP_DMA accepts
    a dmemfs mapping, a real DMA round trip lands in the right bytes, an unlinked file keeps its
    dpage while pinned, and unmapping frees it.`,
  needs: ['patched-kernel', 'iommu'],
  boots: ['iommu-edu'],
  measurements: MEASUREMENTS,
  async run(ctx) {
    const g = await ctx.boot('iommu-edu');
    const bdf = await bindEdu(ctx, g);
    if (!bdf) return;
    await hugetlbfsControl(ctx, g, bdf);
    const m = await mountDmemfs(g, '2M');
    ctx.measure('mount_2M', m.ok, { expect: is(true), ...(m.err ? { note: m.err } : {}) });
    if (!m.ok) return;
    const start = await dmemStats(g);
    const dma = await dmaOnDmemfs(ctx, g, bdf);
    if (!dma) return;
    ctx.measure('dma_round_trip_bytes_verified', stepOk(dma, 'bytes_verified'), { expect: is(true) });
    ctx.measure('unmap_dma', stepOk(dma, 'unmap_dma'), { expect: is(true) });
    await g.exec(['rm', '-f', '/mnt/dmem/dma'], { check: true });
    await pinAcrossUnlink(ctx, g, bdf, start.free_dpages);
    await g.exec(['umount', '/mnt/dmem'], { check: true });
  },
});

/** Find QEMU's edu device and bind it to vfio-pci; its PCI address, or undefined. */
async function bindEdu(ctx: ScenarioContext<M>, g: Guest): Promise<string | undefined> {
  const find = await g.exec([
    'sh',
    '-c',
    'for d in /sys/bus/pci/devices/*; do ' +
      'if [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ]; then basename $d; fi; done',
  ]);
  const bdf = find.stdout.trim().split('\n')[0] ?? '';
  ctx.measure('edu_device_found', /^[0-9a-f]{4}:/.test(bdf), { expect: is(true), note: bdf });
  if (!bdf) return undefined;
  const bind = await g.exec([
    'sh',
    '-c',
    'echo vfio-pci > "/sys/bus/pci/devices/$1/driver_override" && echo "$1" > /sys/bus/pci/drivers_probe && ' +
      'basename "$(readlink "/sys/bus/pci/devices/$1/driver")" && ' +
      'basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"',
    'bind',
    bdf,
  ]);
  ctx.evidence('bind edu to vfio-pci', bind.stdout + bind.stderr);
  ctx.measure('edu_bound_to_vfio_pci', /^vfio-pci$/m.test(bind.stdout), { expect: is(true) });
  return bdf;
}

/** The same DMA through the same device on a hugetlbfs file (struct-page memory). */
async function hugetlbfsControl(ctx: ScenarioContext<M>, g: Guest, bdf: string): Promise<void> {
  await g.exec(['sh', '-c', 'echo 4 > /proc/sys/vm/nr_hugepages'], { check: true });
  const argv = ['vfio-dma', '--device', bdf, '--file', '/dev/hugepages/dma', '--create', '--size', '2M'];
  const control = await ctx.json<DmaSteps>(g, argv);
  ctx.evidence('vfio-dma on hugetlbfs (control)', JSON.stringify(control));
  ctx.measure('control_hugetlbfs_dma_verified', stepOk(control, 'bytes_verified'), { expect: is(true) });
  await g.exec(['rm', '-f', '/dev/hugepages/dma'], { check: true });
}

/** VFIO_IOMMU_MAP_DMA of a dmemfs file; a kernel crash becomes the map_dma value with its report. */
async function dmaOnDmemfs(ctx: ScenarioContext<M>, g: Guest, bdf: string): Promise<DmaSteps | undefined> {
  try {
    const argv = ['vfio-dma', '--device', bdf, '--file', '/mnt/dmem/dma', '--create', '--size', '2M'];
    const dma = await ctx.json<DmaSteps>(g, argv);
    ctx.evidence('vfio-dma', JSON.stringify(dma));
    ctx.measure('map_dma', stepOk(dma, 'map_dma'), { expect: is(true) });
    return dma;
  } catch (e) {
    const report = crashReport(e, g);
    if (!report) throw e;
    ctx.evidence('kernel report during VFIO_IOMMU_MAP_DMA', report.excerpt);
    ctx.measure('map_dma', `${report.kind}: ${report.title}`, { expect: is(true), reports: [report] });
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
  ctx.measure('pinned', Boolean(pinned), { expect: is(true) });
  await g.exec(['rm', '-f', '/mnt/dmem/pinned'], { check: true });
  const whilePinned = await dmemStats(g);
  ctx.measure('dpages_held_while_pinned_after_unlink', freeAtStart - whilePinned.free_dpages, {
    unit: 'dpages',
    expect: eq(1),
    why: 'one 2M dpage pinned by VFIO; unlink must not return it to the pool',
  });
  const done = await waitForLine(g, '/tmp/vfio-hold.json', /"ok":(true|false)/, 180_000);
  ctx.evidence('vfio-dma --hold', done ?? '(no final line)');
  const after = await dmemStats(g);
  ctx.measure('free_dpages_restored_after_unmap', after.free_dpages, { unit: 'dpages', expect: eq(freeAtStart) });
}
