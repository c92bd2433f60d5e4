/**
 * The kernel source as a git repository with one base commit, cached by what it was made
 * from: the Debian source package (pinned SHA256), an upstream commit, or a local tree or
 * tarball the user gives (--kernel-src).
 */
import { trackGroup } from '../core/processes.js';
import { spawnStreaming as spawn } from '../core/exec.js';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cached, fileSha256, hashParts } from '../core/cache.js';
import { downloadVerified } from '../core/download.js';
import { PrivateApt, debianDistro } from '../core/apt.js';
import { run, tryRun } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info, Progress } from '../core/log.js';
import type { SourceSpec } from './profile.js';

export interface KernelSource {
  /** Git repository with the base commit checked out (do not modify: trees are cloned from it). */
  repo: string;
  baseCommit: string;
  /** Makefile version, e.g. 5.10.223. */
  kernelVersion: string;
  /** Stable identity of the source (part of every downstream cache key). */
  id: string;
  provenance: Record<string, string>;
}

const GIT_ID = ['-c', 'user.name=dmemfs-rig', '-c', 'user.email=dmemfs-rig@localhost', '-c', 'commit.gpgsign=false'];

export function makefileVersion(makefile: string): string {
  const f = (k: string) => new RegExp(`^${k}[ \\t]*=[ \\t]*(\\S*)`, 'm').exec(makefile)?.[1] ?? '';
  const v = `${f('VERSION')}.${f('PATCHLEVEL')}${f('SUBLEVEL') ? `.${f('SUBLEVEL')}` : ''}${f('EXTRAVERSION')}`;
  return v;
}

