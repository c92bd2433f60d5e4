/**
 * A typed description of one QEMU machine, and its translation into an argument array.
 * No shell is ever involved: the result is passed to execve as is.
 */
import { HOST_KEY_FW_CFG } from './ssh.js';
import { RigError } from '../core/errors.js';

export type Accel = 'kvm' | 'tcg';

export interface CpuSpec {
  /** QEMU CPU model, e.g. "max", "host", "Skylake-Server". */
  model: string;
  /** Override the CPUID vendor: nested SVM needs AuthenticAMD, recoverable MCE needs GenuineIntel. */
  vendor?: 'GenuineIntel' | 'AuthenticAMD';
  /** Extra flags, e.g. ["la57=off", "+vmx"]. */
  flags?: string[];
}

export type MemoryBackend =
  | { kind: 'ram' }
  | {
      kind: 'file';
      path: string;
      share?: boolean;
      prealloc?: boolean;
      /** Mapping alignment, e.g. "2M": dmemfs refuses a MAP_FIXED address not aligned to its page size. */
      align?: string;
    }
  | { kind: 'memfd'; hugetlb?: boolean; share?: boolean };

export interface NumaNodeSpec {
  memMiB: number;
  /** vCPU indexes that belong to this node; omitted: none (a memory-only node). */
  cpus?: number[];
  backend?: MemoryBackend;
  /** host-nodes/policy for the backend (used inside an L1 guest to bind L2 RAM). */
  hostNodes?: number[];
  policy?: 'default' | 'preferred' | 'bind' | 'interleave';
}

export interface PortForward {
  hostPort: number;
  guestPort: number;
}

export interface MachineSpec {
  /** Shown in ps and logs. */
  name: string;
  machine: { type: 'q35' | 'pc' | 'microvm'; options?: Record<string, string> };
  cpu: CpuSpec;
  smp: { cpus: number; sockets?: number };
  /** Either a flat memory size, or emulated NUMA nodes (total = sum). */
  memory: { sizeMiB: number } | { nodes: NumaNodeSpec[] };
  kernel: string;
  initrd?: string;
  /** Kernel command line as tokens; joined with spaces, each token validated. */
  append: string[];
  /** Port forwards on 127.0.0.1 through user-mode networking; empty: no NIC. */
  forwards: PortForward[];
  /** An emulated IOMMU (intel-iommu on q35). */
  iommu?: boolean;
  /** Extra devices as raw -device values, e.g. ["edu"]. */
  devices?: string[];
  /** Extra -object values. */
  objects?: string[];
  /** Extra arbitrary arguments appended last (already split). */
  extraArgs?: string[];
  /** Disks on virtio-blk; snapshot keeps the image file untouched (writes go to a temporary overlay). */
  drives?: Array<{ path: string; format?: 'raw' | 'qcow2'; snapshot?: boolean; readonly?: boolean }>;
  /** Maximum memory for hotplug: slots and maxmem. */
  hotplug?: { slots: number; maxMiB: number };
  /**
   * The firmware: SeaBIOS (default; the kernel through PVH or its 16-bit entry) or UEFI
   * (Debian's OVMF; the bzImage through its EFI stub, which gives the kernel an EFI memory map:
   * efi_fake_mem= and soft-reserved memory need one).
   */
  firmware?: 'bios' | 'efi';
}

/** Debian's OVMF (package ovmf): code and variables in one image, variables not kept. */
export const OVMF_IMAGE = '/usr/share/ovmf/OVMF.fd';

/** Where the runtime pieces live: decided by the runner, not by the scenario. */
export interface RuntimeWiring {
  accel: Accel;
  /** QMP's socket; none for a machine that nobody monitors (a standalone reproducer's qemu.sh). */
  qmpSocket?: string;
  pidFile?: string;
  /** The SSH host key made for this boot, handed to the guest through fw_cfg (see HOST_KEY_FW_CFG). */
  hostKeyFile?: string;
}

export function totalMemMiB(spec: MachineSpec): number {
  return 'sizeMiB' in spec.memory ? spec.memory.sizeMiB : spec.memory.nodes.reduce((a, n) => a + n.memMiB, 0);
}

const APPEND_TOKEN = /^[A-Za-z0-9_.,:=@!+\-/[\]]+$/;

/** The append line, checked: tokens carry no whitespace or quotes. */
export function appendLine(tokens: string[]): string {
  for (const t of tokens) {
    if (!APPEND_TOKEN.test(t)) {
      throw new RigError(
        'bad-append',
        `kernel command-line token ${JSON.stringify(t)} contains characters the rig does not pass`,
        {
          fix: 'use plain key=value tokens without spaces or quotes',
        },
      );
    }
  }
  const line = tokens.join(' ');
  if (line.length > 2000)
    throw new RigError('bad-append', `kernel command line is ${line.length} bytes; x86 allows 2048`);
  return line;
}

