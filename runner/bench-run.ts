/**
 * Main-job benchmark: the whole `run` (kernel pipeline, images, every scenario) as a child
 * process, timed from the outside. Warm: on the cache as it is (medians over --runs). Cold:
 * once more in an empty temporary cache (everything downloaded, built and booted from
 * nothing; ccache empty too), which is what a fresh CI runner pays.
 */
import { median } from '../core/stats.js';
import { spawnStreaming as spawn } from '../core/exec.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { RunResults } from '../core/results.js';
import { join } from 'node:path';
import { cacheRoot, projectRoot } from '../core/paths.js';
import { info } from '../core/log.js';
import { RigError } from '../core/errors.js';

export interface RunBench {
  profile: string;
  scenarios: string[] | 'all';
  /** Runs that finished with failed scenarios (exit 1 and a results.json): timed all the same. */
  runsWithFailures: number;
  warm: { runs: number; medianSeconds: number; each: number[] };
  cold?: { seconds: number };
  /** With --jobs 1,2,...: the warm runs at each number of workers, and each run's statuses. */
  byJobs?: Array<{ jobs: number; medianSeconds: number; each: number[]; statuses: Record<string, string>[] }>;
  /** The median at the most jobs over the median at the fewest. */
  jobsRatio?: number;
  /** Whether every run, at every number of workers, gave every scenario the same status. */
  statusesIdentical?: boolean;
}

const statusesOf = (out: string): Record<string, string> =>
  Object.fromEntries(
    (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults).scenarios.map((s) => [s.id, s.status]),
  );

/**
 * `dmemfs-rig run` as a child, timed. A run that ends with failed scenarios (exit 1, its
 * results.json written) is a complete run and counts; any other exit is an error.
 */
function timedRun(args: string[], out: string, env: NodeJS.ProcessEnv): Promise<{ seconds: number; failed: boolean }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(
      process.execPath,
      [join(projectRoot(), 'dist', 'scripts', 'cli.js'), 'run', ...args, '--out', out],
      { env: { ...process.env, ...env, DMEMFS_RIG_LOG: 'quiet' }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    p.on('error', reject);
    p.on('close', (code) => {
      const seconds = (Date.now() - t0) / 1000;
      if (code === 0) return resolve({ seconds, failed: false });
      if (code === 1 && existsSync(join(out, 'results.json'))) return resolve({ seconds, failed: true });
      reject(
        new RigError('bench-run', `the timed run exited with ${code}`, {
          fix: 'run `dmemfs-rig run` alone and read its bundle',
        }),
      );
    });
  });
}

export async function benchRun(opts: {
  runs: number;
  cold: boolean;
  scenarios?: string[];
  profile?: string;
  jobs?: number[];
}): Promise<RunBench> {
  const outRoot = mkdtempSync(join(cacheRoot(), '..', 'dmemfs-rig-bench-out-'));
  const profile = opts.profile ?? 'rfc-v2-debian';
  const scen = [...(opts.scenarios ?? []).flatMap((s) => ['--scenario', s]), '--profile', profile];
  try {
    const res: RunBench = {
      profile,
      scenarios: opts.scenarios?.length ? opts.scenarios : 'all',
      runsWithFailures: 0,
      warm: { runs: opts.runs, medianSeconds: 0, each: [] },
    };
    if (opts.cold) {
      const cache = mkdtempSync(join(cacheRoot(), '..', 'dmemfs-rig-bench-cold-'));
      try {
        info(`bench run: cold, in the empty cache ${cache}`);
        const cold = await timedRun(scen, join(outRoot, 'cold'), {
          DMEMFS_RIG_CACHE: cache,
          CCACHE_DIR: join(cache, 'ccache'),
        });
        res.cold = { seconds: cold.seconds };
        if (cold.failed) res.runsWithFailures++;
        info(`bench run: cold ${res.cold.seconds.toFixed(0)} s`);
      } finally {
        rmSync(cache, { recursive: true, force: true });
      }
    }
    if (opts.jobs?.length) {
      await byJobs(res, opts.jobs, opts.runs, scen, outRoot);
      return res;
    }
    for (let i = 0; i < opts.runs; i++) {
      const r = await timedRun(scen, join(outRoot, `warm-${i}`), {});
      info(
        `bench run: warm run ${i + 1}/${opts.runs}: ${r.seconds.toFixed(0)} s${r.failed ? ' (scenarios failed)' : ''}`,
      );
      if (r.failed) res.runsWithFailures++;
      res.warm.each.push(r.seconds);
    }
    res.warm.medianSeconds = median(res.warm.each);
    return res;
  } finally {
    rmSync(outRoot, { recursive: true, force: true });
  }
}

/** The warm runs at each number of workers, one after another on the same cache. */
async function byJobs(res: RunBench, jobs: number[], runs: number, scen: string[], outRoot: string): Promise<void> {
  res.byJobs = [];
  for (const j of jobs) {
    const row = { jobs: j, medianSeconds: 0, each: [] as number[], statuses: [] as Record<string, string>[] };
    for (let i = 0; i < runs; i++) {
      const out = join(outRoot, `jobs-${j}-${i}`);
      const r = await timedRun([...scen, '--jobs', String(j)], out, {});
      info(`bench run: --jobs ${j}, run ${i + 1}/${runs}: ${r.seconds.toFixed(0)} s`);
      if (r.failed) res.runsWithFailures++;
      row.each.push(r.seconds);
      row.statuses.push(statusesOf(out));
    }
    row.medianSeconds = median(row.each);
    res.byJobs.push(row);
  }
  const first = res.byJobs[0]!;
  const last = res.byJobs.at(-1)!;
  res.warm = { runs: first.each.length, medianSeconds: first.medianSeconds, each: first.each };
  res.jobsRatio = last.medianSeconds / first.medianSeconds;
  const all = res.byJobs.flatMap((r) => r.statuses.map((s) => JSON.stringify(s)));
  res.statusesIdentical = all.every((s) => s === all[0]);
}
