/**
 * Accelerator choice. KVM only when the host CPU advertises vmx/svm *and* /dev/kvm opens
 * read-write; otherwise TCG. The presence of /dev/kvm alone proves nothing (it exists on
 * hosts without virtualization extensions). An override comes from --accel or
 * DMEMFS_RIG_ACCEL; forcing kvm where it is unusable is an error, not a silent fallback.
 */
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { RigError } from '../core/errors.js';
import type { Accel } from './machine-spec.js';

export interface AccelChoice {
  accel: Accel;
  /** Why this accelerator: printed for the user and stored in results. */
  reason: string;
  /** Multiply every guest timeout by this (timeouts are written for KVM). */
  timeoutScale: number;
  kvmUsable: boolean;
  cpuVirtFlags: string[];
  /** KVM on a host that is itself a virtual machine (its CPU flags say "hypervisor"): nested KVM. */
  nested?: boolean;
}

/** TCG is roughly this much slower than KVM for the rig's workloads. */
export const TCG_TIMEOUT_SCALE = 6;

/**
 * Nested KVM is slower than KVM on bare metal (exits go through the hypervisor below; seen here,
 * under nested SVM on TCG: the first guest reached SSH in 20.5 s against the 20 s its boot is
 * given on KVM). Its timeouts are stretched by this; the accelerator stays KVM.
 */
export const NESTED_KVM_TIMEOUT_SCALE = 3;

/** The same choice with its timeouts stretched for a slower kernel (a debug build); said in the reason. */
export function withKernelSlowdown(a: AccelChoice, factor: number | undefined, why: string): AccelChoice {
  if (!factor || factor === 1) return a;
  return { ...a, timeoutScale: a.timeoutScale * factor, reason: `${a.reason}; timeouts x${factor} (${why})` };
}

function cpuFlags(cpuinfo: string): Set<string> {
  const flags = new Set<string>();
  for (const line of cpuinfo.split('\n')) {
    const m = /^flags\s*:\s*(.*)$/.exec(line);
    if (m) for (const f of m[1]!.split(/\s+/)) flags.add(f);
  }
  return flags;
}

export function cpuVirtFlags(cpuinfo: string): string[] {
  return [...cpuFlags(cpuinfo)].filter((f) => f === 'vmx' || f === 'svm').sort();
}

/** The host is itself a guest: its CPU flags have "hypervisor". */
export function runsInVm(cpuinfo: string): boolean {
  return cpuFlags(cpuinfo).has('hypervisor');
}

export function kvmDeviceUsable(path = '/dev/kvm'): { ok: boolean; why: string } {
  try {
    const fd = openSync(path, constants.O_RDWR);
    closeSync(fd);
    return { ok: true, why: `${path} opens read-write` };
  } catch (e) {
    return { ok: false, why: `${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
}

/** Pure decision, for tests: inputs are the facts, output is the choice. */
export function decideAccel(facts: {
  cpuFlags: string[];
  kvmDevice: { ok: boolean; why: string };
  requested?: string;
  hypervisor?: boolean;
}): AccelChoice {
  const c = decideAccelOnHost(facts);
  if (c.accel !== 'kvm' || !facts.hypervisor) return c;
  return {
    ...c,
    nested: true,
    timeoutScale: c.timeoutScale * NESTED_KVM_TIMEOUT_SCALE,
    reason: `${c.reason}; this host is itself a virtual machine (nested KVM): timeouts x${NESTED_KVM_TIMEOUT_SCALE}`,
  };
}

function decideAccelOnHost(facts: {
  cpuFlags: string[];
  kvmDevice: { ok: boolean; why: string };
  requested?: string;
}): AccelChoice {
  const kvmUsable = facts.cpuFlags.length > 0 && facts.kvmDevice.ok;
  const hostWhy =
    facts.cpuFlags.length === 0
      ? 'host CPU has neither vmx nor svm'
      : facts.kvmDevice.ok
        ? `host CPU has ${facts.cpuFlags.join('+')} and ${facts.kvmDevice.why}`
        : `host CPU has ${facts.cpuFlags.join('+')} but ${facts.kvmDevice.why}`;
  const req = facts.requested?.trim().toLowerCase();
  if (req && req !== 'auto') {
    if (req !== 'kvm' && req !== 'tcg') {
      throw new RigError('bad-accel', `unknown accelerator "${facts.requested}"`, {
        fix: 'use --accel kvm, --accel tcg or --accel auto',
      });
    }
    if (req === 'kvm' && !kvmUsable) {
      throw new RigError('no-kvm', `KVM was requested but is not usable here: ${hostWhy}`, {
        fix: 'run on a host with VT-x/AMD-V and access to /dev/kvm, or use --accel tcg (slower, timeouts are scaled)',
      });
    }
    return {
      accel: req,
      reason: `requested (${hostWhy})`,
      timeoutScale: req === 'tcg' ? TCG_TIMEOUT_SCALE : 1,
      kvmUsable,
      cpuVirtFlags: facts.cpuFlags,
    };
  }
  return kvmUsable
    ? { accel: 'kvm', reason: hostWhy, timeoutScale: 1, kvmUsable, cpuVirtFlags: facts.cpuFlags }
    : {
        accel: 'tcg',
        reason: `${hostWhy}: falling back to TCG, timeouts x${TCG_TIMEOUT_SCALE}`,
        timeoutScale: TCG_TIMEOUT_SCALE,
        kvmUsable,
        cpuVirtFlags: facts.cpuFlags,
      };
}

export function chooseAccel(requested?: string): AccelChoice {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux: no KVM */
  }
  return decideAccel({
    cpuFlags: cpuVirtFlags(cpuinfo),
    hypervisor: runsInVm(cpuinfo),
    kvmDevice: kvmDeviceUsable(),
    requested: requested ?? process.env.DMEMFS_RIG_ACCEL,
  });
}
