/**
 * The kernel build: out of tree, -j = cores, through ccache, in a work directory that
 * survives interruption (make resumes; kbuild deletes half-written targets), and artifacts
 * published atomically into the cache under a key of (tree, config inputs, toolchain), with
 * a build manifest (versions, hashes, timings) beside them.
 */
import { trackGroup } from '../core/processes.js';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { cached, entryDir, fileSha256, hashParts, isComplete, lockKey, sha256 } from '../core/cache.js';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info, Progress } from '../core/log.js';
import { cacheRoot } from '../core/paths.js';
import { configure } from './config.js';
import { fragmentPath, type KernelProfile } from './profile.js';

export interface Toolchain {
  cc: string;
  version: string;
  ccache: boolean;
}

export async function detectToolchain(cc: string): Promise<Toolchain> {
  let version: string;
  try {
    version = (await run(cc, ['--version'])).stdout.split('\n')[0]!.trim();
  } catch {
    throw new RigError('missing-tool', `compiler ${cc} is not installed`, {
      fix: `run \`npm run setup\`, or pass --cc with an installed compiler (e.g. gcc-12)`,
    });
  }
  const ccache = existsSync('/usr/bin/ccache') && process.env.DMEMFS_RIG_CCACHE !== '0';
  return { cc, version, ccache };
}

export interface BuildManifest {
  profile: string;
  key: string;
  kernelVersion: string;
  release: string;
  source: Record<string, string>;
  treeId: string;
  headCommit: string;
  series: { name: string; patchIds: string[] } | null;
  configBase: string;
  fragments: Record<string, string>;
  configSha256: string;
  toolchain: Toolchain;
  jobs: number;
  objectsCompiled: number;
  seconds: { config: number; build: number };
  artifacts: Record<string, { path: string; sha256: string; bytes: number }>;
  builtAt: string;
}

export interface KernelBuild {
  dir: string;
  bzImage: string;
  vmlinux: string;
  config: string;
  manifest: BuildManifest;
  hit: boolean;
}

export function makeArgs(tc: Toolchain, jobs: number): string[] {
  return [
    `-j${jobs}`,
    `CC=${tc.ccache ? `ccache ${tc.cc}` : tc.cc}`,
    `HOSTCC=${tc.cc}`,
    'KBUILD_BUILD_USER=dmemfs-rig',
    'KBUILD_BUILD_HOST=dmemfs-rig',
    'KBUILD_BUILD_TIMESTAMP=2020-12-07',
  ];
}

/** make with object-count progress; resolves with the number of objects compiled. */
export function makeWithProgress(
  srcDir: string,
  buildDir: string,
  args: string[],
  targets: string[],
  expected: number | undefined,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const progress = new Progress('kernel build', expected, ' objects');
  return new Promise((resolve, reject) => {
    const p = spawn('make', ['-C', srcDir, `O=${buildDir}`, ...args, ...targets], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
      detached: true,
    });
    trackGroup(p);
    let objects = 0;
    let tail: string[] = [];
    let partial = '';
    const onData = (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (/^\s+(CC|AS)\s+\S+\.o$/.test(l)) objects++;
        tail.push(l);
      }
      if (tail.length > 400) tail = tail.slice(-200);
      progress.update(objects);
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('error', (e) => reject(new RigError('missing-tool', `make: ${e.message}`, { fix: 'run `npm run setup`' })));
    p.on('exit', (code, signal) => {
      if (code === 0) {
        progress.done(`${objects} objects compiled`);
        return resolve(objects);
      }
      const errors = tail.filter((l) => /error|Error \d/.test(l)).slice(-20);
      reject(
        new RigError('build-failed', `kernel build failed (${signal ? `signal ${signal}` : `exit ${code}`})`, {
          fix: 'see the compiler errors; the work directory is kept, a rerun resumes',
          evidence: (errors.length ? errors : tail.slice(-30)).join('\n'),
        }),
      );
    });
  });
}

export function buildKey(profile: KernelProfile, treeId: string, tc: Toolchain): string {
  const frags = profile.config.fragments.map((f) => `${f}:${sha256(readFileSync(fragmentPath(f)))}`);
  return hashParts(['kernel-build-v1', treeId, profile.config.base, ...frags, tc.cc, tc.version]);
}

export interface BuildRequest {
  profile: KernelProfile;
  srcDir: string;
  treeId: string;
  headCommit: string;
  kernelVersion: string;
  source: Record<string, string>;
  series: { name: string; patchIds: string[] } | null;
  toolchain: Toolchain;
}

