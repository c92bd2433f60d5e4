/**
 * Data that must never be lost or mixed, and places that must be the rig's own: an acceptance
 * killed half way leaves one whole base; a run into an existing bundle is refused; a lock left
 * by another host or an earlier boot neither blocks for hours nor is taken while live; a run
 * directory another user could write is refused; a guest's word never reaches HMP unchecked.
 * Nothing here boots a guest (the run directory cases stop before QEMU would start).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  openSync,
  truncateSync,
  writeSync,
  chownSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { projectRoot } from '../../core/paths.js';
import { downloadVerified } from '../../core/download.js';
import { cached, lockHolder, lockKey } from '../../core/cache.js';
import { dropLeases } from '../../core/lock-holder.js';
import { writeBundle } from '../../report/bundle.js';
import type { RunResults } from '../../core/results.js';
import { hmpAddress } from '../../scenarios/steps.js';
import { fault, oneClearError } from '../helpers/faults.js';
import { rigCli } from '../helpers/cli.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'rig-data-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const bundleA = join(tmp, 'night-a');
const bundleB = join(tmp, 'night-b');
cpSync(dirname(FULL_RUN_BUNDLE()), bundleA, { recursive: true });
cpSync(dirname(FULL_RUN_BUNDLE()), bundleB, { recursive: true });

/** `report --accept` in a child that is SIGKILLed at `at`: 'between' the two renames, or 'before' them. */
function killedAccept(bundle: string, into: string, at: 'between' | 'before'): number | null {
  const mod = join(projectRoot(), 'dist', 'report', 'baseline.js');
  // 'before': every rename kills the process, so it dies at the first one, with the new base written aside.
  const script =
    (at === 'before'
      ? "const fs = await import('node:fs'); const { syncBuiltinESMExports } = await import('node:module');" +
        "fs.default.renameSync = () => process.kill(process.pid, 'SIGKILL'); syncBuiltinESMExports();"
      : '') +
    `const { acceptBundle } = await import(${JSON.stringify(mod)});` +
    (at === 'between'
      ? "acceptBundle(process.argv[1], process.argv[2], 'killed', " +
        "{ betweenRenames: () => process.kill(process.pid, 'SIGKILL') });"
      : "acceptBundle(process.argv[1], process.argv[2], 'killed');");
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, bundle, into], { encoding: 'utf8' });
  return r.status;
}

await fault(t, 'fault', 'report --accept killed between its two renames: one whole base, put back', async (st) => {
  const base = join(tmp, 'base');
  const first = await rigCli(['report', '--accept', bundleA, '--into', base, '--reason', 'first']);
  st.equal(first.code, 0, first.stderr);
  const before = sha(join(base, 'accepted.json'));
  st.equal(killedAccept(bundleB, base, 'between'), null, 'the acceptance died of its signal');
  st.notOk(existsSync(base), 'killed where the base was renamed aside');
  const aside = readdirSync(tmp).filter((f) => f.startsWith('base.previous-'));
  st.equal(aside.length, 1, 'the old base is whole beside it');
  const cmp = await rigCli(['nightly', 'compare', '--base', base, '--bundle', bundleB]);
  st.equal(cmp.code, 0, cmp.stderr.slice(-800));
  st.match(cmp.stderr, /restored the accepted base from base\.previous-\d+/, 'said');
  st.equal(sha(join(base, 'accepted.json')), before, 'the base compared against is the one accepted before');
  st.same(
    readdirSync(tmp).filter((f) => /^base\./.test(f)),
    [],
    'nothing left beside it',
  );
});

await fault(
  t,
  'fault',
  'report --accept killed before its renames: the old base stays, the partial one goes',
  async (st) => {
    const base = join(tmp, 'base');
    const before = sha(join(base, 'accepted.json'));
    st.equal(killedAccept(bundleB, base, 'before'), null, 'the acceptance died of its signal');
    st.equal(sha(join(base, 'accepted.json')), before, 'the old base untouched');
    st.ok(
      readdirSync(tmp).some((f) => f.startsWith('base.partial-')),
      'a half-written new base beside it',
    );
    const again = await rigCli(['report', '--accept', bundleB, '--into', base, '--reason', 'second']);
    st.equal(again.code, 0, again.stderr);
    st.equal(JSON.parse(readFileSync(join(base, 'accepted.json'), 'utf8')).reason, 'second');
    st.same(
      readdirSync(tmp).filter((f) => /^base\./.test(f)),
      [],
      'the half-written one removed',
    );
  },
);

