/**
 * Every first-level boot the scenarios ask for, by name: data, apart from the plumbing that
 * boots them. A scenario lists the names it uses (ScenarioDefinition.boots) and asks for one
 * with ctx.boot(name); scenarios whose requests are equal share one running guest, and the
 * runner orders them so that they can (planOrder in scenarios/catalog.ts).
 */
import type { BootRequest } from './types.js';

/** Two 3 GiB NUMA nodes, as measured in MISSION.md (AMD vendor: nested SVM works under TCG). */
export const twoNodes = (append: string[], extra: Partial<BootRequest> = {}): BootRequest => ({
  kernel: 'profile',
  role: 'nested',
  nodeMiB: 3072,
  append,
  ...extra,
});

/** Bad dmem= values: each rejected by the rig before booting, and by the kernel with its message. */
export const BAD_DMEM_VALUES: Array<{ value: string; kernelSays: RegExp }> = [
  { value: '100M', kernelSays: /dmem: 'size' is unaligned to 'align' in dmem=/ },
  { value: '!1G@4G', kernelSays: /dmem: take a certain base address for kernel is illegal/ },
  { value: '1G@0', kernelSays: /dmem: 'addr' or 'align' should not be set to 0/ },
  { value: 'garbage', kernelSays: /Malformed early option 'dmem'/ },
];

/**
 * 1 GiB-aligned reservations on both nodes. q35 puts node 0 at [0,2G)+[4G,5G) unless low RAM
 * is 1 GiB; with max-ram-below-4g=1G each node's 1 GiB region can sit on a 1 GiB boundary.
 */
const aligned: BootRequest = twoNodes(['dmem=1G:1G'], { machineOptions: { 'max-ram-below-4g': '1G' } });

/** The legacy pmem range for device-dax, and hugetlbfs pools of both sizes. */
const alternatives: BootRequest = twoNodes([
  'memmap=1G!4G',
  'hugepagesz=1G',
  'hugepages=1',
  'hugepagesz=2M',
  'hugepages=128',
]);

/**
 * A hot-pluggable DIMM on node 1 next to the dmem reservation. The DIMM's memory is added by
 * ACPI after boot, so its blocks are onlined movable (memhp_default_state) and can be removed.
 */
const dimm: BootRequest = {
  ...aligned,
  append: [...aligned.append, 'memhp_default_state=online_movable'],
  dimms: [{ id: 'dimm1', sizeMiB: 1024, node: 1 }],
  hotplug: { slots: 4, maxMiB: 6144 + 4096 },
};

/**
 * The aligned pools plus the controls the VFIO and MCE scenarios set beside dmemfs: a device-dax
 * range (memmap=1G!7G) and a 1 GiB huge page. On 3 GiB nodes the 1 GiB page found no room at
 * boot ("allocating 1 of page size 1.00 GiB failed") nor later; 4 GiB nodes leave it one.
 */
const withControls: BootRequest = {
  ...aligned,
  nodeMiB: 4096,
  append: [...aligned.append, 'memmap=1G!7G', 'hugepagesz=1G', 'hugepages=1'],
};

