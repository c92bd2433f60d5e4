/**
 * What goes into the rig's small guest images: data only. The builder (initramfs.ts) turns
 * a definition plus a kernel into a cached initramfs.
 */
export interface InitramfsDefinition {
  name: string;
  /** Kernel modules to load at boot, in this order (dependencies are added before each). */
  modules: string[];
  /** Host binaries copied with their shared libraries (from Debian packages the setup step installs). */
  hostBinaries: string[];
  /** Host packages whose versions go into the image manifest. */
  hostPackages: string[];
}

/** The first guest (foundation): busybox, dropbear, a NIC driver. */
export const FIRST_GUEST: InitramfsDefinition = {
  name: 'first-guest',
  modules: ['virtio_pci', 'virtio_net'],
  hostBinaries: ['/usr/sbin/dropbear'],
  hostPackages: ['busybox-static', 'dropbear-bin'],
};
