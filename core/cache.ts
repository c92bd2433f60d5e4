/**
 * Content-addressed cache with atomic publish.
 *
 * An entry is a directory <root>/<kind>/<key>/ that holds a `.complete` marker. It is built
 * in a staging directory and renamed into place only when the build finished, so an
 * interrupted build never leaves a half-written entry. A per-key lock file keeps two rig
 * runs from doing the same work at once; a lock whose owner died is taken over.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  renameSync,
  statfsSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheRoot } from './paths.js';
import { info, warn } from './log.js';
import { RigError, diskFull } from './errors.js';
import { DIGEST, entryDamage, writeDigest } from './cache-digest.js';
import {
  LOCK_FOREIGN_STALE_MS,
  LOCK_HEARTBEAT_MS,
  holderState,
  liveLeases,
  lockHolder,
  parseLockHolder,
  pidAlive,
  takeLease,
  type LockHolder,
} from './lock-holder.js';
export { lockHolder, type LockHolder } from './lock-holder.js';

const MARKER = '.complete';

/** sha256 over length-prefixed parts, so ("ab","c") and ("a","bc") differ. */
export function hashParts(parts: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p) : p;
    h.update(`${b.length}:`);
    h.update(b);
  }
  return h.digest('hex');
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface CacheEntry {
  kind: string;
  key: string;
  dir: string;
  /** true when the entry was already there. */
  hit: boolean;
}

export function entryDir(kind: string, key: string, root = cacheRoot()): string {
  return join(root, kind, key);
}

export function isComplete(kind: string, key: string, root = cacheRoot()): boolean {
  return existsSync(join(entryDir(kind, key, root), MARKER));
}

/** Remove staging directories left by processes that no longer exist. */
function sweepStaging(stagingRoot: string): void {
  if (!existsSync(stagingRoot)) return;
  for (const name of readdirSync(stagingRoot)) {
    const m = /\.(\d+)\.[0-9a-f]+$/.exec(name);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(stagingRoot, name), { recursive: true, force: true });
  }
}

/**
 * Try once to take the lock file. The lock appears with its holder already in it (written
 * aside, then hard-linked into place, which fails if it exists): a reader never sees an empty
 * lock and takes it for a dead owner's (the concurrency fault test caught that race with 'wx').
 */
function tryLink(lockPath: string): boolean {
  const mine = `${lockPath}.${process.pid}.${Math.floor(Math.random() * 0xffffff).toString(16)}`;
  writeFileSync(mine, JSON.stringify(lockHolder()), { mode: 0o644 });
  try {
    linkSync(mine, lockPath);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  } finally {
    rmSync(mine, { force: true });
  }
}

/**
 * The lock's holder, or 'stale' (a dead holder's, a foreign one not refreshed for
 * LOCK_FOREIGN_STALE_MS, or a minute-old lock that is not this rig's), or 'gone' (it vanished
 * while we looked).
 */
