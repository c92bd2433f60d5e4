/**
 * Foundation, for real: QEMU boots Debian's kernel with the rig's initramfs on two emulated
 * NUMA nodes; the rig logs in over SSH and talks QMP.
 */
import t from 'tap';
import { chooseAccel } from '../../vm/accel.js';
import { bootFirstGuest, prepareFirstGuest } from '../../runner/first-guest.js';
import { statSync } from 'node:fs';
import { join } from 'node:path';

const NODE_MIB = 512;

t.test('first guest: two NUMA nodes, MemTotal, SSH exec, upload, QMP', async (t) => {
  const accel = chooseAccel();
  t.comment(`accelerator: ${accel.accel} (${accel.reason})`);
  const files = await prepareFirstGuest();
  t.comment(
    `kernel ${files.kernel.provenance.package} ${files.kernel.provenance.version}, boot image ` +
      `${files.bootImage.pvh ? 'PVH vmlinux' : 'bzImage'}`,
  );
  const g = await bootFirstGuest(files, accel, { nodeMiB: NODE_MIB, name: 'it-first-guest' });
  t.teardown(() => g.stop());

  t.equal(statSync(g.runDir).mode & 0o777, 0o700, 'run directory is private');
  t.equal(statSync(join(g.runDir, 'qmp.sock')).isSocket(), true, 'QMP socket lives in the run directory');

  const nodes = await g.exec(['ls', '/sys/devices/system/node'], { check: true });
  const nodeNames = nodes.stdout
    .split(/\s+/)
    .filter((n) => /^node\d+$/.test(n))
    .sort();
  t.same(nodeNames, ['node0', 'node1'], 'guest sees two NUMA nodes');

  const meminfo = await g.exec(['cat', '/proc/meminfo'], { check: true });
  const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo.stdout)?.[1]);
  const configuredKb = 2 * NODE_MIB * 1024;
  t.comment(
    `MemTotal ${memTotalKb} kB of ${configuredKb} kB configured (${((100 * memTotalKb) / configuredKb).toFixed(1)}%)`,
  );
  // The kernel keeps its image, page tables and struct pages: expect 80-100% of the RAM given.
  t.ok(
    memTotalKb > 0.8 * configuredKb && memTotalKb <= configuredKb,
    `MemTotal ${memTotalKb} kB within 80-100% of ${configuredKb} kB`,
  );

  for (const n of [0, 1]) {
    const m = await g.exec(['cat', `/sys/devices/system/node/node${n}/meminfo`], { check: true });
    const kb = Number(new RegExp(`Node ${n} MemTotal:\\s+(\\d+) kB`).exec(m.stdout)?.[1]);
    t.ok(
      kb > 0.6 * NODE_MIB * 1024 && kb <= NODE_MIB * 1024,
      `node${n} MemTotal ${kb} kB within 60-100% of ${NODE_MIB} MiB`,
    );
  }

  const fail = await g.exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
  t.same(
    [fail.code, fail.stdout, fail.stderr],
    [3, 'out\n', 'err\n'],
    'exit code, stdout and stderr come back separately',
  );
  const meta = await g.exec(['printf', '%s', '$(id) `id`; "x"']);
  t.equal(meta.stdout, '$(id) `id`; "x"', 'arguments reach the guest verbatim (no shell expansion)');

  const payload = Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 251));
  await g.ssh!.upload('/tmp/payload.bin', payload, 0o600);
  const sum = await g.exec(['sh', '-c', 'sha256sum /tmp/payload.bin; stat -c %a /tmp/payload.bin'], { check: true });
  const { createHash } = await import('node:crypto');
  t.match(sum.stdout, createHash('sha256').update(payload).digest('hex'), 'uploaded bytes arrive intact');
  t.match(sum.stdout, /\n600\n$/, 'upload sets the mode');

  const status = await g.qmp!.execute<{ status: string; running: boolean }>('query-status');
  t.equal(status.running, true, 'QMP query-status: running');
  const numa = await g.qmp!.hmp('info numa');
  t.match(numa, /2 nodes/, 'HMP through QMP: info numa shows 2 nodes');
  t.match(numa, new RegExp(`node 1 size: ${NODE_MIB} MB`));
});
