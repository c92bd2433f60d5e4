import { dmemRegions, dmemStats } from '../probes.js';
import { mountDmemfs } from '../steps.js';
import type { ScenarioDefinition } from '../types.js';

export const hotUnplug: ScenarioDefinition = {
  id: 'hot-unplug-offline',
  title: 'memory hot-unplug against dmem: offlining the memory blocks around a dmem region',
  proves:
    'shows what the memory hotplug interface can do with dmem memory: whether any memory block (sysfs memoryN) covers a dmem region (none can be offlined or removed without one), and what offlining the block next to a region does while a dmemfs file is in use there.',
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned'],
  async run(ctx) {
    const g = await ctx.boot('dmem-1G-aligned');
    const bs = Number(
      (await g.exec(['cat', '/sys/devices/system/memory/block_size_bytes'], { check: true })).stdout
        .trim()
        .replace(/^(0x)?/, '0x'),
    );
    ctx.measure('memory_block_size_mib', bs / 1048576, 'MiB');
    const present = new Set(
      (await g.exec(['ls', '/sys/devices/system/memory'], { check: true })).stdout
        .split(/\s+/)
        .filter((n) => /^memory\d+$/.test(n))
        .map((n) => Number(n.slice(6))),
    );
    const regions = await dmemRegions(g);
    ctx.evidence(
      'dmem regions',
      JSON.stringify(
        regions.map((r) => ({ ...r, start: `0x${r.start.toString(16)}`, end: `0x${r.end.toString(16)}` })),
      ),
    );
    let inside = 0;
    let blocksSpanned = 0;
    for (const r of regions) {
      for (let b = Math.floor(r.start / bs); b * bs < r.end; b++) {
        blocksSpanned++;
        if (present.has(b)) inside++;
      }
    }
    ctx.measure('memory_blocks_spanned_by_dmem', blocksSpanned, 'blocks');
    ctx.measure(
      'memory_blocks_present_for_dmem',
      inside,
      'blocks',
      { op: 'eq', value: 0 },
      'dmem memory has no struct pages and so no memory block: the hotplug interface cannot offline or remove it',
    );
    // The block right after the first region, with a dmemfs file in use in that region's node.
    const m = await mountDmemfs(g, '2M');
    ctx.measure('mount_2M', m.ok, '', { op: 'is', value: true }, m.err || undefined);
    const r0 = regions[0];
    if (!m.ok || !r0) return;
    await ctx.json(g, [
      'numactl',
      `--membind=${r0.node}`,
      'map-and-touch',
      '--file',
      '/mnt/dmem/held',
      '--create',
      '--size',
      '64M',
      '--no-verify',
    ]);
    const before = await dmemStats(g);
    const next = Math.ceil(r0.end / bs);
    const block = `/sys/devices/system/memory/memory${next}`;
    if (present.has(next)) {
      const r = await g.exec([
        'sh',
        '-c',
        'cat "$1/removable" 2>/dev/null; echo offline > "$1/state" && echo offlined; cat "$1/state"',
        'offline',
        block,
      ]);
      ctx.evidence(`offline ${block}`, `${r.stdout}${r.stderr}`);
      ctx.measure(
        'offline_block_next_to_dmem',
        /offlined/.test(r.stdout) ? 'offlined' : r.stderr.trim() || 'refused',
        '',
        undefined,
        `memory${next} starts at the end of a dmem region`,
      );
      await g.exec(['sh', '-c', 'echo online > "$1/state"', 'online', block]);
    } else {
      ctx.measure('offline_block_next_to_dmem', 'no block there', '', undefined, `memory${next} does not exist`);
    }
    const after = await dmemStats(g);
    ctx.measure('dmem_free_dpages_unchanged', (after.free_dpages ?? -1) === (before.free_dpages ?? -2), '', {
      op: 'is',
      value: true,
    });
    const alive = await g.exec(['true']).then((x) => x.code === 0);
    ctx.measure('kernel_survived', alive, '', { op: 'is', value: true });
    await g.exec(['rm', '-f', '/mnt/dmem/held']);
    await g.exec(['umount', '/mnt/dmem']);
  },
};
