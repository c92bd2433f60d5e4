/**
 * The reviewers' questions about the series, each with the measurements that answer it and a
 * one-line answer written from this run's values (data: QUESTIONS). A value a run did not
 * measure says so in the answer instead of a guess.
 */
import type { ScenarioResult, Value } from '../core/results.js';
import type { MeasurementName, ScenarioId } from '../scenarios/catalog.js';

interface Ref {
  scenario: string;
  measurement: string;
}
const ref = <I extends ScenarioId>(scenario: I, measurement: MeasurementName<I>): Ref => ({ scenario, measurement });

/** Looks a measured value up; `text` prints it, or why it is missing. */
export interface Values {
  get(r: Ref): Value | undefined;
  text(r: Ref): string;
}

export interface Question {
  id: string;
  question: string;
  /** The measurements that answer it, in the order the answer uses them. */
  answeredBy: Ref[];
  answer: (v: Values) => string;
}

const HOT_BLOCKS = ref('hot-unplug-offline', 'memory_blocks_present_for_dmem');
const HOT_SPANNED = ref('hot-unplug-offline', 'memory_blocks_spanned_by_dmem');
const DIMM_REMOVED = ref('hot-unplug-dimm', 'dimm_removed');
const DIMM_REGIONS = ref('hot-unplug-dimm', 'dmem_regions_on_dimm');
const MCE_4K = ref('mce-dmemfs', 'sigbus_default_sysctl');
const MCE_2M = ref('mce-dmemfs', 'sigbus_2M');
const MCE_HUGETLB = ref('mce-dmemfs', 'control_hugetlbfs_sigbus');
const MCE_LOGGED = ref('mce-dmemfs', 'handled_by_dmem_logged');
const DEVMEM_USER = ref('mem-devmem', 'unprivileged_devmem_even_mode_666');
const DEVMEM_PAGE = ref('mem-devmem', 'devmem_kernel_page_kb');
const DEVMEM_VFIO = ref('mem-devmem', 'devmem_vfio_dma_verified');
const DMEM_PAGE_1G = ref('dmemfs-files', 'smaps_kernel_page_kb_1G');
const STATIC_SPLIT = ref('l2-alternatives', 'daxctl_create_device_256M');
const HMEM_SPLIT = ref('soft-reserved-devdax', 'hmem_devices_created');
const HMEM_L2 = ref('soft-reserved-devdax', 'vm1_l2_done');
const HMEM_STRUCT = ref('soft-reserved-devdax', 'hmem_struct_page_kb_per_gib');
const DMEM_SAVED = ref('reservation', 'struct_page_saved_kb_per_gib');
const VFIO_DMEM = ref('vfio-pin', 'map_dma');
const KVM_DMEM = ref('nested-guest', 'kvm_largepages');
const KVM_HUGETLB = ref('l2-alternatives', 'hugetlbfs_2M_kvm_largepages');
const PAGEMAP = ref('mce-dmemfs', 'pagemap_shows_dmem_page');