await fault(
  t,
  'bad-input',
  'run --out into an existing bundle: error [out-exists], the bundle untouched',
  async (st) => {
    const before = readdirSync(bundleA).map((f) => `${f}:${sha(join(bundleA, f))}`);
    const r = await rigCli(['run', '--scenario', 'reservation-bad-values', '--out', bundleA]);
    oneClearError(st, r, /\[out-exists\]/, /already holds a bundle/);
    st.same(
      readdirSync(bundleA).map((f) => `${f}:${sha(join(bundleA, f))}`),
      before,
      'every file as it was',
    );
    st.ok(r.seconds < 30, `refused before anything ran (${r.seconds.toFixed(1)} s)`);
  },
);

const lockDir = (root: string) => join(root, 'probe', '.locks');
function leaveLock(root: string, holder: object, ageS: number): void {
  mkdirSync(lockDir(root), { recursive: true });
  const p = join(lockDir(root), 'k.lock');
  writeFileSync(p, JSON.stringify(holder));
  const then = new Date(Date.now() - ageS * 1000);
  utimesSync(p, then, then);
}

await fault(
  t,
  'concurrency',
  'a lock left by another host: taken once it is not refreshed, waited for while it is',
  async (st) => {
    const root = mkdtempSync(join(tmp, 'cache-'));
    const me = lockHolder();
    // The holder's pid is this very process: alive here, and meaningless for a lock written elsewhere.
    leaveLock(root, { ...me, host: 'runner-7f3a' }, 600);
    let t0 = Date.now();
    const release = await lockKey('probe', 'k', root, 10_000);
    st.ok(Date.now() - t0 < 3000, 'a foreign lock not refreshed for 10 minutes is stale: taken at once');
    st.equal(JSON.parse(readFileSync(join(lockDir(root), 'k.lock'), 'utf8')).host, me.host, 'now ours');
    release();
    leaveLock(root, { ...me, host: 'runner-7f3a' }, 5);
    t0 = Date.now();
    await st.rejects(lockKey('probe', 'k', root, 2500), {
      kind: 'cache-lock',
      message: /held by pid \d+ on runner-7f3a/,
    });
    st.ok(Date.now() - t0 >= 2500, 'a freshly refreshed foreign lock is waited for, as a live one');
    rmSync(join(lockDir(root), 'k.lock'));
    leaveLock(root, { ...me, boot: '00000000-dead-beef-0000-000000000000' }, 5);
    t0 = Date.now();
    (await lockKey('probe', 'k', root, 10_000))();
    st.ok(Date.now() - t0 < 3000, "a lock from an earlier boot of this host is stale, whatever its pid's state now");
    leaveLock(root, { ...me, pid: process.ppid }, 5);
    await st.rejects(
      lockKey('probe', 'k', root, 1500),
      { kind: 'cache-lock', message: /held by pid/ },
      'a live local holder is waited for',
    );
  },
);

await fault(
  t,
  'security',
  'a run directory another user could write, or a link, is refused before QEMU',
  async (st) => {
    const cases: Array<[string, (d: string) => void, RegExp]> = [
      ['world-writable', (d) => chmodSync(d, 0o777), /is writable by everyone \(mode 777\)/],
      ['group-writable', (d) => chmodSync(d, 0o770), /is writable by its group/],
      ['owned by another user', (d) => chownSync(d, 65534, 65534), /is owned by uid 65534/],
    ];
    for (const [what, spoil, message] of cases) {
      const d = mkdtempSync(join(tmp, 'runs-'));
      spoil(d);
      const r = await rigCli(['boot', '--', 'true'], { env: { DMEMFS_RIG_RUNDIR: d } });
      oneClearError(st, r, /\[unsafe-run-dir\]/, message);
      st.same(readdirSync(d), [], `${what}: nothing written into it`);
      st.notMatch(r.stderr, /QEMU started/, `${what}: no QEMU`);
    }
    const real = mkdtempSync(join(tmp, 'runs-real-'));
    const link = join(tmp, 'runs-link');
    symlinkSync(real, link);
    const r = await rigCli(['boot', '--', 'true'], { env: { DMEMFS_RIG_RUNDIR: link } });
    oneClearError(st, r, /\[unsafe-run-dir\]/, /is not a directory \(a symbolic link\?\)/);
  },
);

