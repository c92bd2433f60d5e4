/**
 * The comparison table: rows are the measurements, columns are dmemfs 4K/2M/1G, device-dax,
 * hugetlbfs 2M/1G and anonymous memory. Which measurement of which scenario fills which cell
 * is data (CELLS); a cell is the measured value, "skipped: reason" when its scenario (or the
 * step) could not run here, or "n/a: reason" where the row does not apply to that column.
 */
import { describeExpectation, type Measurement, type ScenarioResult } from '../core/results.js';
import type { MeasurementName, ScenarioId } from '../scenarios/catalog.js';

export const COLUMNS = [
  'dmemfs 4K',
  'dmemfs 2M',
  'dmemfs 1G',
  'device-dax (memmap=)',
  'device-dax (soft-reserved, per VM)',
  'hugetlbfs 2M',
  'hugetlbfs 1G',
  'anonymous',
  'mem= + /dev/mem',
] as const;
export type Column = (typeof COLUMNS)[number];

/** What a cell may show besides the value. */
interface CellOptions<N extends string> {
  unit?: string;
  /** Show whether the expectation held ("yes (value)") rather than the bare value. */
  asCheck?: boolean;
  /** A second measurement of the same scenario, shown after a slash. */
  also?: N;
  /** The whole cell text from the value, for a row whose numbers need words. */
  format?: (v: number) => string;
}

/** Where a cell's value comes from: a scenario's measurement (names checked by the compiler), or n/a. */
type Source = ({ scenario: string; measurement: string } & CellOptions<string>) | { na: string };

export interface RowDef {
  row: string;
  cells: Record<Column, Source>;
}

const m = <I extends ScenarioId>(
  scenario: I,
  measurement: MeasurementName<I>,
  extra: CellOptions<MeasurementName<I>> = {},
): Source => ({ scenario, measurement, ...extra });
const na = (why: string): Source => ({ na: why });
const NO_FILES = na('no file to unlink');
const DEVICE = na('a device: no files, no allocator; its size is fixed when it is created');
const NO_ALLOCATOR = na('no files, no allocator: the caller picks physical offsets itself');
const PAGE_INDEPENDENT = (at: string) => na(`checked at ${at}: the check does not depend on the page size`);
/** dmemfs L2 guests run on 2M pages (nested-guest): KVM's large-page question is asked there. */
const L2_AT_2M = na(
  'asked at 2M (nested-guest): a 4K file cannot be mapped large, a 1G pool needs its own 1 GiB-aligned L2 host',
);
const NO_L2_OFFSET = na(
  "QEMU 7.2 (Debian 12) maps a memory-backend-file from offset 0 only, and /dev/mem from 0 is L1's own RAM",
);
const ALLOCATOR_MEMMAP = na(
  'page-allocator RAM: its struct pages are part of the boot-time memory map of all RAM (16384 kB/GiB by ' +
    'construction); nothing sets them apart to measure',
);
/** dmemfs: the struct pages it does not build, from how much less than the reserved size MemTotal fell. */
const DMEM_STRUCT_PAGES = m('reservation', 'struct_page_saved_kb_per_gib', {
  format: (saved) => `none (MemTotal fell ${saved} kB/GiB less than the size reserved: the struct pages not built)`,
});

