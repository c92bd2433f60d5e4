import { KB_PER_GIB, STRUCT_PAGE_KB_PER_GIB, dmemRegions, dmemStats, logMatches, memTotalKb } from '../probes.js';
import type { ScenarioDefinition } from '../types.js';

export const reservation: ScenarioDefinition = {
  id: 'reservation',
  title: 'dmem= reserves memory per node without struct pages; memmap= for comparison',
  proves:
    'MemTotal falls by the reserved size minus the struct pages the kernel no longer builds (measured per GiB against the theoretical 16 MiB/GiB, at 1, 2 and 3 GiB reserved); each node gets its share; the @addr form reserves exactly the range asked for, on the node that holds it, and the ! form leaves the kernel the size asked for on each node; a memmap=nn!ss reservation of the same kind still costs its struct pages.',
  needs: ['patched-kernel'],
  boots: ['plain', 'dmem-1G', 'dmem-512M', 'dmem-1536M', 'dmem-at-5G', 'dmem-keep-2G', 'memmap-1G'],
  async run(ctx) {
    const plain = await ctx.boot('plain');
    const base = await memTotalKb(plain);
    ctx.measure('memtotal_plain_kb', base.total, 'kB', { op: 'approx', value: 6 * KB_PER_GIB, tolerance: 0.05 });

    const dmem = await ctx.boot('dmem-1G');
    const withDmem = await memTotalKb(dmem);
    const regions = await dmemRegions(dmem);
    ctx.evidence('dmem lines of the kernel log', (await logMatches(dmem, /dmem: /)).join('\n'));
    const stats = await dmemStats(dmem);
    ctx.evidence('dmem debugfs', JSON.stringify(stats));
    const reservedKb = regions.reduce((a, r) => a + (r.end - r.start) / 1024, 0);
    ctx.measure(
      'registered_kb',
      (stats.registered_pages ?? NaN) * 4,
      'kB',
      { op: 'eq', value: 2 * KB_PER_GIB },
      'debugfs dmem/registered_pages x 4 KiB',
    );
    const perNode = [0, 1].map((n) =>
      regions.filter((r) => r.node === n).reduce((a, r) => a + (r.end - r.start) / 1024, 0),
    );
    ctx.measure('memtotal_dmem_kb', withDmem.total, 'kB');
    ctx.measure(
      'reserved_kb',
      reservedKb,
      'kB',
      { op: 'eq', value: 2 * KB_PER_GIB },
      'sum of the registered dmem regions: 1 GiB per node',
    );
    ctx.measure('reserved_node0_kb', perNode[0]!, 'kB', { op: 'eq', value: KB_PER_GIB });
    ctx.measure('reserved_node1_kb', perNode[1]!, 'kB', { op: 'eq', value: KB_PER_GIB });
    const delta = base.total - withDmem.total;
    ctx.measure('memtotal_drop_kb', delta, 'kB');
    const savedPerGib = ((reservedKb - delta) / reservedKb) * KB_PER_GIB;
    ctx.measure(
      'struct_page_saved_kb_per_gib',
      Math.round(savedPerGib),
      'kB/GiB',
      { op: 'approx', value: STRUCT_PAGE_KB_PER_GIB, tolerance: 0.1 },
      'theory: 64 B per 4 KiB page',
    );
    for (const n of [0, 1]) {
      const drop = (base.nodes[n] ?? 0) - (withDmem.nodes[n] ?? 0);
      ctx.measure(`node${n}_memtotal_drop_kb`, drop, 'kB', {
        op: 'approx',
        value: perNode[n]! * (1 - STRUCT_PAGE_KB_PER_GIB / KB_PER_GIB),
        tolerance: 0.05,
      });
    }

    // The same against the reserved size: 512 MiB and 1.5 GiB per node (the chart's points).
    for (const [name, perNodeMiB] of [
      ['dmem-512M', 512],
      ['dmem-1536M', 1536],
    ] as const) {
      const g = await ctx.boot(name);
      const total = await memTotalKb(g);
      const reserved = (await dmemRegions(g)).reduce((a, r) => a + (r.end - r.start) / 1024, 0);
      const tag = `${perNodeMiB}M`;
      ctx.measure(`sweep_${tag}_reserved_kb`, reserved, 'kB', { op: 'eq', value: 2 * perNodeMiB * 1024 });
      ctx.measure(`sweep_${tag}_memtotal_drop_kb`, base.total - total.total, 'kB');
      ctx.measure(
        `sweep_${tag}_saved_kb_per_gib`,
        Math.round(((reserved - (base.total - total.total)) / reserved) * KB_PER_GIB),
        'kB/GiB',
        { op: 'approx', value: STRUCT_PAGE_KB_PER_GIB, tolerance: 0.1 },
      );
    }

    // dmem=1G@5G: exactly [5G, 6G), on node 1 (which starts at 5G here).
    const at = await ctx.boot('dmem-at-5G');
    const atRegions = await dmemRegions(at);
    ctx.evidence(
      'dmem=1G@5G regions',
      JSON.stringify(
        atRegions.map((r) => ({ ...r, start: `0x${r.start.toString(16)}`, end: `0x${r.end.toString(16)}` })),
      ),
    );
    ctx.measure(
      'at_5G_region',
      atRegions.map((r) => `0x${r.start.toString(16)}-0x${r.end.toString(16)}@node${r.node}`).join(','),
      '',
      { op: 'is', value: '0x140000000-0x180000000@node1' },
    );
    // dmem=!2G: each node keeps 2 GiB for the kernel and gives dmem the rest (about 1 GiB of 3).
    const keep = await ctx.boot('dmem-keep-2G');
    const keepRegions = await dmemRegions(keep);
    for (const n of [0, 1]) {
      const kb = keepRegions.filter((r) => r.node === n).reduce((a, r) => a + (r.end - r.start) / 1024, 0);
      ctx.measure(
        `keep_2G_node${n}_reserved_kb`,
        kb,
        'kB',
        { op: 'approx', value: KB_PER_GIB, tolerance: 0.15 },
        '3 GiB node, 2 GiB left to the kernel',
      );
    }
    const keepTotal = await memTotalKb(keep);
    ctx.measure(
      'keep_2G_node_memtotal_kb',
      Math.max(...keepTotal.nodes),
      'kB',
      { op: 'approx', value: 2 * KB_PER_GIB, tolerance: 0.05 },
      "the larger node's MemTotal: about the 2 GiB it keeps",
    );

    const memmap = await ctx.boot('memmap-1G');
    const withMemmap = await memTotalKb(memmap);
    const memmapDrop = base.total - withMemmap.total;
    // The e820 pmem range is never memblock memory, so MemTotal loses 1 GiB minus 16 MiB as
    // with dmem= ...
    ctx.measure('memmap_memtotal_drop_kb', memmapDrop, 'kB', {
      op: 'approx',
      value: KB_PER_GIB - STRUCT_PAGE_KB_PER_GIB,
      tolerance: 0.01,
    });
    // ... but device-dax builds struct pages for it in RAM (--map=mem): they show as used memory.
    const free = async () =>
      Number(/^MemFree:\s+(\d+)/m.exec((await memmap.exec(['cat', '/proc/meminfo'], { check: true })).stdout)?.[1]);
    await memmap.exec(['sync']);
    const before = await free();
    const ns = await memmap.exec([
      'ndctl',
      'create-namespace',
      '-f',
      '-e',
      'namespace0.0',
      '--mode=devdax',
      '--map=mem',
    ]);
    ctx.evidence('ndctl create-namespace --mode=devdax --map=mem', `${ns.stdout}${ns.stderr}`);
    const after = await free();
    const dax = await memmap.exec(['sh', '-c', 'ls /dev/dax* 2>/dev/null']);
    ctx.measure('devdax_device', /\/dev\/dax0\.0/.test(dax.stdout), '', { op: 'is', value: true });
    // Recorded without an expectation: theory says 16 MiB/GiB for a memmap in RAM; 5.10 showed
    // about 3.7 MiB here (see the README's open questions).
    ctx.measure(
      'devdax_memfree_drop_kb_per_gib',
      before - after,
      'kB/GiB',
      undefined,
      'MemFree before - after creating the devdax namespace with --map=mem; theory 16384',
    );
  },
};
