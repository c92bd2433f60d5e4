/**
 * What goes into the rig's small guest images: data only. The builder (initramfs.ts) turns
 * a definition plus a kernel into a cached initramfs.
 */
export interface InitramfsDefinition {
  name: string;
  /** The /init script, from images/guest-init/. */
  init: string;
  /** Kernel modules to load at boot, in this order (dependencies are added before each). */
  modules: string[];
  /** Host binaries copied with their shared libraries (from Debian packages the setup step installs). */
  hostBinaries: string[];
  /** Host packages whose versions go into the image manifest. */
  hostPackages: string[];
}

/** The first guest (foundation): busybox, dropbear, a NIC driver, fw_cfg (the boot's SSH host key). */
export const FIRST_GUEST: InitramfsDefinition = {
  name: 'first-guest',
  init: 'init.sh',
  modules: ['virtio_pci', 'virtio_net', 'qemu_fw_cfg'],
  hostBinaries: ['/usr/sbin/dropbear'],
  hostPackages: ['busybox-static', 'dropbear-bin'],
};

/** What a modular kernel (Debian's) needs before it can switch to the L1 disk image. */
export const L1_BOOT: InitramfsDefinition = {
  name: 'l1-boot',
  init: 'init.sh',
  modules: [
    'virtio_pci',
    'virtio_net',
    'qemu_fw_cfg',
    'virtio_blk',
    'crc32c_generic',
    'ext4',
    'kvm_amd',
    'vfio_pci',
    'vfio_iommu_type1',
  ],
  hostBinaries: [],
  hostPackages: ['busybox-static'],
};

/** The second-level guest: reports MemTotal, touches memory, powers off. No network. */
export const L2_GUEST: InitramfsDefinition = {
  name: 'l2-guest',
  init: 'l2-init.sh',
  modules: [],
  hostBinaries: [],
  hostPackages: ['busybox-static'],
};

/** The first-level host image (L1): Debian bookworm packages, unpacked into an ext4 image. */
export interface RootfsDefinition {
  name: string;
  distro: 'bookworm';
  /** Installed with their dependency closure, without recommends. */
  packages: string[];
  /** Free space left in the image beyond its content, MiB. */
  freeMiB: number;
}

export const L1_IMAGE: RootfsDefinition = {
  name: 'l1-host',
  distro: 'bookworm',
  packages: [
    'qemu-system-x86',
    'dropbear-bin',
    'ndctl',
    'daxctl',
    'kmod',
    'util-linux',
    'mount',
    'busybox-static',
    'dash',
    'iproute2',
    'numactl',
    'procps',
    // The rig itself runs inside L1 too (its KVM path, on nested SVM): Debian's Node.js.
    'nodejs',
    // Programs written elsewhere, run on dmemfs files (peer-tools, fuzz-dmemfs).
    'coreutils',
    // The selftests' scripts (test_vmalloc.sh, test_hmm.sh) are bash scripts.
    'bash',
    'memtester',
    'fio',
    'stress-ng',
    'trinity',
  ],
  freeMiB: 256,
};
