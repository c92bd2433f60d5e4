/**
 * The foundation's first guest: Debian's stock kernel plus the rig's initramfs, on two
 * emulated NUMA nodes. Used by `dmemfs-rig boot`, `bench boot` and the foundation tests.
 */
import { debianStockKernel, type KernelArtifacts } from '../images/debian-kernel.js';
import { FIRST_GUEST } from '../images/definitions.js';
import { buildInitramfs, type BuiltImage } from '../images/initramfs.js';
import { twoNodeGuest } from '../scenarios/machines.js';
import type { AccelChoice } from '../vm/accel.js';
import { Guest } from '../vm/guest.js';

export interface FirstGuestFiles {
  kernel: KernelArtifacts;
  initramfs: BuiltImage;
}

export async function prepareFirstGuest(): Promise<FirstGuestFiles> {
  const kernel = await debianStockKernel();
  const initramfs = await buildInitramfs(FIRST_GUEST, kernel);
  return { kernel, initramfs };
}

export async function bootFirstGuest(
  files: FirstGuestFiles,
  accel: AccelChoice,
  opts: { nodeMiB?: number; onSpawn?: (pid: number) => void; name?: string } = {},
): Promise<Guest> {
  const spec = twoNodeGuest({ kernel: files.kernel.image, initrd: files.initramfs.path }, { nodeMiB: opts.nodeMiB ?? 512, ...(opts.name ? { name: opts.name } : {}) });
  return Guest.start({ spec, accel, bootTimeoutSec: 20, ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}) });
}

/** Boot-to-SSH benchmark figures of one boot. */
export interface BootBench {
  bootToSshSeconds: number;
  kernelInitSeconds: number;
  ratio: number;
  accel: string;
}

export async function benchBootOnce(files: FirstGuestFiles, accel: AccelChoice): Promise<BootBench> {
  const g = await bootFirstGuest(files, accel, { name: 'bench-boot' });
  try {
    const bootToSshSeconds = (g.timings.sshReadyAt! - g.timings.spawnedAt) / 1000;
    const kernelInitSeconds = (await g.kernelInitSeconds()) ?? NaN;
    return { bootToSshSeconds, kernelInitSeconds, ratio: bootToSshSeconds / kernelInitSeconds, accel: accel.accel };
  } finally {
    await g.stop();
  }
}
