import { KNOWN_FAILURES, knownCrash } from '../known-failures.js';
import { dmemStats } from '../probes.js';
import { mountDmemfs, waitForLine } from '../steps.js';
import type { ScenarioDefinition } from '../types.js';

export const vfioPin: ScenarioDefinition = {
  id: 'vfio-pin',
  title: 'VFIO type1 maps dmemfs memory for DMA through an emulated IOMMU; the pin holds the page until unmap',
  proves:
    "with intel-iommu in L1 and QEMU's edu device bound to vfio-pci, VFIO_IOMMU_MAP_DMA accepts a dmemfs mapping, a real DMA round trip lands in the right bytes, an unlinked file keeps its dpage while pinned, and unmapping frees it.",
  needs: ['patched-kernel', 'iommu'],
  boots: ['iommu-edu'],
  async run(ctx) {
    const g = await ctx.boot('iommu-edu');
    const find = await g.exec([
      'sh',
      '-c',
      'for d in /sys/bus/pci/devices/*; do if [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ]; then basename $d; fi; done',
    ]);
    const bdf = find.stdout.trim().split('\n')[0] ?? '';
    ctx.measure('edu_device_found', /^[0-9a-f]{4}:/.test(bdf), '', { op: 'is', value: true }, bdf);
    if (!bdf) return;
    const bind = await g.exec([
      'sh',
      '-c',
      'echo vfio-pci > "/sys/bus/pci/devices/$1/driver_override" && echo "$1" > /sys/bus/pci/drivers_probe && basename "$(readlink "/sys/bus/pci/devices/$1/driver")" && basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"',
      'bind',
      bdf,
    ]);
    ctx.evidence('bind edu to vfio-pci', bind.stdout + bind.stderr);
    ctx.measure('edu_bound_to_vfio_pci', /^vfio-pci$/m.test(bind.stdout), '', { op: 'is', value: true });
    // Control: the same DMA through the same device on a hugetlbfs file (struct-page memory).
    await g.exec(['sh', '-c', 'echo 4 > /proc/sys/vm/nr_hugepages'], { check: true });
    const control = await ctx.json<{ ok: boolean; steps: Array<{ step: string; ok: boolean }> }>(g, [
      'vfio-dma',
      '--device',
      bdf,
      '--file',
      '/dev/hugepages/dma',
      '--create',
      '--size',
      '2M',
    ]);
    ctx.evidence('vfio-dma on hugetlbfs (control)', JSON.stringify(control));
    ctx.measure(
      'control_hugetlbfs_dma_verified',
      control.steps.find((x) => x.step === 'bytes_verified')?.ok ?? false,
      '',
      { op: 'is', value: true },
    );
    await g.exec(['rm', '-f', '/dev/hugepages/dma'], { check: true });
    const m = await mountDmemfs(g, '2M');
    ctx.measure('mount_2M', m.ok, '', { op: 'is', value: true }, m.err || undefined);
    if (!m.ok) return;
    const start = await dmemStats(g);
    let dma: { ok: boolean; step?: string; steps: Array<{ step: string; ok: boolean }> };
    try {
      dma = await ctx.json(g, ['vfio-dma', '--device', bdf, '--file', '/mnt/dmem/dma', '--create', '--size', '2M']);
    } catch (e) {
      const crash = knownCrash(e, KNOWN_FAILURES.vfioGetDmemPfn);
      if (!crash) throw e;
      ctx.evidence('kernel report during VFIO_IOMMU_MAP_DMA', crash.evidence ?? crash.message);
      ctx.measure('map_dma', `${crash.kind}: ${crash.message}`, '', { op: 'is', value: true });
      ctx.knownFailure('map_dma', KNOWN_FAILURES.vfioGetDmemPfn.reason);
      return;
    }
    ctx.evidence('vfio-dma', JSON.stringify(dma));
    ctx.measure('map_dma', dma.steps.find((x) => x.step === 'map_dma')?.ok ?? false, '', { op: 'is', value: true });
    ctx.measure('dma_round_trip_bytes_verified', dma.steps.find((x) => x.step === 'bytes_verified')?.ok ?? false, '', {
      op: 'is',
      value: true,
    });
    ctx.measure('unmap_dma', dma.steps.find((x) => x.step === 'unmap_dma')?.ok ?? false, '', { op: 'is', value: true });
    await g.exec(['rm', '-f', '/mnt/dmem/dma'], { check: true });
    // Pinned while unlinked: the dpage must stay in use until the mapping is gone.
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
    ctx.measure('pinned', Boolean(pinned), '', { op: 'is', value: true });
    await g.exec(['rm', '-f', '/mnt/dmem/pinned'], { check: true });
    const whilePinned = await dmemStats(g);
    ctx.measure(
      'dpages_held_while_pinned_after_unlink',
      (start.free_dpages ?? 0) - (whilePinned.free_dpages ?? 0),
      'dpages',
      { op: 'eq', value: 1 },
    );
    const done = await waitForLine(g, '/tmp/vfio-hold.json', /"ok":(true|false)/, 180_000);
    ctx.evidence('vfio-dma --hold', done ?? '(no final line)');
    const after = await dmemStats(g);
    ctx.measure('free_dpages_restored_after_unmap', after.free_dpages ?? null, 'dpages', {
      op: 'eq',
      value: start.free_dpages ?? -1,
    });
    await g.exec(['umount', '/mnt/dmem'], { check: true });
  },
};
