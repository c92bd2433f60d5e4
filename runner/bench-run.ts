/**
 * Main-job benchmark: the whole `run` (kernel pipeline, images, every scenario) as a child
 * process, timed from the outside. Warm: on the cache as it is (medians over --runs). Cold:
 * once more in an empty temporary cache (everything downloaded, built and booted from
 * nothing; ccache empty too), which is what a fresh CI runner pays.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot, projectRoot } from '../core/paths.js';
import { info } from '../core/log.js';
import { RigError } from '../core/errors.js';

export interface RunBench {
  scenarios: string[] | 'all';
  warm: { runs: number; medianSeconds: number; each: number[] };
  cold?: { seconds: number };
}

function timedRun(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [join(projectRoot(), 'dist', 'scripts', 'cli.js'), 'run', ...args], {
      env: { ...process.env, ...env, DMEMFS_RIG_LOG: 'quiet' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve((Date.now() - t0) / 1000)
        : reject(
            new RigError('bench-run', `the timed run exited with ${code}`, {
              fix: 'run `dmemfs-rig run` alone and read its bundle',
            }),
          ),
    );
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

export async function benchRun(opts: { runs: number; cold: boolean; scenarios?: string[] }): Promise<RunBench> {
  const outRoot = mkdtempSync(join(cacheRoot(), '..', 'dmemfs-rig-bench-out-'));
  const scen = (opts.scenarios ?? []).flatMap((s) => ['--scenario', s]);
  try {
    const res: RunBench = {
      scenarios: opts.scenarios?.length ? opts.scenarios : 'all',
      warm: { runs: opts.runs, medianSeconds: 0, each: [] },
    };
    if (opts.cold) {
      const cache = mkdtempSync(join(cacheRoot(), '..', 'dmemfs-rig-bench-cold-'));
      try {
        info(`bench run: cold, in the empty cache ${cache}`);
        res.cold = {
          seconds: await timedRun([...scen, '--out', join(outRoot, 'cold')], {
            DMEMFS_RIG_CACHE: cache,
            CCACHE_DIR: join(cache, 'ccache'),
          }),
        };
        info(`bench run: cold ${res.cold.seconds.toFixed(0)} s`);
      } finally {
        rmSync(cache, { recursive: true, force: true });
      }
    }
    for (let i = 0; i < opts.runs; i++) {
      const s = await timedRun([...scen, '--out', join(outRoot, `warm-${i}`)], {});
      info(`bench run: warm run ${i + 1}/${opts.runs}: ${s.toFixed(0)} s`);
      res.warm.each.push(s);
    }
    res.warm.medianSeconds = median(res.warm.each);
    return res;
  } finally {
    rmSync(outRoot, { recursive: true, force: true });
  }
}