export const QUESTIONS: Question[] = [
  {
    id: 'hot-unplug',
    question: 'Is dmem memory compatible with memory hot-unplug?',
    answeredBy: [HOT_SPANNED, HOT_BLOCKS, DIMM_REMOVED, DIMM_REGIONS],
    answer: (v) =>
      `dmem regions span ${v.text(HOT_SPANNED)} memory blocks of which ${v.text(HOT_BLOCKS)} exist in sysfs, ` +
      'so dmem memory cannot be offlined or removed at all; a DIMM next to it is removed: ' +
      `${v.text(DIMM_REMOVED)}, with ${v.text(DIMM_REGIONS)} dmem regions on it.`,
  },
  {
    id: 'poisoning',
    question: 'What happens when a dmem page is poisoned (an uncorrected memory error)?',
    answeredBy: [MCE_LOGGED, MCE_4K, MCE_2M, MCE_HUGETLB],
    answer: (v) =>
      `the kernel logs "handled by dmem": ${v.text(MCE_LOGGED)}, but the process reading the page gets ` +
      `${v.text(MCE_4K)} at 4K and ${v.text(MCE_2M)} at 2M, where hugetlbfs gets ${v.text(MCE_HUGETLB)}.`,
  },
  {
    id: 'dev-mem',
    question: 'Why not mem= plus /dev/mem?',
    answeredBy: [DEVMEM_USER, DEVMEM_PAGE, DEVMEM_VFIO, DMEM_PAGE_1G],
    answer: (v) =>
      `only root may map it (an unprivileged user even at mode 666: ${v.text(DEVMEM_USER)}), only in ` +
      `${v.text(DEVMEM_PAGE)} kB pages and with no allocator (dmemfs maps ${v.text(DMEM_PAGE_1G)} kB pages ` +
      `by file mode); VFIO does pin it: ${v.text(DEVMEM_VFIO)}.`,
  },
  {
    id: 'devdax-subdivision',
    question: 'Can device-dax be subdivided per VM instead?',
    answeredBy: [STATIC_SPLIT, HMEM_SPLIT, HMEM_L2, HMEM_STRUCT, DMEM_SAVED],
    answer: (v) =>
      `a static memmap= namespace cannot (daxctl create-device: ${v.text(STATIC_SPLIT)}), soft-reserved ` +
      `memory can: ${v.text(HMEM_SPLIT)} devices of 256 MiB, an L2 guest on each (${v.text(HMEM_L2)}); ` +
      `it costs ${v.text(HMEM_STRUCT)} kB/GiB of struct pages, which dmem saves (${v.text(DMEM_SAVED)} kB/GiB).`,
  },
  {
    id: 'vm-pfnmap',
    question: 'Why a new VM_DMEM flag rather than VM_PFNMAP?',
    answeredBy: [DEVMEM_VFIO, VFIO_DMEM, KVM_DMEM, KVM_HUGETLB, PAGEMAP],
    answer: (v) =>
      `a VM_PFNMAP mapping (/dev/mem) already pins through VFIO here (${v.text(DEVMEM_VFIO)}), while the ` +
      `series' VM_DMEM path gives ${v.text(VFIO_DMEM)}; KVM still maps dmem with ${v.text(KVM_DMEM)} large ` +
      `pages against ${v.text(KVM_HUGETLB)} on hugetlbfs, and pagemap hides its PFN like any PFN map ` +
      `(PFN shown: ${v.text(PAGEMAP)}).`,
  },
];

function short(v: Value): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  const s = String(v);
  return s.length > 70 ? `${s.slice(0, 67)}...` : s;
}

/** Values from a run's scenarios. */
export function valuesOf(scenarios: ScenarioResult[]): Values {
  const byId = new Map(scenarios.map((s) => [s.id, s]));
  const get = (r: Ref) => byId.get(r.scenario)?.measurements[r.measurement]?.value ?? undefined;
  return {
    get,
    text(r) {
      const s = byId.get(r.scenario);
      const meas = s?.measurements[r.measurement];
      if (!s) return `(${r.scenario} not run)`;
      if (!meas) return `(${r.measurement} not measured: ${s.status})`;
      if (meas.value === null || meas.value === undefined) return `(skipped: ${meas.skipped ?? 'no value'})`;
      return short(meas.value);
    },
  };
}

/** The section as Markdown: each question, its answer from this run, and the measurements behind it. */
export function reviewersMarkdown(scenarios: ScenarioResult[]): string {
  const v = valuesOf(scenarios);
  return QUESTIONS.map(
    (q) =>
      `- **${q.question}** ${q.answer(v).replace(/^./, (c) => c.toUpperCase())}\n` +
      `  (${q.answeredBy.map((r) => `\`${r.scenario}\` ${r.measurement}`).join(', ')})`,
  ).join('\n');
}
