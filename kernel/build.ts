/**
 * The kernel build: out of tree, -j = cores, through ccache, and artifacts published atomically
 * into the cache under a key of (tree, config inputs, toolchain), with a build manifest
 * (versions, hashes, timings) beside them.
 *
 * Every build of a profile happens in the same two places, build-work/<profile>/src (the patched
 * tree, synced in with rsync: unchanged files keep their time stamps) and build-work/<profile>/obj
 * (make's objects, kept between builds). A tree with a few patches changed therefore recompiles
 * only what those patches touch, plus the link; an interrupted build resumes where it stopped;
 * and ccache, whose base directory covers build-work, sees the same relative paths every time.
 */
import { trackGroup } from '../core/processes.js';
import { spawnStreaming as spawn } from '../core/exec.js';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cached, entryDir, fileSha256, hashParts, isComplete, lockKey, sha256 } from '../core/cache.js';
import { run, tryRun } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info, Progress, warn } from '../core/log.js';
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

/**
 * Why the ccache at env.CCACHE_DIR cannot compile (one probe compile through it), or undefined.
 * ccache itself checks each result it reads and recompiles on a damaged one; a directory it
 * cannot use at all (a file in its place, a full or read-only disk) fails every compile.
 */
export async function ccacheProblem(cc: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'rig-ccache-probe-'));
  try {
    writeFileSync(join(dir, 'probe.c'), 'int dmemfs_rig_ccache_probe(void) { return 42; }\n');
    const r = await tryRun('ccache', [cc, '-c', join(dir, 'probe.c'), '-o', join(dir, 'probe.o')], {
      env,
      extendEnv: false,
    });
    if (r.ok && existsSync(join(dir, 'probe.o'))) return undefined;
    return (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ') || `exit ${r.exitCode}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The request as built: without ccache when ccache cannot compile (said; the kernel is the same). */
export async function withUsableCcache(req: BuildRequest, env: NodeJS.ProcessEnv): Promise<BuildRequest> {
  if (!req.toolchain.ccache) return req;
  const problem = await ccacheProblem(req.toolchain.cc, env);
  if (!problem) return req;
  warn(
    `ccache at ${env.CCACHE_DIR} cannot compile (${problem}): building without it (the same kernel, slower); ` +
      `fix: remove or repair ${env.CCACHE_DIR}`,
  );
  return { ...req, toolchain: { ...req.toolchain, ccache: false } };
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
  /** Requested options the tree does not define (a lenient build of a bisect prefix). */
  configAbsent?: string[];
  toolchain: Toolchain;
  jobs: number;
  objectsCompiled: number;
  seconds: { config: number; build: number };
  artifacts: Record<string, { path: string; sha256: string; bytes: number }>;
  /** The series' own test modules found in the tree (SERIES_TEST_MODULES): built, or why not. */
  testModules?: Record<string, { ko?: string; error?: string }>;
  builtAt: string;
}

/**
 * Test modules a series may carry out of the kernel's build graph, built against the kernel
 * when its tree has them (patch 34/37 of the DMEMFS series adds tools/testing/dmem).
 */
export const SERIES_TEST_MODULES: ReadonlyArray<{ name: string; dir: string }> = [
  { name: 'dmem-test', dir: 'tools/testing/dmem' },
];

export interface KernelBuild {
  dir: string;
  bzImage: string;
  vmlinux: string;
  config: string;
  /** The kernel's list of built-in modules, when the build made one. */
  modulesBuiltin?: string;
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
      if (tail.some((l) => /No space left on device/.test(l)))
        return reject(
          new RigError('disk-full', `the kernel build ran out of disk space (${signal ?? `exit ${code}`})`, {
            fix:
              'free space on the cache disk (dmemfs-rig cache prune), or point DMEMFS_RIG_CACHE at a bigger one; ' +
              'a rerun resumes',
            evidence: tail
              .filter((l) => /No space left/.test(l))
              .slice(-5)
              .join('\n'),
          }),
        );
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
  // v2: an entry also holds the series' test modules, and the kernel's Module.symvers.
  return hashParts(['kernel-build-v3', treeId, profile.config.base, ...frags, tc.cc, tc.version]);
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
  /** Options this tree does not define yet are recorded in the manifest, not an error (a bisect's prefixes). */
  lenientConfig?: boolean;
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
  // What is built in, for kmod inside L1 (daxctl and ndctl ask kmod to load a built-in driver).
  if (existsSync(join(work, 'modules.builtin'))) copies.push([join(work, 'modules.builtin'), 'modules.builtin']);
  for (const [from, name] of copies) {
    copyFileSync(from, join(staging, name));
    const bytes = readFileSync(join(staging, name)).length;
    artifacts[name] = { path: name, sha256: await fileSha256(join(staging, name)), bytes };
  }
  await run('strip', ['--strip-debug', join(staging, 'vmlinux')]).catch(() => undefined);
  return artifacts;
}

/** The two stable places of a profile's builds. */
export function buildDirs(profile: string, root = cacheRoot()): { src: string; obj: string } {
  const base = join(root, 'build-work', profile);
  return { src: join(base, 'src'), obj: join(base, 'obj') };
}

/** Which build key the object directory last completed (written after a successful make). */
const DONE_MARK = '.rig-built-key';

/**
 * Copy the patched tree into the profile's stable source directory: files whose content did not
 * change are left alone (their time stamps too), changed ones are rewritten, removed ones go.
 */
export async function syncTree(from: string, to: string): Promise<void> {
  mkdirSync(to, { recursive: true });
  await run('rsync', ['-rlc', '--delete', '--exclude=/.git/', `${from}/`, `${to}/`], { what: 'rsync of the tree' });
}

/** Configure and make in the profile's stable directories, then publish into `staging`. */
async function buildInto(staging: string, req: BuildRequest, key: string, env: NodeJS.ProcessEnv) {
  const { profile, toolchain: tc } = req;
  const { src: srcDir, obj: work } = buildDirs(profile.name);
  const jobs = availableParallelism();
  const already = countObjects(work);
  const last = existsSync(join(work, DONE_MARK)) ? readFileSync(join(work, DONE_MARK), 'utf8').trim() : undefined;
  if (already > 0 && !last)
    info(`kernel build: resuming an interrupted build in ${work}: ${already} objects already built`);
  else if (already > 0)
    info(`kernel build: ${already} objects from the last build of ${profile.name}: make rebuilds what changed`);
  const t0 = Date.now();
  await syncTree(req.srcDir, srcDir);
  mkdirSync(work, { recursive: true });
  rmSync(join(work, DONE_MARK), { force: true });
  const cfg = await configure(
    srcDir,
    work,
    profile.config.base,
    profile.config.fragments,
    makeArgs(tc, jobs),
    env,
    req.lenientConfig,
  );
  const t1 = Date.now();
  info(`kernel build: ${profile.name} ${req.kernelVersion}, ${jobs} jobs, ${tc.ccache ? 'ccache ' : ''}${tc.version}`);
  const objects = await makeWithProgress(srcDir, work, makeArgs(tc, jobs), ['bzImage'], profile.expectedObjects, env);
  const testModules = await buildTestModules(srcDir, work, staging, makeArgs(tc, jobs), env);
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
    ...(cfg.absent.length ? { configAbsent: cfg.absent } : {}),
    toolchain: tc,
    jobs,
    objectsCompiled: objects,
    seconds: { config: (t1 - t0) / 1000, build: (t2 - t1) / 1000 },
    artifacts: await publishArtifacts(staging, work, cfg.configPath),
    ...(Object.keys(testModules).length ? { testModules } : {}),
    builtAt: new Date().toISOString(),
  };
  writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(work, DONE_MARK), key);
}

