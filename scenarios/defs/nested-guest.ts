/**
 * nested-guest: an L2 whose RAM is a 2M-page dmemfs file bound to node 1. Proves that QEMU in L1
 * can back a guest with dmemfs, that the pool moves by exactly the guest size on the right node
 * and comes back, and (with KVM in L1) at which page size KVM maps it.
 */
import { eq } from '../../core/results.js';
import { measureL2, L2_MEASURES } from '../l2-steps.js';
import { delta, dmemStats } from '../probes.js';
import { mountDmemfs } from '../steps.js';
import { defineScenario } from '../types.js';

const MEM_MIB = 256;
const DPAGES = (MEM_MIB << 20) / (2 << 20);

export const nestedGuest = defineScenario({
  id: 'nested-guest',
  title: 'an L2 guest whose RAM is a dmemfs file bound to node 1',
  proves: `QEMU in L1 runs a second-level guest from a 2M-page dmemfs file (KVM in L1 where it can,
    else TCG, reported); L2 sees its MemTotal; node 1's dmem statistics move by exactly the guest
    size and return after the file is removed; with KVM in L1, KVM's large-page counter shows
    whether L2 was mapped with huge pages.`,
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned'],
  measurements: [...L2_MEASURES, 'populate_faults', 'node1_dpages_used', 'node0_dpages_used', 'free_dpages_restored'],
  async run(ctx) {
    const g = await ctx.boot('dmem-1G-aligned');
    const m = await mountDmemfs(g, '2M');
    if (!m.ok) ctx.skip(`dmemfs would not mount at 2M in this boot: ${m.err}`);
    const start = await dmemStats(g);
    // Populate the file bound to node 1 (MPOL_BIND) before QEMU maps it: QEMU's own
    // prealloc=on fails on dmemfs ("preallocating memory failed: Bad address").
    const fill = await ctx.json<{ ok: boolean; minor_faults: number }>(g, [
      ...['numactl', '--membind=1', 'map-and-touch', '--file', '/mnt/dmem/l2-ram'],
      ...['--create', '--size', `${MEM_MIB}M`, '--no-verify'],
    ]);
    ctx.measure('populate_faults', fill.minor_faults, {
      unit: 'faults',
      expect: eq(DPAGES),
      why: 'one fault per 2M dpage',
    });
    await measureL2(ctx, g, {
      prefix: '',
      memMiB: MEM_MIB,
      backend: { kind: 'file', path: '/mnt/dmem/l2-ram', share: true, align: '2M' },
      hostNodes: [1],
      pageBytes: 2 << 20,
    });
    const during = await dmemStats(g);
    ctx.measure('node1_dpages_used', delta(start.node(1, 'free_dpages'), during.node(1, 'free_dpages')), {
      unit: 'dpages',
      expect: eq(DPAGES),
      why: `${MEM_MIB} MiB of 2M dpages, bound to node 1`,
    });
    ctx.measure('node0_dpages_used', delta(start.node(0, 'free_dpages'), during.node(0, 'free_dpages')), {
      unit: 'dpages',
      expect: eq(0),
      why: 'MPOL_BIND to node 1 takes nothing from node 0',
    });
    await g.exec(['rm', '-f', '/mnt/dmem/l2-ram'], { check: true });
    const after = await dmemStats(g);
    ctx.measure('free_dpages_restored', after.free_dpages, { unit: 'dpages', expect: eq(start.free_dpages) });
    await g.exec(['umount', '/mnt/dmem'], { check: true });
  },
});
