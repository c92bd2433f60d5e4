/**
 * dmemfs-numa: where dmemfs takes its pages from under MPOL_BIND and MPOL_PREFERRED, by the
 * per-node dmem statistics and by the guest-physical address of a mapped page; and what each
 * policy does past one node's pool.
 */
import { eq, is } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { delta, dmemRegions, dmemStats, type DmemRegion, type DmemStats } from '../probes.js';
import { mountDmemfs, victimPaddr, waitForLine, type VictimEvent } from '../steps.js';
import { defineScenario, family, type ScenarioContext } from '../types.js';

const PLACEMENTS = [
  ['membind', 1],
  ['preferred', 0],
  ['membind', 0],
  ['preferred', 1],
] as const;
type Tag = `${(typeof PLACEMENTS)[number][0]}_${0 | 1}`;
const TAGS = PLACEMENTS.map(([p, n]) => `${p}_${n}` as Tag);

const MEASUREMENTS = [
  'mount_2M',
  ...family(TAGS, ['populated', 'node0_dpages', 'node1_dpages', 'paddr_node']),
  'preferred_overflow_ok',
  'preferred_overflow_node1_dpages',
  'preferred_overflow_node0_dpages',
  'membind_overflow_exit',
  'free_dpages_restored',
  'node0_free_dpages_restored',
  'node1_free_dpages_restored',
] as const;
type M = (typeof MEASUREMENTS)[number];

/** The CPU of each node on the two-node boots (-smp 2,sockets=2: CPU n on node n). */
const cpuOf = (node: number) => node;

/** Which node's dmem region holds a physical address. */
const nodeOf = (regions: DmemRegion[], pa: number) => regions.find((r) => pa >= r.start && pa < r.end)?.node;
const used = (a: DmemStats, b: DmemStats, n: number) => delta(a.node(n, 'free_dpages'), b.node(n, 'free_dpages'));

export const dmemfsNuma = defineScenario({
  id: 'dmemfs-numa',
  title: 'NUMA placement of dmemfs pages under MPOL_BIND and MPOL_PREFERRED',
  proves: `a dmemfs file populated under numactl --membind=N or --preferred=N takes its dpages from
    node N (per-node dmem statistics, and the guest-physical address of a mapped page, found
    through QEMU since pagemap hides dmemfs PFNs, lies in node N's dmem region); past node N's
    pool, MPOL_PREFERRED falls back to the other node and MPOL_BIND does not.`,
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned'],
  measurements: MEASUREMENTS,
  async run(ctx) {
    const g = await ctx.boot('dmem-1G-aligned');
    const m = await mountDmemfs(g, '2M');
    ctx.measure('mount_2M', m.ok, { expect: is(true), ...(m.err ? { note: m.err } : {}) });
    if (!m.ok) return;
    const regions = await dmemRegions(g);
    if (regions.length === 0) throw new Error('no dmem region in the kernel log: nothing to place pages in');
    const start = await dmemStats(g);
    for (const [policy, node] of PLACEMENTS) await placement(ctx, g, regions, policy, node);
    await overflow(ctx, g);
    await g.exec(['rm', '-f', '/mnt/dmem/big', '/mnt/dmem/big2']);
    const end = await dmemStats(g);
    ctx.measure('free_dpages_restored', end.free_dpages, { unit: 'dpages', expect: eq(start.free_dpages) });
    // Each node's own count back too: the pool's total alone would hide a node that never gets its dpages back.
    for (const n of [0, 1] as const)
      ctx.measure(`node${n}_free_dpages_restored`, end.node(n, 'free_dpages'), {
        unit: 'dpages',
        expect: eq(start.node(n, 'free_dpages') ?? NaN),
        why: `every file is gone: node ${n}'s free dpages are back at their start value`,
      });
    await g.exec(['umount', '/mnt/dmem']);
  },
});

/**
 * 8 MiB (4 dpages) populated under the policy; then a reader spins on the file on vCPU 1 (the
 * pages exist already, its own policy does not matter) so QEMU can translate its address.
 */