/**
 * Build the series' test modules the tree has (after the kernel: `make modules` writes the
 * Module.symvers they link against) into staging/modules/. A module that does not build is
 * recorded with its errors, not a failed kernel build: it is a finding about the series.
 */
async function buildTestModules(
  srcDir: string,
  work: string,
  staging: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<NonNullable<BuildManifest['testModules']>> {
  const present = SERIES_TEST_MODULES.filter((m) => existsSync(join(srcDir, m.dir, 'Kbuild')));
  if (!present.length || !/^CONFIG_MODULES=y$/m.test(readFileSync(join(work, '.config'), 'utf8'))) return {};
  await run('make', ['-C', srcDir, `O=${work}`, ...args, 'modules'], { env, what: 'make modules' });
  const out: NonNullable<BuildManifest['testModules']> = {};
  mkdirSync(join(staging, 'modules'), { recursive: true });
  for (const m of present) {
    // Built in a copy: the patched tree stays as it was applied.
    const dir = join(work, 'rig-test-modules', m.name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await run('cp', ['-r', `${join(srcDir, m.dir)}/.`, dir]);
    const r = await tryRun('make', ['-C', srcDir, `O=${work}`, ...args, `M=${dir}`, 'modules'], { env });
    const ko = join(dir, `${m.name}.ko`);
    if (r.ok && existsSync(ko)) {
      copyFileSync(ko, join(staging, 'modules', `${m.name}.ko`));
      out[m.name] = { ko: `modules/${m.name}.ko` };
      info(`kernel build: the series' test module ${m.name}.ko built`);
    } else {
      const lines = `${r.stdout}\n${r.stderr}`.split('\n');
      out[m.name] = {
        error:
          lines
            .filter((l) => /error|warning/i.test(l))
            .slice(-20)
            .join('\n') || 'no .ko',
      };
      info(`kernel build: the series' test module ${m.name} did not build`);
    }
  }
  return out;
}

export async function buildKernel(req: BuildRequest): Promise<KernelBuild> {
  const key = buildKey(req.profile, req.treeId, req.toolchain);
  const env = {
    ...process.env,
    CCACHE_DIR: process.env.CCACHE_DIR ?? join(cacheRoot(), 'ccache'),
    CCACHE_BASEDIR: join(cacheRoot(), 'build-work'),
    CCACHE_MAXSIZE: process.env.CCACHE_MAXSIZE ?? '8G',
    LC_ALL: 'C',
  };
  if (isComplete('kernel', key)) return strictHit(loadBuild(entryDir('kernel', key), true), req);
  // The profile's build directories belong to one builder at a time; the entry has its own lock.
  const releaseWork = await lockKey('build-work', req.profile.name);
  try {
    const entry = await cached(
      'kernel',
      key,
      async (staging) => buildInto(staging, await withUsableCcache(req, env), key, env),
      {
        needMiB: 3500,
      },
    );
    return strictHit(loadBuild(entry.dir, entry.hit), req);
  } finally {
    releaseWork();
  }
}

/** A build made leniently (a bisect prefix) is not one a strict request may use when it lacks options. */
function strictHit(b: KernelBuild, req: BuildRequest): KernelBuild {
  const absent = b.manifest.configAbsent ?? [];
  if (absent.length && !req.lenientConfig)
    throw new RigError(
      'config-dropped',
      `${absent.length} config option(s) do not exist in this tree: ${absent.map((o) => `CONFIG_${o}`).join(', ')}`,
      {
        fix: 'the series (or its prefix) does not define them: use the whole series, or drop them from the fragments',
      },
    );
  return b;
}

export function loadBuild(dir: string, hit: boolean): KernelBuild {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BuildManifest;
  return {
    dir,
    bzImage: join(dir, 'bzImage'),
    vmlinux: join(dir, 'vmlinux'),
    config: join(dir, 'config'),
    ...(existsSync(join(dir, 'modules.builtin')) ? { modulesBuiltin: join(dir, 'modules.builtin') } : {}),
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
