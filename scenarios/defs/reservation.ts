/**
 * reservation: what dmem= takes from the kernel, per node, against theory. MemTotal falls by the
 * reserved size less the struct pages the kernel no longer builds (64 B per 4 KiB page, 16 MiB
 * per GiB); the @addr and ! forms; memmap=nn!ss (device-dax) for comparison.
 *
 * Tolerances, from what moves between boots of the same kernel: KASLR places the kernel and
 * its early allocations differently at every boot, which moves MemTotal by up to about 1 MiB
 * (MISSION.md). Every MemTotal difference between two boots is therefore held to theory within
 * KASLR_KB, and a per-GiB figure within KASLR_KB divided by the GiB reserved. A drop of the whole
 * reserved size (no struct pages saved) is 16 MiB per GiB off theory: it always fails.
 */
import { eq, is, KB_PER_GIB, STRUCT_PAGE_KB_PER_GIB, within, type Expectation } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { dmemRegions, dmemStats, logMatches, memFreeKb, memTotalKb, memTotalOf, type DmemRegion } from '../probes.js';
import { defineScenario, type ScenarioContext } from '../types.js';

/** How far KASLR moves MemTotal between two boots of the same kernel (kB). */
const KASLR_KB = 1536;
/** What a reservation of `reservedKb` takes from MemTotal: the size less its struct pages. */
const dropOf = (reservedKb: number): Expectation =>
  within(reservedKb * (1 - STRUCT_PAGE_KB_PER_GIB / KB_PER_GIB), KASLR_KB);

/** Struct-page bytes saved per GiB, at `reservedKb` reserved. */
const savedPerGib = (reservedKb: number): Expectation =>
  within(STRUCT_PAGE_KB_PER_GIB, Math.ceil(KASLR_KB / (reservedKb / KB_PER_GIB)));

const sizeKb = (rs: DmemRegion[], node?: number) =>
  rs.filter((r) => node === undefined || r.node === node).reduce((a, r) => a + (r.end - r.start) / 1024, 0);

const MEASUREMENTS = [
  'memtotal_plain_kb',
  'registered_kb',
  'memtotal_dmem_kb',
  'reserved_kb',
  'reserved_node0_kb',
  'reserved_node1_kb',
  'memtotal_drop_kb',
  'struct_page_saved_kb_per_gib',
  'node0_memtotal_drop_kb',
  'node1_memtotal_drop_kb',
  'sweep_512M_reserved_kb',
  'sweep_512M_memtotal_drop_kb',
  'sweep_512M_saved_kb_per_gib',
  'sweep_1536M_reserved_kb',
  'sweep_1536M_memtotal_drop_kb',
  'sweep_1536M_saved_kb_per_gib',
  'at_5G_region',
  'keep_2G_node0_reserved_kb',
  'keep_2G_node1_reserved_kb',
  'keep_2G_node_memtotal_kb',
  'memmap_memtotal_drop_kb',
  'devdax_device',
  'devdax_memfree_drop_kb_per_gib',
] as const;
type M = (typeof MEASUREMENTS)[number];
type Base = { total: number; nodes: number[] };

export const reservation = defineScenario({
  id: 'reservation',
  title: 'dmem= reserves memory per node without struct pages; memmap= for comparison',
  proves: `MemTotal falls by the reserved size minus the struct pages the kernel no longer builds
    (measured per GiB against the theoretical 16 MiB/GiB, at 1, 2 and 3 GiB reserved); each node
    gets its share; the @addr form reserves exactly the range asked for, on the node that holds
    it, and the ! form leaves the kernel the size asked for on each node; a memmap=nn!ss
    reservation of the same kind still costs its struct pages.`,
  needs: ['patched-kernel'],
  boots: ['plain', 'dmem-1G', 'dmem-512M', 'dmem-1536M', 'dmem-at-5G', 'dmem-keep-2G', 'memmap-1G'],
  measurements: MEASUREMENTS,
  async run(ctx) {
    const base = await memTotalKb(await ctx.boot('plain'));
    ctx.measure('memtotal_plain_kb', base.total, {
      unit: 'kB',
      expect: memTotalOf(6),
      why: '6 GiB less its struct pages (96 MiB) and at most 128 MiB of the kernel’s fixed reservations',
    });
    await oneGibPerNode(ctx, base);
    await sweep(ctx, base);
    await otherForms(ctx);
    await memmapComparison(ctx, base);
  },
});

/** dmem=1G: 1 GiB on each node, MemTotal against theory, in total and per node. */
async function oneGibPerNode(ctx: ScenarioContext<M>, base: Base): Promise<void> {
  const dmem = await ctx.boot('dmem-1G');
  const withDmem = await memTotalKb(dmem);
  const regions = await dmemRegions(dmem);
  ctx.evidence('dmem lines of the kernel log', (await logMatches(dmem, /dmem: /)).join('\n'));
  const stats = await dmemStats(dmem);
  ctx.evidence('dmem debugfs', JSON.stringify(stats));
  const reservedKb = sizeKb(regions);
  ctx.measure('registered_kb', (stats.registered_pages ?? NaN) * 4, {
    unit: 'kB',
    expect: eq(2 * KB_PER_GIB),
    note: 'debugfs dmem/registered_pages x 4 KiB',
  });
  ctx.measure('memtotal_dmem_kb', withDmem.total, { unit: 'kB' });
  ctx.measure('reserved_kb', reservedKb, {
    unit: 'kB',
    expect: eq(2 * KB_PER_GIB),
    note: 'sum of the registered dmem regions: 1 GiB per node',
  });
  ctx.measure('reserved_node0_kb', sizeKb(regions, 0), { unit: 'kB', expect: eq(KB_PER_GIB) });
  ctx.measure('reserved_node1_kb', sizeKb(regions, 1), { unit: 'kB', expect: eq(KB_PER_GIB) });
  const drop = base.total - withDmem.total;
  ctx.measure('memtotal_drop_kb', drop, { unit: 'kB', expect: dropOf(2 * KB_PER_GIB), why: DROP_WHY });
  ctx.measure('struct_page_saved_kb_per_gib', Math.round(((reservedKb - drop) / reservedKb) * KB_PER_GIB), {
    unit: 'kB/GiB',
    expect: savedPerGib(reservedKb),
    why: 'theory: 64 B per 4 KiB page; KASLR moves the total by about 1 MiB, spread over 2 GiB',
  });
  for (const n of [0, 1] as const) {
    const nodeDrop = (base.nodes[n] ?? NaN) - (withDmem.nodes[n] ?? NaN);
    ctx.measure(`node${n}_memtotal_drop_kb`, nodeDrop, {
      unit: 'kB',
      expect: dropOf(sizeKb(regions, n)),
      why: DROP_WHY,
    });
  }
}

