/**
 * Who holds a cache lock or uses a cache entry, in a form that means something wherever the cache
 * is shared: the pid with the host name, pid namespace and boot it belongs to. Locks (one builder
 * of an entry) and leases (every run using one: `cache prune` leaves it alone) both hold one.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Who holds a lock: the pid, and where that pid means something: the host name (a container's
 * own), the pid namespace and the boot. A pid is checked only where it was written; a lock from
 * another container or machine (a shared cache, or one restored from a CI cache) is live while
 * its holder refreshes it (every LOCK_HEARTBEAT_MS) and stale once it has not for
 * LOCK_FOREIGN_STALE_MS. A lock from an earlier boot of this same place is stale.
 */
export interface LockHolder {
  pid: number;
  host: string;
  ns: string;
  boot: string;
}

export const LOCK_HEARTBEAT_MS = 20_000;
export const LOCK_FOREIGN_STALE_MS = 90_000;

let me: LockHolder | undefined;
export function lockHolder(): LockHolder {
  const read = (f: string, how: (p: string) => string) => {
    try {
      return how(f).trim();
    } catch {
      return '';
    }
  };
  me ??= {
    pid: process.pid,
    host: hostname(),
    ns: read('/proc/self/ns/pid', (p) => readlinkSync(p)),
    boot: read('/proc/sys/kernel/random/boot_id', (p) => readFileSync(p, 'utf8')),
  };
  return { ...me, pid: process.pid };
}

/** A lock file's holder; a bare pid (an older rig's) is taken as written here. */
export function parseLockHolder(text: string): LockHolder | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { ...lockHolder(), pid: Number(t) };
  try {
    const h = JSON.parse(t) as Partial<LockHolder>;
    if (Number.isInteger(h.pid) && (h.pid ?? 0) > 0 && typeof h.host === 'string')
      return { pid: h.pid!, host: h.host, ns: String(h.ns ?? ''), boot: String(h.boot ?? '') };
  } catch {
    /* not a lock of this rig */
  }
  return undefined;
}

/**
 * Whether a holder is alive, judged from here: 'live', 'dead', or 'foreign' (written elsewhere:
 * the lock's age decides).
 */
export function holderState(h: LockHolder, here: LockHolder = lockHolder()): 'live' | 'dead' | 'foreign' {
  if (h.host !== here.host || h.ns !== here.ns) return 'foreign';
  if (h.boot !== here.boot) return 'dead';
  return h.pid === here.pid || pidAlive(h.pid) ? 'live' : 'dead';
}

/** Whether the lease or lock file at `path` is still held, judged from here. */
export function fileHeld(path: string): LockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const h = parseLockHolder(text);
  if (!h) return undefined;
  const state = holderState(h);
  const ageMs = Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0);
  return state === 'live' || (state === 'foreign' && ageMs <= LOCK_FOREIGN_STALE_MS) ? h : undefined;
}

const leases = new Set<string>();
let leaseBeat: NodeJS.Timeout | undefined;

/**
 * This process uses the entry (kind, key): a lease file in `<root>/<kind>/.leases/`, refreshed with
 * the locks' heartbeat and removed when the process ends, so `cache prune` never removes an entry
 * a live run is booting from. One per entry and process.
 */
export function takeLease(kind: string, key: string, root: string): void {
  const dir = join(root, kind, '.leases');
  const path = join(dir, `${key}.${process.pid}`);
  if (leases.has(path)) return;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, JSON.stringify(lockHolder()));
  } catch {
    return; // a read-only cache: nothing can prune it either
  }
  leases.add(path);
  if (!leaseBeat) {
    leaseBeat = setInterval(() => {
      const now = new Date();
      for (const p of leases) if (existsSync(p)) utimesSync(p, now, now);
    }, LOCK_HEARTBEAT_MS);
    leaseBeat.unref();
    process.once('exit', dropLeases);
  }
}

/** Give up every lease of this process (at exit; or a test that ends a run in-process). */
export function dropLeases(): void {
  for (const p of leases) rmSync(p, { force: true });
  leases.clear();
}

/** The live holders of leases on (kind, key); dead leases are removed on the way. */
export function liveLeases(kind: string, key: string, root: string): LockHolder[] {
  const dir = join(root, kind, '.leases');
  if (!existsSync(dir)) return [];
  const out: LockHolder[] = [];
  for (const f of readdirSync(dir).filter((x) => x.startsWith(`${key}.`))) {
    const h = fileHeld(join(dir, f));
    if (h) out.push(h);
    else rmSync(join(dir, f), { force: true });
  }
  return out;
}
