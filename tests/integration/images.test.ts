/**
 * Guest images for real: the L1 image builds from Debian's packages (from scratch in an
 * empty cache, then from cache), boots with Debian's kernel and with the rig's kernel, runs
 * every helper (help, real work on tmpfs and hugetlbfs, bad input), and starts an L2 guest
 * under TCG with its RAM in a file.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { projectRoot } from '../../core/paths.js';
import { chooseAccel, type AccelChoice } from '../../vm/accel.js';
import { FULL, fullOnly } from '../helpers/tier.js';
import { bootL1, prepareL1 } from '../../runner/l1-guest.js';
import { runL2, runL2Retrying } from '../../scenarios/l2-steps.js';
import { HELPERS } from '../../images/guest-tools.js';
import type { Guest } from '../../vm/guest.js';

const cli = join(projectRoot(), 'dist', 'scripts', 'cli.js');

function imageL1(env: NodeJS.ProcessEnv): {
  hit: boolean;
  seconds: number;
  log: string;
  manifest: { packages: Array<{ name: string; version: string; sha256: string }>; imageMiB: number };
} {
  const r = spawnSync(process.execPath, [cli, 'image', 'l1', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 900_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`image l1 failed: ${r.stderr.slice(-2000)}`);
  return { ...JSON.parse(r.stdout), log: r.stderr };
}

t.test('the L1 image builds from scratch, then comes from the cache', async (t) => {
  const fresh = mkdtempSync(join(tmpdir(), 'rig-fresh-cache-'));
  t.teardown(() => rmSync(fresh, { recursive: true, force: true }));
  const cold = imageL1({ DMEMFS_RIG_CACHE: fresh, DMEMFS_RIG_LOG: 'normal' });
  const warm = imageL1({ DMEMFS_RIG_CACHE: fresh, DMEMFS_RIG_LOG: 'normal' });
  t.equal(cold.hit, false, 'first build: built');
  t.equal(warm.hit, true, 'second: from cache');
  t.comment(
    `L1 image: cold ${cold.seconds.toFixed(1)} s (empty cache: apt lists, Debian kernel, ` +
      `${cold.manifest.packages.length} packages), warm ${warm.seconds.toFixed(1)} s`,
  );
  // What the cache saves, by what the second build did not do (speed is bench's, not a test's).
  t.match(cold.log, /L1 image: unpacking \d+ packages/, 'the first build unpacked the packages');
  t.notMatch(warm.log, /L1 image: unpacking|making a \d+ MiB ext4 image/, 'the second unpacked and packed nothing');
  for (const p of ['qemu-system-x86', 'dropbear-bin', 'ndctl', 'daxctl', 'kmod', 'util-linux', 'busybox-static']) {
    const e = cold.manifest.packages.find((x) => x.name === p);
    t.ok(
      e && e.version && /^[0-9a-f]{64}$/.test(e.sha256),
      `manifest records ${p} ${e?.version ?? '(missing)'} with its SHA256`,
    );
  }
});

async function checkHelpers(t: Test, g: Guest): Promise<void> {
  for (const h of HELPERS) {
    const r = await g.exec([h, '--help']);
    t.equal(r.code, 0, `${h} --help exits 0`);
    t.match(r.stdout, new RegExp(`^usage: ${h}`), `${h} --help prints its usage`);
  }
  const json = async (argv: string[], user?: number) => {
    const r = await g.exec(
      user === undefined ? argv : ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--clear-groups', ...argv],
    );
    const line = r.stdout.trim().split('\n').filter(Boolean).at(-1) ?? '';
    let obj: Record<string, unknown> = {};
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      t.fail(`${argv[0]} printed no JSON: ${r.stdout} ${r.stderr}`);
    }
    return { code: r.code, obj };
  };
  // Real work on tmpfs (4K pages).
  const tmpfs = await json(['map-and-touch', '--file', '/dev/shm/rig-a', '--create', '--size', '8M']);
  t.equal(tmpfs.code, 0);
  t.same(
    [
      tmpfs.obj.ok,
      tmpfs.obj.bytes_touched,
      tmpfs.obj.pages_touched_4k,
      tmpfs.obj.kernel_page_size_kb,
      tmpfs.obj.verified,
    ],
    [true, 8388608, 2048, 4, true],
    'map-and-touch on tmpfs',
  );
  t.ok((tmpfs.obj.minor_faults as number) >= 2048, `one fault per 4K page on tmpfs (${tmpfs.obj.minor_faults})`);
  // hugetlbfs: reserve 2M pages, map 8M: 4 faults, 2048 kB page size.
  await g.exec(['sh', '-c', 'echo 8 > /proc/sys/vm/nr_hugepages'], { check: true });
  const huge = await json(['map-and-touch', '--file', '/dev/hugepages/rig-h', '--create', '--size', '8M']);
  t.same(
    [huge.obj.ok, huge.obj.kernel_page_size_kb, huge.obj.mmu_page_size_kb],
    [true, 2048, 2048],
    'map-and-touch on hugetlbfs: 2 MiB pages in smaps',
  );
  t.equal(huge.obj.minor_faults, 4, '8 MiB of 2 MiB pages: 4 faults');
  // pool-edge: its three cases, on tmpfs and on a hugetlbfs pool smaller than the file.
  const edge = async (...a: string[]) => json(['pool-edge', '--case', ...a]);
  const sg = await edge('shrink-grow', '--file', '/dev/shm/rig-e', '--page', '4K', '--pages', '4');
  t.same(
    [sg.code, sg.obj.outcome, sg.obj.after_shrink, sg.obj.after_grow],
    [0, 'ok', 'sigbus', 'zero'],
    'pool-edge shrink-grow on tmpfs: SIGBUS past EOF, zeros after growing',
  );
  const th = await edge('threads', '--file', '/dev/shm/rig-t', '--page', '4K', '--pages', '256', '--threads', '8');
  t.same([th.code, th.obj.outcome, th.obj.threads, th.obj.verified], [0, 'ok', 8, true], 'pool-edge: 8 threads');
  const over = await edge('fill', '--file', '/dev/hugepages/rig-o', '--page', '2M', '--pages', '16');
  t.same(
    [over.code, over.obj.outcome],
    [1, 'mmap:ENOMEM'],
    'pool-edge: hugetlbfs refuses at mmap a file larger than its pool (8 pages, 4 in use)',
  );
  t.equal((await edge('fill', '--bogus')).code, 2, 'pool-edge: unknown option, exit 2');
  const pfn = await json(['pfn', '--file', '/dev/shm/rig-a', '--size', '16K']);
  t.equal(pfn.obj.present, 4, 'pfn: 4 pages translated');
  t.match(String(pfn.obj.min_paddr), /^0x[0-9a-f]+$/);
  const victim = await json(['mce-victim', '--file', '/dev/shm/rig-a', '--size', '4K', '--timeout', '1']);
  t.equal(victim.code, 3, 'mce-victim without an injected error times out (exit 3)');
  t.equal(victim.obj.event, 'timeout');
  // Bad input: each helper answers with a JSON error and a non-zero exit, never a crash.
  for (const h of ['map-and-touch', 'pfn', 'mce-victim']) {
    const missing = await json([h, '--file', '/nonexistent/file', '--size', '4K']);
    t.same(
      [missing.code, missing.obj.ok, missing.obj.step, missing.obj.errno_name],
      [1, false, 'open', 'ENOENT'],
      `${h}: missing file`,
    );
    const unaligned = await json([h, '--file', '/dev/hugepages/rig-h', '--size', '1M']);
    t.same([unaligned.code, unaligned.obj.step], [1, 'align'], `${h}: size not a multiple of the 2 MiB page`);
  }
  await g.exec(['sh', '-c', 'echo secret > /dev/shm/rig-root && chmod 600 /dev/shm/rig-root'], { check: true });
  const denied = await json(['map-and-touch', '--file', '/dev/shm/rig-root', '--size', '4K'], 1000);
  t.same(
    [denied.code, denied.obj.step, denied.obj.errno_name],
    [1, 'open', 'EACCES'],
    'map-and-touch: no permission (uid 1000, file 0600 root)',
  );
  const usage = await json(['map-and-touch', '--bogus']);
  t.same([usage.code, usage.obj.step], [2, 'usage'], 'unknown option: usage error, exit 2');
  const vfio = await json(['vfio-dma', '--device', '0000:00:1f.7', '--file', '/dev/shm/rig-a']);
  t.same(
    [vfio.code, vfio.obj.ok, vfio.obj.step],
    [1, false, 'iommu_group'],
    'vfio-dma: a device without an IOMMU group is a JSON error',
  );
}

/** An L2 under TCG inside this L1 with its RAM from a 256 MiB file: done, MemTotal, touched. */
async function l2FromFile(t: Test, g: Guest, accel: AccelChoice): Promise<void> {
  const { report: l2 } = await runL2Retrying(g, {
    memMiB: 256,
    backend: { kind: 'file', path: '/dev/shm/l2-ram', share: true },
    touchMiB: 32,
    accel: 'tcg',
    timeoutMs: 600_000,
  });
  t.comment(`L2 under TCG inside L1 (itself under ${accel.accel}): ${l2.seconds.toFixed(0)} s`);
  t.ok(l2.done, 'L2 printed its completion marker and powered off');
  t.ok(
    l2.memTotalKb! > 0.75 * 256 * 1024 && l2.memTotalKb! <= 256 * 1024,
    `L2 MemTotal ${l2.memTotalKb} kB of 256 MiB`,
  );
  t.equal(l2.touchedMiB, 32, 'L2 touched 32 MiB');
  const file = await g.exec(['stat', '-c', '%s', '/dev/shm/l2-ram'], { check: true });
  t.equal(Number(file.stdout.trim()), 256 * 1048576, 'L2 RAM was the 256 MiB file');
}