const DROP_WHY = 'the reserved size less its struct pages (16 MiB per GiB), within what KASLR moves';

/** The same against the reserved size: 512 MiB and 1.5 GiB per node (the chart's points). */
async function sweep(ctx: ScenarioContext<M>, base: Base): Promise<void> {
  for (const [name, perNodeMiB] of [
    ['dmem-512M', 512],
    ['dmem-1536M', 1536],
  ] as const) {
    const g = await ctx.boot(name);
    const total = await memTotalKb(g);
    const reserved = sizeKb(await dmemRegions(g));
    const drop = base.total - total.total;
    const tag = `${perNodeMiB}M` as const;
    ctx.measure(`sweep_${tag}_reserved_kb`, reserved, { unit: 'kB', expect: eq(2 * perNodeMiB * 1024) });
    ctx.measure(`sweep_${tag}_memtotal_drop_kb`, drop, { unit: 'kB', expect: dropOf(reserved), why: DROP_WHY });
    ctx.measure(`sweep_${tag}_saved_kb_per_gib`, Math.round(((reserved - drop) / reserved) * KB_PER_GIB), {
      unit: 'kB/GiB',
      expect: savedPerGib(reserved),
    });
  }
}

/** dmem=1G@5G reserves exactly [5G, 6G) on node 1; dmem=!2G leaves each node 2 GiB. */
async function otherForms(ctx: ScenarioContext<M>): Promise<void> {
  const atRegions = await dmemRegions(await ctx.boot('dmem-at-5G'));
  const text = atRegions.map((r) => `0x${r.start.toString(16)}-0x${r.end.toString(16)}@node${r.node}`).join(',');
  ctx.evidence('dmem=1G@5G regions', text);
  ctx.measure('at_5G_region', text, {
    expect: is('0x140000000-0x180000000@node1'),
    why: 'node 1 starts at 5G on two 3 GiB nodes',
  });
  const keep = await ctx.boot('dmem-keep-2G');
  const keepRegions = await dmemRegions(keep);
  for (const n of [0, 1] as const)
    ctx.measure(`keep_2G_node${n}_reserved_kb`, sizeKb(keepRegions, n), {
      unit: 'kB',
      expect: eq(KB_PER_GIB),
      why: 'a 3 GiB node, 2 GiB left to the kernel: the remaining 1 GiB, whole 128 MiB sections',
    });
  const keepTotal = await memTotalKb(keep);
  ctx.measure('keep_2G_node_memtotal_kb', Math.max(...keepTotal.nodes), {
    unit: 'kB',
    expect: memTotalOf(2),
    note: "the larger node's MemTotal: the 2 GiB it keeps, less struct pages and reservations",
  });
}

/**
 * memmap=1G!4G: the e820 pmem range is never memblock memory, so MemTotal loses 1 GiB less
 * 16 MiB as with dmem=; but device-dax builds struct pages for it in RAM (--map=mem).
 */
async function memmapComparison(ctx: ScenarioContext<M>, base: Base): Promise<void> {
  const memmap = await ctx.boot('memmap-1G');
  const withMemmap = await memTotalKb(memmap);
  ctx.measure('memmap_memtotal_drop_kb', base.total - withMemmap.total, {
    unit: 'kB',
    expect: dropOf(KB_PER_GIB),
    why: DROP_WHY,
  });
  const { before, after, created } = await createDevdaxNamespace(ctx, memmap);
  ctx.measure('devdax_device', created, { expect: is(true) });
  // Recorded without an expectation: theory says 16 MiB/GiB for a memmap in RAM; 5.10 showed
  // about 3.7 MiB here (see the README's open questions).
  ctx.measure('devdax_memfree_drop_kb_per_gib', before - after, {
    unit: 'kB/GiB',
    note: 'MemFree before - after creating the devdax namespace with --map=mem; theory 16384',
  });
}

async function createDevdaxNamespace(ctx: ScenarioContext<M>, g: Guest) {
  const free = () => memFreeKb(g);
  await g.exec(['sync']);
  const before = await free();
  const ns = await g.exec(['ndctl', 'create-namespace', '-f', '-e', 'namespace0.0', '--mode=devdax', '--map=mem']);
  ctx.evidence('ndctl create-namespace --mode=devdax --map=mem', `${ns.stdout}${ns.stderr}`);
  const after = await free();
  const dax = await g.exec(['sh', '-c', 'ls /dev/dax* 2>/dev/null']);
  return { before, after, created: /\/dev\/dax0\.0/.test(dax.stdout) };
}
