/** A second-level guest run inside L1 and measured the same way whatever backs its RAM. */
import { kvmLargePages, l1KvmUsable, runL2, type L2Report } from '../runner/l1-guest.js';
import type { MemoryBackend } from '../vm/machine-spec.js';
import type { Guest } from '../vm/guest.js';
import type { Measurement, ScenarioContext } from './types.js';

export interface MeasuredL2 {
  memMiB: number;
  backend: MemoryBackend;
  hostNodes?: number[];
  /** The backend's page size in bytes: with KVM in L1 at 2 MiB or more, L2 should be mapped with large pages. */
  pageBytes: number;
  touchMiB?: number;
  /** Prefix of every measurement name, for several L2 guests in one scenario. */
  prefix?: string;
}

/**
 * Runs L2 (KVM in L1 where it can, else TCG, said in l2_accel), holds it while KVM's large-page
 * counter is read, and records l2_* measurements plus kvm_largepages.
 */
export async function measureL2(
  ctx: ScenarioContext,
  g: Guest,
  l2: MeasuredL2,
): Promise<{ report: L2Report; largepages: Measurement }> {
  const p = l2.prefix ?? '';
  const kvm = await l1KvmUsable(g);
  ctx.measure(`${p}l2_accel`, kvm.ok ? 'kvm' : 'tcg', '', undefined, kvm.why);
  const touchMiB = l2.touchMiB ?? 64;
  const r = await runL2(g, {
    memMiB: l2.memMiB,
    backend: l2.backend,
    ...(l2.hostNodes ? { hostNodes: l2.hostNodes, policy: 'bind' as const } : {}),
    touchMiB,
    accel: kvm.ok ? 'kvm' : 'tcg',
    timeoutMs: (kvm.ok ? 240 : 900) * 1000,
    ...(kvm.ok ? { holdS: 15, during: kvmLargePages } : {}),
  });
  ctx.evidence(`${p}L2 console`, r.console);
  ctx.evidence(`${p}L2 QEMU arguments (in L1)`, JSON.stringify(r.argv));
  ctx.measure(`${p}l2_seconds`, Math.round(r.seconds), 's');
  ctx.measure(`${p}l2_done`, r.done, '', { op: 'is', value: true });
  ctx.measure(
    `${p}l2_memtotal_kb`,
    r.memTotalKb ?? null,
    'kB',
    { op: 'approx', value: l2.memMiB * 1024 * 0.85, tolerance: 0.12 },
    `of ${l2.memMiB} MiB given`,
  );
  ctx.measure(`${p}l2_touched_mib`, r.touchedMiB ?? null, 'MiB', { op: 'eq', value: touchMiB });
  let largepages: Measurement;
  if (r.during) {
    // Backed by 2M (or larger) pages, the touched memory alone should take touchMiB/2 large mappings.
    const huge = l2.pageBytes >= 2 << 20;
    largepages = ctx.measure(
      `${p}kvm_largepages`,
      r.during.largepages ?? null,
      'mappings',
      huge ? { op: 'ge', value: touchMiB / 2 } : undefined,
      `debugfs kvm/largepages while L2 held ${touchMiB} MiB touched; nx_largepages_splitted ${r.during.splitted ?? '?'}`,
    );
  } else {
    largepages = ctx.measure(
      `${p}kvm_largepages`,
      null,
      'mappings',
      undefined,
      `skipped: L2 runs under TCG in L1 (${kvm.why}), so there are no KVM page tables to count`,
    );
  }
  return { report: r, largepages };
}