await fault(
  t,
  'security',
  "an HMP address from a guest helper is checked: no words added to the monitor's command",
  async (st) => {
    st.equal(hmpAddress('0x1B8000000', 'physical'), '0x1b8000000');
    st.equal(hmpAddress('0x7ffd2b3c7000', 'virtual'), '0x7ffd2b3c7000');
    for (const bad of [
      '0x1000 0x86; quit',
      '0x1000\nsystem_powerdown',
      '1000',
      '0x',
      '0x10000000000000000',
      42,
      undefined,
    ])
      st.throws(
        () => hmpAddress(bad, 'physical'),
        { kind: 'bad-guest-value', message: /address/ },
        `refused: ${JSON.stringify(bad)}`,
      );
    st.throws(
      () => hmpAddress('0xffff888000000000', 'virtual'),
      { kind: 'bad-guest-value', message: /address/ },
      'a kernel address as a victim',
    );
    st.throws(
      () => hmpAddress('0x10000000000000', 'physical'),
      { kind: 'bad-guest-value', message: /address/ },
      'beyond 2^52',
    );
  },
);

/** A cache entry of one large file and two small ones, built by a counting build. */
async function entryIn(root: string, builds: { n: number }) {
  return cached(
    'thing',
    'k1',
    async (staging) => {
      builds.n++;
      writeFileSync(join(staging, 'vmlinux'), Buffer.alloc(5 << 20, 7));
      writeFileSync(join(staging, 'config'), 'CONFIG_DMEM=y\n');
      mkdirSync(join(staging, 'lib'));
      writeFileSync(join(staging, 'lib', 'helper'), 'a helper\n');
    },
    { root },
  );
}

