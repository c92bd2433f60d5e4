/**
 * The kernel pipeline for real, offline profile rfc-v2-debian: Debian's linux-source-5.10
 * from Debian's archive, the rebased series verified and applied (37 clean), config
 * verified, bzImage built (cold the first time, from cache afterwards), and the kernel
 * boots with dmem= on two NUMA nodes: dmem reservation lines, dmemfs registered and mountable.
 */
import t from 'tap';
import { chooseAccel } from '../../vm/accel.js';
import { Guest } from '../../vm/guest.js';
import { prepareRigKernel } from '../../runner/rig-kernel.js';
import { twoNodeGuest } from '../../scenarios/machines.js';
import { dmemRegions, kernelLog } from '../../scenarios/probes.js';

t.test('rfc-v2-debian: series applied, config verified, kernel built', async (t) => {
  const started = Date.now();
  const first = await prepareRigKernel({ profile: 'rfc-v2-debian' });
  const firstSecs = (Date.now() - started) / 1000;
  const m = first.pipeline.build.manifest;
  t.comment(
    `first call: ${firstSecs.toFixed(1)} s ` +
      (first.pipeline.build.hit
        ? '(kernel from cache)'
        : `(cold build ${m.seconds.build.toFixed(0)} s, ${m.objectsCompiled} objects)`),
  );
  const report = first.pipeline.tree.report!;
  t.equal(report.patches.length, 37, '37 patches in the apply report');
  t.equal(report.counts.clean, 37, 'all 37 apply cleanly (git am, no offset, no fuzz)');
  t.equal(first.pipeline.series!.report?.ok, true, 'series complete and intact by patch id');
  t.match(m.release, /^5\.10\.223/);
  t.equal(m.series?.patchIds.length, 37);
  t.ok(m.artifacts.bzImage!.bytes > 1_000_000, `bzImage ${m.artifacts.bzImage!.bytes} bytes`);
  t.ok(first.bootImage.pvh, 'the build boots through PVH');

  const again = Date.now();
  const second = await prepareRigKernel({ profile: 'rfc-v2-debian' });
  const secondSecs = (Date.now() - again) / 1000;
  t.equal(second.pipeline.build.hit, true, 'second call: kernel from cache');
  t.equal(second.pipeline.build.dir, first.pipeline.build.dir);
  t.ok(secondSecs < 30, `second call took ${secondSecs.toFixed(1)} s (< 30 s)`);
});

t.test('the patched kernel boots with dmem=1G on two nodes; dmemfs mounts', async (t) => {
  const accel = chooseAccel();
  const files = await prepareRigKernel({ profile: 'rfc-v2-debian' });
  const spec = twoNodeGuest(
    { kernel: files.bootImage.path, initrd: files.initramfs.path },
    { nodeMiB: 3072, name: 'it-dmem-boot', append: ['dmem=1G'] },
  );
  const g = await Guest.start({ spec, accel, bootTimeoutSec: 30 });
  t.teardown(() => g.stop());
  // The kernel log over SSH, not the serial console: under load the console drops bytes.
  const log = await kernelLog(g);
  const regions = await dmemRegions(g);
  t.comment(log.filter((l) => /dmem: register region/.test(l)).join('\n'));
  t.ok(
    log.some((l) => /dmem: parameter: base address 0x0 size 0x40000000/.test(l)),
    'kernel log: the kernel parsed dmem=1G',
  );
  t.same([...new Set(regions.map((r) => r.node))].sort(), [0, 1], 'kernel log: a dmem region registered on each node');
  t.equal(
    regions.reduce((a, r) => a + (r.end - r.start), 0),
    2 * 2 ** 30,
    'kernel log: 2 GiB registered in all',
  );
  t.ok(
    g.console.lines.some((l) => /dmem: /.test(l.raw)),
    'the live console saw the dmem lines too',
  );

  const fs = await g.exec(['cat', '/proc/filesystems'], { check: true });
  t.match(fs.stdout, /\bdmemfs\b/, '/proc/filesystems lists dmemfs');
  const mount = await g.exec([
    'sh',
    '-c',
    'mkdir -p /mnt/dmem && mount -t dmemfs -o pagesize=4K none /mnt/dmem && grep dmemfs /proc/mounts',
  ]);
  t.equal(mount.code, 0, `mount -t dmemfs succeeds ${mount.stderr}`);
  t.match(mount.stdout, /none \/mnt\/dmem dmemfs/);
  const total = await g.exec(['cat', '/sys/kernel/debug/dmem/total_dpages'], { check: true });
  t.equal(Number(total.stdout.trim()), 2 * 262144, 'debugfs dmem/total_dpages: 2 GiB of 4 KiB pages');
});
