/**
 * The first-level guest (the cloud host running DMEMFS) and second-level guests inside it.
 * L1 boots the L1 image with either the kernel the pipeline built (everything built in,
 * root=/dev/vda) or Debian's stock kernel (modules from a small initramfs, then switch_root).
 * L2 is started by QEMU inside L1 over SSH, with its RAM from a file (dmemfs, hugetlbfs,
 * tmpfs); its console comes back as the command's output.
 */
import { debianStockKernel, type KernelArtifacts } from '../images/debian-kernel.js';
import { fastBootImage } from '../images/boot-image.js';
import { L1_BOOT, L1_IMAGE, L2_GUEST } from '../images/definitions.js';
import { buildHelpers } from '../images/helpers.js';
import { buildInitramfs } from '../images/initramfs.js';
import { buildL1Image, type L1Image } from '../images/l1-image.js';
import { l1Machine, l2Machine, type HostRole } from '../scenarios/machines.js';
import type { AccelChoice } from '../vm/accel.js';
import { Guest } from '../vm/guest.js';
import { qemuArgs, type MemoryBackend } from '../vm/machine-spec.js';
import { RigError } from '../core/errors.js';
import { prepareRigKernel } from './rig-kernel.js';
import type { PipelineResult } from '../kernel/pipeline.js';
import { waitForLine } from '../scenarios/steps.js';

export interface L1Files {
  image: L1Image;
  kernel: KernelArtifacts;
  bootImage: { path: string; pvh: boolean };
  initrd: string | undefined;
  modular: boolean;
  /** The kernel pipeline's result when the kernel is the rig's own build (apply report, build manifest). */
  pipeline?: PipelineResult;
}

/** The L1 image (cached) plus the L2 payload it carries (Debian's kernel + the L2 initramfs). */
export async function prepareL1Image(): Promise<L1Image> {
  const stock = await debianStockKernel();
  const l2Boot = await fastBootImage(stock.image, stock.config);
  const l2Initramfs = await buildInitramfs(L2_GUEST, { ...stock, modulesDir: undefined });
  const helpers = await buildHelpers();
  return buildL1Image(L1_IMAGE, helpers, {
    kernel: l2Boot.path,
    initramfs: l2Initramfs.path,
    initramfsKey: l2Initramfs.key,
  });
}

/** Boot files for L1 with the given kernel: 'debian' (stock) or a kernel profile name. */
export async function prepareL1(kernel: 'debian' | { profile: string }): Promise<L1Files> {
  const image = await prepareL1Image();
  if (kernel === 'debian') {
    const stock = await debianStockKernel();
    const initrd = await buildInitramfs(L1_BOOT, stock);
    return {
      image,
      kernel: stock,
      bootImage: await fastBootImage(stock.image, stock.config),
      initrd: initrd.path,
      modular: true,
    };
  }
  const rig = await prepareRigKernel({ profile: kernel.profile });
  return {
    image,
    kernel: rig.kernel,
    bootImage: rig.bootImage,
    initrd: undefined,
    modular: false,
    pipeline: rig.pipeline,
  };
}

export async function bootL1(
  files: L1Files,
  accel: AccelChoice,
  opts: {
    nodeMiB?: number;
    role?: HostRole;
    append?: string[];
    iommu?: boolean;
    devices?: string[];
    name?: string;
    consoleAllow?: RegExp[];
    machineOptions?: Record<string, string>;
    dimms?: Array<{ id: string; sizeMiB: number; node: number }>;
    hotplug?: { slots: number; maxMiB: number };
  } = {},
): Promise<Guest> {
  // Under TCG a vCPU that runs a nested guest misses IPIs for tens of seconds (seen: a 26 s
  // soft lockup in smp_call_function_many_cond while L2 ran). Soft-lockup reports then say
  // nothing about the kernel under test, so the threshold goes up to 2 x 60 s on TCG.
  const append = [...(accel.accel === 'tcg' ? ['watchdog_thresh=60'] : []), ...(opts.append ?? [])];
  const spec = l1Machine(
    {
      kernel: files.bootImage.path,
      ...(files.initrd ? { initrd: files.initrd } : {}),
      image: files.image.path,
      modular: files.modular,
    },
    { ...opts, append },
  );
  return Guest.start({
    spec,
    accel,
    bootTimeoutSec: 40,
    ...(opts.consoleAllow ? { consoleAllow: opts.consoleAllow } : {}),
  });
}

export interface L2Report {
  ok: boolean;
  memTotalKb: number | undefined;
  touchedMiB: number | undefined;
  nodes: number | undefined;
  done: boolean;
  accel: 'kvm' | 'tcg';
  seconds: number;
  console: string;
  argv: string[];
}