export const CELLS: RowDef[] = [
  {
    row: 'minor faults for the size mapped (one per page)',
    cells: {
      'dmemfs 4K': m('dmemfs-files', 'faults_4K'),
      'dmemfs 2M': m('dmemfs-files', 'faults_2M'),
      'dmemfs 1G': m('dmemfs-files', 'faults_1G'),
      'device-dax (memmap=)': m('alternatives-devdax', 'devdax_faults'),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'hmem_faults'),
      'hugetlbfs 2M': m('alternatives', 'hugetlbfs_2M_faults'),
      'hugetlbfs 1G': m('alternatives', 'hugetlbfs_1G_faults'),
      anonymous: m('alternatives', 'anonymous_faults'),
      'mem= + /dev/mem': m('mem-devmem', 'devmem_faults_64mib', { unit: 'faults (for 64 MiB: mapped at mmap time)' }),
    },
  },
  {
    row: 'KernelPageSize in smaps (kB)',
    cells: {
      'dmemfs 4K': m('dmemfs-files', 'smaps_kernel_page_kb_4K'),
      'dmemfs 2M': m('dmemfs-files', 'smaps_kernel_page_kb_2M'),
      'dmemfs 1G': m('dmemfs-files', 'smaps_kernel_page_kb_1G'),
      'device-dax (memmap=)': m('alternatives-devdax', 'devdax_kernel_page_kb'),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'hmem_kernel_page_kb'),
      'hugetlbfs 2M': m('alternatives', 'hugetlbfs_2M_kernel_page_kb'),
      'hugetlbfs 1G': m('alternatives', 'hugetlbfs_1G_kernel_page_kb'),
      anonymous: m('alternatives', 'anonymous_kernel_page_kb'),
      'mem= + /dev/mem': m('mem-devmem', 'devmem_kernel_page_kb'),
    },
  },
  {
    row: 'data written and read back intact',
    cells: {
      'dmemfs 4K': m('dmemfs-files', 'data_verified_4K'),
      'dmemfs 2M': m('dmemfs-files', 'data_verified_2M'),
      'dmemfs 1G': m('dmemfs-files', 'data_verified_1G'),
      'device-dax (memmap=)': m('alternatives-devdax', 'devdax_verified'),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'hmem_verified'),
      'hugetlbfs 2M': m('alternatives', 'hugetlbfs_2M_verified'),
      'hugetlbfs 1G': m('alternatives', 'hugetlbfs_1G_verified'),
      anonymous: m('alternatives', 'anonymous_verified'),
      'mem= + /dev/mem': m('mem-devmem', 'root_data_verified'),
    },
  },
  {
    row: 'RAM the kernel spends on struct pages for this memory (kB per GiB; 64 B per 4 KiB page is 16384)',
    cells: {
      'dmemfs 4K': DMEM_STRUCT_PAGES,
      'dmemfs 2M': DMEM_STRUCT_PAGES,
      'dmemfs 1G': DMEM_STRUCT_PAGES,
      'device-dax (memmap=)': m('reservation', 'devdax_memfree_drop_kb_per_gib', {
        format: (v) => `${v} kB/GiB (MemFree drop when the namespace is made with --map=mem)`,
      }),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'hmem_struct_page_kb_per_gib', {
        format: (v) => `${v} kB/GiB (MemFree drop when the two devices are created)`,
      }),
      'hugetlbfs 2M': ALLOCATOR_MEMMAP,
      'hugetlbfs 1G': ALLOCATOR_MEMMAP,
      anonymous: ALLOCATOR_MEMMAP,
      'mem= + /dev/mem': m('mem-devmem', 'memtotal_kb', {
        format: (v) => `none (the kernel never sees RAM above mem=: MemTotal ${v} kB, the 2 GiB kept)`,
      }),
    },
  },
  {
    row: 'space back after unlink',
    cells: {
      'dmemfs 4K': m('dmemfs-files', 'free_dpages_restored_4K', { asCheck: true }),
      'dmemfs 2M': m('dmemfs-files', 'free_dpages_restored_2M', { asCheck: true }),
      'dmemfs 1G': m('dmemfs-files', 'free_dpages_restored_1G', { asCheck: true }),
      'device-dax (memmap=)': DEVICE,
      'device-dax (soft-reserved, per VM)': DEVICE,
      'hugetlbfs 2M': m('alternatives', 'hugetlbfs_2M_free_restored', { asCheck: true }),
      'hugetlbfs 1G': m('alternatives', 'hugetlbfs_1G_free_restored', { asCheck: true }),
      anonymous: NO_FILES,
      'mem= + /dev/mem': NO_ALLOCATOR,
    },
  },
  {
    row: 'unprivileged user: mode 0600 / mode 0666',
    cells: {
      'dmemfs 4K': m('dmemfs-files', 'unprivileged_mode_0600', { also: 'unprivileged_mode_0666' }),
      'dmemfs 2M': PAGE_INDEPENDENT('4K'),
      'dmemfs 1G': PAGE_INDEPENDENT('4K'),
      'device-dax (memmap=)': m('alternatives-devdax', 'devdax_unprivileged_mode_0600', {
        also: 'devdax_unprivileged_mode_0666',
      }),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'hmem_unprivileged_mode_0600', {
        also: 'hmem_unprivileged_mode_0666',
      }),
      'hugetlbfs 2M': m('alternatives', 'hugetlbfs_2M_unprivileged_mode_0600', {
        also: 'hugetlbfs_2M_unprivileged_mode_0666',
      }),
      'hugetlbfs 1G': PAGE_INDEPENDENT('2M'),
      anonymous: na('private to the process: no file, no mode'),
      'mem= + /dev/mem': m('mem-devmem', 'unprivileged_devmem', { also: 'unprivileged_devmem_even_mode_666' }),
    },
  },
  {
    row: 'L2 guest (256 MiB) MemTotal (kB)',
    cells: {
      'dmemfs 4K': L2_AT_2M,
      'dmemfs 2M': m('nested-guest', 'l2_memtotal_kb'),
      'dmemfs 1G': L2_AT_2M,
      'device-dax (memmap=)': m('l2-alternatives', 'devdax_l2_memtotal_kb'),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'vm1_l2_memtotal_kb', {
        also: 'vm2_l2_memtotal_kb',
      }),
      'hugetlbfs 2M': m('l2-alternatives', 'hugetlbfs_2M_l2_memtotal_kb'),
      'hugetlbfs 1G': L2_AT_2M,
      anonymous: m('l2-alternatives', 'anonymous_l2_memtotal_kb'),
      'mem= + /dev/mem': NO_L2_OFFSET,
    },
  },
  {
    row: 'KVM large pages mapping the L2 guest',
    cells: {
      'dmemfs 4K': L2_AT_2M,
      'dmemfs 2M': m('nested-guest', 'kvm_largepages'),
      'dmemfs 1G': L2_AT_2M,
      'device-dax (memmap=)': m('l2-alternatives', 'devdax_kvm_largepages'),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'vm1_kvm_largepages', {
        also: 'vm2_kvm_largepages',
      }),
      'hugetlbfs 2M': m('l2-alternatives', 'hugetlbfs_2M_kvm_largepages'),
      'hugetlbfs 1G': L2_AT_2M,
      anonymous: m('l2-alternatives', 'anonymous_kvm_largepages'),
      'mem= + /dev/mem': NO_L2_OFFSET,
    },
  },
  {
    row: 'VFIO DMA round trip',
    cells: {
      'dmemfs 4K': m('vfio-pin', 'map_dma_4K'),
      'dmemfs 2M': m('vfio-pin', 'map_dma'),
      'dmemfs 1G': m('vfio-pin', 'map_dma_1G'),
      'device-dax (memmap=)': m('vfio-pin', 'control_devdax_dma_verified'),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'hmem_vfio_dma_verified'),
      'hugetlbfs 2M': m('vfio-pin', 'control_hugetlbfs_dma_verified'),
      'hugetlbfs 1G': m('vfio-pin', 'control_hugetlbfs_1G_dma_verified'),
      anonymous: m('vfio-pin', 'control_anonymous_dma_verified'),
      'mem= + /dev/mem': m('mem-devmem', 'devmem_vfio_dma_verified'),
    },
  },
  {
    row: 'injected MCE: what the process reading the page gets',
    cells: {
      'dmemfs 4K': m('mce-dmemfs', 'sigbus_default_sysctl'),
      'dmemfs 2M': m('mce-dmemfs', 'sigbus_2M'),
      'dmemfs 1G': m('mce-dmemfs', 'sigbus_1G'),
      'device-dax (memmap=)': m('mce-dmemfs', 'control_devdax_sigbus'),
      'device-dax (soft-reserved, per VM)': m('soft-reserved-devdax', 'hmem_mce_signal'),
      'hugetlbfs 2M': m('mce-dmemfs', 'control_hugetlbfs_sigbus'),
      'hugetlbfs 1G': m('mce-dmemfs', 'control_hugetlbfs_1G_sigbus'),
      anonymous: m('mce-dmemfs', 'control_anonymous_sigbus'),
      'mem= + /dev/mem': m('mce-dmemfs', 'control_devmem_signal'),
    },
  },
  ...peerRows(),
];

