import { dmemStats } from '../probes.js';
import { mountDmemfs } from '../steps.js';
import { measureL2 } from '../l2-steps.js';
import { KNOWN_FAILURES } from '../known-failures.js';
import type { ScenarioDefinition } from '../types.js';

export const nestedGuest: ScenarioDefinition = {
  id: 'nested-guest',
  title: 'an L2 guest whose RAM is a dmemfs file bound to node 1',
  proves:
    "QEMU in L1 runs a second-level guest from a 2M-page dmemfs file (KVM in L1 where it can, else TCG, reported); L2 sees its MemTotal; node 1's dmem statistics move by exactly the guest size and return after the file is removed; with KVM in L1, KVM's large-page counter shows whether L2 was mapped with huge pages.",
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned'],
  async run(ctx) {
    const g = await ctx.boot('dmem-1G-aligned');
    const m = await mountDmemfs(g, '2M');
    if (!m.ok) ctx.skip(`dmemfs would not mount at 2M in this boot: ${m.err}`);
    const start = await dmemStats(g);
    const memMiB = 256;
    // Populate the file bound to node 1 (MPOL_BIND) before QEMU maps it: QEMU's own
    // prealloc=on fails on dmemfs ("preallocating memory failed: Bad address").
    const fill = await ctx.json<{ ok: boolean; minor_faults: number }>(g, [
      'numactl',
      '--membind=1',
      'map-and-touch',
      '--file',
      '/mnt/dmem/l2-ram',
      '--create',
      '--size',
      `${memMiB}M`,
      '--no-verify',
    ]);
    ctx.measure('populate_faults', fill.minor_faults, 'faults', { op: 'eq', value: memMiB / 2 }, 'one per 2M dpage');
    const { largepages } = await measureL2(ctx, g, {
      memMiB,
      backend: { kind: 'file', path: '/mnt/dmem/l2-ram', share: true, align: '2M' },
      hostNodes: [1],
      pageBytes: 2 << 20,
    });
    if (largepages.ok === false) ctx.knownFailure('kvm_largepages', KNOWN_FAILURES.kvmDmem4k.reason);
    const during = await dmemStats(g);
    const pages = (memMiB << 20) / (2 << 20);
    ctx.measure(
      'node1_dpages_used',
      (start['node1/free_dpages'] ?? 0) - (during['node1/free_dpages'] ?? 0),
      'dpages',
      { op: 'eq', value: pages },
      `${memMiB} MiB of 2M dpages, bound to node 1`,
    );
    ctx.measure('node0_dpages_used', (start['node0/free_dpages'] ?? 0) - (during['node0/free_dpages'] ?? 0), 'dpages', {
      op: 'eq',
      value: 0,
    });
    await g.exec(['rm', '-f', '/mnt/dmem/l2-ram'], { check: true });
    const after = await dmemStats(g);
    ctx.measure('free_dpages_restored', after.free_dpages ?? null, 'dpages', {
      op: 'eq',
      value: start.free_dpages ?? -1,
    });
    await g.exec(['umount', '/mnt/dmem'], { check: true });
  },
};
