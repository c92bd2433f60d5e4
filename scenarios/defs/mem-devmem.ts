/**
 * mem-devmem: the "mem=X plus /dev/mem" alternative a reviewer asked about. Who may map the RAM
 * above mem=, at which page size, with how many faults.
 */
import { eq, is, within } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { memTotalKb, memTotalOf } from '../probes.js';
import { accessOutcome, bindEduToVfio, FIRST_TOUCH_EXTRA, mapAndTouch } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';

// [4G, 8G) is left to /dev/mem: 6G is inside it.
export const DEVMEM_OFFSET = String(6 * 2 ** 30);
const OFFSET = DEVMEM_OFFSET;
const SMALL = ['--file', '/dev/mem', '--offset', OFFSET, '--size', '4K', '--align', '4K'];

const MEASUREMENTS = [
  'memtotal_kb',
  'root_map_ok',
  'root_data_verified',
  'devmem_kernel_page_kb',
  'devmem_faults_64mib',
  'unprivileged_devmem',
  'unprivileged_devmem_even_mode_666',
  'devmem_vfio_dma_verified',
] as const;
type M = (typeof MEASUREMENTS)[number];

export const memDevmem = defineScenario({
  id: 'mem-devmem',
  title: '"mem=X plus /dev/mem": who may map the memory above mem=, and at what page size',
  proves: `the alternative a reviewer asked about: with mem=4G on two 3 GiB nodes (the kernel keeps
    the 2 GiB below 4G) the RAM above the limit is mappable through /dev/mem by root only (an
    unprivileged user is refused whatever the file system says), only in 4 KiB pages set up at
    mmap time, with no allocator: the caller picks physical offsets itself. dmemfs, by contrast,
    gives per-file permissions, 2M/1G pages and an allocator that takes memory back
    (dmemfs-files).`,
  needs: [],
  boots: ['mem-4G'],
  measurements: MEASUREMENTS,
  claims: {
    // mem= caps the highest address, not the size: q35 puts 2 GiB below 4G, so the kernel
    // keeps [0, 2G) (measured with the defconfig-based kernel: 1969196 kB).
    memtotal_kb: {
      unit: 'kB',
      expect: memTotalOf(2),
      why: '2 GiB kept below 4G, less its struct pages (32 MiB) and at most 128 MiB of fixed reservations',
    },
    root_map_ok: { expect: is(true) },
    root_data_verified: { expect: is(true) },
    devmem_kernel_page_kb: { unit: 'kB', expect: eq(4), why: 'remap_pfn_range: 4 KiB pages only' },
    devmem_faults_64mib: {
      unit: 'faults',
      expect: within(0, FIRST_TOUCH_EXTRA),
      why: 'remap_pfn_range fills the page tables at mmap time: touching faults nothing in (dmemfs at 4K: 16384)',
    },
    unprivileged_devmem: { expect: is('EACCES'), why: '/dev/mem is 0640 root:kmem' },
    unprivileged_devmem_even_mode_666: {
      expect: is('EPERM'),
      why: 'open_port() wants CAP_SYS_RAWIO beyond the file mode',
    },
    devmem_vfio_dma_verified: {
      expect: is(true),
      why: 'VFIO type1 pins a VM_PFNMAP range by its pfn (follow_fault_pfn), struct page or not',
    },
  },
  async run(ctx) {
    const g = await ctx.boot('mem-4G');
    const total = await memTotalKb(g);
    ctx.measure('memtotal_kb', total.total);
    await rootMaps(ctx, g);
    await unprivileged(ctx, g);
    await devmemVfio(ctx, g);
  },
});

async function rootMaps(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const argv = ['--file', '/dev/mem', '--offset', OFFSET, '--size', '64M', '--align', '4K'];
  const root = await mapAndTouch(ctx, g, argv);
  ctx.evidence('root maps /dev/mem above mem=', JSON.stringify(root));
  ctx.measure('root_map_ok', root.ok, root.error ? { note: root.error } : {});
  ctx.measure('root_data_verified', root.verified ?? null);
  ctx.measure('devmem_kernel_page_kb', root.kernel_page_size_kb ?? null);
  ctx.measure('devmem_faults_64mib', root.minor_faults ?? null);
}

async function unprivileged(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const user = await mapAndTouch(ctx, g, SMALL, { unprivileged: true });
  ctx.measure('unprivileged_devmem', accessOutcome(user));
  await g.exec(['chmod', '666', '/dev/mem'], { check: true });
  const asUser = await mapAndTouch(ctx, g, SMALL, { unprivileged: true }).finally(() =>
    g.exec(['chmod', '640', '/dev/mem']),
  );
  ctx.evidence('uid 1000, /dev/mem chmod 666', JSON.stringify(asUser));
  ctx.measure('unprivileged_devmem_even_mode_666', accessOutcome(asUser), { note: `at ${asUser.step ?? '?'}` });
}

/** VFIO type1 pins the /dev/mem mapping (VM_PFNMAP: follow_pfn) for a DMA round trip through edu. */
async function devmemVfio(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const edu = await bindEduToVfio(g);
  ctx.evidence('bind edu to vfio-pci', edu.evidence);
  if (!edu.bdf || !edu.bound) {
    ctx.skipMeasure('devmem_vfio_dma_verified', `edu not bound to vfio-pci: ${edu.evidence.slice(0, 120)}`);
    return;
  }
  const argv = ['vfio-dma', '--device', edu.bdf, '--file', '/dev/mem', '--offset', OFFSET, '--size', '2M'];
  const dma = await ctx.json<{ ok: boolean; steps?: Array<{ step: string; ok: boolean }> }>(g, argv);
  ctx.evidence('vfio-dma on /dev/mem above mem=', JSON.stringify(dma));
  ctx.measure('devmem_vfio_dma_verified', dma.steps?.find((x) => x.step === 'bytes_verified')?.ok ?? false);
}