/** QEMU's option syntax doubles commas inside values. */
export function qemuOptValue(v: string): string {
  return v.replace(/,/g, ',,');
}

function cpuArg(cpu: CpuSpec): string {
  const parts = [cpu.model];
  if (cpu.vendor) parts.push(`vendor=${cpu.vendor}`);
  for (const f of cpu.flags ?? []) parts.push(f);
  return parts.join(',');
}

function backendObject(id: string, memMiB: number, node: NumaNodeSpec): string {
  const b = node.backend ?? { kind: 'ram' };
  const opts: string[] = [];
  switch (b.kind) {
    case 'ram':
      opts.push('memory-backend-ram', `id=${id}`, `size=${memMiB}M`);
      break;
    case 'file':
      opts.push(
        'memory-backend-file',
        `id=${id}`,
        `size=${memMiB}M`,
        `mem-path=${qemuOptValue(b.path)}`,
        `share=${b.share === false ? 'off' : 'on'}`,
      );
      if (b.prealloc) opts.push('prealloc=on');
      if (b.align) opts.push(`align=${b.align}`);
      break;
    case 'memfd':
      opts.push('memory-backend-memfd', `id=${id}`, `size=${memMiB}M`, `share=${b.share === false ? 'off' : 'on'}`);
      if (b.hugetlb) opts.push('hugetlb=on');
      break;
  }
  if (node.hostNodes && node.hostNodes.length) {
    opts.push(`host-nodes=${node.hostNodes.join('-')}`, `policy=${node.policy ?? 'bind'}`);
  } else if (node.policy && node.policy !== 'default') {
    throw new RigError('bad-spec', `NUMA policy ${node.policy} needs hostNodes`);
  }
  return opts.join(',');
}

export function validateSpec(spec: MachineSpec): void {
  if (spec.smp.cpus < 1) throw new RigError('bad-spec', `${spec.name}: smp.cpus must be >= 1`);
  if (spec.smp.sockets && spec.smp.cpus % spec.smp.sockets !== 0) {
    throw new RigError(
      'bad-spec',
      `${spec.name}: ${spec.smp.cpus} vCPUs cannot be split over ${spec.smp.sockets} sockets`,
    );
  }
  if ('nodes' in spec.memory) {
    const nodes = spec.memory.nodes;
    if (nodes.length === 0) throw new RigError('bad-spec', `${spec.name}: memory.nodes is empty`);
    const seen = new Set<number>();
    nodes.forEach((n, i) => {
      if (!(n.memMiB > 0)) throw new RigError('bad-spec', `${spec.name}: node ${i} has no memory`);
      for (const c of n.cpus ?? []) {
        if (c < 0 || c >= spec.smp.cpus)
          throw new RigError('bad-spec', `${spec.name}: node ${i} names vCPU ${c}, but smp.cpus is ${spec.smp.cpus}`);
        if (seen.has(c)) throw new RigError('bad-spec', `${spec.name}: vCPU ${c} is in two NUMA nodes`);
        seen.add(c);
      }
    });
  } else if (!(spec.memory.sizeMiB > 0)) {
    throw new RigError('bad-spec', `${spec.name}: memory size must be positive`);
  }
  for (const f of spec.forwards) {
    for (const p of [f.hostPort, f.guestPort]) {
      if (!Number.isInteger(p) || p < 1 || p > 65535)
        throw new RigError('bad-spec', `${spec.name}: port ${p} is not a TCP port`);
    }
  }
  if (spec.hotplug && spec.hotplug.maxMiB < totalMemMiB(spec)) {
    throw new RigError('bad-spec', `${spec.name}: hotplug maxmem ${spec.hotplug.maxMiB}M is below the boot memory`);
  }
}

/** -name, -machine, -cpu, -smp. */
function machineArgs(spec: MachineSpec, wiring: RuntimeWiring): string[] {
  const machineOpts = [spec.machine.type, `accel=${wiring.accel}`];
  for (const [k, v] of Object.entries(spec.machine.options ?? {})) machineOpts.push(`${k}=${v}`);
  if (spec.iommu && spec.machine.type === 'q35') machineOpts.push('kernel-irqchip=split');
  const smp = [`${spec.smp.cpus}`, ...(spec.smp.sockets ? [`sockets=${spec.smp.sockets}`] : [])];
  return [
    ...['-name', `${qemuOptValue(spec.name)},process=${qemuOptValue(spec.name)}`],
    ...['-machine', machineOpts.join(',')],
    ...['-cpu', cpuArg(spec.cpu)],
    ...['-smp', smp.join(',')],
  ];
}

