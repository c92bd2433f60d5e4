/**
 * Known failures of the series (not of the rig), with the evidence that identifies them. A
 * scenario that meets one records it as a known failure instead of failing the suite.
 */
import { RigError } from '../core/errors.js';

export const KNOWN_FAILURES = {
  mceSetMemoryUc: {
    match: /memtype_reserve/,
    reason:
      'after "MCE <pfn>: handled by dmem", memory_failure() has returned 0, so x86\'s uc_decode_notifier calls set_mce_nospec() -> set_memory_uc() on the dmem pfn, and memtype_reserve() WARNs (arch/x86/mm/pat/memtype.c:519): the series does not keep dmem pages out of that path',
  },
  mceNoSignal: {
    match: /timeout/,
    reason:
      'the process mapping the poisoned dmem page gets no SIGBUS, with the default vm.memory_failure_early_kill=0 and with early kill on, although "MCE <pfn>: handled by dmem" is logged for its page and the page leaves the pool; the mapping stays and the process keeps reading it. The hugetlbfs control in the same boot gets SIGBUS BUS_MCEERR_AR. The dmem path only calls collect_procs_and_signal_inode() (early-kill collection) and never unmaps; why it collects nobody with early kill on was not determined',
  },
  kvmDmem4k: {
    match: /largepages/,
    reason:
      'KVM maps a dmemfs-backed guest with 4K NPT/EPT entries: 22/37 ("Distinguish dmemfs page from mmio page") adds is_dmem_pfn() but only an #include to arch/x86/kvm/mmu/mmu.c, so kvm_is_reserved_pfn() still calls a dmem pfn (no struct page, pfn_valid() false) reserved and kvm_mmu_hugepage_adjust() keeps it at 4K. Same L1 kernel, same L2: device-dax and hugetlbfs backing get tens of large pages (l2-alternatives)',
  },
  vfioGetDmemPfn: {
    match: /get_dmem_pfn/,
    reason:
      'the kernel oopses when VFIO pins a dmem page: get_dmem_pfn() (RFC V2 35/37) calls find_dmem_region(PFN_PHYS(pfn), NULL), and find_dmem_region() (03/37) always stores through that pointer (*pdnode = dnode): a NULL pointer write in vaddr_get_pfns -> get_dmem_pfn',
  },
} as const;

/** A guest crash whose console excerpt identifies a known failure of the series. */
export function knownCrash(e: unknown, known: { match: RegExp }): RigError | undefined {
  return e instanceof RigError && e.kind.startsWith('kernel-') && known.match.test(e.evidence ?? '') ? e : undefined;
}