export const BOOTS = {
  plain: twoNodes([]),
  'dmem-1G': twoNodes(['dmem=1G']),
  'dmem-512M': twoNodes(['dmem=512M']),
  'dmem-1536M': twoNodes(['dmem=1536M']),
  // The other forms: a fixed address (node 1 starts at 5G on two 3 GiB nodes) and "leave 2G to
  // the kernel on each node".
  'dmem-at-5G': twoNodes(['dmem=1G@5G']),
  'dmem-keep-2G': twoNodes(['dmem=!2G']),
  'memmap-1G': twoNodes(['memmap=1G!4G']),
  'bad-values': twoNodes([], { unchecked: BAD_DMEM_VALUES.map((b) => `dmem=${b.value}`) }),
  'dmem-1G-aligned': aligned,
  // Fresh kernels for the debug checks: lockdep reports once per boot, so each probe has its own.
  'debug-probe': twoNodes(['dmem=128M'], { tag: 'debug-probe' }),
  'debug-probe-no-pool': twoNodes([], { tag: 'debug-probe-no-pool' }),
  // The dmem pool takes its page size at the first mount: one fresh boot per further size.
  'dmem-1G-aligned-2M': { ...aligned, tag: '2M' },
  'dmem-1G-aligned-1G': { ...aligned, tag: '1G' },
  'iommu-edu': { ...withControls, iommu: true, devices: ['edu'] },
  // Fresh pools for the pin at 4K and 1G.
  'iommu-edu-4K': { ...withControls, iommu: true, devices: ['edu'], tag: '4K' },
  'iommu-edu-1G': { ...withControls, iommu: true, devices: ['edu'], tag: '1G' },
  // memmap=1G!7G: a device-dax range on node 1 for the MCE comparison (dmem keeps [6G,7G) or [8G,9G)).
  'mce-intel': { ...withControls, role: 'mce' },
  // Fresh pools for the MCE at 2M and 1G (the pool takes its page size at the first mount).
  'mce-intel-2M': { ...aligned, append: [...aligned.append, 'memmap=1G!7G'], role: 'mce', tag: '2M' },
  'mce-intel-1G': { ...aligned, append: [...aligned.append, 'memmap=1G!7G'], role: 'mce', tag: '1G' },
  // The unpatched kernel with an Intel-vendor CPU: whose is what an anonymous page's MCE prints.
  'mce-intel-baseline': twoNodes([], { kernel: 'baseline', role: 'mce' }),
  // The IOMMU and edu for VFIO: the mem= column measured like the others.
  'mem-4G': twoNodes(['mem=4G'], { iommu: true, devices: ['edu'] }),
  // The same with an Intel-vendor CPU, for an MCE in /dev/mem memory (mce-dmemfs).
  'mce-intel-mem-4G': twoNodes(['mem=4G'], { role: 'mce' }),
  // Small pools for the pool's edges: dmem 128 MiB per node (4K and 2M), hugetlbfs 64 x 2M and 2 x 1G.
  'pool-edges': twoNodes(['dmem=128M', 'hugepagesz=1G', 'hugepages=2', 'hugepagesz=2M', 'hugepages=64']),
  alternatives,
  // The kernel's mm selftests: run_vmtests' 256 MiB of 2M hugetlbfs pages, and a dmem pool the
  // path-taking tests are pointed at as well; the same machine on the baseline (no dmem=).
  selftests: twoNodes(['dmem=1G', 'hugepagesz=2M', 'hugepages=128']),
  'selftests-baseline': twoNodes(['hugepagesz=2M', 'hugepages=128'], { kernel: 'baseline' }),
  // Programs written elsewhere on dmemfs (peer-tools), and the fuzzer (fuzz-dmemfs): a fresh pool
  // per page size, and hugetlbfs 2M as the control.
  'peers-2M': twoNodes(['dmem=1G', 'hugepagesz=2M', 'hugepages=128'], { tag: 'peers-2M' }),
  'peers-4K': twoNodes(['dmem=1G'], { tag: 'peers-4K' }),
  'fuzz-2M': twoNodes(['dmem=1G'], { tag: 'fuzz-2M' }),
  'fuzz-4K': twoNodes(['dmem=1G'], { tag: 'fuzz-4K' }),
  // UEFI (OVMF) with 1 GiB at 4G marked specific-purpose (EFI_MEMORY_SP): Soft Reserved, a dax_hmem
  // region; the IOMMU and edu for VFIO. The MCE needs an Intel vendor (no nested SVM): its own boot.
  'efi-soft-reserved': twoNodes(['efi_fake_mem=1G@4G:0x40000'], { firmware: 'efi', iommu: true, devices: ['edu'] }),
  'efi-soft-reserved-mce': twoNodes(['efi_fake_mem=1G@4G:0x40000'], { firmware: 'efi', role: 'mce' }),
  'dimm-hotplug': dimm,
  // dmem= aimed at the DIMM's range (q35 places device memory at the first 1 GiB boundary
  // above RAM: 4G + 5G = 9G here; the scenario checks that against QMP before trusting it).
  'dimm-dmem-on-dimm': { ...dimm, append: ['dmem=512M@9G', 'memhp_default_state=online_movable'] },
} satisfies Record<string, BootRequest>;

export type BootName = keyof typeof BOOTS;

/** Where q35 puts the first DIMM for the dimm boots above (checked against QMP query-memory-devices). */
export const DIMM_BASE = 9 * 2 ** 30;
