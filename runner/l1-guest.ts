/**
 * The first-level guest (the cloud host running DMEMFS): its boot files and its boot. L1 boots
 * the L1 image with either the kernel the pipeline built (everything built in, root=/dev/vda)
 * or Debian's stock kernel (modules from a small initramfs, then switch_root). Second-level
 * guests are started from inside L1 by the scenarios (scenarios/l2-steps.ts).
 */
import { debianStockKernel, type KernelArtifacts } from '../images/debian-kernel.js';
import { fastBootImage } from '../images/boot-image.js';
import { L1_BOOT, L1_IMAGE, L2_GUEST } from '../images/definitions.js';
import { buildHelpers } from '../images/guest-tools.js';
import { buildInitramfs } from '../images/initramfs.js';
import { buildL1Image, type L1Image } from '../images/l1-image.js';
import { l1Machine, type HostRole, type L1Options } from '../scenarios/machines.js';
import type { AccelChoice } from '../vm/accel.js';
import type { ReportKind } from '../vm/crash-patterns.js';
import { Guest } from '../vm/guest.js';
import type { MemoryGate } from '../vm/host-memory.js';
import type { MachineSpec } from '../vm/machine-spec.js';
import { prepareRigKernel } from './rig-kernel.js';
import type { PipelineOptions, PipelineResult } from '../kernel/pipeline.js';

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
export async function prepareL1(kernel: 'debian' | PipelineOptions): Promise<L1Files> {
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
  const rig = await prepareRigKernel(kernel);
  return {
    image,
    kernel: rig.kernel,
    bootImage: rig.bootImage,
    initrd: undefined,
    modular: false,
    pipeline: rig.pipeline,
  };
}

/** How one L1 boot differs from the default two-node host. */
export interface L1BootOptions {
  /** Keep every command's result (run --record: recordings/ in the bundle). */
  record?: boolean;
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
  extraDrives?: L1Options['extraDrives'];
  firmware?: L1Options['firmware'];
  /** Report kinds that stop the guest (default: every kind; the scenario pool stops only on crashes). */
  fatalKinds?: ReadonlySet<ReportKind>;
  /** The run's shared host memory, when several workers boot at once. */
  memory?: MemoryGate;
}

/** The machine spec of an L1 boot: what bootL1 starts (the golden files hold its QEMU arguments per boot). */
export function l1Spec(files: L1Files, accel: AccelChoice, opts: L1BootOptions = {}): MachineSpec {
  // Under TCG a vCPU that runs a nested guest misses IPIs for tens of seconds (seen: a 26 s
  // soft lockup in smp_call_function_many_cond while L2 ran). Soft-lockup reports then say
  // nothing about the kernel under test, so the threshold goes up to 2 x 60 s on TCG.
  const append = [...(accel.accel === 'tcg' ? ['watchdog_thresh=60'] : []), ...(opts.append ?? [])];
  return l1Machine(
    {
      // UEFI starts the bzImage through its EFI stub; SeaBIOS the PVH vmlinux where there is one.
      kernel: opts.firmware === 'efi' ? files.kernel.image : files.bootImage.path,
      ...(files.initrd ? { initrd: files.initrd } : {}),
      image: files.image.path,
      modular: files.modular,
    },
    { ...opts, append },
  );
}

export async function bootL1(files: L1Files, accel: AccelChoice, opts: L1BootOptions = {}): Promise<Guest> {
  const spec = l1Spec(files, accel, opts);
  const g = await Guest.start({
    spec,
    accel,
    bootTimeoutSec: 40,
    ...(opts.consoleAllow ? { consoleAllow: opts.consoleAllow } : {}),
    ...(opts.fatalKinds ? { fatalKinds: opts.fatalKinds } : {}),
    ...(opts.memory ? { memory: opts.memory } : {}),
    ...(opts.record ? { record: true } : {}),
  });
  const builtin = files.pipeline?.build.modulesBuiltin;
  if (builtin && g.ssh) await tellKmodWhatIsBuiltIn(g, files.kernel.release, builtin);
  return g;
}

/**
 * The rig's kernel has its drivers built in, but daxctl and ndctl ask kmod to load them by name,
 * and kmod fails ("could not find module by name='device_dax'") unless modules.builtin says so:
 * the build's list goes to /lib/modules/<release>/ in L1, indexed by depmod.
 */
async function tellKmodWhatIsBuiltIn(g: Guest, release: string, builtin: string): Promise<void> {
  const dir = `/lib/modules/${release}`;
  await g.exec(['mkdir', '-p', dir], { check: true });
  await g.ssh!.upload(`${dir}/modules.builtin`, { localPath: builtin });
  await g.exec(['depmod', release], { check: true });
}