/** Whether L1 can run KVM guests (its CPU has vmx/svm and /dev/kvm exists). */
export async function l1KvmUsable(l1: Guest): Promise<{ ok: boolean; why: string }> {
  const r = await l1.exec(['sh', '-c', 'grep -m1 -o -w -E "vmx|svm" /proc/cpuinfo; test -c /dev/kvm && echo dev-kvm']);
  const flag = /\b(vmx|svm)\b/.exec(r.stdout)?.[1];
  const dev = /dev-kvm/.test(r.stdout);
  return {
    ok: Boolean(flag && dev),
    why: flag
      ? dev
        ? `L1 CPU has ${flag} and /dev/kvm`
        : `L1 CPU has ${flag} but no /dev/kvm`
      : 'L1 CPU has neither vmx nor svm',
  };
}

/**
 * Run an L2 guest inside L1 to completion and parse its report from its console. With
 * `during`, L2 holds its touched memory for `holdS` seconds and `during` runs in that window
 * (for example to read KVM's large-page counters in L1); QEMU then runs in the background
 * with its console in a log file that is polled.
 */
export async function runL2<T = undefined>(
  l1: Guest,
  opts: {
    memMiB: number;
    backend?: MemoryBackend;
    hostNodes?: number[];
    policy?: 'preferred' | 'bind';
    touchMiB: number;
    accel: 'kvm' | 'tcg';
    timeoutMs: number;
    holdS?: number;
    during?: (l1: Guest) => Promise<T>;
  },
): Promise<L2Report & { during?: T }> {
  const spec = l2Machine({ ...opts, ...(opts.during ? { holdS: opts.holdS ?? 20 } : {}) });
  const argv = ['qemu-system-x86_64', ...qemuArgs(spec, { accel: opts.accel, qmpSocket: '/run/l2-qmp.sock' })];
  const started = Date.now();
  let out: string;
  let code: number | null;
  let during: T | undefined;
  if (!opts.during) {
    const r = await l1.exec(argv, { timeoutMs: opts.timeoutMs });
    out = r.stdout + r.stderr;
    code = r.code;
  } else {
    const log = '/run/rig-l2.log';
    await l1.exec(
      [
        'sh',
        '-c',
        'rm -f "$0"; ("$@" > "$0" 2>&1; echo "rig-l2-exit: $?" >> "$0") < /dev/null > /dev/null 2>&1 &',
        log,
        ...argv,
      ],
      { check: true },
    );
    const holding = await waitForLine(l1, log, /rig-l2: holding|rig-l2-exit:/, opts.timeoutMs);
    if (holding && /holding/.test(holding)) during = await opts.during(l1);
    const exit = await waitForLine(l1, log, /rig-l2-exit:/, Math.max(opts.timeoutMs - (Date.now() - started), 30_000));
    out = (await l1.exec(['cat', log])).stdout;
    code = exit ? Number(/rig-l2-exit: (\d+)/.exec(exit)?.[1]) : null;
    if (!exit) await l1.exec(['pkill', '-f', 'l2-qmp.sock']);
  }
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const report: L2Report & { during?: T } = {
    ok: code === 0 && /rig-l2: done/.test(out),
    memTotalKb: num(/rig-l2: memtotal_kb=(\d+)/),
    touchedMiB: num(/rig-l2: touched_mib=(\d+)/),
    nodes: num(/rig-l2: nodes=(\d+)/),
    done: /rig-l2: done/.test(out),
    accel: opts.accel,
    seconds: (Date.now() - started) / 1000,
    console: out.slice(-6000),
    argv,
    ...(during === undefined ? {} : { during }),
  };
  if (!report.done && code !== 0) {
    throw new RigError('l2-failed', `the L2 guest's QEMU exited with ${code} before its report`, {
      evidence: out.slice(-3000),
    });
  }
  return report;
}

/**
 * KVM's large-page count in L1 (debugfs kvm/largepages: huge mappings in the TDP tables of
 * every VM), read while L2 runs; with nx_largepages_splitted for context.
 */
export async function kvmLargePages(
  l1: Guest,
): Promise<{ largepages: number | undefined; splitted: number | undefined }> {
  const r = await l1.exec([
    'sh',
    '-c',
    'cd /sys/kernel/debug/kvm 2>/dev/null && echo "largepages $(cat largepages)" && echo "splitted $(cat nx_largepages_splitted 2>/dev/null)"',
  ]);
  const num = (k: string) => {
    const m = new RegExp(`^${k} (\\d+)`, 'm').exec(r.stdout);
    return m ? Number(m[1]) : undefined;
  };
  return { largepages: num('largepages'), splitted: num('splitted') };
}
