/**
 * fuzz-dmemfs: trinity, the syscall fuzzer, for a bounded time per page size, with the files
 * of a dmemfs mount as its victim descriptors and the memory-management calls as its targets.
 * The seed is fixed per run (FUZZ.seed, or DMEMFS_RIG_FUZZ_SEED) and recorded with the command
 * line that reproduces it. A kernel report while it ran is judged like any other: unclaimed, it
 * fails with its title; a known one is claimed by its signature. A run that finds nothing passes
 * and says how many calls it made; the last calls of each child (trinity's own logs) are the
 * evidence of a report.
 */
import { atLeast, eq } from '../../core/results.js';
import { RigError } from '../../core/errors.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { FUZZ, trinityArgv, trinityCalls } from '../peers.js';
import { programOutcome } from '../steps.js';
import { defineScenario, family, type ScenarioContext } from '../types.js';

const SIZES = ['4K', '2M'] as const;
type Size = (typeof SIZES)[number];
const MEASUREMENTS = family(['calls', 'kernel_reports', 'seed'], SIZES);
type M = (typeof MEASUREMENTS)[number];
const MNT = '/mnt/fuzz';
const LOGS = '/run/trinity-logs';

export interface FuzzParts {
  /** Seconds of fuzzing per page size. */
  seconds: number;
  sizes?: readonly Size[];
}

/** The seed of this run: DMEMFS_RIG_FUZZ_SEED, or the data's. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.DMEMFS_RIG_FUZZ_SEED;
  if (given === undefined || given === '') return FUZZ.seed;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 32 - 1)
    throw new RigError('usage', `DMEMFS_RIG_FUZZ_SEED=${given} is not a seed`, {
      fix: 'give an integer from 0 to 4294967295, or unset it for the default seed',
    });
  return n;
}

export function fuzzWith(parts: FuzzParts) {
  const sizes = parts.sizes ?? SIZES;
  return defineScenario({
    id: 'fuzz-dmemfs',
    title: 'trinity on dmemfs files: the memory-management calls, a fixed seed, a bounded time per page size',
    proves: `trinity (Debian 12), unprivileged, with dmemfs files as its victims and mmap, munmap,
      mremap, madvise, mprotect, msync, mlock, munlock, truncate, ftruncate and fallocate as its
      calls, runs ${parts.seconds} s per page size with no kernel report, and says how many calls
      it made; its seed and command line reproduce the run.`,
    needs: ['patched-kernel'],
    boots: ['fuzz-4K', 'fuzz-2M'],
    measurements: MEASUREMENTS.filter((n) => sizes.some((s) => n.endsWith(`_${s}`))),
    async run(ctx) {
      const seed = fuzzSeed();
      for (const size of sizes) if (!(await fuzzAt(ctx, size, seed, parts.seconds))) return;
    },
  });
}

/** The nightly's length; npm test keeps a 30-second case (tests/helpers/scenario-file.ts). */
export const fuzzDmemfs = fuzzWith({ seconds: 120 });

async function fuzzAt(ctx: ScenarioContext<M>, size: Size, seed: number, seconds: number): Promise<boolean> {
  const g = await ctx.boot(size === '4K' ? 'fuzz-4K' : 'fuzz-2M');
  await victims(g, size);
  const argv = trinityArgv(MNT, seed, seconds, LOGS);
  ctx.measure(`seed_${size}`, seed, {
    note: `reproduce in the boot ${size === '4K' ? 'fuzz-4K' : 'fuzz-2M'}: ${argv.join(' ')}`,
  });
  const r = await programOutcome(g, argv, { maxS: seconds + 60 }, (code) => `exit ${code}`);
  const trail = r.alive ? await childLogs(g) : '';
  const output = r.alive ? r.evidence : '';
  ctx.measure(`kernel_reports_${size}`, r.reports.length, {
    unit: 'reports',
    expect: eq(0),
    why:
      'a fuzzer run that finds nothing has no kernel report; ' +
      'one it finds fails with its title unless a signature claims it',
    note: r.reports.map((x) => x.title).join('; ') || r.outcome,
    evidence: `${output}\n--- the last calls of each child (trinity -l) ---\n${trail}`,
    ...(r.reports.length ? { reports: r.reports } : {}),
  });
  if (!r.alive) {
    ctx.skipMeasure(`calls_${size}`, `the guest died: ${r.outcome}`);
    return false;
  }
  ctx.measure(`calls_${size}`, trinityCalls(output), {
    unit: 'syscalls',
    expect: atLeast(100),
    why: 'trinity ran and made calls (a run that cannot start, or makes none, tested nothing)',
    note: `${r.seconds} s, ${r.outcome}`,
  });
  return true;
}

/** The mount at `size` and its victim files, open to the unprivileged fuzzer. */
async function victims(g: Guest, size: Size): Promise<void> {
  const script =
    'mkdir -p "$1" "$4" && mount -t dmemfs -o "pagesize=$2" none "$1" && chmod 1777 "$1" "$4" && ' +
    'i=0; while [ $i -lt "$3" ]; do f="$1/victim$i"; truncate -s "$5M" "$f" && chmod 666 "$f"; i=$((i+1)); done';
  await g.exec(['sh', '-c', script, 'victims', MNT, size, String(FUZZ.victims), LOGS, String(FUZZ.victimMiB)], {
    check: true,
  });
}

/** The last lines of each trinity child's log. */
async function childLogs(g: Guest): Promise<string> {
  const r = await g.exec([
    'sh',
    '-c',
    'for f in "$1"/trinity-child*.log; do echo "== $f"; tail -n 15 "$f"; done',
    'logs',
    LOGS,
  ]);
  return r.stdout.slice(-6000);
}