function lockOwner(lockPath: string): LockHolder | 'stale' | 'gone' {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch {
    return 'gone';
  }
  const ageMs = Date.now() - (statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
  const h = parseLockHolder(text);
  if (!h) return ageMs > 60_000 ? 'stale' : { pid: 0, host: '?', ns: '', boot: '' };
  const state = holderState(h);
  if (state === 'dead') return 'stale';
  if (state === 'foreign' && ageMs > LOCK_FOREIGN_STALE_MS) return 'stale';
  return h;
}

const describe = (h: LockHolder) =>
  h.host === lockHolder().host && h.ns === lockHolder().ns ? `pid ${h.pid}` : `pid ${h.pid} on ${h.host}`;

/**
 * Take the lock for (kind, key). Returns a release function. Waits while another live
 * process holds it; takes over a lock whose holder is dead. While held, the lock is refreshed
 * every LOCK_HEARTBEAT_MS, so a rig elsewhere on the same cache sees it live.
 */
export async function lockKey(
  kind: string,
  key: string,
  root = cacheRoot(),
  waitMs = 3 * 3600_000,
): Promise<() => void> {
  const lockDir = join(root, kind, '.locks');
  mkdirSync(lockDir, { recursive: true });
  const lockPath = join(lockDir, `${key}.lock`);
  const deadline = Date.now() + waitMs;
  let announced = false;
  for (;;) {
    if (tryLink(lockPath)) return heldLock(lockPath);
    const owner = lockOwner(lockPath);
    if (owner === 'gone') continue;
    if (owner === 'stale') {
      rmSync(lockPath, { force: true });
      continue;
    }
    if (!announced) info(`cache ${kind}/${key.slice(0, 12)} is being built by ${describe(owner)}; waiting`);
    announced = true;
    if (Date.now() > deadline) {
      throw new RigError('cache-lock', `timed out waiting for the lock ${lockPath} held by ${describe(owner)}`, {
        fix: `stop process ${describe(owner)}, or remove ${lockPath} if it is not a dmemfs-rig process`,
      });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function heldLock(lockPath: string): () => void {
  const beat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(lockPath, now, now);
    } catch {
      /* released meanwhile */
    }
  }, LOCK_HEARTBEAT_MS);
  beat.unref();
  return () => {
    clearInterval(beat);
    rmSync(lockPath, { force: true });
  };
}

/**
 * Return the cache entry for (kind, key), building it with `build(stagingDir)` when absent.
 * `build` writes everything into stagingDir; the rig publishes it atomically afterwards.
 */
export async function cached(
  kind: string,
  key: string,
  build: (stagingDir: string) => Promise<void>,
  opts: {
    root?: string;
    meta?: Record<string, unknown>;
    /** Free space the build needs; checked before it starts. */ needMiB?: number;
  } = {},
): Promise<CacheEntry> {
  const root = opts.root ?? cacheRoot();
  const dir = entryDir(kind, key, root);
  if (isComplete(kind, key, root) && !damaged(kind, key, dir)) return markUsed({ kind, key, dir, hit: true });
  const release = await lockKey(kind, key, root);
  try {
    const stagingRoot = join(root, kind, '.staging');
    mkdirSync(stagingRoot, { recursive: true });
    if (isComplete(kind, key, root)) {
      if (!damaged(kind, key, dir, false)) return markUsed({ kind, key, dir, hit: true });
      // Out of the way at once (a rename), then removed: never half-used, nor half-removed in place.
      const aside = join(stagingRoot, `${key}.${process.pid}.${Math.floor(Math.random() * 0xffffff).toString(16)}`);
      renameSync(dir, aside);
      rmSync(aside, { recursive: true, force: true });
    }
    sweepStaging(stagingRoot);
    if (opts.needMiB) requireFreeSpace(stagingRoot, opts.needMiB, `building the ${kind} cache entry`);
    const staging = join(stagingRoot, `${key}.${process.pid}.${Math.floor(Math.random() * 0xffffff).toString(16)}`);
    mkdirSync(staging, { recursive: true });
    try {
      await build(staging);
      writeDigest(staging, new Set([MARKER, DIGEST]));
      writeFileSync(
        join(staging, MARKER),
        JSON.stringify({ key, created: new Date().toISOString(), ...opts.meta }, null, 2),
      );
      // An incomplete directory at the final place (from an older rig) is replaced.
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
      takeLease(kind, key, root);
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      throw diskFull(e, `building the ${kind} cache entry in ${root}`) ?? e;
    }
    return { kind, key, dir, hit: false };
  } finally {
    release();
  }
}

/** Whether a complete entry was damaged since it was published (said once, when it is found). */
function damaged(kind: string, key: string, dir: string, say = true): boolean {
  const why = entryDamage(dir);
  if (why && say) warn(`cache ${kind}/${key.slice(0, 12)} is damaged (${why}); building it again`);
  return why !== undefined;
}

/** Free MiB on the file system holding `dir`. */
export function freeMiB(dir: string): number {
  const st = statfsSync(dir);
  return Math.floor((st.bavail * st.bsize) / 1048576);
}

/** Stop before a long job that would run out of disk half way, naming what and where. */
export function requireFreeSpace(dir: string, needMiB: number, what: string): void {
  const free = freeMiB(dir);
  if (free < needMiB) {
    throw new RigError('disk-space', `${what} needs about ${needMiB} MiB free in ${dir}; only ${free} MiB are free`, {
      fix:
        'free some space there, prune the cache (dmemfs-rig cache prune), or point DMEMFS_RIG_CACHE at a ' +
        'bigger disk',
    });
  }
}

/** Record a use of an entry (the marker's mtime): `cache prune` keeps what was used recently. */
function markUsed(e: CacheEntry): CacheEntry {
  takeLease(e.kind, e.key, dirname(dirname(e.dir)));
  try {
    const now = new Date();
    utimesSync(join(e.dir, MARKER), now, now);
  } catch {
    /* read-only cache: fine */
  }
  return e;
}

function duBytes(path: string): number {
  let n = 0;
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const c of readdirSync(p)) walk(join(p, c));
    else n += st.blocks * 512; // on disk (images are sparse)
  };
  if (existsSync(path)) walk(path);
  return n;
}

