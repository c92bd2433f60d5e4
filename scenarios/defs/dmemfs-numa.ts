import { dmemRegions, dmemStats } from '../probes.js';
import { mountDmemfs, victimPaddr, waitForLine, type VictimEvent } from '../steps.js';
import type { ScenarioDefinition } from '../types.js';

/** Which node's dmem region holds a physical address. */
const nodeOf = (regions: Array<{ start: number; end: number; node: number }>, pa: number) =>
  regions.find((r) => pa >= r.start && pa < r.end)?.node;

export const dmemfsNuma: ScenarioDefinition = {
  id: 'dmemfs-numa',
  title: 'NUMA placement of dmemfs pages under MPOL_BIND and MPOL_PREFERRED',
  proves:
    "a dmemfs file populated under numactl --membind=N or --preferred=N takes its dpages from node N (per-node dmem statistics, and the guest-physical address of a mapped page, found through QEMU since pagemap hides dmemfs PFNs, lies in node N's dmem region); past node N's pool, MPOL_PREFERRED falls back to the other node and MPOL_BIND does not.",
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned'],
  async run(ctx) {
    const g = await ctx.boot('dmem-1G-aligned');
    const m = await mountDmemfs(g, '2M');
    ctx.measure('mount_2M', m.ok, '', { op: 'is', value: true }, m.err || undefined);
    if (!m.ok) return;
    const regions = await dmemRegions(g);
    for (const [policy, node] of [
      ['membind', 1],
      ['preferred', 0],
      ['membind', 0],
      ['preferred', 1],
    ] as const) {
      const tag = `${policy}_${node}`;
      const start = await dmemStats(g);
      // 8 MiB (4 dpages) populated under the policy; then a reader spins on the file on vCPU 1
      // (the pages exist already, its own policy does not matter) so QEMU can translate its address.
      const fill = await ctx.json<{ ok: boolean; error?: string }>(g, [
        'numactl',
        `--${policy}=${node}`,
        'map-and-touch',
        '--file',
        `/mnt/dmem/${tag}`,
        '--create',
        '--size',
        '8M',
        '--no-verify',
      ]);
      ctx.measure(`${tag}_populated`, fill.ok, '', { op: 'is', value: true }, fill.error);
      const log = `/tmp/numa-${tag}.json`;
      await g.exec(
        [
          'sh',
          '-c',
          'log=$1; shift; "$@" > "$log" 2>&1 &',
          'numa',
          log,
          'taskset',
          '-c',
          '1',
          'mce-victim',
          '--spin',
          '--file',
          `/mnt/dmem/${tag}`,
          '--size',
          '2M',
          '--timeout',
          '20',
        ],
        { check: true },
      );
      const readyLine = await waitForLine(g, log, /"event":"ready"/, 60_000);
      const ready = readyLine ? (JSON.parse(readyLine) as VictimEvent) : undefined;
      const pa = ready
        ? await victimPaddr(g, ready, (p) => nodeOf(regions, p) !== undefined)
        : { paddr: undefined, source: 'no ready line' };
      const during = await dmemStats(g);
      const used = (n: number) => (start[`node${n}/free_dpages`] ?? 0) - (during[`node${n}/free_dpages`] ?? 0);
      ctx.measure(`${tag}_node${node}_dpages`, used(node), 'dpages', { op: 'eq', value: 4 }, '8 MiB of 2M dpages');
      ctx.measure(`${tag}_node${1 - node}_dpages`, used(1 - node), 'dpages', { op: 'eq', value: 0 });
      ctx.measure(
        `${tag}_paddr_node`,
        pa.paddr ? (nodeOf(regions, Number(pa.paddr)) ?? null) : null,
        '',
        { op: 'eq', value: node },
        `${pa.paddr ?? '?'} (${pa.source})`,
      );
      await g.exec([
        'sh',
        '-c',
        'pkill -f "mce-victim --spin --file /mnt/dmem/$1"; sleep 0.5; rm -f "/mnt/dmem/$1"',
        'cleanup',
        tag,
      ]);
    }
    // Past one node's pool: 1 GiB + 64 MiB asked of node 1 (its pool is 1 GiB, 512 dpages).
    const start = await dmemStats(g);
    const pref = await ctx.json<{ ok: boolean; error?: string }>(g, [
      'numactl',
      '--preferred=1',
      'map-and-touch',
      '--file',
      '/mnt/dmem/big',
      '--create',
      '--size',
      '1088M',
      '--no-verify',
    ]);
    const after = await dmemStats(g);
    const delta = (n: number) => (start[`node${n}/free_dpages`] ?? 0) - (after[`node${n}/free_dpages`] ?? 0);
    ctx.measure('preferred_overflow_ok', pref.ok, '', { op: 'is', value: true }, pref.error);
    ctx.measure('preferred_overflow_node1_dpages', delta(1), 'dpages', { op: 'eq', value: 512 }, 'node 1 full');
    ctx.measure('preferred_overflow_node0_dpages', delta(0), 'dpages', { op: 'eq', value: 32 }, 'the rest from node 0');
    await g.exec(['rm', '-f', '/mnt/dmem/big'], { check: true });
    // The helper may die of SIGBUS when a fault finds no dpage: read the exit status, not only its JSON.
    const bound = await g.exec([
      'sh',
      '-c',
      'numactl --membind=1 map-and-touch --file /mnt/dmem/big2 --create --size 1088M --no-verify; echo "exit=$?"',
    ]);
    ctx.evidence('numactl --membind=1 map-and-touch 1088 MiB', `${bound.stdout}${bound.stderr}`.slice(-2000));
    const exit = Number(/exit=(\d+)/.exec(bound.stdout)?.[1]);
    ctx.measure(
      'membind_overflow_refused',
      exit !== 0,
      '',
      { op: 'is', value: true },
      `exit ${exit}${exit > 128 ? ` (signal ${exit - 128})` : ''}`,
    );
    await g.exec(['rm', '-f', '/mnt/dmem/big', '/mnt/dmem/big2']);
    const end = await dmemStats(g);
    ctx.measure('free_dpages_restored', end.free_dpages ?? null, 'dpages', {
      op: 'eq',
      value: start.free_dpages ?? -1,
    });
    await g.exec(['umount', '/mnt/dmem']);
  },
};
