/**
 * Known failures of the series (not of the rig), as signatures: what each explains and what its
 * evidence must show. The judge (runner/judge.ts) claims a failure as known only when it
 * matches; a worse or different value is a fail, and a signature whose measurements pass again
 * "no longer reproduces". tests/fixtures/signatures/ holds each signature's real evidence and a
 * near miss that must not match.
 */
import { atLeast, between, eq, is } from '../core/results.js';
import { mceDmemfs } from './defs/mce-dmemfs.js';
import { nestedGuest } from './defs/nested-guest.js';
import { poolBoundaries } from './defs/pool-boundaries.js';
import { THREAD_RACES } from './races.js';
import { vfioPin } from './defs/vfio-pin.js';
import { signatureOf, type Signature } from './types.js';

export const SIGNATURES: readonly Signature[] = [
  signatureOf(vfioPin, {
    id: 'vfio-get-dmem-pfn-null',
    title: 'the kernel oopses when VFIO pins a dmem page (NULL write in get_dmem_pfn)',
    reason: `get_dmem_pfn() (RFC V2 35/37) calls find_dmem_region(PFN_PHYS(pfn), NULL), and
      find_dmem_region() (03/37) always stores through that pointer (*pdnode = dnode): a NULL
      pointer write in vaddr_get_pfns -> get_dmem_pfn.`,
    // At every page size: get_dmem_pfn() does not look at it.
    measurements: { map_dma: 'any', map_dma_4K: 'any', map_dma_1G: 'any' },
    // A write fault at NULL with RIP in get_dmem_pfn, reached from VFIO's pinning path.
    report: {
      kinds: ['bug', 'oops'],
      title: /NULL pointer dereference/,
      excerpt: /#PF: supervisor write access[\s\S]*RIP: \S+:get_dmem_pfn\+[\s\S]*vaddr_get_pfns/,
    },
  }),
  signatureOf(mceDmemfs, {
    id: 'mce-dmem-no-sigbus',
    title: 'the process mapping a poisoned dmem page gets no SIGBUS',
    reason: `with the default vm.memory_failure_early_kill=0 and with early kill on, although
      "MCE <pfn>: handled by dmem" is logged for its page and the page leaves the pool, the mapping
      stays and the process keeps reading it. The hugetlbfs control in the same boot gets SIGBUS
      BUS_MCEERR_AR. The dmem path only calls collect_procs_and_signal_inode() (early-kill
      collection) and never unmaps; why it collects nobody with early kill on was not determined.`,
    // The victim ran its whole 30/60 s and reported "timeout": no signal, and no crash either.
    measurements: { sigbus_default_sysctl: is('timeout'), sigbus_early_kill: is('timeout') },
    // Claimed only where the dmem handler took the error for the victim's page.
    evidence: /MCE 0x[0-9a-f]+: handled by dmem/,
  }),
  signatureOf(mceDmemfs, {
    id: 'mce-dmem-no-sigbus-huge',
    title: 'the process mapping a poisoned 2M or 1G dmem page gets no SIGBUS either',
    reason: `the same as at 4K (mce-dmem-no-sigbus), on a fresh pool of 2M or 1G pages: "MCE <pfn>: handled
      by dmem" is logged and the victim keeps reading its page for 30 s; hugetlbfs gets SIGBUS with
      si_addr_lsb 21 (2M) and 30 (1G) for the same injection.`,
    measurements: { sigbus_2M: is('timeout'), sigbus_1G: is('timeout') },
    // Claimed only where the dmem handler took the error: a victim never injected is not this.
    evidence: /MCE 0x[0-9a-f]+: handled by dmem/,
  }),
  signatureOf(mceDmemfs, {
    id: 'mce-dmem-set-memory-uc-warning',
    title: 'memtype_reserve() WARNs after a dmem MCE (set_memory_uc on a dmem pfn)',
    reason: `after "MCE <pfn>: handled by dmem", memory_failure() has returned 0, so x86's
      uc_decode_notifier calls set_mce_nospec() -> set_memory_uc() on the dmem pfn, and
      memtype_reserve() WARNs (arch/x86/mm/pat/memtype.c): the series does not keep dmem pages
      out of that path. One WARNING per poisoned page.`,
    // One per poisoned page (4K default and early kill, and where they run, 2M and 1G): the value is per page.
    measurements: { kernel_warnings_after_mce: eq(1) },
    // The WARNING itself (not the x86/PAT text device-dax also prints), on the uc_decode_notifier path.
    report: {
      kinds: ['warning'],
      title: /memtype\.c:\d+ memtype_reserve/,
      excerpt: /set_memory_uc[\s\S]*uc_decode_notifier/,
    },
  }),
  signatureOf(nestedGuest, {
    id: 'kvm-dmem-4k',
    title: 'KVM maps a dmemfs-backed guest with 4K entries',
    reason: `22/37 ("Distinguish dmemfs page from mmio page") adds is_dmem_pfn() but only an #include
      to arch/x86/kvm/mmu/mmu.c, so kvm_is_reserved_pfn() still calls a dmem pfn (no struct page,
      pfn_valid() false) reserved and kvm_mmu_hugepage_adjust() keeps it at 4K. Same L1 kernel,
      same L2: device-dax and hugetlbfs backing get tens of large pages (l2-alternatives). The few
      large mappings left come from L2 memory that is not the dmemfs file.`,
    // Read while L2 held 64 MiB touched: 32 would be one per 2 MiB page. 4 were seen at every run;
    // none (the counter unreadable, or every large page gone) is worse, and so is a null; half or
    // twice the 4 is another behaviour.
    measurements: { kvm_largepages: between(3, 6) },
    // The count was read of an L2 whose RAM is the dmemfs file and which touched its 64 MiB.
    evidence: /L2 RAM: file \/mnt\/dmem\/\S+; L2 reported touched_mib=64;/,
  }),
  signatureOf(poolBoundaries, {
    id: 'dmemfs-4k-fault-error-spins',
    title: 'a 4K dmemfs fault that cannot be served spins in the page-fault handler for ever (no SIGBUS)',
    reason: `__dmemfs_fault() (05/37, renamed in 24/37) returns PTR_ERR(entry) as its vm_fault_t when
      radix_get_create_entry() fails: -EINVAL when the pool has no free dpage, the size check's error
      past EOF. 0xffffffea has VM_FAULT_RETRY among its bits, so the x86 fault handler retries the
      fault for ever; the task stays runnable (state R) and killable. The 2M and 1G paths (24/37,
      28/37) turn the same error into VM_FAULT_SIGBUS, and get SIGBUS in the same cases.`,
    measurements: {
      no_pool_fill_dmemfs_4K: is('stuck: R'),
      oversize_fill_dmemfs_4K: is('stuck: R'),
      oversize_pages_touched_dmemfs_4K: 'any',
      exhausted_fill_dmemfs_4K: is('stuck: R'),
      exhausted_pages_touched_dmemfs_4K: 'any',
      shrink_after_shrink_dmemfs_4K: is('stuck: R'),
      shrink_after_grow_dmemfs_4K: is('stuck: R'),
    },
    // The task-dump entry of the helper: runnable, inside a user page fault.
    evidence: /task:pool-edge\s+state:R[\s\S]*exc_page_fault/,
  }),
  signatureOf(poolBoundaries, {
    id: 'dmemfs-racing-faults-double-allocate',
    title: 'threads faulting the same dmemfs page at once each take a dpage: the file holds more dpages than pages',
    reason: `radix_get_create_entry() (05/37) looks the page up under RCU, allocates a dpage outside
      any lock, and stores it with xa_store(), which replaces an entry another thread stored
      meanwhile and counts nrexceptional once more: every loser's dpage stays taken (leaked).`,
    measurements: {
      threads_pages_used_dmemfs_4K: between(257, 256 * 8),
      threads_pages_used_dmemfs_2M: between(65, 128),
      threads_pages_used_dmemfs_1G: between(2, 2),
    },
    // The file was filled and read back whole: the extra dpages are not a fill that failed half way.
    evidence: /^(?=[\s\S]*"verified":true)(?=[\s\S]*"outcome":"ok")/,
    intermittent: {
      threads_pages_used_dmemfs_4K: THREAD_RACES.dmemfs_4K,
      threads_pages_used_dmemfs_2M: THREAD_RACES.dmemfs_2M,
      threads_pages_used_dmemfs_1G: THREAD_RACES.dmemfs_1G,
    },
  }),
  signatureOf(poolBoundaries, {
    id: 'dmemfs-unlink-bug-after-racing-faults',
    title: 'unlinking a dmemfs file that racing faults filled hits BUG_ON(nrexceptional) in clear_inode()',
    reason: `the replaced entries of dmemfs-racing-faults-double-allocate were counted in
      mapping->nrexceptional and are never removed: on the last unlink, evict() -> clear_inode()
      finds nrexceptional != 0 (fs/inode.c) and the kernel BUGs in the unlinking process.`,
    measurements: {
      threads_unlink_dmemfs_4K: 'any',
      threads_unlink_dmemfs_2M: 'any',
      threads_unlink_dmemfs_1G: 'any',
    },
    intermittent: {
      threads_unlink_dmemfs_4K: THREAD_RACES.dmemfs_4K,
      threads_unlink_dmemfs_2M: THREAD_RACES.dmemfs_2M,
      threads_unlink_dmemfs_1G: THREAD_RACES.dmemfs_1G,
    },
    report: {
      kinds: ['bug'],
      title: /^kernel BUG at \S*fs\/inode\.c:\d+!/,
      excerpt: /RIP: \S+:clear_inode\+[\s\S]*evict\+[\s\S]*do_unlinkat/,
    },
  }),
  signatureOf(poolBoundaries, {
    id: 'dmemfs-racing-huge-faults-warn',
    title: 'racing 2M/1G dmemfs faults WARN in vmf_insert_pfn_pmd/pud_prot: the entry maps another dpage',
    reason: `the loser of a racing huge fault (dmemfs-racing-faults-double-allocate) inserts its own
      dpage where the winner's is mapped already: insert_pfn_pmd()/insert_pfn_pud() (mm/huge_memory.c)
      WARN_ON_ONCE that the pfns differ.`,
    measurements: { threads_kernel_reports_dmemfs_2M: between(1, 1), threads_kernel_reports_dmemfs_1G: between(1, 1) },
    intermittent: {
      threads_kernel_reports_dmemfs_2M: THREAD_RACES.dmemfs_2M,
      threads_kernel_reports_dmemfs_1G: THREAD_RACES.dmemfs_1G,
    },
    report: {
      kinds: ['warning'],
      title: /mm\/huge_memory\.c:\d+ vmf_insert_pfn_p[mu]d_prot/,
      excerpt: /dmemfs_huge_fault/,
    },
  }),
  signatureOf(poolBoundaries, {
    id: 'dmemfs-new-file-reads-old-data',
    title: 'a dmemfs page freed by truncate comes back with its old data: dpages are never zeroed',
    reason: `neither mm/dmem.c nor fs/dmemfs/inode.c clears a dpage it hands out: after truncating a
      mapped file to 0 and growing it back, the next fault takes a freed dpage (the allocator is
      first-fit: the one just freed, or a lower one another file freed before) and its old bytes
      read back. The same holds for any new file, of any owner: data crosses files and users.`,
    measurements: { shrink_after_grow_dmemfs_2M: is('stale'), shrink_after_grow_dmemfs_1G: is('stale') },
    // The word read back is one the rig's fills wrote (page index ^ 0x5a5a5a5a5a5a5a5a): old data,
    // this file's own (seen 2026-11-30) or an earlier file's (page 64's, seen 2026-12-04), not any
    // non-zero byte.
    evidence: /"after_grow_word":"0x5a5a5a5a[0-9a-f]{8}"/,
  }),
  // What the debug variant (KASAN, lockdep, DEBUG_ATOMIC_SLEEP) reports on any use of dmemfs.
  {
    id: 'dmemfs-inode-alloc-sleeps-under-spinlock',
    scenario: '*',
    seen: true,
    title: 'dmemfs allocates with GFP_NOIO under a spinlock for every inode (sleeping in atomic context)',
    reason: `dmemfs_create_dmemfs_inode() (32/37), called from dmemfs_alloc_inode() for the root at
      mount and for every file created, takes the spinlock dmemfs_inode_lock and then kmalloc()s
      with GFP_NOIO, which may sleep in reclaim. Only the debug variant sees it
      (DEBUG_ATOMIC_SLEEP); a plain kernel would sleep there under memory pressure.`,
    variant: 'debug',
    // debug-checks takes it on a fresh kernel every debug run: a fix shows as "no longer reproduces".
    measurements: { mount_create_reports: atLeast(1) },
    report: {
      kinds: ['sanitizer'],
      title: /^BUG: sleeping function called from invalid context at \S*mm\/slab\.h:\d+/,
      // The allocation under the lock (the held-locks list is gone once lockdep has reported once).
      excerpt: /kmem_cache_alloc\w*\+[\s\S]*dmemfs_alloc_inode\+/,
    },
  },
  {
    id: 'dmemfs-i-pages-lock-irq-unsafe',
    scenario: '*',
    seen: true,
    title: 'dmemfs takes the i_pages lock with interrupts on, which the page cache takes from interrupts (lockdep)',
    reason: `radix_get_create_entry() (05/37) stores its entries with xa_store(&mapping->i_pages, ...),
      a plain spin_lock of the address space's i_pages lock; the page cache takes that lock class in
      hard interrupt context (end_page_writeback), so every user must disable interrupts
      (xa_lock_irq). Lockdep: "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage".`,
    variant: 'debug',
    // debug-checks takes it on a fresh kernel every debug run: a fix shows as "no longer reproduces".
    measurements: { first_fault_4k_reports: atLeast(1) },
    report: {
      kinds: ['warning'],
      title: /^WARNING: inconsistent lock state/,
      excerpt: /IN-HARDIRQ-W[\s\S]*xa_lock[\s\S]*xa_store\+[\s\S]*radix_get_create_entry\+/,
    },
  },
  {
    id: 'dmemfs-fault-sleeps-under-rcu',
    scenario: '*',
    seen: true,
    title: 'a dmemfs fault allocates page tables inside an RCU read-side section (may sleep there)',
    reason: `radix_get_create_entry() (05/37) returns a found entry with rcu_read_lock() still held
      (radix_put_entry() drops it after the insert), so vmf_insert_pfn*() allocates page tables,
      which may sleep, inside the RCU read-side section. Lockdep says "Illegal context switch in
      RCU read-side critical section"; once lockdep has turned itself off, DEBUG_ATOMIC_SLEEP
      says "sleeping function called from invalid context" in the page allocator.`,
    variant: 'debug',
    // debug-checks takes it on a fresh kernel every debug run: a fix shows as "no longer reproduces".
    measurements: { first_fault_4k_reports: atLeast(1) },
    report: {
      kinds: ['warning', 'sanitizer'],
      title:
        /^(WARNING: suspicious RCU usage|BUG: sleeping function called from invalid context at \S*mm\/page_alloc\.c:\d+)/,
      excerpt:
        /Illegal context switch in RCU read-side critical section[\s\S]*radix_get_create_entry|pte_alloc_one\+[\s\S]*vmf_insert_pfn\w*\+[\s\S]*(__dmemfs_fault|dmemfs_huge_fault)\+/,
    },
  },
  {
    id: 'dmemfs-4k-fault-retry-relocks-mmap',
    scenario: '*',
    seen: true,
    title: 'the 4K fault that cannot be served takes mmap_lock again while holding it (lockdep: recursive locking)',
    reason: `the -EINVAL that __dmemfs_fault() returns as a vm_fault_t (dmemfs-4k-fault-error-spins)
      carries VM_FAULT_RETRY without the fault having dropped mmap_lock, so do_user_addr_fault()
      takes it again: a recursive down_read that deadlocks as soon as a writer waits in between.`,
    variant: 'debug',
    // debug-checks takes it on a fresh kernel every debug run: a fix shows as "no longer reproduces".
    measurements: { unservable_fault_4k_reports: atLeast(1) },
    report: {
      kinds: ['warning'],
      title: /^WARNING: possible recursive locking detected/,
      excerpt: /mmap_lock[\s\S]*do_user_addr_fault[\s\S]*DEADLOCK/,
    },
  },
];

/** The signatures of one scenario (its own, and those of every scenario) on a kernel variant. */
export function signaturesFor(scenario: string, variant?: 'debug'): Signature[] {
  return SIGNATURES.filter(
    (s) => (s.scenario === scenario || s.scenario === '*') && (s.variant === undefined || s.variant === variant),
  );
}
