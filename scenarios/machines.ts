/**
 * Machine specs the rig boots: data. Measured facts behind them (../shared/MISSION.md):
 * nested SVM under TCG needs an AMD-vendor CPU; a recoverable injected MCE needs an
 * Intel-vendor CPU; "-smp 2,sockets=2" keeps the topology WARNING off two-node boots;
 * a 5.10 L1 that runs nested KVM needs no5lvl.
 */
import type { MachineSpec } from '../vm/machine-spec.js';

export interface BootFiles {
  kernel: string;
  initrd?: string;
}

/** The foundation's first guest: two emulated NUMA nodes of `nodeMiB` each, one vCPU per node. */
export function twoNodeGuest(files: BootFiles, opts: { nodeMiB?: number; name?: string; append?: string[] } = {}): MachineSpec {
  const nodeMiB = opts.nodeMiB ?? 512;
  return {
    name: opts.name ?? 'first-guest',
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
    append: ['console=ttyS0', 'panic=-1', 'oops=panic', 'nokaslr', 'tsc=reliable', 'no_timer_check', ...(opts.append ?? [])],
    forwards: [],
  };
}
