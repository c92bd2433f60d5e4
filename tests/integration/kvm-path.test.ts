/**
 * The rig's KVM path, run for real. This machine has no vmx/svm, but the rig's own L1 guest
 * has nested SVM and a working /dev/kvm. The rig is carried into such an L1 on a second disk
 * (tests/helpers/inner-rig.ts) and its own commands run there unmodified, with Debian's
 * Node.js: it must choose KVM, boot its first guest under KVM (SSH, MemTotal, two NUMA
 * nodes), and report a panic from the console. The inner boot time is set beside the same
 * boot under TCG on this host. One scenario boot is not run inside: the rig's kernel pipeline
 * would need the kernel's sources and a compiler in L1 (see the skip below).
 */
import t from 'tap';
import { dirname } from 'node:path';
import { NESTED_KVM_TIMEOUT_SCALE, chooseAccel } from '../../vm/accel.js';
import { benchBootOnce, prepareFirstGuest } from '../../runner/first-guest.js';
import { bootL1, prepareL1 } from '../../runner/l1-guest.js';
import type { Guest } from '../../vm/guest.js';
import { SCENARIO_FATAL } from '../../vm/crash-patterns.js';
import { INNER, buildRigDisk } from '../helpers/inner-rig.js';

const SCENARIO_INSIDE =
  "not run: the rig's own kernel comes from its pipeline, whose cache key names the " +
  'compiler (gcc in L1) and whose tree entry is the whole patched source (over 1 GB on the rig disk)';

/** One command of the rig inside L1; its exit status, output and time on L1's clock. */
async function inner(g: Guest, args: string[], timeoutMs: number) {
  const started = Date.now();
  // On L1's second vCPU only: the inner guest's vCPU threads then never need an IPI across L1's
  // vCPUs, which TCG's nested SVM delivers late (stalls and resets of the inner guest were seen).
  // The inner rig prints a line per step and its own silence watchdog watches its guests; a step
  // under nested TCG can stay quiet for minutes, so the outer bound is ten.
  const r = await g.exec(['taskset', '-c', '1', 'env', ...INNER.env, 'node', INNER.cli, ...args], {
    timeoutMs,
    silenceMs: 600_000,
  });
  if (r.code !== 0) t.comment(`inner ${args.join(' ')}: exit ${r.code}\n${r.stderr.slice(-3000)}`);
  return { ...r, seconds: (Date.now() - started) / 1000 };
}

t.test('the rig inside a nested-SVM L1 takes its KVM path, unmodified', async (t) => {
  const accel = chooseAccel();
  const first = await prepareFirstGuest();
  const hostBoot = await benchBootOnce(first, accel);
  const disk = await buildRigDisk([dirname(first.kernel.image), dirname(first.bootImage.path)]);
  t.teardown(disk.remove);
  const files = await prepareL1({ profile: 'rfc-v2-debian' });
  const g = await bootL1(files, accel, {
    role: 'nested',
    nodeMiB: 1536,
    name: 'it-kvm-path',
    extraDrives: [{ path: disk.path }],
    // The outer L1 is scaffolding under TCG, whose nested SVM emulation has been seen to leak an
    // NMI count into L1's preempt count ("scheduling while atomic" in node): its reports are kept
    // and listed below, as the scenario pool keeps them, and only a crash stops it.
    fatalKinds: SCENARIO_FATAL,
  });
  t.teardown(() => {
    for (const r of g.console.reports) t.comment(`outer L1 console report (TCG nested SVM): ${r.title}`);
    return g.stop();
  });
  await g.exec(['sh', '-c', `mkdir -p ${INNER.mount} && mount /dev/vdb ${INNER.mount}`], { check: true });
  const node = await g.exec(['node', '--version'], { check: true });
  t.comment(`inside L1: Node.js ${node.stdout.trim()} from Debian's package`);

  const a = await inner(g, ['accel', '--json'], 120_000);
  t.equal(a.code, 0, 'accel --json exits 0');
  const choice = JSON.parse(a.stdout) as { accel: string; reason: string; timeoutScale: number; kvmUsable: boolean };
  t.equal(choice.accel, 'kvm', `the inner rig chooses KVM: "${choice.reason}"`);
  t.match(choice.reason, /svm and \/dev\/kvm opens read-write/, 'and says why: svm and a usable /dev/kvm');
  t.equal(choice.timeoutScale, NESTED_KVM_TIMEOUT_SCALE, "with nested KVM's timeout scale, not TCG's");
  t.match(choice.reason, /itself a virtual machine \(nested KVM\)/, 'and says it is nested');

  const b = await inner(g, ['boot'], 600_000);
  t.equal(b.code, 0, `boot exits 0 (${b.seconds.toFixed(1)} s on L1's clock, node start included)`);
  if (b.code !== 0) t.comment(`the inner boot's stderr, last lines:\n${b.stderr.split('\n').slice(-25).join('\n')}`);
  t.match(b.stderr, /accelerator: kvm/, 'the boot says it uses KVM');
  const memKb = Number(/MemTotal:\s+(\d+) kB/.exec(b.stdout)?.[1]);
  t.ok(memKb > 0.8 * 1024 * 1024 && memKb <= 1024 * 1024, `MemTotal ${memKb} kB of 2 x 512 MiB`);
  t.match(b.stdout, /^node0$/m, 'NUMA node 0 is there');
  t.match(b.stdout, /^node1$/m, 'NUMA node 1 is there');

  // The same boot on this host (TCG) and inside L1 (KVM): the rig's own "SSH ready after" line.
  const ready = Number(/first-guest: SSH ready after ([\d.]+)s/.exec(b.stderr)?.[1]);
  t.ok(ready > 0, `the inner boot reached SSH after ${ready} s`);
  t.comment(
    `first-guest boot to SSH: ${ready.toFixed(1)} s under KVM inside L1 (nested SVM on TCG), ` +
      `${hostBoot.bootToSshSeconds.toFixed(1)} s under ${hostBoot.accel} on this host`,
  );

  const p = await inner(g, ['boot', '--', 'sh', '-c', 'echo c > /proc/sysrq-trigger; sleep 600'], 600_000);
  t.equal(p.code, 1, 'a panicking guest fails the boot command');
  t.match(p.stderr, /error \[kernel-panic\]/, 'reported as a kernel panic');
  t.match(p.stderr, /sysrq triggered crash/, 'with the panic message from the console');
  t.ok(p.seconds < 120, `within ${p.seconds.toFixed(1)} s, not the 600 s command timeout`);
  const left = await g.exec(['sh', '-c', 'pgrep -c qemu-system || true']);
  t.equal(left.stdout.trim(), '0', 'no QEMU left inside L1');
  const keys = await g.exec(['sh', '-c', 'find /tmp/inner-runs -name id_ed25519 | wc -l']);
  t.equal(keys.stdout.trim(), '0', "no private key left in the inner rig's run directories");
});

t.test(
  'one scenario boot inside L1',
  {
    skip: SCENARIO_INSIDE,
  },
  async () => {},
);