/** Programs written elsewhere (peer-tools), each pointed at a file: dmemfs beside hugetlbfs 2M. */
function peerRows(): RowDef[] {
  const NOT_A_FILE = na('peer-tools points the tools at files of dmemfs and hugetlbfs: this column has none');
  const NOT_RUN = na('peer-tools runs this tool at 2M (dmemfs and the hugetlbfs control), and memtester at 4K');
  const rows: Array<
    [string, 'memtester' | 'fio_buffered' | 'fio_direct' | 'stress_stackmmap' | 'stress_tlb_shootdown']
  > = [
    ['memtester -p 0 -d FILE (a shared mapping of the file)', 'memtester'],
    ['fio, its buffers in a shared mapping of the file (buffered write)', 'fio_buffered'],
    ['fio, its buffers in a shared mapping of the file (direct=1: pinned by GUP)', 'fio_direct'],
    ['stress-ng --stackmmap (--temp-path on the mount)', 'stress_stackmmap'],
    ['stress-ng --tlb-shootdown (--temp-path on the mount)', 'stress_tlb_shootdown'],
  ];
  return rows.map(([row, id]) => ({
    row,
    cells: {
      'dmemfs 4K': id === 'memtester' ? m('peer-tools', 'memtester_dmemfs_4K') : NOT_RUN,
      'dmemfs 2M': m('peer-tools', `${id}_dmemfs_2M`),
      'dmemfs 1G': NOT_RUN,
      'device-dax (memmap=)': NOT_A_FILE,
      'device-dax (soft-reserved, per VM)': NOT_A_FILE,
      'hugetlbfs 2M': m('peer-tools', `${id}_hugetlbfs_2M`),
      'hugetlbfs 1G': NOT_RUN,
      anonymous: NOT_A_FILE,
      'mem= + /dev/mem': NOT_A_FILE,
    },
  }));
}

