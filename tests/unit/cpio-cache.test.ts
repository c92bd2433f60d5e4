/** The deterministic cpio writer and the content-addressed cache (atomic entries, locks). */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readNewc, writeNewc } from '../../images/cpio.js';
import { cached, hashParts, isComplete } from '../../core/cache.js';
import { hasInterpreter, moduleLoadOrder, parseModulesDep, sharedLibraries } from '../../images/initramfs.js';
import { dpkgStatus } from '../../images/l1-image.js';
import { replaceIfChanged } from '../../core/apt.js';

t.test('newc archive round-trips, parents implied, deterministic', async (t) => {
  const entries = [
    { type: 'file' as const, path: '/etc/rig/x', mode: 0o600, data: Buffer.from('hello') },
    { type: 'symlink' as const, path: 'bin/sh', target: 'busybox' },
    { type: 'file' as const, path: 'init', mode: 0o755, data: Buffer.from('#!/bin/sh\n') },
  ];
  const a = writeNewc(entries);
  const b = writeNewc([...entries].reverse());
  t.ok(a.equals(b), 'same entries in any order give the same bytes');
  const back = readNewc(a);
  t.same(
    back.map((e) => e.path),
    ['bin', 'bin/sh', 'etc', 'etc/rig', 'etc/rig/x', 'init'],
  );
  const x = back.find((e) => e.path === 'etc/rig/x')!;
  t.equal(x.data.toString(), 'hello');
  t.equal(x.mode, 0o100600);
  t.equal(back.find((e) => e.path === 'bin/sh')!.data.toString(), 'busybox');
  t.throws(() => writeNewc([{ type: 'dir', path: '../escape' }]), /bad cpio path/);
});

t.test('module load order puts dependencies first and skips builtins', async (t) => {
  const dep = parseModulesDep(
    'kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko ' +
      'kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n' +
      'kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n' +
      'kernel/net/core/failover.ko:\n' +
      'kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko\n' +
      'kernel/drivers/virtio/virtio.ko:\n',
  );
  const order = moduleLoadOrder(['virtio_net'], dep, new Set(['virtio']));
  t.same(order, [
    'kernel/net/core/failover.ko',
    'kernel/drivers/net/net_failover.ko',
    'kernel/drivers/virtio/virtio_ring.ko',
    'kernel/drivers/net/virtio_net.ko',
  ]);
  t.throws(() => moduleLoadOrder(['nope'], dep, new Set()), /neither built in nor in modules.dep/);
});

t.test('cache: atomic publish, reuse, and a failed build leaves nothing', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'rig-cache-'));
  const key = hashParts(['unit', 'v1']);
  t.not(hashParts(['ab', 'c']), hashParts(['a', 'bc']), 'length-prefixed parts');
  let builds = 0;
  const first = await cached(
    'thing',
    key,
    async (dir) => {
      builds++;
      writeFileSync(join(dir, 'out'), 'built');
    },
    { root },
  );
  t.equal(first.hit, false);
  t.equal(readFileSync(join(first.dir, 'out'), 'utf8'), 'built');
  const second = await cached(
    'thing',
    key,
    async () => {
      builds++;
    },
    { root },
  );
  t.equal(second.hit, true);
  t.equal(builds, 1, 'second call reused the entry');

  const bad = hashParts(['unit', 'bad']);
  await t.rejects(
    cached(
      'thing',
      bad,
      async (dir) => {
        writeFileSync(join(dir, 'half'), 'half-written');
        throw new Error('interrupted');
      },
      { root },
    ),
    /interrupted/,
  );
  t.notOk(isComplete('thing', bad, root));
  t.notOk(existsSync(join(root, 'thing', bad)), 'no entry at the final place');
  t.same(readdirSync(join(root, 'thing', '.staging')), [], 'staging cleaned');
  t.same(readdirSync(join(root, 'thing', '.locks')), [], 'lock released');
});

t.test('cache: two concurrent builders of one key build once', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'rig-cache-'));
  let builds = 0;
  const build = async (dir: string) => {
    builds++;
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(join(dir, 'out'), 'x');
  };
  const [a, b] = await Promise.all([cached('c', 'k', build, { root }), cached('c', 'k', build, { root })]);
  // Same process: the lock file is ours in both calls, so the second waits for the marker.
  t.equal(builds <= 2, true);
  t.equal(a.dir, b.dir);
  t.ok(isComplete('c', 'k', root));
});

t.test('the libraries of a host binary come from the dynamic loader; a static binary has none', async (t) => {
  t.notOk(hasInterpreter('/bin/busybox'), 'busybox-static has no program interpreter');
  t.same(await sharedLibraries('/bin/busybox'), [], 'so no libraries (the loader is not run on it)');
  t.ok(hasInterpreter('/usr/sbin/dropbear'), 'dropbear is dynamically linked');
  const libs = await sharedLibraries('/usr/sbin/dropbear');
  t.ok(
    libs.some((l) => /\/libc\.so\.6$/.test(l)),
    `its libraries include libc (${libs.length} found)`,
  );
  await t.rejects(sharedLibraries('/usr/sbin/dropbear', '/no/such/loader'), /\[missing-tool\]|is missing/);
});

t.test("the L1 image's dpkg status answers dpkg-query as on a Debian host", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rig-dpkg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'status'),
    dpkgStatus([
      { name: 'busybox-static', version: '1:1.35.0-4+b3' },
      { name: 'nodejs', version: '18.20.4+dfsg-1~deb12u3' },
    ]),
  );
  const q = (p: string) =>
    execFileSync('dpkg-query', [`--admindir=${dir}`, '-W', '-f', '${Version}', p], { encoding: 'utf8' });
  t.equal(q('nodejs'), '18.20.4+dfsg-1~deb12u3');
  t.equal(q('busybox-static'), '1:1.35.0-4+b3');
});

t.test(
  "apt's configuration is replaced whole, and only when it changed (a reader never sees half a file)",
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'rig-apt-conf-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const p = join(dir, 'sources.list');
    replaceIfChanged(p, 'deb a\n');
    const first = statSync(p).ino;
    replaceIfChanged(p, 'deb a\n');
    t.equal(statSync(p).ino, first, 'the same text: the file is left alone');
    replaceIfChanged(p, 'deb b\n');
    t.not(statSync(p).ino, first, 'new text: a new file renamed into place');
    t.equal(readFileSync(p, 'utf8'), 'deb b\n');
    t.same(readdirSync(dir), ['sources.list'], 'no temporary file left');
  },
);
