/**
 * hot-unplug-dimm: the reviewers' "incompatible with hot-unplug" question with a real DIMM:
 * removing one through QMP device_del beside a dmem pool in use, hot-adding one, and dmem=
 * aimed at a DIMM's range.
 */
import { eq, is } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { DIMM_BASE } from '../boots.js';
import { dmemRegions, dmemStats, logMatches, memTotalKb, type DmemStats } from '../probes.js';
import { guestSurvived, mapAndTouch, mountDmemfs } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';

interface MemoryDevice {
  type: string;
  data: { id?: string; addr: number; size: number; node: number; hotpluggable: boolean; hotplugged: boolean };
}

/** The memory blocks (sysfs memoryN) of a physical range, with their state and zones. */
async function blocksOf(
  g: Guest,
  start: number,
  size: number,
): Promise<Array<{ n: number; state: string; zones: string }>> {
  const bs = Number(
    (await g.exec(['cat', '/sys/devices/system/memory/block_size_bytes'], { check: true })).stdout
      .trim()
      .replace(/^(0x)?/, '0x'),
  );
  const first = Math.floor(start / bs);
  const last = Math.ceil((start + size) / bs);
  const r = await g.exec([
    'sh',
    '-c',
    'i=$1; while [ $i -lt $2 ]; do b=/sys/devices/system/memory/memory$i; ' +
      '[ -d $b ] && echo "$i $(cat $b/state) $(cat $b/valid_zones)"; i=$((i+1)); done; true',
    'blocks',
    String(first),
    String(last),
  ]);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [n, state, ...zones] = l.split(' ');
      return { n: Number(n), state: state ?? '', zones: zones.join(' ') };
    });
}

async function memoryDevices(g: Guest): Promise<MemoryDevice[]> {
  return g.qmp!.execute<MemoryDevice[]>('query-memory-devices');
}