/** tar -x with a progress line every 10 s (files extracted / expected). */
async function extractTar(tarball: string, dest: string, expected: number | undefined, label: string): Promise<number> {
  mkdirSync(dest, { recursive: true });
  const progress = new Progress(`extract ${label}`, expected, ' files');
  return new Promise((resolvePromise, reject) => {
    const p = spawn('tar', ['-x', '-v', '-f', tarball, '-C', dest], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    trackGroup(p);
    let n = 0;
    let err = '';
    let partial = '';
    p.stdout.on('data', (d: Buffer) => {
      const s = partial + d.toString();
      const lines = s.split('\n');
      partial = lines.pop() ?? '';
      n += lines.length;
      progress.update(n);
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => reject(new RigError('missing-tool', `tar: ${e.message}`, { fix: 'run `npm run setup`' })));
    p.on('exit', (code) => {
      if (code !== 0)
        return reject(
          new RigError('extract-failed', `tar could not extract ${tarball} (exit ${code})`, {
            evidence: err.slice(-2000),
            fix: 'the archive may be damaged: remove it from the cache and retry',
          }),
        );
      progress.done(`${n} files`);
      resolvePromise(n);
    });
  });
}

/** Turn a directory into a git repository with one commit of everything (Debian ignores "/*"). */
async function commitBase(dir: string, message: string): Promise<string> {
  info(`git: committing the base tree (${message})`);
  await run('git', ['init', '-q', dir]);
  await run('git', ['-C', dir, 'add', '-A', '-f'], { what: 'git add of the base tree' });
  await run('git', ['-C', dir, ...GIT_ID, 'commit', '-q', '--no-verify', '-m', message], {
    what: 'git commit of the base tree',
  });
  return (await run('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
}

async function debianSource(spec: Extract<SourceSpec, { kind: 'debian-source-package' }>): Promise<KernelSource> {
  const entry = await cached(
    'source',
    hashParts(['debian', spec.package, spec.version, spec.sha256]),
    async (staging) => {
      const apt = new PrivateApt(debianDistro(spec.distro));
      await apt.update();
      const pkg = await apt.show(spec.package, spec.version);
      if (pkg.sha256 !== spec.sha256) {
        throw new RigError(
          'checksum-mismatch',
          `${spec.package} ${spec.version}: the archive index says sha256 ${pkg.sha256}, the profile pins ` +
            `${spec.sha256}`,
          {
            fix: "the archive changed the package: check it and update the profile's sha256",
          },
        );
      }
      const deb = await apt.fetch(pkg);
      const unpacked = join(staging, 'deb', 'x');
      mkdirSync(unpacked, { recursive: true });
      info(`unpacking ${pkg.name}`);
      await run('dpkg-deb', ['-x', deb, unpacked], { what: `dpkg-deb -x ${pkg.name}` });
      const tarball = join(unpacked, spec.tarball);
      if (!existsSync(tarball)) throw new RigError('bad-package', `${pkg.name} has no ${spec.tarball}`);
      await extractTar(tarball, join(staging, 'x'), spec.expectedFiles, spec.package);
      renameSync(join(staging, 'x', spec.topDir), join(staging, 'repo'));
      rmSync(join(staging, 'deb'), { recursive: true, force: true });
      rmSync(join(staging, 'x'), { recursive: true, force: true });
      const commit = await commitBase(join(staging, 'repo'), `Debian ${spec.package} ${spec.version}`);
      writeFileSync(
        join(staging, 'source.json'),
        JSON.stringify(
          { kind: spec.kind, package: spec.package, version: spec.version, sha256: spec.sha256, baseCommit: commit },
          null,
          2,
        ),
      );
    },
    { needMiB: 2600 },
  );
  return finish(entry.dir, {
    source: 'debian-source-package',
    package: spec.package,
    version: spec.version,
    sha256: spec.sha256,
  });
}

async function gitSource(spec: Extract<SourceSpec, { kind: 'git' }>): Promise<KernelSource> {
  const entry = await cached(
    'source',
    hashParts(['git', spec.commit]),
    async (staging) => {
      const repo = join(staging, 'repo');
      info(`git: fetching ${spec.ref} from ${spec.url}`);
      const r = await tryRun('git', ['clone', '-q', '--depth', '1', '--branch', spec.ref, spec.url, repo]);
      if (!r.ok) {
        throw new RigError('source-unreachable', `cannot fetch ${spec.ref} from ${spec.url}`, {
          fix:
            `give a local tree or tarball of ${spec.ref} with --kernel-src <path> (or use the offline ` +
            `profile rfc-v2-debian)`,
          evidence: r.stderr.slice(-1500),
        });
      }
      const head = (await run('git', ['-C', repo, 'rev-parse', 'HEAD^{commit}'])).stdout.trim();
      if (head !== spec.commit)
        throw new RigError('checksum-mismatch', `${spec.ref} resolved to ${head}, the profile pins ${spec.commit}`);
      writeFileSync(
        join(staging, 'source.json'),
        JSON.stringify({ kind: 'git', url: spec.url, ref: spec.ref, baseCommit: head }, null, 2),
      );
    },
    { needMiB: 2600 },
  );
  return finish(entry.dir, { source: 'git', url: spec.url, ref: spec.ref, commit: spec.commit });
}

/** An upstream tarball by URL, verified against the SHA256 pinned in the profile. */
async function tarballSource(spec: Extract<SourceSpec, { kind: 'tarball' }>): Promise<KernelSource> {
  const entry = await cached(
    'source',
    hashParts(['tarball', spec.sha256]),
    async (staging) => {
      const file = join(staging, 'source.tar');
      await downloadVerified(spec.url, file, spec.sha256, { label: spec.url.replace(/^.*\//, '') });
      await extractTar(file, join(staging, 'x'), undefined, 'kernel tarball');
      rmSync(file);
      const top = (await run('ls', [join(staging, 'x')])).stdout.trim().split('\n');
      renameSync(join(staging, 'x', top.length === 1 ? top[0]! : ''), join(staging, 'repo'));
      await commitBase(join(staging, 'repo'), `kernel source ${spec.url}`);
      writeFileSync(
        join(staging, 'source.json'),
        JSON.stringify({ kind: 'tarball', url: spec.url, sha256: spec.sha256 }, null, 2),
      );
    },
    { needMiB: 2600 },
  );
  return finish(entry.dir, { source: 'tarball', url: spec.url, sha256: spec.sha256 });
}

/** PATH:REF names a commit of a local git tree (`--base ~/src/linux:v5.10-rc3`); a plain path is itself. */
export function splitRef(path: string, exists = existsSync): { path: string; ref?: string } {
  const m = /^(.+):([^:/][^:]*)$/.exec(path);
  if (!exists(path) && m && exists(m[1]!)) return { path: m[1]!, ref: m[2]! };
  return { path };
}

/** A commit of a local git tree, cloned (the user's tree is only read). */
async function localCommit(abs: string, ref: string): Promise<KernelSource> {
  const r = await tryRun('git', ['-C', abs, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  if (!r.ok)
    throw new RigError('missing-source', `${ref} is not a commit in ${abs}`, {
      fix: 'pass --base PATH:REF with a branch, tag or commit of that tree',
    });
  const commit = r.stdout.trim();
  const provenance = { source: 'local-git', path: abs, ref, commit };
  const entry = await cached('source', hashParts(['git', commit]), async (staging) => {
    const repo = join(staging, 'repo');
    await run('git', ['clone', '-q', '--no-hardlinks', '--no-checkout', abs, repo]);
    await run('git', ['-C', repo, 'checkout', '-q', commit]);
    writeFileSync(join(staging, 'source.json'), JSON.stringify(provenance, null, 2));
  });
  return finish(entry.dir, provenance);
}

/** A local tree (git or not) or a tarball given by the user; PATH:REF for a commit of a git tree. */
async function localSource(given: string): Promise<KernelSource> {
  const { path, ref } = splitRef(given);
  if (ref) return localCommit(resolve(path), ref);
  const abs = resolve(path);
  if (!existsSync(abs))
    throw new RigError('missing-source', `kernel source ${abs} does not exist`, {
      fix: 'pass --kernel-src <directory or tarball>',
    });
  const isDir = statSync(abs).isDirectory();
  let key: string;
  let provenance: Record<string, string>;
  if (!isDir) {
    const sha = await fileSha256(abs);
    key = hashParts(['tarball', sha]);
    provenance = { source: 'local-tarball', path: abs, sha256: sha };
  } else if (existsSync(join(abs, '.git'))) {
    const head = (await run('git', ['-C', abs, 'rev-parse', 'HEAD'])).stdout.trim();
    const dirty = (await run('git', ['-C', abs, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim();
    if (dirty)
      throw new RigError('dirty-source', `${abs} has uncommitted changes`, {
        fix: 'commit or stash them: the rig builds a commit, not a working tree',
      });
    key = hashParts(['git', head]);
    provenance = { source: 'local-git', path: abs, commit: head };
  } else {
    const listing = (await run('find', [abs, '-type', 'f', '-printf', '%P %s %T@\n'])).stdout;
    key = hashParts(['dir', listing]);
    provenance = { source: 'local-dir', path: abs };
  }
  const entry = await cached('source', key, async (staging) => {
    const repo = join(staging, 'repo');
    if (!isDir) {
      await extractTar(abs, join(staging, 'x'), undefined, 'kernel tarball');
      const top = (await run('ls', [join(staging, 'x')])).stdout.trim().split('\n');
      renameSync(join(staging, 'x', top.length === 1 ? top[0]! : ''), repo);
      await commitBase(repo, `kernel source from ${abs}`);
    } else if (existsSync(join(abs, '.git'))) {
      await run('git', ['clone', '-q', '--no-hardlinks', abs, repo]);
    } else {
      await run('cp', ['-a', abs, repo]);
      await commitBase(repo, `kernel source from ${abs}`);
    }
    writeFileSync(join(staging, 'source.json'), JSON.stringify(provenance, null, 2));
  });
  return finish(entry.dir, provenance);
}

async function finish(dir: string, provenance: Record<string, string>): Promise<KernelSource> {
  const repo = join(dir, 'repo');
  const baseCommit = (await run('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
  const kernelVersion = makefileVersion(readFileSync(join(repo, 'Makefile'), 'utf8'));
  return {
    repo,
    baseCommit,
    kernelVersion,
    id: `${baseCommit}`,
    provenance: { ...provenance, baseCommit, kernelVersion },
  };
}

export async function acquireSource(spec: SourceSpec, override?: string): Promise<KernelSource> {
  if (override) return localSource(override);
  switch (spec.kind) {
    case 'debian-source-package':
      return debianSource(spec);
    case 'git':
      return gitSource(spec);
    case 'tarball':
      return tarballSource(spec);
    case 'local':
      return localSource(spec.path);
  }
}

export { GIT_ID };
