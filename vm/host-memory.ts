/**
 * The host's memory, shared by the guests of one run. A guest whose RAM the host cannot hold is
 * refused (QEMU would start, and the host would swap or kill something later). With several
 * workers (run --jobs), a guest that fits the host but not beside the guests already running
 * waits for one of them to stop: the host-memory check decides when the next boot may start.
 */
import { readFileSync } from 'node:fs';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { totalMemMiB, type MachineSpec } from './machine-spec.js';

/** A guest's RAM in MiB: boot memory plus its DIMMs. */
export function guestMiB(spec: MachineSpec): number {
  const dimmMiB = (spec.objects ?? []).reduce((a, o) => a + Number(/size=(\d+)M/.exec(o)?.[1] ?? 0), 0);
  return totalMemMiB(spec) + dimmMiB;
}

/** MemAvailable of /proc/meminfo, in MiB (Infinity when the kernel does not say). */
export function availableMiB(meminfo = readFileSync('/proc/meminfo', 'utf8')): number {
  return Math.floor(Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? Infinity) / 1024);
}

function refuse(spec: MachineSpec, want: number, availMiB: number, others: string): RigError {
  return new RigError(
    'host-memory',
    `${spec.name} needs ${want} MiB of guest RAM; the host has ${availMiB} MiB available${others}`,
    { fix: 'stop other guests or jobs on this host, or give the guest less memory (fewer or smaller NUMA nodes)' },
  );
}

/** Refuse a guest the host cannot hold now. */
export function checkHostMemory(spec: MachineSpec, meminfo = readFileSync('/proc/meminfo', 'utf8')): void {
  const availMiB = availableMiB(meminfo);
  const want = guestMiB(spec);
  if (want > availMiB) throw refuse(spec, want, availMiB, '');
}

/**
 * The memory of one run's guests: a budget taken once (MemAvailable when the run starts, before
 * any of its guests), and the guests that hold part of it. A guest larger than the whole budget
 * is refused at once; one that fits the budget but not what is left waits its turn.
 */
export class MemoryGate {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly budgetMiB: number = availableMiB()) {}

  /** Hold `spec`'s RAM until the returned release is called (once; later calls do nothing). */
  async acquire(spec: MachineSpec): Promise<() => void> {
    const want = guestMiB(spec);
    if (want > this.budgetMiB) throw refuse(spec, want, this.budgetMiB, ' for this run');
    let said = false;
    while (this.used > 0 && this.used + want > this.budgetMiB) {
      if (!said)
        info(`${spec.name}: waiting for ${want} MiB (${this.used} of ${this.budgetMiB} MiB held by other guests)`);
      said = true;
      await new Promise<void>((r) => this.waiting.push(r));
    }
    this.used += want;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= want;
      for (const w of this.waiting.splice(0)) w();
    };
  }

  /** MiB held by running guests now. */
  get heldMiB(): number {
    return this.used;
  }
}