/** Copy the boot artifacts into the staging entry, each with its hash; strip vmlinux. */
async function publishArtifacts(staging: string, work: string, configPath: string) {
  const artifacts: BuildManifest['artifacts'] = {};
  const copies: Array<[string, string]> = [
    [join(work, 'arch', 'x86', 'boot', 'bzImage'), 'bzImage'],
    [join(work, 'vmlinux'), 'vmlinux'],
    [join(work, 'System.map'), 'System.map'],
    [configPath, 'config'],
  ];
  for (const [from, name] of copies) {
    copyFileSync(from, join(staging, name));
    const bytes = readFileSync(join(staging, name)).length;
    artifacts[name] = { path: name, sha256: await fileSha256(join(staging, name)), bytes };
  }
  await run('strip', ['--strip-debug', join(staging, 'vmlinux')]).catch(() => undefined);
  return artifacts;
}

/** Configure and make in `work`, then publish into `staging` with a manifest. */
async function buildInto(staging: string, work: string, req: BuildRequest, key: string, env: NodeJS.ProcessEnv) {
  const { profile, srcDir, toolchain: tc } = req;
  const jobs = availableParallelism();
  const already = countObjects(work);
  if (already > 0) info(`kernel build: resuming an interrupted build in ${work}: ${already} objects already built`);
  mkdirSync(work, { recursive: true });
  const t0 = Date.now();
  const cfg = await configure(srcDir, work, profile.config.base, profile.config.fragments, makeArgs(tc, jobs));
  const t1 = Date.now();
  info(`kernel build: ${profile.name} ${req.kernelVersion}, ${jobs} jobs, ${tc.ccache ? 'ccache ' : ''}${tc.version}`);
  const objects = await makeWithProgress(srcDir, work, makeArgs(tc, jobs), ['bzImage'], profile.expectedObjects, env);
  const t2 = Date.now();
  const release = (await run('make', ['-s', '-C', srcDir, `O=${work}`, 'kernelrelease'], { env })).stdout.trim();
  const manifest: BuildManifest = {
    profile: profile.name,
    key,
    kernelVersion: req.kernelVersion,
    release,
    source: req.source,
    treeId: req.treeId,
    headCommit: req.headCommit,
    series: req.series,
    configBase: profile.config.base,
    fragments: Object.fromEntries(profile.config.fragments.map((f) => [f, sha256(readFileSync(fragmentPath(f)))])),
    configSha256: sha256(cfg.text),
    toolchain: tc,
    jobs,
    objectsCompiled: objects,
    seconds: { config: (t1 - t0) / 1000, build: (t2 - t1) / 1000 },
    artifacts: await publishArtifacts(staging, work, cfg.configPath),
    builtAt: new Date().toISOString(),
  };
  writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

export async function buildKernel(req: BuildRequest): Promise<KernelBuild> {
  const key = buildKey(req.profile, req.treeId, req.toolchain);
  const work = join(cacheRoot(), 'build-work', key);
  const env = {
    ...process.env,
    CCACHE_DIR: process.env.CCACHE_DIR ?? join(cacheRoot(), 'ccache'),
    CCACHE_BASEDIR: req.srcDir,
    CCACHE_MAXSIZE: process.env.CCACHE_MAXSIZE ?? '8G',
    LC_ALL: 'C',
  };
  if (isComplete('kernel', key)) return loadBuild(entryDir('kernel', key), true);
  // The work directory belongs to one builder at a time; the artifact entry has its own lock.
  const releaseWork = await lockKey('build-work', key);
  try {
    const entry = await cached('kernel', key, (staging) => buildInto(staging, work, req, key, env), { needMiB: 3500 });
    // Published: the work directory's objects are no longer needed (ccache keeps the compiles).
    rmSync(work, { recursive: true, force: true });
    return loadBuild(entry.dir, entry.hit);
  } finally {
    releaseWork();
  }
}

export function loadBuild(dir: string, hit: boolean): KernelBuild {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BuildManifest;
  return {
    dir,
    bzImage: join(dir, 'bzImage'),
    vmlinux: join(dir, 'vmlinux'),
    config: join(dir, 'config'),
    manifest,
    hit,
  };
}

/** Object files under a build directory (how far an interrupted build got). */
export function countObjects(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.o')) n++;
    }
  };
  walk(dir);
  return n;
}