export interface Cell {
  text: string;
  kind: 'value' | 'skipped' | 'na' | 'not-met' | 'known-failure';
  value?: number | string | boolean | null;
}

export interface ComparisonTable {
  columns: readonly string[];
  rows: Array<{ row: string; cells: Cell[] }>;
}

function short(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (v === null || v === undefined) return '-';
  const s = String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Why a cell has no value: its scenario was skipped or did not get that far. */
function missingCell(s: ScenarioResult | undefined, scenario: string, measurement: string): Cell | undefined {
  if (!s) return { text: `skipped: scenario ${scenario} not run`, kind: 'skipped' };
  if (s.status === 'skip') return { text: `skipped: ${s.reason ?? 'no reason given'}`, kind: 'skipped' };
  const meas = s.measurements[measurement];
  if (!meas) {
    const why = `${s.status}${s.reason ? `: ${s.reason.slice(0, 80)}` : ''}`;
    return { text: `skipped: ${scenario} ended before measuring ${measurement} (${why})`, kind: 'skipped' };
  }
  if (meas.skipped !== undefined || meas.value === null)
    return { text: `skipped: ${meas.skipped ?? meas.note ?? 'no value'}`, kind: 'skipped' };
  return undefined;
}

/** The value of a cell as text: derived, with its unit, a second value, or as a check. */
function valueText(src: Exclude<Source, { na: string }>, s: ScenarioResult, meas: Measurement) {
  const raw = meas.value;
  if (src.format && typeof raw === 'number') return { value: raw, text: src.format(raw) };
  const value = raw;
  const unit = src.unit ?? (meas.unit && !/^of |^faults for/.test(meas.unit) ? meas.unit : '');
  let text = `${short(value)}${unit ? ` ${unit}` : ''}`;
  if (src.also) {
    const also = s.measurements[src.also]?.value;
    text += ` / ${short(also === true ? 'allowed' : also)}`;
  }
  if (src.asCheck && meas.ok !== undefined) text = `${meas.ok ? 'yes' : 'no'} (${text} free again)`;
  if (/^faults for/.test(meas.unit)) text += ` (${meas.unit.replace(/^faults /, '')})`;
  return { value, text };
}

function cellOf(src: Source, byId: Map<string, ScenarioResult>): Cell {
  if ('na' in src) return { text: `n/a: ${src.na}`, kind: 'na' };
  const s = byId.get(src.scenario);
  const missing = missingCell(s, src.scenario, src.measurement);
  if (missing || !s) return missing!;
  const meas = s.measurements[src.measurement]!;
  const { value, text } = valueText(src, s, meas);
  if (meas.ok !== false) return { text, kind: 'value', value };
  // A failed value is a known failure only when a signature that reproduced explains it.
  const known = s.signatures.some((c) => c.reproduced && c.measurements.includes(src.measurement));
  return known
    ? { text: `${text} (known failure of the series)`, kind: 'known-failure', value }
    : { text: `${text} (expected ${describeExpectation(meas.expected!)})`, kind: 'not-met', value };
}

/** Fill the table from a run's scenario results. */
export function comparisonTable(scenarios: ScenarioResult[]): ComparisonTable {
  const byId = new Map(scenarios.map((s) => [s.id, s]));
  const rows = CELLS.map((def) => ({ row: def.row, cells: COLUMNS.map((col) => cellOf(def.cells[col], byId)) }));
  return { columns: COLUMNS, rows };
}

/** The table as Markdown (pipes in cells escaped). */
export function comparisonMarkdown(t: ComparisonTable): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| measurement | ${t.columns.join(' | ')} |`,
    `|---|${t.columns.map(() => '---').join('|')}|`,
    ...t.rows.map((r) => `| ${esc(r.row)} | ${r.cells.map((c) => esc(c.text)).join(' | ')} |`),
  ].join('\n');
}
