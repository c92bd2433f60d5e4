/**
 * Machine specs the rig boots: data. Measured facts behind them (../shared/MISSION.md):
 * nested SVM under TCG needs an AMD-vendor CPU; a recoverable injected MCE needs an
 * Intel-vendor CPU; "-smp 2,sockets=2" keeps the topology WARNING off two-node boots;
 * a 5.10 L1 that runs nested KVM needs no5lvl.
 */
import type { MachineSpec, MemoryBackend } from '../vm/machine-spec.js';

export interface BootFiles {
  kernel: string;
  initrd?: string;
}

/** The foundation's first guest: two emulated NUMA nodes of `nodeMiB` each, one vCPU per node. */
export function twoNodeGuest(
  files: BootFiles,
  opts: { nodeMiB?: number; name?: string; append?: string[]; firmware?: MachineSpec['firmware'] } = {},
): MachineSpec {
  const nodeMiB = opts.nodeMiB ?? 512;
  return {
    name: opts.name ?? 'first-guest',
    ...(opts.firmware ? { firmware: opts.firmware } : {}),
    machine: { type: 'q35' },
    cpu: { model: 'max' },
    smp: { cpus: 2, sockets: 2 },
    memory: {
      nodes: [
        { memMiB: nodeMiB, cpus: [0] },
        { memMiB: nodeMiB, cpus: [1] },
      ],
    },
    kernel: files.kernel,
    ...(files.initrd ? { initrd: files.initrd } : {}),
    append: [
      'console=ttyS0',
      'panic=-1',
      'oops=panic',
      'nokaslr',
      'tsc=reliable',
      'no_timer_check',
      ...(opts.append ?? []),
    ],
    forwards: [],
  };
}

/** CPU vendors that matter here: nested SVM (AMD) vs recoverable injected MCE (Intel). */
export type HostRole = 'nested' | 'mce';

/** How one L1 differs from the default two-node host. */
export interface L1Options {
  nodeMiB?: number;
  nodes?: number;
  role?: HostRole;
  append?: string[];
  iommu?: boolean;
  devices?: string[];
  name?: string;
  machineOptions?: Record<string, string>;
  /** Cold-plugged pc-dimms (memory-backend-ram each), removable through QMP device_del. */
  dimms?: Array<{ id: string; sizeMiB: number; node: number }>;
  hotplug?: { slots: number; maxMiB: number };
  /** Disks after the L1 image (/dev/vdb, ...). */
  extraDrives?: NonNullable<MachineSpec['drives']>;
  firmware?: MachineSpec['firmware'];
  /** The root file system is the initramfs itself (rdinit=/init, no disk): a standalone reproducer's boot. */
  initramfsRoot?: boolean;
}

/** L1's kernel command line: console, crash behaviour, root, IOMMU, then the boot's own tokens. */
function l1Append(modular: boolean, opts: L1Options): string[] {
  const root = opts.initramfsRoot
    ? ['rdinit=/init']
    : modular
      ? ['rig.root=/dev/vda']
      : ['root=/dev/vda', 'rw', 'rootfstype=ext4', 'init=/sbin/rig-init'];
  return [
    ...['console=ttyS0', 'panic=-1', 'oops=panic', 'no5lvl', 'tsc=reliable', 'no_timer_check'],
    ...root,
    ...(opts.iommu ? ['intel_iommu=on', 'iommu=pt'] : []),
    ...(opts.append ?? []),
  ];
}

/** Extra devices and their memory backends: the boot's devices and its pc-dimms. */
function l1Devices(opts: L1Options): Pick<MachineSpec, 'devices' | 'objects'> {
  const dimms = opts.dimms ?? [];
  const devices = [
    ...(opts.devices ?? []),
    ...dimms.map((d) => `pc-dimm,id=${d.id},memdev=${d.id}-mem,node=${d.node}`),
  ];
  return {
    ...(devices.length ? { devices } : {}),
    ...(dimms.length ? { objects: dimms.map((d) => `memory-backend-ram,id=${d.id}-mem,size=${d.sizeMiB}M`) } : {}),
  };
}

/**
 * The first-level guest (the cloud host): the L1 disk image, emulated NUMA nodes of nodeMiB
 * each, the kernel under test. `role` picks the CPU vendor the check needs.
 */
export function l1Machine(files: BootFiles & { image: string; modular: boolean }, opts: L1Options = {}): MachineSpec {
  const nodes = opts.nodes ?? 2;
  const nodeMiB = opts.nodeMiB ?? 2048;
  return {
    name: opts.name ?? 'l1',
    machine: { type: 'q35', ...(opts.machineOptions ? { options: opts.machineOptions } : {}) },
    cpu: opts.role === 'mce' ? { model: 'max', vendor: 'GenuineIntel' } : { model: 'max' },
    smp: { cpus: nodes, sockets: nodes },
    memory: { nodes: Array.from({ length: nodes }, (_, i) => ({ memMiB: nodeMiB, cpus: [i] })) },
    kernel: files.kernel,
    ...(files.initrd ? { initrd: files.initrd } : {}),
    append: l1Append(files.modular, opts),
    forwards: [],
    drives: opts.initramfsRoot ? [] : [{ path: files.image, snapshot: true }, ...(opts.extraDrives ?? [])],
    ...(opts.iommu ? { iommu: true } : {}),
    ...l1Devices(opts),
    ...(opts.hotplug ? { hotplug: opts.hotplug } : {}),
    ...(opts.firmware ? { firmware: opts.firmware } : {}),
  };
}

/** Paths inside the L1 image. */
export const L1_PATHS = {
  l2Kernel: '/opt/rig/l2/kernel',
  l2Initramfs: '/opt/rig/l2/initramfs.cpio.gz',
  helpers: '/usr/local/bin',
};

/** The second-level guest, run by QEMU inside L1: one node whose RAM is the given backend. */
export function l2Machine(opts: {
  memMiB: number;
  backend?: MemoryBackend;
  hostNodes?: number[];
  policy?: 'preferred' | 'bind';
  touchMiB: number;
  name?: string;
  holdS?: number;
}): MachineSpec {
  return {
    name: opts.name ?? 'l2',
    machine: { type: 'q35' },
    cpu: { model: 'max', flags: ['la57=off'] },
    smp: { cpus: 1 },
    memory: {
      nodes: [
        {
          memMiB: opts.memMiB,
          cpus: [0],
          ...(opts.backend ? { backend: opts.backend } : {}),
          ...(opts.hostNodes ? { hostNodes: opts.hostNodes, policy: opts.policy ?? 'bind' } : {}),
        },
      ],
    },
    kernel: L1_PATHS.l2Kernel,
    initrd: L1_PATHS.l2Initramfs,
    append: [
      'console=ttyS0',
      'panic=-1',
      'quiet',
      `rig.touch_mib=${opts.touchMiB}`,
      ...(opts.holdS ? [`rig.hold_s=${opts.holdS}`] : []),
    ],
    forwards: [],
  };
}
