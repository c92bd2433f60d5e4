/**
 * Known failures of the series (not of the rig), as signatures: what each explains and what its
 * evidence must show. The judge (runner/judge.ts) claims a failure as known only when it
 * matches; a worse or different value is a fail, and a signature whose measurements pass again
 * "no longer reproduces". tests/fixtures/signatures/ holds each signature's real evidence and a
 * near miss that must not match.
 */
import { between, is } from '../core/results.js';
import { mce } from './defs/mce-dmemfs.js';
import { nestedGuest } from './defs/nested-guest.js';
import { vfioPin } from './defs/vfio-pin.js';
import { signatureOf, type Signature } from './types.js';

export const SIGNATURES: readonly Signature[] = [
  signatureOf(vfioPin, {
    id: 'vfio-get-dmem-pfn-null',
    title: 'the kernel oopses when VFIO pins a dmem page (NULL write in get_dmem_pfn)',
    reason: `get_dmem_pfn() (RFC V2 35/37) calls find_dmem_region(PFN_PHYS(pfn), NULL), and
      find_dmem_region() (03/37) always stores through that pointer (*pdnode = dnode): a NULL
      pointer write in vaddr_get_pfns -> get_dmem_pfn.`,
    measurements: { map_dma: 'any' },
    // A write fault at NULL with RIP in get_dmem_pfn, reached from VFIO's pinning path.
    report: {
      kinds: ['bug', 'oops'],
      title: /NULL pointer dereference/,
      excerpt: /#PF: supervisor write access[\s\S]*RIP: \S+:get_dmem_pfn\+[\s\S]*vaddr_get_pfns/,
    },
  }),
  signatureOf(mce, {
    id: 'mce-dmem-no-sigbus',
    title: 'the process mapping a poisoned dmem page gets no SIGBUS',
    reason: `with the default vm.memory_failure_early_kill=0 and with early kill on, although
      "MCE <pfn>: handled by dmem" is logged for its page and the page leaves the pool, the mapping
      stays and the process keeps reading it. The hugetlbfs control in the same boot gets SIGBUS
      BUS_MCEERR_AR. The dmem path only calls collect_procs_and_signal_inode() (early-kill
      collection) and never unmaps; why it collects nobody with early kill on was not determined.`,
    // The victim ran its whole 30/60 s and reported "timeout": no signal, and no crash either.
    measurements: { sigbus_default_sysctl: is('timeout'), sigbus_early_kill: is('timeout') },
  }),
  signatureOf(mce, {
    id: 'mce-dmem-set-memory-uc-warning',
    title: 'memtype_reserve() WARNs after a dmem MCE (set_memory_uc on a dmem pfn)',
    reason: `after "MCE <pfn>: handled by dmem", memory_failure() has returned 0, so x86's
      uc_decode_notifier calls set_mce_nospec() -> set_memory_uc() on the dmem pfn, and
      memtype_reserve() WARNs (arch/x86/mm/pat/memtype.c): the series does not keep dmem pages
      out of that path. One WARNING per poisoned page.`,
    measurements: { kernel_warnings_after_mce: between(1, 2) },
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
    // none (the counter unreadable, or every large page gone) is worse, and so is a null.
    measurements: { kvm_largepages: between(1, 8) },
  }),
];

/** The signatures of one scenario. */
export function signaturesFor(scenario: string): Signature[] {
  return SIGNATURES.filter((s) => s.scenario === scenario);
}
