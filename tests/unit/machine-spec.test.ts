/** Machine specs to QEMU argument arrays: NUMA, memory backends, forwards on 127.0.0.1, IOMMU. */
import t from 'tap';
import {
  appendLine,
  OVMF_IMAGE,
  qemuArgs,
  totalMemMiB,
  watchdogTokens,
  withWatchdogs,
  type MachineSpec,
} from '../../vm/machine-spec.js';
import { RigError } from '../../core/errors.js';

const base = (): MachineSpec => ({
  name: 'unit',
  machine: { type: 'q35' },
  cpu: { model: 'max' },
  smp: { cpus: 2, sockets: 2 },
  memory: {
    nodes: [
      { memMiB: 3072, cpus: [0] },
      { memMiB: 3072, cpus: [1] },
    ],
  },
  kernel: '/k/bzImage',
  initrd: '/k/initrd',
  append: ['console=ttyS0', 'dmem=1G'],
  forwards: [{ hostPort: 40022, guestPort: 22 }],
});
const wiring = { accel: 'tcg' as const, qmpSocket: '/run/x/qmp.sock', pidFile: '/run/x/pid' };

function valuesOf(args: string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => a === flag && out.push(args[i + 1]!));
  return out;
}

t.test('NUMA nodes become one memory backend and one -numa entry each', async (t) => {
  const args = qemuArgs(base(), wiring);
  t.same(valuesOf(args, '-object'), ['memory-backend-ram,id=mem0,size=3072M', 'memory-backend-ram,id=mem1,size=3072M']);
  t.same(valuesOf(args, '-numa'), ['node,nodeid=0,memdev=mem0,cpus=0', 'node,nodeid=1,memdev=mem1,cpus=1']);
  t.same(valuesOf(args, '-m'), ['size=6144M']);
  t.equal(totalMemMiB(base()), 6144);
  t.same(valuesOf(args, '-smp'), ['2,sockets=2']);
  t.same(valuesOf(args, '-machine'), ['q35,accel=tcg']);
});

t.test('file-backed node with host binding (L2 RAM in a dmemfs file)', async (t) => {
  const s = base();
  s.memory = {
    nodes: [
      {
        memMiB: 1024,
        cpus: [0, 1],
        backend: { kind: 'file', path: '/mnt/dmem/vm,0', share: true, prealloc: true, align: '2M' },
        hostNodes: [1],
        policy: 'preferred',
      },
    ],
  };
  const args = qemuArgs(s, wiring);
  t.same(valuesOf(args, '-object'), [
    'memory-backend-file,id=mem0,size=1024M,mem-path=/mnt/dmem/vm,,0,share=on,prealloc=on,align=2M,' +
      'host-nodes=1,policy=preferred',
  ]);
  t.same(valuesOf(args, '-numa'), ['node,nodeid=0,memdev=mem0,cpus=0,cpus=1']);
});

t.test('append line is one argument, tokens validated', async (t) => {
  const args = qemuArgs(base(), wiring);
  t.same(valuesOf(args, '-append'), [
    'console=ttyS0 dmem=1G oops=panic softlockup_panic=1 hung_task_panic=1 watchdog_thresh=30 ' +
      'sysctl.kernel.hung_task_timeout_secs=360 rcupdate.rcu_cpu_stall_timeout=100',
  ]);
  t.equal(appendLine(['dmem=!1G:1G', 'memmap=1G!4G', 'dmem=2G@5G:1G']), 'dmem=!1G:1G memmap=1G!4G dmem=2G@5G:1G');
  t.throws(() => appendLine(['dmem=1G; rm -rf /']), RigError);
  t.throws(() => appendLine(['a b']), RigError);
  t.throws(() => appendLine(['x="y"']), RigError);
});

t.test('port forwarding binds 127.0.0.1 only, NIC without option ROM', async (t) => {
  const args = qemuArgs(base(), wiring);
  const netdev = valuesOf(args, '-netdev')[0]!;
  t.match(netdev, /^user,id=net0,ipv6=off,hostfwd=tcp:127\.0\.0\.1:40022-:22$/);
  t.ok(valuesOf(args, '-device').some((d) => d.startsWith('virtio-net-pci,netdev=net0,romfile=')));
  const none = base();
  none.forwards = [];
  t.same(valuesOf(qemuArgs(none, wiring), '-netdev'), [], 'no forwards, no NIC');
});

t.test('console on stdio, QMP on the private socket, no defaults, no reboot', async (t) => {
  const args = qemuArgs(base(), wiring);
  t.same(valuesOf(args, '-qmp'), ['unix:/run/x/qmp.sock,server=on,wait=off']);
  t.same(valuesOf(args, '-serial'), ['chardev:console0']);
  t.ok(args.includes('-nodefaults') && args.includes('-no-reboot'));
  t.same(valuesOf(args, '-pidfile'), ['/run/x/pid']);
});