/** Cache folders that are not content-addressed entries: managed by apt, ccache, or resumable builds. */
export const NOT_ENTRIES = ['apt', 'ccache', 'build-work'];

export interface CacheItem {
  kind: string;
  key: string;
  dir: string;
  bytes: number;
  lastUsed: Date | undefined;
  complete: boolean;
}

/** Every entry of the cache with its size and last use (incomplete ones have none). */
export function listCache(root = cacheRoot()): CacheItem[] {
  if (!existsSync(root)) return [];
  const out: CacheItem[] = [];
  for (const kind of readdirSync(root)) {
    const kdir = join(root, kind);
    if (!lstatSync(kdir).isDirectory()) continue;
    if (NOT_ENTRIES.includes(kind)) {
      out.push({ kind, key: '*', dir: kdir, bytes: duBytes(kdir), lastUsed: undefined, complete: false });
      continue;
    }
    for (const key of readdirSync(kdir)) {
      if (key.startsWith('.')) continue;
      const dir = join(kdir, key);
      if (!lstatSync(dir).isDirectory()) continue;
      const marker = join(dir, MARKER);
      const complete = existsSync(marker);
      out.push({
        kind,
        key,
        dir,
        bytes: duBytes(dir),
        lastUsed: complete ? statSync(marker).mtime : undefined,
        complete,
      });
    }
  }
  return out;
}

/**
 * Remove entries not used for `olderThanDays` (keeping the most recently used one of each
 * kind), and dead processes' staging. Kinds that are not content-addressed entries (apt,
 * ccache, build-work) are left alone. An entry a live run holds a lease on (every entry it has
 * used: takeLease) is kept, and each removal takes the entry's lock, so neither a run booting
 * from an entry nor one building it loses it.
 */
export async function pruneCache(opts: {
  olderThanDays: number;
  dryRun?: boolean;
  root?: string;
}): Promise<{ removed: CacheItem[]; kept: number; freedBytes: number }> {
  const root = opts.root ?? cacheRoot();
  const skipKinds = new Set(NOT_ENTRIES);
  const items = listCache(root).filter((i) => !skipKinds.has(i.kind));
  const cutoff = Date.now() - opts.olderThanDays * 86_400_000;
  const removed: CacheItem[] = [];
  for (const kind of new Set(items.map((i) => i.kind))) {
    sweepStaging(join(root, kind, '.staging'));
    const ofKind = items
      .filter((i) => i.kind === kind && i.complete)
      .sort((a, b) => b.lastUsed!.getTime() - a.lastUsed!.getTime());
    for (const i of ofKind.slice(1)) {
      if (i.lastUsed!.getTime() >= cutoff) continue;
      // A run that uses the entry holds a lease on it (takeLease): never pulled from under it.
      const users = liveLeases(kind, i.key, root);
      if (users.length) {
        info(
          `cache prune: ${kind}/${i.key.slice(0, 12)} kept, in use by ${users.map((u) => `pid ${u.pid}`).join(', ')}`,
        );
        continue;
      }
      if (!opts.dryRun) {
        const release = await lockKey(kind, i.key, root, 5000).catch(() => undefined);
        if (!release) continue; // in use right now
        try {
          rmSync(i.dir, { recursive: true, force: true });
        } finally {
          release();
        }
      }
      removed.push(i);
    }
  }
  return { removed, kept: items.length - removed.length, freedBytes: removed.reduce((a, i) => a + i.bytes, 0) };
}

export interface VerifiedEntry {
  kind: string;
  key: string;
  state: 'whole' | 'damaged' | 'no digest';
  why?: string;
}

/**
 * Every complete entry checked byte for byte against its digest (`cache verify`). With `remove`,
 * a damaged entry is removed under its lock, so the next run builds it again.
 */
export async function verifyCache(opts: { root?: string; remove?: boolean } = {}): Promise<VerifiedEntry[]> {
  const root = opts.root ?? cacheRoot();
  const out: VerifiedEntry[] = [];
  for (const i of listCache(root).filter((x) => x.complete && !NOT_ENTRIES.includes(x.kind))) {
    if (!existsSync(join(i.dir, DIGEST))) {
      out.push({ kind: i.kind, key: i.key, state: 'no digest' });
      continue;
    }
    const why = entryDamage(i.dir, true);
    out.push({ kind: i.kind, key: i.key, state: why ? 'damaged' : 'whole', ...(why ? { why } : {}) });
    if (why && opts.remove) {
      const release = await lockKey(i.kind, i.key, root, 5000);
      try {
        rmSync(i.dir, { recursive: true, force: true });
      } finally {
        release();
      }
    }
  }
  return out;
}
