/**
 * hot-unplug-offline: the memory hotplug interface against dmem. Which memory blocks cover a dmem
 * region (none can be offlined without one), and what offlining the block next to a region does
 * while a dmemfs file is in use there.
 */
import { eq, is } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { dmemRegions, dmemStats, type DmemRegion } from '../probes.js';
import { guestSurvived, mountDmemfs } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';

/** dmem=1G:1G on two nodes: two 1 GiB regions, 8 blocks of 128 MiB each. */
const REGIONS = 2;
const BLOCKS_PER_REGION = 8;

const MEASUREMENTS = [
  'memory_block_size_mib',
  'dmem_regions',
  'memory_blocks_spanned_by_dmem',
  'memory_blocks_present_for_dmem',
  'mount_2M',
  'offline_block_next_to_dmem',
  'dmem_free_dpages_unchanged',
  'kernel_survived',
] as const;
type M = (typeof MEASUREMENTS)[number];

export const hotUnplugOffline = defineScenario({
  id: 'hot-unplug-offline',
  title: 'memory hot-unplug against dmem: offlining the memory blocks around a dmem region',
  proves: `shows what the memory hotplug interface can do with dmem memory: whether any memory block
    (sysfs memoryN) covers a dmem region (none can be offlined or removed without one), and what
    offlining the block next to a region does while a dmemfs file is in use there.`,
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned'],
  measurements: MEASUREMENTS,
  async run(ctx) {
    const g = await ctx.boot('dmem-1G-aligned');
    const { bs, present, regions } = await blocksAndRegions(ctx, g);
    const m = await mountDmemfs(g, '2M');
    ctx.measure('mount_2M', m.ok, { expect: is(true), ...(m.err ? { note: m.err } : {}) });
    const r0 = regions[0];
    if (!m.ok || !r0) return;
    await ctx.json(g, [
      ...['numactl', `--membind=${r0.node}`, 'map-and-touch', '--file', '/mnt/dmem/held'],
      ...['--create', '--size', '64M', '--no-verify'],
    ]);
    const before = await dmemStats(g);
    await offlineNextBlock(ctx, g, Math.ceil(r0.end / bs), present);
    // A kernel that died offlining the block is measured dead, with its report, not thrown past.
    const survived = await guestSurvived(g);
    ctx.measure('kernel_survived', survived.alive, {
      expect: is(true),
      ...(survived.why ? { note: survived.why } : {}),
      ...(survived.report ? { reports: [survived.report] } : {}),
    });
    if (!survived.alive)
      return void ctx.skipMeasure('dmem_free_dpages_unchanged', `the guest died: ${survived.why ?? '?'}`);
    const after = await dmemStats(g);
    ctx.measure('dmem_free_dpages_unchanged', after.free_dpages === before.free_dpages, {
      expect: is(true),
      note: `free_dpages ${before.free_dpages} -> ${after.free_dpages}`,
    });
    await g.exec(['rm', '-f', '/mnt/dmem/held']);
    await g.exec(['umount', '/mnt/dmem']);
  },
});

/** The memory block size, the blocks sysfs has, the dmem regions and how many blocks they span. */
async function blocksAndRegions(ctx: ScenarioContext<M>, g: Guest) {
  const sizeText = (await g.exec(['cat', '/sys/devices/system/memory/block_size_bytes'], { check: true })).stdout;
  const bs = Number(sizeText.trim().replace(/^(0x)?/, '0x'));
  ctx.measure('memory_block_size_mib', bs / 1048576, { unit: 'MiB', expect: eq(128) });
  const present = new Set(
    (await g.exec(['ls', '/sys/devices/system/memory'], { check: true })).stdout
      .split(/\s+/)
      .filter((n) => /^memory\d+$/.test(n))
      .map((n) => Number(n.slice(6))),
  );
  const regions: DmemRegion[] = await dmemRegions(g);
  const hex = (n: number) => `0x${n.toString(16)}`;
  ctx.evidence('dmem regions', JSON.stringify(regions.map((r) => ({ ...r, start: hex(r.start), end: hex(r.end) }))));
  ctx.measure('dmem_regions', regions.length, { unit: 'regions', expect: eq(REGIONS), why: 'dmem=1G:1G, 2 nodes' });
  let inside = 0;
  let spanned = 0;
  for (const r of regions)
    for (let b = Math.floor(r.start / bs); b * bs < r.end; b++) {
      spanned++;
      if (present.has(b)) inside++;
    }
  ctx.measure('memory_blocks_spanned_by_dmem', spanned, {
    unit: 'blocks',
    expect: eq(REGIONS * BLOCKS_PER_REGION),
  });
  ctx.measure('memory_blocks_present_for_dmem', inside, {
    unit: 'blocks',
    expect: eq(0),
    why: 'dmem memory has no struct pages and so no memory block: the hotplug interface cannot offline or remove it',
  });
  return { bs, present, regions };
}

/** Offline (and online again) the block right after the first region. */
async function offlineNextBlock(ctx: ScenarioContext<M>, g: Guest, next: number, present: Set<number>) {
  const block = `/sys/devices/system/memory/memory${next}`;
  if (!present.has(next)) {
    ctx.skipMeasure(
      'offline_block_next_to_dmem',
      `memory${next}, the block right after the first dmem region, does not exist on this boot: nothing to offline`,
    );
    return;
  }
  const r = await g
    .exec(
      ['sh', '-c', 'cat "$1/removable" 2>/dev/null; echo offline > "$1/state" && echo offlined; cat "$1/state"'].concat(
        ['offline', block],
      ),
    )
    .catch(() => undefined);
  if (!r) {
    // The guest died: kernel_survived records it with its report.
    ctx.measure('offline_block_next_to_dmem', 'the guest died', { expect: is('offlined') });
    return;
  }
  ctx.evidence(`offline ${block}`, `${r.stdout}${r.stderr}`);
  ctx.measure('offline_block_next_to_dmem', /offlined/.test(r.stdout) ? 'offlined' : r.stderr.trim() || 'refused', {
    expect: is('offlined'),
    note: `memory${next} starts at the end of a dmem region`,
  });
  await g.exec(['sh', '-c', 'echo online > "$1/state"', 'online', block]);
}
