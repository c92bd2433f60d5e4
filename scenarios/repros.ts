/**
 * Standalone reproducers of the known failures (`dmemfs-rig repro ID --out DIR`): data. Each
 * names the boot the scenario saw the failure on (its machine and kernel command line), the
 * in-guest helpers it needs, the steps (a shell script in images/repro/, run by a busybox
 * initramfs as the guest's only program), and what its console shows with the bug and without
 * it. runner/repro.ts writes the directory and proves it on the series, the baseline kernel and
 * the fixing mutant.
 */
import type { EditName } from '../kernel/edits.js';
import type { HelperName } from '../images/guest-tools.js';
import type { BootName } from './boots.js';

export interface Reproducer {
  signature: string;
  /** The boot (scenarios/boots.ts) whose machine and kernel command line the reproducer takes. */
  boot: BootName;
  /** The helpers (images/guest-tools/*.c) the steps run: their sources go into the directory. */
  helpers: HelperName[];
  /** The steps: images/repro/<script>, written as repro.sh. */
  script: string;
  /** Shell variables the script reads, set in the first lines of repro.sh (one script, several signatures). */
  vars?: Readonly<Record<string, string>>;
  /** With the bug: what it does, and the console lines (extended regular expressions, all must match). */
  bug: { says: string; lines: string[] };
  /** Without it (fixed, or the series' fix applied): what it does, and the console lines. */
  fixed: { says: string; lines: string[] };
  /**
   * The named change that fixes it (kernel/edits.ts): the proof must show the bug gone with it.
   * None where no one-line fix is known: the proof is then on the series and the baseline only.
   */
  fixedBy?: EditName;
  /**
   * A host-side script (images/repro/<host>, written as inject.sh) that runs qemu.sh and acts on
   * the machine from outside while the steps run, such as an error injected through the monitor.
   * The reproducer is then run with it, not with qemu.sh alone.
   */
  host?: string;
  /** 'debug': the bug is what the debug variant's checkers print; it is written for that build. */
  variant?: 'debug';
  /** The boot and the steps together, under KVM (scaled under TCG): the proof's bound. */
  seconds: number;
}

/** The line every script ends with (a crash before it is the bug's own output). */
export const RESULT_LINE = /^repro: RESULT (bug|no-bug|absent|error)(?::\s*(.*))?$/;

/** The console of a reader that got no SIGBUS for its poisoned dmem page, and of one that got it. */
const NO_SIGBUS = {
  lines: ['MCE 0x[0-9a-f]+: handled by dmem', '"event":"timeout"', '^repro: RESULT bug'],
  fixed: { says: 'the process gets SIGBUS BUS_MCEERR_AR', lines: ['"event":"sigbus"', '^repro: RESULT no-bug'] },
};

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
  {
    signature: 'dmemfs-racing-faults-double-allocate',
    boot: 'pool-edges',
    helpers: ['pool-edge'],
    script: 'dmemfs-racing-faults.sh',
    vars: { SIZE: '4K', UNTIL: 'race', TRIES: '10' },
    bug: {
      says:
        'eight threads faulting a 4K file together take more dpages than the file has pages, and the file was ' +
        'filled and read back whole',
      // The unlink after it panics the kernel (dmemfs-unlink-bug-after-racing-faults, oops=panic):
      // no RESULT line follows.
      lines: ['^repro: the race fired: [0-9]+ too many$', '"verified":true'],
    },
    fixed: { says: 'every try takes one dpage per page', lines: ['^repro: RESULT no-bug'] },
    fixedBy: 'dmemfs-racing-fault-xa-insert',
    seconds: 90,
  },
  {
    signature: 'dmemfs-unlink-bug-after-racing-faults',
    boot: 'pool-edges',
    helpers: ['pool-edge'],
    script: 'dmemfs-racing-faults.sh',
    vars: { SIZE: '4K', UNTIL: 'race', TRIES: '10' },
    bug: {
      says: 'the unlink of the file the racing faults filled hits BUG_ON(nrexceptional) in clear_inode()',
      lines: [
        '^repro: the race fired: [0-9]+ too many$',
        'kernel BUG at \\S*fs/inode\\.c:[0-9]+!',
        'RIP: [0-9a-f]+:clear_inode\\+',
        ' evict\\+',
        ' do_unlinkat\\+',
      ],
    },
    fixed: { says: 'every try takes one dpage per page, and its unlink returns', lines: ['^repro: RESULT no-bug'] },
    fixedBy: 'dmemfs-racing-fault-xa-insert',
    seconds: 90,
  },
  {
    signature: 'dmemfs-racing-huge-faults-warn',
    boot: 'pool-edges',
    helpers: ['pool-edge'],
    script: 'dmemfs-racing-faults.sh',
    vars: { SIZE: '2M', UNTIL: 'warn', TRIES: '30' },
    // The race's unlink panics the kernel (oops=panic) before a RESULT line: the WARN is the bug.
    bug: {
      says: 'in one of up to 30 tries, eight threads faulting a 2M file together WARN in vmf_insert_pfn_pmd_prot',
      lines: [
        'WARNING: CPU: [0-9]+ PID: [0-9]+ at \\S*mm/huge_memory\\.c:[0-9]+ vmf_insert_pfn_pmd_prot',
        'dmemfs_huge_fault',
      ],
    },
    fixed: { says: 'no WARN in 30 tries', lines: ['^repro: RESULT no-bug'] },
    fixedBy: 'dmemfs-racing-fault-xa-insert',
    seconds: 300,
  },
  mceProbe('mce-dmem-no-sigbus', 'mce-intel', '4K', 'sigbus', {
    says:
      'an uncorrected error injected into the 4K dmemfs page a process reads (early kill on) is "handled by ' +
      'dmem", and the process reads on for 30 s with no SIGBUS',
    ...NO_SIGBUS,
    fixedBy: 'dmem-mce-force-kill',
  }),
  mceProbe('mce-dmem-no-sigbus-huge', 'mce-intel-2M', '2M', 'sigbus', {
    says: 'the same injection into a 2M dmemfs page: "handled by dmem", and no SIGBUS in 30 s',
    ...NO_SIGBUS,
    // The 4K signature's fix (early kill forced), tried at 2M by the proof.
    fixedBy: 'dmem-mce-force-kill',
  }),
  mceProbe('mce-dmem-set-memory-uc-warning', 'mce-intel', '4K', 'warning', {
    says: 'after the dmem handler took the error, set_memory_uc() on the dmem pfn WARNs in memtype_reserve()',
    lines: [
      'MCE 0x[0-9a-f]+: handled by dmem',
      'WARNING: CPU: [0-9]+ PID: [0-9]+ at \\S*memtype\\.c:[0-9]+ memtype_reserve',
      'set_memory_uc',
      '^repro: RESULT bug',
    ],
    fixed: {
      says: 'no WARNING after the error',
      lines: ['MCE 0x[0-9a-f]+: handled by dmem', '^repro: kernel warnings after the error: 0$'],
    },
    fixedBy: 'dmem-mce-not-uc',
  }),
  debugProbe('dmemfs-inode-alloc-sleeps-under-spinlock', 'create', {
    says: "a 4K mount and a file created: DEBUG_ATOMIC_SLEEP's report of the GFP_NOIO allocation under a spinlock",
    lines: [
      'BUG: sleeping function called from invalid context at \\S*mm/slab\\.h:[0-9]+',
      'dmemfs_alloc_inode\\+',
      '^repro: RESULT bug',
    ],
    fixedBy: 'dmemfs-inode-alloc-atomic',
  }),
  debugProbe('dmemfs-fault-sleeps-under-rcu', 'fault', {
    says:
      'the first 4K fault of a file allocates page tables in the RCU read-side section: lockdep says so, or ' +
      'DEBUG_ATOMIC_SLEEP once lockdep is off',
    lines: [
      '(suspicious RCU usage|sleeping function called from invalid context at \\S*mm/page_alloc\\.c)',
      '(Illegal context switch in RCU read-side critical section|vmf_insert_pfn\\w*\\+)',
      '^repro: RESULT bug',
    ],
  }),
  debugProbe('dmemfs-4k-fault-retry-relocks-mmap', 'unservable', {
    says: "a 4K fault with no pool behind it: lockdep's recursive locking of mmap_lock in do_user_addr_fault",
    lines: ['WARNING: possible recursive locking detected', 'mmap_lock', 'do_user_addr_fault', '^repro: RESULT bug'],
  }),
];

