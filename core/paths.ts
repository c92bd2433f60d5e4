/**
 * Where the rig keeps things: the project root, the shared inputs beside it, the cache (never
 * inside the repository) and private per-guest run directories.
 */
import { mkdirSync, mkdtempSync, chmodSync, lstatSync } from 'node:fs';
import { RigError } from './errors.js';
import { homedir, tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the project checkout (one level above dist/ when compiled). */
export function projectRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // here = <root>/dist/core or <root>/core
  const up = resolve(here, '..');
  return up.endsWith('/dist') ? resolve(up, '..') : up;
}

/** The shared read-only inputs beside the project (fixtures), when present. */
export function sharedDir(): string {
  return process.env.DMEMFS_RIG_SHARED ?? resolve(projectRoot(), '..', 'shared');
}

/**
 * The rig's cache: $DMEMFS_RIG_CACHE, else $XDG_CACHE_HOME/dmemfs-rig, else ~/.cache/dmemfs-rig.
 * Never inside the repository.
 */
export function cacheRoot(): string {
  const explicit = process.env.DMEMFS_RIG_CACHE;
  if (explicit) return resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'dmemfs-rig');
}

export function ensureDir(path: string, mode = 0o755): string {
  mkdirSync(path, { recursive: true, mode });
  return path;
}

/**
 * A private (0700) directory for one guest's run: QMP socket, SSH keys, console log.
 * Created under $DMEMFS_RIG_RUNDIR or the system temp directory.
 */
export function makePrivateRunDir(label: string): string {
  const base = checkRunBase(ensureDir(process.env.DMEMFS_RIG_RUNDIR ?? join(tmpdir(), 'dmemfs-rig-runs'), 0o700));
  const dir = mkdtempSync(join(base, `${label.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  chmodSync(dir, 0o700);
  return dir;
}

/**
 * The directory that holds the run directories is shared by every run of this user: in the
 * system temporary directory another user could have made it first. It must be a real directory
 * (not a link), owned by this user, and not writable by group or others; else no key or socket
 * goes into it.
 */
export function checkRunBase(base: string): string {
  const st = lstatSync(base);
  const uid = process.getuid?.();
  const why = !st.isDirectory()
    ? 'is not a directory (a symbolic link?)'
    : uid !== undefined && st.uid !== uid
      ? `is owned by uid ${st.uid}, not by this user (uid ${uid})`
      : (st.mode & 0o022) !== 0
        ? `is writable by ${(st.mode & 0o002) !== 0 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o777).toString(8)})`
        : undefined;
  if (why)
    throw new RigError(
      'unsafe-run-dir',
      `the run directory ${base} ${why}: SSH keys and QMP sockets would be exposed`,
      {
        fix:
          `remove it (rm -rf ${base}) so the rig makes its own, ` +
          'or set DMEMFS_RIG_RUNDIR to a directory only you can write',
      },
    );
  return base;
}
