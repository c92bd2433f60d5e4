/**
 * debug-checks: what the debug variant's checkers (lockdep, DEBUG_ATOMIC_SLEEP, KASAN) report on
 * the plainest uses of dmemfs, each on a fresh kernel, so that every one of the series' debug
 * findings has a measurement that is always taken and can come back clean when it is fixed. Lockdep
 * turns itself off after its first report, hence one boot per lockdep finding:
 *   - a mount and a file created (an inode each): the allocation under dmemfs_inode_lock;
 *   - the first 4K fault of a file with a pool: the i_pages lock and the RCU section of the fault;
 *   - a 4K fault with no pool, bounded: the retried fault that takes mmap_lock again.
 * The plain kernel has none of these checkers: there the scenario is a skip with that reason.
 */
import { eq, type KernelReport } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { boundedHelper, mountDmemfs } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';

const MEASUREMENTS = ['mount_create_reports', 'first_fault_4k_reports', 'unservable_fault_4k_reports'] as const;
type M = (typeof MEASUREMENTS)[number];

export const debugChecks = defineScenario({
  id: 'debug-checks',
  title: "the debug kernel's checkers on a mount, a file, a 4K fault and a 4K fault with no pool",
  proves: `on the debug variant, a dmemfs mount and a file created report nothing, and neither does
    the first 4K fault of a file, nor a 4K fault that finds no pool (beyond its own SIGBUS): each
    on a fresh kernel, since lockdep reports once per boot. The debug signatures of the series
    claim what they report instead, and a fix shows as "no longer reproduces".`,
  needs: ['patched-kernel', 'debug-checks'],
  boots: ['debug-probe', 'debug-probe-no-pool'],
  measurements: MEASUREMENTS,
  async run(ctx) {
    const g = await ctx.boot('debug-probe');
    const mounted = await window(g, async () => {
      const m = await mountDmemfs(g, '4K');
      if (!m.ok) throw new Error(`dmemfs would not mount at 4K on the debug kernel: ${m.err}`);
      await g.exec(['truncate', '-s', '64K', '/mnt/dmem/probe'], { check: true });
    });
    held(ctx, 'mount_create_reports', mounted, 'a mount and a file created: two dmemfs inodes allocated');
    const fault = await window(g, async () => {
      await g.exec(['map-and-touch', '--file', '/mnt/dmem/probe', '--size', '4K'], { check: true });
    });
    held(ctx, 'first_fault_4k_reports', fault, 'one 4K page of an existing file touched: one fault, one dpage');
    await g.exec(['sh', '-c', 'rm -f /mnt/dmem/probe; umount /mnt/dmem']);
    const n = await ctx.boot('debug-probe-no-pool');
    const m = await mountDmemfs(n, '4K');
    if (!m.ok) throw new Error(`dmemfs would not mount at 4K with no pool: ${m.err}`);
    await n.exec(['truncate', '-s', '4K', '/mnt/dmem/none'], { check: true });
    const spin = await window(n, async () => {
      // Bounded: the series' 4K fault spins when it cannot be served (pool-boundaries measures that).
      const r = await boundedHelper(
        n,
        ['pool-edge', '--case', 'fill', '--file', '/mnt/dmem/none'].concat(['--page', '4096', '--pages', '1']),
        { quietS: 5, maxS: 60 },
      );
      ctx.evidence('a 4K fault with no pool', r.finished ? r.output : `stuck after ${r.seconds} s: ${r.state}`);
    });
    held(ctx, 'unservable_fault_4k_reports', spin, 'a fault the pool cannot serve gets SIGBUS, and nothing else');
  },
});

/** The kernel reports that appeared while `step` ran (their console lines settled). */
async function window(g: Guest, step: () => Promise<void>): Promise<KernelReport[]> {
  await g.console.settled();
  const mark = g.console.reports.length;
  await step();
  await g.console.settled();
  return g.console.reports.slice(mark).map((r) => ({ kind: r.kind, title: r.title, excerpt: r.excerpt.join('\n') }));
}

function held(ctx: ScenarioContext<M>, name: M, reports: KernelReport[], what: string): void {
  ctx.measure(name, reports.length, {
    unit: 'reports',
    expect: eq(0),
    why: `${what}: a correct kernel reports nothing to its checkers`,
    note: reports.map((r) => r.title).join('; ') || 'none',
    reports,
  });
}