t.test(
  "L1 with Debian's kernel: SSH, helpers, an L2 guest whose QEMU stalls (and one with RAM from a file)",
  async (t) => {
    const accel = chooseAccel();
    const files = await prepareL1('debian');
    const g = await bootL1(files, accel, { nodeMiB: 1536, name: 'it-l1-debian' });
    t.teardown(() => g.stop());
    const uname = await g.exec(['uname', '-r'], { check: true });
    t.match(uname.stdout, /-amd64/, `L1 runs Debian's kernel (${uname.stdout.trim()})`);
    await checkHelpers(t, g);
    if (FULL) await l2FromFile(t, g, accel);
    else
      t.pass('an L2 with RAM from a file under this L1', {
        skip: fullOnly("l2-alternatives runs one (RAM from /dev/dax0.0), on the rig's kernel"),
      });

    // A stall, made real: the L2's QEMU frozen (SIGSTOP) two seconds after it started.
    const freezer = g.exec([
      'sh',
      '-c',
      'until pgrep -f "[l]2-qmp.sock" >/dev/null; do sleep 0.2; done; sleep 2; pkill -STOP -f "[l]2-qmp.sock"',
    ]);
    const stalled = await runL2(g, { memMiB: 256, touchMiB: 32, accel: 'tcg', timeoutMs: 600_000, quietMs: 8000 });
    await freezer;
    t.equal(stalled.done, false, 'the frozen L2 never reported');
    t.ok(stalled.stalledS! >= 8, `reported as stalled after ${stalled.stalledS} s of silence`);
    t.ok(stalled.seconds < 120, `within ${stalled.seconds.toFixed(0)} s, not the 600 s timeout`);
    const left = await g.exec(['sh', '-c', 'sleep 1; pgrep -f "[l]2-qmp.sock" || echo none']);
    t.equal(left.stdout.trim(), 'none', "the stalled L2's QEMU is gone");
  },
);

t.test("L1 with the rig's kernel (rfc-v2-debian): SSH and dmemfs available", async (t) => {
  const accel = chooseAccel();
  const files = await prepareL1({ profile: 'rfc-v2-debian' });
  const g = await bootL1(files, accel, { nodeMiB: 1536, name: 'it-l1-rig', append: ['dmem=512M'] });
  t.teardown(() => g.stop());
  const r = await g.exec(
    ['sh', '-c', 'uname -r; grep -c dmemfs /proc/filesystems; qemu-system-x86_64 --version | head -1'],
    { check: true },
  );
  t.match(r.stdout, /^5\.10\.223/, 'L1 runs the patched 5.10.223 kernel');
  t.match(r.stdout, /\n1\n/, 'dmemfs is registered');
  t.match(r.stdout, /QEMU emulator version/);
});
