/**
 * peer-tools: Debian 12's memtester, fio and stress-ng, written by other people, pointed at a
 * file of a dmemfs mount and, beside it, of a hugetlbfs one (2M), and memtester at 4K as well.
 * What each does is held to what was seen and explained (scenarios/peers.ts): a pass, a failure
 * at setup with the step and errno the tool names, or a kernel report. dmemfs has no read,
 * write or fallocate, maps only MAP_SHARED and faults nothing past EOF: much of what these tools
 * do at setup fails on it, and each such failure is a fact recorded once.
 */
import { is } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { PEER_CASES, PEER_IDS, PEER_TARGETS, peerArgv, peerOutcome, type PeerCase, type PeerTarget } from '../peers.js';
import { programOutcome } from '../steps.js';
import { defineScenario, family, type ScenarioContext } from '../types.js';

/** The cases' targets only (the data says which target each case runs on). */
const MEASUREMENTS = family(PEER_IDS, PEER_TARGETS).filter((n) =>
  PEER_CASES.some((c) => Object.keys(c.outcomes).some((t) => n === `${c.id}_${t}`)),
);
type M = (typeof MEASUREMENTS)[number];

const MNT: Record<PeerTarget, string> = {
  dmemfs_4K: '/mnt/peer-dmem',
  dmemfs_2M: '/mnt/peer-dmem',
  hugetlbfs_2M: '/mnt/peer-huge',
};

export interface PeerParts {
  /** The cases to run (ids of PEER_CASES; default all). */
  cases?: readonly string[];
  /** The targets to run them on (default all the data gives). */
  targets?: readonly PeerTarget[];
}

export function peerToolsWith(parts: PeerParts = {}) {
  const cases = PEER_CASES.filter((c) => !parts.cases || parts.cases.includes(c.id));
  const on = (t: PeerTarget) => !parts.targets || parts.targets.includes(t);
  const measurements = MEASUREMENTS.filter((n) =>
    cases.some((c) => Object.keys(c.outcomes).some((t) => on(t as PeerTarget) && n === `${c.id}_${t}`)),
  );
  const boots = (['peers-2M', 'peers-4K'] as const).filter((b) =>
    measurements.some((n) => (b === 'peers-4K' ? n.endsWith('_4K') : !n.endsWith('_4K'))),
  );
  return defineScenario({
    id: 'peer-tools',
    title: 'memtester, fio and stress-ng on dmemfs files, beside hugetlbfs',
    proves: `what Debian 12's memtester (-p 0 -d FILE), fio (its buffers in a shared mapping of a
      file, buffered and direct=1) and stress-ng (stackmmap, tlb-shootdown with --temp-path) do with
      a dmemfs file at 2M, beside a hugetlbfs file as the control, and memtester at 4K: each
      outcome, a pass or the failing step with its errno, held to what was seen and why.`,
    needs: ['patched-kernel'],
    boots: [...boots],
    measurements,
    async run(ctx) {
      const want = (t: PeerTarget) => measurements.some((n) => n.endsWith(`_${t}`));
      if (boots.includes('peers-2M')) {
        const g2 = await ctx.boot('peers-2M');
        const up: Partial<Record<PeerTarget, string | undefined>> = {};
        if (want('hugetlbfs_2M')) up.hugetlbfs_2M = await mount(g2, 'hugetlbfs', MNT.hugetlbfs_2M, []);
        if (want('dmemfs_2M')) up.dmemfs_2M = await mount(g2, 'dmemfs', MNT.dmemfs_2M, ['-o', 'pagesize=2M']);
        const targets = (['dmemfs_2M', 'hugetlbfs_2M'] as const).filter(want);
        if (!(await runTargets(ctx, g2, cases, [...targets], up))) return;
      }
      if (boots.includes('peers-4K')) {
        const g4 = await ctx.boot('peers-4K');
        const dmem4 = await mount(g4, 'dmemfs', MNT.dmemfs_4K, ['-o', 'pagesize=4K']);
        await runTargets(ctx, g4, cases, ['dmemfs_4K'], { dmemfs_4K: dmem4 });
      }
    },
  });
}

export const peerTools = peerToolsWith();

/** Mount a file system for the cases; undefined when it mounted, else why not. */
async function mount(g: Guest, type: string, dir: string, opts: string[]): Promise<string | undefined> {
  await g.exec(['mkdir', '-p', dir], { check: true });
  const r = await g.exec(['mount', '-t', type, ...opts, 'none', dir]);
  return r.code === 0 ? undefined : `${type} would not mount: ${r.stderr.trim()}`;
}

/** Every case on each of `targets`; false when the guest died (the rest skipped, with why). */
async function runTargets(
  ctx: ScenarioContext<M>,
  g: Guest,
  cases: readonly PeerCase[],
  targets: PeerTarget[],
  mountErrors: Partial<Record<PeerTarget, string | undefined>>,
): Promise<boolean> {
  const todo = cases.flatMap((c) => targets.filter((t) => c.outcomes[t]).map((t) => ({ c, t })));
  for (const [i, { c, t }] of todo.entries()) {
    const name: M = `${c.id}_${t}`;
    const held = c.outcomes[t]!;
    if (mountErrors[t]) {
      ctx.skipMeasure(name, mountErrors[t]!);
      continue;
    }
    const file = `${MNT[t]}/${c.id}`;
    if (c.truncateMiB) await g.exec(['truncate', '-s', `${c.truncateMiB}M`, file], { check: true });
    const argv = peerArgv(c, file, MNT[t]);
    const r = await programOutcome(g, argv, { maxS: c.maxS }, peerOutcome);
    ctx.measure(name, r.outcome, {
      expect: is(held.outcome),
      why: held.because,
      ...(r.alive ? { note: `${r.seconds} s: ${argv.join(' ')}`, evidence: r.evidence } : {}),
      ...(r.reports.length ? { reports: r.reports } : {}),
    });
    if (!r.alive) {
      for (const rest of todo.slice(i + 1))
        ctx.skipMeasure(`${rest.c.id}_${rest.t}`, `the guest died in ${name} (its measurement has the report)`);
      return false;
    }
    await g.exec(['sh', '-c', 'rm -f "$1"/* /var/tmp/fio.data', 'clean', MNT[t]]);
  }
  return true;
}