t.test('CPU vendor and flags, IOMMU, hotplug, extra devices', async (t) => {
  const s = base();
  s.cpu = { model: 'max', vendor: 'GenuineIntel', flags: ['la57=off'] };
  s.iommu = true;
  s.devices = ['edu'];
  s.hotplug = { slots: 4, maxMiB: 16384 };
  const args = qemuArgs(s, wiring);
  t.same(valuesOf(args, '-cpu'), ['max,vendor=GenuineIntel,la57=off']);
  t.same(valuesOf(args, '-machine'), ['q35,accel=tcg,kernel-irqchip=split']);
  t.ok(valuesOf(args, '-device').includes('intel-iommu,intremap=on,caching-mode=on'));
  t.ok(valuesOf(args, '-device').includes('edu'));
  t.same(valuesOf(args, '-m'), ['size=6144M,slots=4,maxmem=16384M']);
});

t.test('invalid specs are rejected with a RigError', async (t) => {
  const cpuTwice = base();
  cpuTwice.memory = {
    nodes: [
      { memMiB: 512, cpus: [0] },
      { memMiB: 512, cpus: [0] },
    ],
  };
  t.throws(() => qemuArgs(cpuTwice, wiring), /vCPU 0 is in two NUMA nodes/);
  const badCpu = base();
  badCpu.memory = { nodes: [{ memMiB: 512, cpus: [5] }] };
  t.throws(() => qemuArgs(badCpu, wiring), /names vCPU 5/);
  const badPort = base();
  badPort.forwards = [{ hostPort: 70000, guestPort: 22 }];
  t.throws(() => qemuArgs(badPort, wiring), /not a TCP port/);
  const sockets = base();
  sockets.smp = { cpus: 3, sockets: 2 };
  t.throws(() => qemuArgs(sockets, wiring), /cannot be split/);
  const iommuPc = base();
  iommuPc.machine = { type: 'pc' };
  iommuPc.iommu = true;
  t.throws(() => qemuArgs(iommuPc, wiring), /needs machine q35/);
});

t.test('firmware: UEFI adds OVMF (the kernel through its EFI stub); SeaBIOS adds nothing', async (t) => {
  const efi = qemuArgs({ ...base(), firmware: 'efi' }, wiring);
  t.same(valuesOf(efi, '-bios'), [OVMF_IMAGE], 'OVMF as the firmware');
  t.ok(efi.indexOf('-bios') < efi.indexOf('-kernel'), 'before the kernel');
  t.same(valuesOf(qemuArgs(base(), wiring), '-bios'), [], 'default: no -bios (SeaBIOS)');
  t.same(valuesOf(qemuArgs({ ...base(), firmware: 'bios' }, wiring), '-bios'), []);
});

t.test("every guest's watchdogs: LKP's on KVM, lenient thresholds under TCG, the spec's own token wins", async (t) => {
  t.same(watchdogTokens('kvm'), [
    'oops=panic',
    'softlockup_panic=1',
    'hung_task_panic=1',
    'watchdog_thresh=10',
    'sysctl.kernel.hung_task_timeout_secs=120',
    'rcupdate.rcu_cpu_stall_timeout=100',
  ]);
  const kvm = qemuArgs(base(), { ...wiring, accel: 'kvm' });
  t.match(valuesOf(kvm, '-append')[0], / watchdog_thresh=10 .*hung_task_timeout_secs=120 /, 'KVM: the defaults');
  t.same(
    withWatchdogs(['console=ttyS0', 'softlockup_panic=0', 'watchdog_thresh=1'], 'tcg').slice(0, 5),
    ['console=ttyS0', 'softlockup_panic=0', 'watchdog_thresh=1', 'oops=panic', 'hung_task_panic=1'],
    "a boot's own value stays, and is not given twice",
  );
  t.equal(withWatchdogs(['oops=panic'], 'kvm').filter((x) => x === 'oops=panic').length, 1, 'oops=panic once');
});

t.test("the boot's SSH host key goes to the guest through fw_cfg, and only when given", async (t) => {
  const withKey = qemuArgs(base(), { ...wiring, hostKeyFile: '/run/x/dropbear_host_key' });
  const i = withKey.indexOf('-fw_cfg');
  t.ok(i > 0);
  t.equal(withKey[i + 1], 'name=opt/dmemfs-rig/host_key,file=/run/x/dropbear_host_key');
  t.equal(withKey.filter((a) => a === '-fw_cfg').length, 1);
  t.notOk(qemuArgs(base(), wiring).includes('-fw_cfg'), 'no key given, no fw_cfg entry');
  // A comma in the path is doubled (QEMU's option syntax), never taken as a new option.
  const odd = qemuArgs(base(), { ...wiring, hostKeyFile: '/run/a,b/key' });
  t.equal(odd[odd.indexOf('-fw_cfg') + 1], 'name=opt/dmemfs-rig/host_key,file=/run/a,,b/key');
});