/** -m, a memory backend and a -numa node per node, extra objects. */
function memoryArgs(spec: MachineSpec): string[] {
  const mem = [`size=${totalMemMiB(spec)}M`];
  if (spec.hotplug) mem.push(`slots=${spec.hotplug.slots}`, `maxmem=${spec.hotplug.maxMiB}M`);
  const args = ['-m', mem.join(',')];
  if ('nodes' in spec.memory) {
    spec.memory.nodes.forEach((node, i) => {
      const id = `mem${i}`;
      const numa = ['node', `nodeid=${i}`, `memdev=${id}`, ...(node.cpus ?? []).map((c) => `cpus=${c}`)];
      args.push('-object', backendObject(id, node.memMiB, node), '-numa', numa.join(','));
    });
  }
  for (const o of spec.objects ?? []) args.push('-object', o);
  return args;
}

/** The IOMMU, the user-mode NIC with its 127.0.0.1 forwards, drives, and extra devices. */
function deviceArgs(spec: MachineSpec): string[] {
  const args: string[] = [];
  if (spec.iommu) {
    if (spec.machine.type !== 'q35')
      throw new RigError('bad-spec', `${spec.name}: the emulated IOMMU needs machine q35`);
    args.push('-device', 'intel-iommu,intremap=on,caching-mode=on');
  }
  if (spec.forwards.length) {
    const fwd = spec.forwards.map((f) => `hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`);
    args.push('-netdev', ['user', 'id=net0', 'ipv6=off', ...fwd].join(','));
    args.push('-device', 'virtio-net-pci,netdev=net0,romfile=,status=off');
  }
  for (const d of spec.drives ?? []) {
    const opts = [`file=${qemuOptValue(d.path)}`, 'if=virtio', `format=${d.format ?? 'raw'}`, 'cache=unsafe'];
    if (d.snapshot) opts.push('snapshot=on');
    if (d.readonly) opts.push('readonly=on');
    args.push('-drive', opts.join(','));
  }
  for (const d of spec.devices ?? []) args.push('-device', d);
  return args;
}

/**
 * What every guest kernel does when it stalls, after LKP's command line: a soft lockup, a hung
 * task and an Oops panic the kernel (so the report is the end of the guest, said with its own
 * header: crash-patterns panicTitle), and an RCU stall is reported after 100 s (LKP's value). The
 * soft-lockup threshold is the kernel's default under KVM (10: a lockup after 20 s) and three times
 * that under TCG, where a vCPU thread that the host does not schedule looks stuck to the guest: the
 * debug variant's 26 boots under TCG at the default saw no soft lockup, and a contended host (two
 * workers on two cores) slows vCPUs by up to three times (`bench run --jobs`). A hung task is one
 * blocked for 120 s (the default), 360 s under TCG. A token the spec gives itself wins.
 */
export function watchdogTokens(accel: Accel): string[] {
  const tcg = accel === 'tcg';
  return [
    'oops=panic',
    'softlockup_panic=1',
    'hung_task_panic=1',
    `watchdog_thresh=${tcg ? 30 : 10}`,
    `sysctl.kernel.hung_task_timeout_secs=${tcg ? 360 : 120}`,
    'rcupdate.rcu_cpu_stall_timeout=100',
  ];
}

/** `append` with the watchdog tokens it does not set itself, after its own. */
export function withWatchdogs(append: readonly string[], accel: Accel): string[] {
  const keys = new Set(append.map((a) => a.split('=')[0]));
  return [...append, ...watchdogTokens(accel).filter((w) => !keys.has(w.split('=')[0]))];
}

/** Build the full QEMU argument array (without the binary itself). */
export function qemuArgs(spec: MachineSpec, wiring: RuntimeWiring): string[] {
  validateSpec(spec);
  return [
    ...machineArgs(spec, wiring),
    ...memoryArgs(spec),
    ...(spec.firmware === 'efi' ? ['-bios', OVMF_IMAGE] : []),
    ...['-kernel', spec.kernel],
    ...(spec.initrd ? ['-initrd', spec.initrd] : []),
    ...['-append', appendLine(withWatchdogs(spec.append, wiring.accel))],
    // No default devices, no display; the serial console goes to our stdout.
    ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
    ...['-chardev', 'stdio,id=console0,signal=off', '-serial', 'chardev:console0'],
    ...(wiring.qmpSocket ? ['-qmp', `unix:${qemuOptValue(wiring.qmpSocket)},server=on,wait=off`] : []),
    ...(wiring.pidFile ? ['-pidfile', wiring.pidFile] : []),
    ...(wiring.hostKeyFile ? ['-fw_cfg', `name=${HOST_KEY_FW_CFG},file=${qemuOptValue(wiring.hostKeyFile)}`] : []),
    ...deviceArgs(spec),
    ...(spec.extraArgs ?? []),
  ];
}
