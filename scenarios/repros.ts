/**
 * Standalone reproducers of the known failures (`dmemfs-rig repro ID --out DIR`): data. Each
 * names the boot the scenario saw the failure on (its machine and kernel command line), the
 * in-guest helpers it needs, the steps (a shell script in images/repro/, run by a busybox
 * initramfs as the guest's only program), and what its console shows with the bug and without
 * it. runner/repro.ts writes the directory and proves it on the series, the baseline kernel and
 * the fixing mutant.
 */
import type { EditName } from '../kernel/edits.js';
import type { HelperName } from '../images/helpers.js';
import type { BootName } from './boots.js';

export interface Reproducer {
  signature: string;
  /** The boot (scenarios/boots.ts) whose machine and kernel command line the reproducer takes. */
  boot: BootName;
  /** The helpers (images/helpers/*.c) the steps run: their sources go into the directory. */
  helpers: HelperName[];
  /** The steps: images/repro/<script>, written as repro.sh. */
  script: string;
  /** With the bug: what it does, and the console lines (extended regular expressions, all must match). */
  bug: { says: string; lines: string[] };
  /** Without it (fixed, or the series' fix applied): what it does, and the console lines. */
  fixed: { says: string; lines: string[] };
  /** The named change that fixes it (kernel/edits.ts): the proof must show the bug gone with it. */
  fixedBy: EditName;
  /** The boot and the steps together, under KVM (scaled under TCG): the proof's bound. */
  seconds: number;
}

/** The line every script ends with (a crash before it is the bug's own output). */
export const RESULT_LINE = /^repro: RESULT (bug|no-bug|absent|error)(?::\s*(.*))?$/;

export const REPRODUCERS: readonly Reproducer[] = [
  {
    signature: 'vfio-get-dmem-pfn-null',
    boot: 'iommu-edu',
    helpers: ['vfio-dma'],
    script: 'vfio-get-dmem-pfn-null.sh',
    bug: {
      says: 'VFIO_IOMMU_MAP_DMA of the dmemfs mapping oopses (a NULL write in get_dmem_pfn) and the kernel panics',
      lines: ['BUG: kernel NULL pointer dereference', '#PF: supervisor write access', 'RIP: [0-9a-f]+:get_dmem_pfn\\+'],
    },
    fixed: {
      says: 'the dmemfs page is pinned, a DMA round trip through the edu device lands in it, and it is unmapped',
      lines: ['^repro: RESULT no-bug'],
    },
    fixedBy: 'get_dmem_pfn-pdnode',
    seconds: 60,
  },
  {
    signature: 'dmemfs-new-file-reads-old-data',
    boot: 'pool-edges',
    helpers: ['pool-edge'],
    script: 'dmemfs-new-file-reads-old-data.sh',
    bug: {
      says: 'page 0 of the file, truncated to 0 and grown back, reads the word written before the truncate',
      lines: ['"after_grow":"stale"', '"after_grow_word":"0x5a5a5a5a[0-9a-f]{8}"', '^repro: RESULT bug'],
    },
    fixed: { says: 'page 0 reads back zero', lines: ['"after_grow":"zero"', '^repro: RESULT no-bug'] },
    fixedBy: 'dmemfs-dpages-zeroed',
    seconds: 60,
  },
  {
    signature: 'dmemfs-4k-fault-error-spins',
    boot: 'plain',
    helpers: ['pool-edge'],
    script: 'dmemfs-4k-fault-error-spins.sh',
    bug: {
      says:
        'the first fault of a 4K dmemfs file with no pool behind it never returns: runnable for 20 s, its system ' +
        'time growing, then killed',
      lines: ['^repro: after [0-9]+ s: state R, system time [0-9]+ -> [0-9]+ ticks$', '^repro: RESULT bug'],
    },
    fixed: { says: 'the fault gets SIGBUS at once', lines: ['"outcome":"sigbus"', '^repro: RESULT no-bug'] },
    fixedBy: 'dmemfs-4k-fault-sigbus',
    seconds: 60,
  },
];

/**
 * The signatures with no standalone reproducer yet, and why: `repro` says this instead of
 * writing one.
 */
export const NO_REPRODUCER: Readonly<Record<string, string>> = {
  'mce-dmem-no-sigbus':
    "the error is injected from outside the guest (QEMU's HMP `mce`, at the page's guest-physical address the " +
    'guest prints): a reproducer needs a monitor dialogue, not only a guest script',
  'mce-dmem-no-sigbus-huge': 'the same injection from outside the guest as mce-dmem-no-sigbus',
  'mce-dmem-set-memory-uc-warning': 'the same injection from outside the guest as mce-dmem-no-sigbus',
  'kvm-dmem-4k':
    'it needs a second-level guest whose RAM is the dmemfs file (QEMU inside the guest): more than a busybox initramfs',
  'dmemfs-racing-faults-double-allocate':
    'a race: its steps hit it in some tries only (scenarios/races.ts), and the count it reads needs the ' +
    'dmem debugfs before and after each try: not written yet',
  'dmemfs-unlink-bug-after-racing-faults': 'follows the race of dmemfs-racing-faults-double-allocate: not written yet',
  'dmemfs-racing-huge-faults-warn': 'follows the race of dmemfs-racing-faults-double-allocate: not written yet',
  'dmemfs-inode-alloc-sleeps-under-spinlock':
    "a debug-variant report (DEBUG_ATOMIC_SLEEP): its reproducer needs the debug kernel's build: not written yet",
  'dmemfs-i-pages-lock-irq-unsafe': "a debug-variant report (lockdep): needs the debug kernel's build: not written yet",
  'dmemfs-fault-sleeps-under-rcu': "a debug-variant report (lockdep): needs the debug kernel's build: not written yet",
  'dmemfs-4k-fault-retry-relocks-mmap':
    "a debug-variant report (lockdep): needs the debug kernel's build: not written yet",
};

export function reproducerOf(signature: string): Reproducer | undefined {
  return REPRODUCERS.find((r) => r.signature === signature);
}

/** What one run of a reproducer showed. */
export type ReproOutcome = 'bug' | 'no-bug' | 'absent' | 'inconclusive';

/** A kernel the proof runs the reproducer on, and what it must show there. */
export interface ProofKernel {
  label: 'series' | 'baseline' | 'fixed';
  what: string;
  image: string;
}

export interface ProofRow {
  label: ProofKernel['label'];
  kernel: string;
  outcome: ReproOutcome;
  result: string;
  expected: ReproOutcome[];
  ok: boolean;
  seconds: number;
  console: string;
  /** 2 when the first console was inconclusive and the run was made once more. */
  tries?: number;
}

/** What proof/proof.json holds: the digest of every file the proof ran, and a row per kernel. */
export interface ProofRecord {
  files: Record<string, string>;
  rows: ProofRow[];
}