await fault(t, 'fault', 'a cache entry damaged after it was published: found, said, built again', async (st) => {
  const root = mkdtempSync(join(tmp, 'cache-'));
  const builds = { n: 0 };
  const e = await entryIn(root, builds);
  st.equal((await entryIn(root, builds)).hit, true, 'a whole entry is a hit');
  // The tail of the largest file overwritten in place (same size): found by its sampled digest.
  const fd = openSync(join(e.dir, 'vmlinux'), 'r+');
  writeSync(fd, Buffer.from('damage'), 0, 6, (5 << 20) - 100);
  closeSync(fd);
  const again = await entryIn(root, builds);
  st.same([again.hit, builds.n], [false, 2], 'built again');
  st.equal(readFileSync(join(e.dir, 'vmlinux')).subarray(-100, -94).toString(), '\u0007'.repeat(6), 'whole again');
  // A file cut short: found by its size.
  truncateSync(join(e.dir, 'config'), 3);
  st.same([(await entryIn(root, builds)).hit, builds.n], [false, 3], 'a truncated file: built again');
  // A byte changed in the middle of a small file: a hit does not read it, `cache verify` does.
  writeFileSync(join(e.dir, 'lib', 'helper'), 'a helpeR\n');
  st.equal((await entryIn(root, builds)).hit, true, 'not seen by the cheap check');
  const v = await rigCli(['cache', 'verify', '--remove'], { env: { DMEMFS_RIG_CACHE: root } });
  st.equal(v.code, 1, 'cache verify exits 1');
  st.match(v.stdout, /^damaged thing\/k1: lib\/helper's content changed \(sha256\) \(removed\)$/m);
  st.match(v.stdout, /0 whole, 1 damaged/);
  st.notOk(existsSync(e.dir), 'removed');
  st.same([(await entryIn(root, builds)).hit, builds.n], [false, 4], 'and built again on the next use');
  const clean = await rigCli(['cache', 'verify'], { env: { DMEMFS_RIG_CACHE: root } });
  st.same([clean.code, /1 whole, 0 damaged/.test(clean.stdout)], [0, true], 'whole after the rebuild');
  // A git repository in an entry changes after publish on purpose (gc packs its loose objects).
  const repo = await cached(
    'source',
    'k2',
    async (s) => {
      mkdirSync(join(s, 'repo', '.git', 'objects', '00'), { recursive: true });
      writeFileSync(join(s, 'repo', '.git', 'objects', '00', 'loose'), 'object');
      writeFileSync(join(s, 'repo', 'Makefile'), 'all:\n');
    },
    { root },
  );
  rmSync(join(repo.dir, 'repo', '.git', 'objects', '00', 'loose'));
  st.equal((await cached('source', 'k2', async () => undefined, { root })).hit, true, 'a repacked .git is not damage');
});

/** A tmpfs of `kib` KiB the test mounts (it runs as root here); undefined where it cannot. */
function smallDisk(kib: number): string | undefined {
  const d = mkdtempSync(join(tmp, 'small-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'tmpfs', d]);
  if (r.status !== 0) return undefined;
  t.teardown(() => void spawnSync('umount', ['-l', d]));
  return d;
}
const canMount = smallDisk(64) ? undefined : 'cannot mount a small tmpfs here (it needs root or CAP_SYS_ADMIN)';

await fault(
  t,
  'fault',
  'the disk fills during a build: error [disk-full], no entry, nothing half-written, the lock free',
  async (st) => {
    const root = smallDisk(1024)!;
    const builds = { n: 0 };
    const other = await cached('other', 'k0', async (s) => writeFileSync(join(s, 'f'), 'whole\n'), { root });
    await st.rejects(entryIn(root, builds), { kind: 'disk-full', message: /building the thing cache entry in/ });
    st.same(readdirSync(join(root, 'thing')).sort(), ['.locks', '.staging'], 'no entry');
    st.same(readdirSync(join(root, 'thing', '.staging')), [], 'the staging directory removed');
    st.same(readdirSync(join(root, 'thing', '.locks')), [], 'the lock released');
    st.equal(readFileSync(join(other.dir, 'f'), 'utf8'), 'whole\n', 'the other entry whole');
  },
  { skip: canMount },
);

await fault(
  t,
  'fault',
  'the disk fills during a bundle write: error [disk-full], no .partial, what was written is whole',
  async (st) => {
    const out = join(smallDisk(96)!, 'bundle');
    const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
    st.throws(() => writeBundle(out, run, { patches: [], json: {}, copies: {} }), {
      kind: 'disk-full',
      message: /no space left on the disk writing \S+bundle\//,
    });
    st.same(
      readdirSync(out).filter((f) => f.endsWith('.partial')),
      [],
      'no half-written file',
    );
    for (const f of readdirSync(out).filter((x) => x.endsWith('.json')))
      st.doesNotThrow(() => JSON.parse(readFileSync(join(out, f), 'utf8')), `${f} is whole`);
    st.equal(sha(FULL_RUN_BUNDLE()), sha(join(bundleA, 'results.json')), 'the earlier bundle untouched');
  },
  { skip: canMount },
);

await fault(t, 'fault', 'a download cut short (a server on 127.0.0.1 that closes early): nothing kept', async (st) => {
  const payload = Buffer.alloc(300_000, 9);
  const want = createHash('sha256').update(payload).digest('hex');
  const srv = createServer((req, res) => {
    // With its length announced and without: the first ends in a broken body, the second in a
    // whole-looking body that is too short.
    if (req.url === '/announced') res.writeHead(200, { 'content-length': String(payload.length) });
    else res.writeHead(200);
    res.write(payload.subarray(0, 100_000), () => res.socket?.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmp, 'dl-'));
  await st.rejects(downloadVerified(`${base}/announced`, join(dir, 'a.tar.xz'), want), {
    kind: 'download',
    message: /was interrupted/,
  });
  await st.rejects(downloadVerified(`${base}/unannounced`, join(dir, 'b.tar.xz'), want), {
    kind: /download|checksum-mismatch/,
    message: /interrupted|checksum mismatch/,
  });
  st.same(readdirSync(dir), [], 'no file and no .partial kept');
});

await fault(
  t,
  'concurrency',
  '`cache prune` during a run: an entry the run uses is kept, then pruned once it ends',
  async (st) => {
    const root = mkdtempSync(join(tmp, 'cache-'));
    const used = await cached('thing', 'used', async (s) => writeFileSync(join(s, 'f'), 'in use\n'), { root });
    const spare = await cached('thing', 'spare', async (s) => writeFileSync(join(s, 'f'), 'spare\n'), { root });
    await cached('thing', 'newest', async (s) => writeFileSync(join(s, 'f'), 'newest\n'), { root });
    const old = new Date(Date.now() - 30 * 86_400_000);
    for (const e of [used, spare]) utimesSync(join(e.dir, '.complete'), old, old);
    // This process is the run: it used `used` (and, as every run, holds a lease on what it used).
    dropLeases();
    await cached('thing', 'used', async () => undefined, { root });
    utimesSync(join(used.dir, '.complete'), old, old);
    const r = await rigCli(['cache', 'prune', '--older-than', '1'], { env: { DMEMFS_RIG_CACHE: root } });
    st.equal(r.code, 0, r.stderr);
    st.match(r.stderr, /cache prune: thing\/used kept, in use by pid \d+/, 'said');
    st.ok(existsSync(join(used.dir, 'f')), 'the entry in use is kept');
    st.notOk(existsSync(spare.dir), 'the unused old one is pruned');
    dropLeases();
    const after = await rigCli(['cache', 'prune', '--older-than', '1'], { env: { DMEMFS_RIG_CACHE: root } });
    st.equal(after.code, 0);
    st.notOk(existsSync(used.dir), 'pruned once the run let it go');
  },
);
