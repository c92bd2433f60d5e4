/**
 * The foundation's first guest: Debian's stock kernel plus the rig's initramfs, on two
 * emulated NUMA nodes. Used by `dmemfs-rig boot`, `bench boot` and the foundation tests.
 */
import { debianStockKernel, type KernelArtifacts } from '../images/debian-kernel.js';
import { FIRST_GUEST } from '../images/definitions.js';
import { fastBootImage } from '../images/boot-image.js';
import { buildInitramfs, type BuiltImage } from '../images/initramfs.js';
import { twoNodeGuest } from '../scenarios/machines.js';
import type { AccelChoice } from '../vm/accel.js';
import { Guest, type GuestOptions } from '../vm/guest.js';

export interface FirstGuestFiles {
  kernel: KernelArtifacts;
  initramfs: BuiltImage;
  /** What QEMU boots: the PVH vmlinux when the kernel allows, else the bzImage. */
  bootImage: { path: string; pvh: boolean };
}

export async function prepareFirstGuest(): Promise<FirstGuestFiles> {
  const kernel = await debianStockKernel();
  const initramfs = await buildInitramfs(FIRST_GUEST, kernel);
  const bootImage = await fastBootImage(kernel.image, kernel.config);
  return { kernel, initramfs, bootImage };
}

export async function bootFirstGuest(
  files: FirstGuestFiles,
  accel: AccelChoice,
  opts: {
    nodeMiB?: number;
    onSpawn?: (pid: number) => void;
    onQmp?: GuestOptions['onQmp'];
    name?: string;
    append?: string[];
    bootQuietMs?: number;
    firmware?: 'bios' | 'efi';
    pickPort?: GuestOptions['pickPort'];
    fatalKinds?: GuestOptions['fatalKinds'];
  } = {},
): Promise<Guest> {
  const efi = opts.firmware === 'efi';
  const spec = twoNodeGuest(
    { kernel: efi ? files.kernel.image : files.bootImage.path, initrd: files.initramfs.path },
    {
      ...(efi ? { firmware: 'efi' as const } : {}),
      nodeMiB: opts.nodeMiB ?? 512,
      ...(opts.name ? { name: opts.name } : {}),
      ...(opts.append ? { append: opts.append } : {}),
    },
  );
  return Guest.start({
    spec,
    accel,
    bootTimeoutSec: 20,
    ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}),
    ...(opts.onQmp ? { onQmp: opts.onQmp } : {}),
    ...(opts.bootQuietMs ? { bootQuietMs: opts.bootQuietMs } : {}),
    ...(opts.pickPort ? { pickPort: opts.pickPort } : {}),
    ...(opts.fatalKinds ? { fatalKinds: opts.fatalKinds } : {}),
  });
}

/** Boot-to-SSH benchmark figures of one boot. */
export interface BootBench {
  bootToSshSeconds: number;
  kernelInitSeconds: number;
  ratio: number;
  accel: string;
  /** Host-clock seconds from spawn to each phase, to show where boot time goes. */
  phases: Record<string, number | undefined>;
}

export async function benchBootOnce(
  files: FirstGuestFiles,
  accel: AccelChoice,
  firmware: 'bios' | 'efi' = 'bios',
): Promise<BootBench> {
  const g = await bootFirstGuest(files, accel, { name: `bench-boot-${firmware}`, firmware });
  try {
    const bootToSshSeconds = (g.timings.sshReadyAt! - g.timings.spawnedAt) / 1000;
    const kernelInitSeconds = (await g.kernelInitSeconds()) ?? NaN;
    const at = (re: RegExp) => {
      const l = g.console.lines.find((x) => re.test(x.raw));
      return l ? (l.at - g.timings.spawnedAt) / 1000 : undefined;
    };
    const phases = {
      firstConsoleLine: g.console.lines[0] ? (g.console.lines[0].at - g.timings.spawnedAt) / 1000 : undefined,
      kernelFirstLine: at(/^\[\s*0\.000000\]/),
      initStarted: at(/Run \S+ as init process/),
      sshdStarted: at(/rig-init: sshd started/),
      sshBanner: g.ssh ? (g.ssh.stats.bannerAt - g.timings.spawnedAt) / 1000 : undefined,
      sshLogin: g.ssh ? (g.ssh.stats.loginAt - g.timings.spawnedAt) / 1000 : undefined,
      sshReady: bootToSshSeconds,
    };
    return {
      bootToSshSeconds,
      kernelInitSeconds,
      ratio: bootToSshSeconds / kernelInitSeconds,
      accel: accel.accel,
      phases,
    };
  } finally {
    await g.stop();
  }
}