async function placement(
  ctx: ScenarioContext<M>,
  g: Guest,
  regions: DmemRegion[],
  policy: 'membind' | 'preferred',
  node: 0 | 1,
): Promise<void> {
  const tag: Tag = `${policy}_${node}`;
  const start = await dmemStats(g);
  // Populated from a CPU of the other node: "the node asked for" and "the local node" differ.
  const fill = await ctx.json<{ ok: boolean; error?: string }>(g, [
    ...['numactl', `--physcpubind=${cpuOf(1 - node)}`, `--${policy}=${node}`],
    ...['map-and-touch', '--file', `/mnt/dmem/${tag}`, '--create', '--size', '8M', '--no-verify'],
  ]);
  ctx.measure(`${tag}_populated`, fill.ok, {
    expect: is(true),
    note: `from CPU ${cpuOf(1 - node)} (node ${1 - node})${fill.error ? `: ${fill.error}` : ''}`,
  });
  const pa = await spinningReaderPaddr(g, tag, regions);
  const during = await dmemStats(g);
  ctx.measure(`${tag}_node${node}_dpages`, used(start, during, node), {
    unit: 'dpages',
    expect: eq(4),
    why: '8 MiB of 2M dpages, all from the node asked for',
  });
  ctx.measure(`${tag}_node${node === 0 ? 1 : 0}_dpages`, used(start, during, 1 - node), {
    unit: 'dpages',
    expect: eq(0),
  });
  ctx.measure(`${tag}_paddr_node`, pa.paddr ? (nodeOf(regions, Number(pa.paddr)) ?? null) : null, {
    expect: eq(node),
    note: `${pa.paddr ?? '?'} (${pa.source})`,
  });
  await g.exec([
    'sh',
    '-c',
    'pkill -f "mce-victim --spin --file /mnt/dmem/$1"; sleep 0.5; rm -f "/mnt/dmem/$1"',
    'cleanup',
    tag,
  ]);
}

async function spinningReaderPaddr(g: Guest, tag: string, regions: DmemRegion[]) {
  const log = `/tmp/numa-${tag}.json`;
  await g.exec(
    [
      ...['sh', '-c', 'log=$1; shift; "$@" > "$log" 2>&1 &', 'numa', log],
      ...['taskset', '-c', '1', 'mce-victim', '--spin', '--file', `/mnt/dmem/${tag}`, '--size', '2M'],
      ...['--timeout', '20'],
    ],
    { check: true },
  );
  const readyLine = await waitForLine(g, log, /"event":"ready"/, 60_000);
  const ready = readyLine ? (JSON.parse(readyLine) as VictimEvent) : undefined;
  if (!ready) return { paddr: undefined, source: 'no ready line' };
  return victimPaddr(g, ready, (p) => nodeOf(regions, p) !== undefined);
}

/** Past one node's pool: 1 GiB + 64 MiB asked of node 1 (its pool is 1 GiB, 512 dpages). */
async function overflow(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const start = await dmemStats(g);
  // From node 0's CPU: a policy that fell back to the local node would take all 544 dpages there.
  const pref = await ctx.json<{ ok: boolean; error?: string }>(g, [
    ...['numactl', `--physcpubind=${cpuOf(0)}`, '--preferred=1', 'map-and-touch', '--file', '/mnt/dmem/big'],
    ...['--create', '--size', '1088M', '--no-verify'],
  ]);
  const after = await dmemStats(g);
  ctx.measure('preferred_overflow_ok', pref.ok, { expect: is(true), ...(pref.error ? { note: pref.error } : {}) });
  ctx.measure('preferred_overflow_node1_dpages', used(start, after, 1), {
    unit: 'dpages',
    expect: eq(512),
    why: "node 1's whole pool: 1 GiB of 2M dpages",
  });
  ctx.measure('preferred_overflow_node0_dpages', used(start, after, 0), {
    unit: 'dpages',
    expect: eq(32),
    why: 'the 64 MiB beyond node 1, from node 0',
  });
  await g.exec(['rm', '-f', '/mnt/dmem/big'], { check: true });
  // The helper may die of SIGBUS when a fault finds no dpage: read the exit status, not only its JSON.
  const bound = await g.exec([
    'sh',
    '-c',
    'numactl --physcpubind=0 --membind=1 map-and-touch --file /mnt/dmem/big2 --create --size 1088M --no-verify; ' +
      'echo "exit=$?"',
  ]);
  ctx.evidence('numactl --membind=1 map-and-touch 1088 MiB', `${bound.stdout}${bound.stderr}`.slice(-2000));
  const exit = /exit=(\d+)/.exec(bound.stdout);
  ctx.measure('membind_overflow_exit', exit ? Number(exit[1]) : null, {
    expect: eq(128 + 7),
    why: "the first fault past node 1's pool finds no dpage it may take: SIGBUS (the shell reports 128 + 7)",
    note: exit
      ? `exit ${exit[1]}${Number(exit[1]) > 128 ? ` (signal ${Number(exit[1]) - 128})` : ''}`
      : 'no exit status',
  });
}
