/**
 * Where the rig keeps things: the project root, the shared inputs beside it, the cache (never
 * inside the repository) and private per-guest run directories.
 */
import { mkdirSync, mkdtempSync, chmodSync } from 'node:fs';
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
  const base = ensureDir(process.env.DMEMFS_RIG_RUNDIR ?? join(tmpdir(), 'dmemfs-rig-runs'), 0o700);
  const dir = mkdtempSync(join(base, `${label.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  chmodSync(dir, 0o700);
  return dir;
}