/**
 * An MCE reproducer: images/repro/mce-dmemfs.sh in the guest, inject-mce.sh on the host (the
 * error is injected from outside, through the monitor, at the page's guest-physical address).
 */
function mceProbe(
  signature: string,
  boot: BootName,
  size: '4K' | '2M',
  check: 'sigbus' | 'warning',
  shows: { says: string; lines: string[]; fixed: Reproducer['fixed']; fixedBy?: EditName },
): Reproducer {
  const { fixed, fixedBy, ...bug } = shows;
  return {
    signature,
    boot,
    helpers: ['mce-victim'],
    script: 'mce-dmemfs.sh',
    host: 'inject-mce.sh',
    vars: { SIZE: size, EARLY_KILL: '1', CHECK: check },
    bug,
    fixed,
    ...(fixedBy ? { fixedBy } : {}),
    seconds: 120,
  };
}

/**
 * A debug-variant reproducer: images/repro/dmemfs-debug-probe.sh at one step, on a fresh boot of
 * the debug-checks scenario's machine (lockdep reports once per boot).
 */
function debugProbe(
  signature: string,
  step: 'create' | 'fault' | 'unservable',
  bug: { says: string; lines: string[]; fixedBy?: EditName },
): Reproducer {
  const { fixedBy, ...shows } = bug;
  return {
    signature,
    boot: step === 'unservable' ? 'debug-probe-no-pool' : 'debug-probe',
    helpers: step === 'create' ? [] : step === 'fault' ? ['map-and-touch'] : ['pool-edge'],
    script: 'dmemfs-debug-probe.sh',
    vars: { STEP: step },
    variant: 'debug',
    bug: shows,
    fixed: { says: 'no checker report', lines: ['^repro: RESULT no-bug'] },
    ...(fixedBy ? { fixedBy } : {}),
    seconds: 120,
  };
}

/**
 * The signatures with no standalone reproducer yet, and why: `repro` says this instead of
 * writing one.
 */
export const NO_REPRODUCER: Readonly<Record<string, string>> = {
  'dmemfs-i-pages-lock-irq-unsafe':
    'lockdep calls it inconsistent only once the i_pages lock class was also taken in a hard interrupt (a ' +
    "block write's completion, end_page_writeback): a busybox initramfs with no disk never does that. Tried " +
    "2026-12-07: the debug reproducer's first 4K fault printed only dmemfs-fault-sleeps-under-rcu's reports",
  'kvm-dmem-4k':
    'it needs a second-level guest whose RAM is the dmemfs file (QEMU inside the guest): more than a busybox initramfs',
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