/** Wait until the guest has onlined the blocks of a range (ACPI adds a DIMM shortly after boot or hot-add). */
async function waitOnline(
  g: Guest,
  addr: number,
  size: number,
  timeoutMs: number,
): Promise<Array<{ n: number; state: string; zones: string }>> {
  const end = Date.now() + timeoutMs;
  let blocks = await blocksOf(g, addr, size);
  while (Date.now() < end && !(blocks.length && blocks.every((b) => b.state === 'online'))) {
    await new Promise((r) => setTimeout(r, 500));
    blocks = await blocksOf(g, addr, size);
  }
  return blocks;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const scaled = (ctx: ScenarioContext<M>, ms: number) => (ctx.accel === 'tcg' ? ms * 4 : ms);
/** dmem=1G:1G on two nodes: one region per node. */
const REGIONS_AT_BOOT = 2;

const MEASUREMENTS = [
  'dimm_present',
  'dimm_addr',
  'dimm_blocks_online_movable',
  'dmem_regions_total',
  'dmem_regions_on_dimm',
  'mount_2M',
  'dmemfs_file_in_use',
  'dimm_removed',
  'kernel_survived_device_del',
  'memtotal_drop_kb',
  'dmem_free_dpages_unchanged',
  'dmemfs_file_still_mapped',
  'hotadded_blocks_online',
  'dmem_registered_unchanged_after_hotadd',
  'free_dpages_restored',
  'dmem_at_dimm_kernel_message',
  'dmem_at_dimm_regions',
  'kernel_survived_dmem_at_dimm',
] as const;
type M = (typeof MEASUREMENTS)[number];

export const hotUnplugDimm = defineScenario({
  id: 'hot-unplug-dimm',
  title:
    'memory hot-unplug against dmem: removing a DIMM through QMP device_del, hot-adding one, and dmem= aimed at a DIMM',
  proves: `the reviewers' "incompatible with hot-unplug" question, with a real DIMM: dmem memory
    never lies in a hot-pluggable DIMM (dmem= takes boot memory only; aimed at the DIMM's range it
    registers nothing there), a DIMM next to a dmem pool in use is removed through QMP device_del
    (DEVICE_DELETED, MemTotal falls by its size) while the pool and its files stay as they were,
    and a DIMM added later never joins the pool.`,
  needs: ['patched-kernel'],
  boots: ['dimm-hotplug', 'dimm-dmem-on-dimm'],
  measurements: MEASUREMENTS,
  async run(ctx) {
    const g = await ctx.boot('dimm-hotplug');
    const dimm = await dimmAtBoot(ctx, g);
    if (!dimm) return;
    const m = await mountDmemfs(g, '2M');
    ctx.measure('mount_2M', m.ok, { expect: is(true), ...(m.err ? { note: m.err } : {}) });
    if (!m.ok) return;
    const before = await removeDimmInUse(ctx, g, dimm);
    await hotAdd(ctx, g, before);
    await g.exec(['rm', '-f', '/mnt/dmem/held']);
    const freed = await dmemStats(g);
    ctx.measure('free_dpages_restored', freed.free_dpages, {
      unit: 'dpages',
      expect: eq(before.free_dpages + 32),
      why: '64 MiB = 32 dpages back',
    });
    await g.exec(['umount', '/mnt/dmem']);
    await dmemAimedAtDimm(ctx);
  },
});

/** The cold-plugged DIMM: where it is, its blocks online movable, no dmem region in it. */
async function dimmAtBoot(ctx: ScenarioContext<M>, g: Guest): Promise<MemoryDevice | undefined> {
  const devs = await memoryDevices(g);
  ctx.evidence('QMP query-memory-devices', JSON.stringify(devs));
  const dimm = devs.find((d) => d.data.id === 'dimm1');
  ctx.measure('dimm_present', Boolean(dimm), { expect: is(true) });
  if (!dimm) return undefined;
  ctx.measure('dimm_addr', hex(dimm.data.addr), {
    expect: is(hex(DIMM_BASE)),
    note: `node ${dimm.data.node}, ${dimm.data.size >> 20} MiB`,
  });
  const blocks = await waitOnline(g, dimm.data.addr, dimm.data.size, scaled(ctx, 20_000));
  ctx.evidence('DIMM memory blocks (n state zones)', blocks.map((b) => `${b.n} ${b.state} ${b.zones}`).join('\n'));
  ctx.measure(
    'dimm_blocks_online_movable',
    blocks.filter((b) => b.state === 'online' && /Movable/.test(b.zones)).length,
    { unit: 'blocks', expect: eq(dimm.data.size / BLOCK_BYTES), why: '1 GiB DIMM in 128 MiB memory blocks' },
  );
  const regions = await dmemRegions(g);
  ctx.measure('dmem_regions_total', regions.length, { unit: 'regions', expect: eq(REGIONS_AT_BOOT) });
  const onDimm = regions.filter((r) => r.start < dimm.data.addr + dimm.data.size && r.end > dimm.data.addr);
  ctx.measure('dmem_regions_on_dimm', onDimm.length, {
    unit: 'regions',
    expect: eq(0),
    note: `${regions.length} regions, all in boot memory`,
  });
  return dimm;
}

/** x86_64's memory block (section) size on these guests. */
const BLOCK_BYTES = 128 << 20;

/** A dmemfs file in use on the DIMM's node while the DIMM goes through QMP device_del. */
async function removeDimmInUse(ctx: ScenarioContext<M>, g: Guest, dimm: MemoryDevice): Promise<DmemStats> {
  const held = await mapAndTouch(ctx, g, ['--file', '/mnt/dmem/held', '--create', '--size', '64M', '--no-verify']);
  ctx.measure('dmemfs_file_in_use', held.ok, { expect: is(true) });
  const before = await dmemStats(g);
  const memBefore = await memTotalKb(g);
  const qmp = g.qmp!;
  const since = qmp.events.length;
  await qmp.execute('device_del', { id: 'dimm1' });
  let removed = true;
  await qmp.waitEvent('DEVICE_DELETED', scaled(ctx, 30_000), since).catch(() => (removed = false));
  const ost = qmp.events.slice(since).filter((e) => e.event === 'ACPI_DEVICE_OST');
  ctx.evidence('QMP events after device_del', JSON.stringify(qmp.events.slice(since)));
  ctx.measure('dimm_removed', removed, {
    expect: is(true),
    note: `DEVICE_DELETED; ${ost.length} ACPI_DEVICE_OST event(s)`,
  });
  const survived = await guestSurvived(g);
  ctx.measure('kernel_survived_device_del', survived.alive, {
    expect: is(true),
    ...(survived.why ? { note: survived.why } : {}),
    ...(survived.report ? { reports: [survived.report] } : {}),
  });
  if (!survived.alive) throw new Error(`the guest died removing the DIMM: ${survived.why ?? '?'}`);
  const memAfter = await memTotalKb(g);
  ctx.measure('memtotal_drop_kb', memBefore.total - memAfter.total, {
    unit: 'kB',
    expect: eq(dimm.data.size / 1024),
    why: "the DIMM's whole 1 GiB was in MemTotal (its struct pages live in boot memory) and leaves with it",
  });
  const after = await dmemStats(g);
  ctx.measure(
    'dmem_free_dpages_unchanged',
    after.free_dpages === before.free_dpages && after.registered_pages === before.registered_pages,
    { expect: is(true), note: `free ${before.free_dpages} -> ${after.free_dpages}` },
  );
  const reread = await mapAndTouch(ctx, g, ['--file', '/mnt/dmem/held', '--size', '64M', '--no-verify']);
  ctx.measure('dmemfs_file_still_mapped', reread.ok, { expect: is(true) });
  return before;
}

/** A DIMM added now: online, usable, and never part of the dmem pool. */
async function hotAdd(ctx: ScenarioContext<M>, g: Guest, before: DmemStats): Promise<void> {
  await g.qmp!.execute('object-add', { 'qom-type': 'memory-backend-ram', id: 'dimm2-mem', size: 1 << 30 });
  await g.qmp!.execute('device_add', { driver: 'pc-dimm', id: 'dimm2', memdev: 'dimm2-mem', node: 1 });
  const added = (await memoryDevices(g)).find((d) => d.data.id === 'dimm2');
  const addedBlocks = added ? await waitOnline(g, added.data.addr, added.data.size, scaled(ctx, 20_000)) : [];
  ctx.measure('hotadded_blocks_online', addedBlocks.filter((b) => b.state === 'online').length, {
    unit: 'blocks',
    expect: eq((1 << 30) / BLOCK_BYTES),
  });
  const afterAdd = await dmemStats(g);
  ctx.measure('dmem_registered_unchanged_after_hotadd', afterAdd.registered_pages === before.registered_pages, {
    expect: is(true),
  });
}

/** dmem= aimed at the DIMM's range: the kernel registers no region there. */
async function dmemAimedAtDimm(ctx: ScenarioContext<M>): Promise<void> {
  const g2 = await ctx.boot('dimm-dmem-on-dimm');
  const survived = await guestSurvived(g2);
  ctx.measure('kernel_survived_dmem_at_dimm', survived.alive, {
    expect: is(true),
    ...(survived.why ? { note: survived.why } : {}),
    ...(survived.report ? { reports: [survived.report] } : {}),
  });
  if (!survived.alive) throw new Error(`the guest booted with dmem= at the DIMM died: ${survived.why ?? '?'}`);
  const dimm2 = (await memoryDevices(g2)).find((d) => d.data.id === 'dimm1');
  const regions2 = await dmemRegions(g2);
  const lines = await logMatches(g2, /dmem: |dmemfs/);
  ctx.evidence('kernel log, dmem=512M@9G', lines.join('\n') || '(no dmem lines)');
  ctx.measure(
    'dmem_at_dimm_kernel_message',
    lines.some((l) => /not reserved for dmem due to holes/.test(l)),
    { expect: is(true), note: lines.find((l) => /not reserved/.test(l)) ?? '(none)' },
  );
  ctx.measure('dmem_at_dimm_regions', regions2.length, {
    unit: 'regions',
    expect: eq(0),
    note: `DIMM at ${dimm2 ? hex(dimm2.data.addr) : '?'}: e820 has no RAM there at reservation time`,
  });
}
