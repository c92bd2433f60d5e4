/**
 * Named changes to a series, as data: in patch N, one line the patch adds and its replacement
 * (kernel/patch-edit.ts). `run --edit NAME` builds and runs the series with the change; the
 * bench's one-patch rebuild uses one. A local fix of a finding is added here, never as a copied
 * patch.
 */
import { RigError } from '../core/errors.js';
import type { PatchEdit } from './patch-edit.js';

export const EDITS = {
  /**
   * The fix of the VFIO oops (known failure vfio-get-dmem-pfn-null): get_dmem_pfn() (35/37)
   * passes NULL for the node pointer that find_dmem_region() always stores through; a
   * compound literal gives it somewhere to store.
   */
  'get_dmem_pfn-pdnode': {
    name: 'get_dmem_pfn-pdnode',
    patch: 35,
    find: 'find_dmem_region(PFN_PHYS(pfn), NULL)',
    replace: 'find_dmem_region(PFN_PHYS(pfn), &(struct dmem_node *){ NULL })',
  },
  /**
   * Mutant: 1G dpages are no longer mapped by a PUD. __dmemfs_huge_fault() (28/37) falls back
   * for them too, so the PMD fault maps a 1G dpage 2M at a time (512 faults instead of 1).
   */
  'dmemfs-1g-maps-at-2m': {
    name: 'dmemfs-1g-maps-at-2m',
    patch: 28,
    find: 'if (dmem_page_size(inode) < PUD_SIZE)',
    replace: 'if (dmem_page_size(inode) <= PUD_SIZE)',
  },
  /** Mutant: truncation (05/37) gives 4K and 2M dpages back to the pool, but not 1G ones. */
  'dmemfs-1g-leaks-on-truncate': {
    name: 'dmemfs-1g-leaks-on-truncate',
    patch: 5,
    find: 'dmem_free_page(addr);',
    replace: 'if (inode->i_sb->s_blocksize != PUD_SIZE) dmem_free_page(addr);',
  },
  /** Mutant: a BUG in the PUD fault (28/37) of a writable mapping: a new crash where 1G mappings pass. */
  'dmemfs-1g-write-fault-bug': {
    name: 'dmemfs-1g-write-fault-bug',
    patch: 28,
    find: 'ret = vmf_insert_pfn_pud(vmf, pfn, !!(vma->vm_flags & VM_WRITE));',
    replace: 'BUG_ON(vma->vm_flags & VM_WRITE); ret = vmf_insert_pfn_pud(vmf, pfn, !!(vma->vm_flags & VM_WRITE));',
  },
  // Breaking mutants: the series made subtly wrong where a scenario holds a claim about it.
  /** Mutant: dmem_region_register() (02/37) counts one page too many per region in registered_pages. */
  'dmem-registered-pages-off-by-one': {
    name: 'dmem-registered-pages-off-by-one',
    patch: 2,
    find: '__phys_to_pfn(start);',
    replace: '__phys_to_pfn(start) + 1;',
  },
  /** Mutant: check_dmem_param() (02/37) no longer refuses "!" with @addr: dmem=!1G@4G reserves [4G, 5G). */
  'dmem-param-keep-with-addr-accepted': {
    name: 'dmem-param-keep-with-addr-accepted',
    patch: 2,
    find: 'if (resv_kernel && base) {',
    replace: 'if (resv_kernel && (base & (align - 1))) {',
  },
  /** Mutant: dmem's MPOL_PREFERRED (12/37) takes the local node instead of the preferred one. */
  'dmem-preferred-takes-local-node': {
    name: 'dmem-preferred-takes-local-node',
    patch: 12,
    find: 'nd = policy->v.preferred_node;',
    replace: 'nd = numa_node_id();',
  },
  /** Mutant: dmem's MPOL_BIND (12/37) has no node mask: past the bound node's pool it falls back. */
  'dmem-membind-not-enforced': {
    name: 'dmem-membind-not-enforced',
    patch: 12,
    find: 'return &policy->v.nodes;',
    replace: 'return NULL;',
  },
  /** Mutant: freeing dpages (35/37) gives them back to the pool's count but not to their node's. */
  'dmem-node-free-count-not-restored': {
    name: 'dmem-node-free-count-not-restored',
    patch: 35,
    find: 'dnode_count_free_dpages(pdnode, dpages_nr - err_dpages);',
    replace: 'dmem_pool.free_dpages += dpages_nr - err_dpages;',
  },
  /** Mutant: KVM (21/37) cannot resolve a dmem page mapped by a PMD: the L2's first access fails. */
  'kvm-dmem-pmd-unresolved': {
    name: 'kvm-dmem-pmd-unresolved',
    patch: 21,
    find: 'if (write_fault && !write) {',
    replace: 'if (pmdp) { pfn = KVM_PFN_ERR_FAULT; goto out; } if (write_fault && !write) {',
  },
  /** Mutant: dmem= aimed at a hole (02/37) says so in other words. */
  'dmem-holes-message-reworded': {
    name: 'dmem-holes-message-reworded',
    patch: 2,
    find: 'not reserved for dmem due to holes',
    replace: 'not reserved for dmem because of holes',
  },
  /** Mutant: a dmem MCE (31/37) no longer marks the page in the error bitmap: unlink gives it back. */
  'dmem-mce-page-not-kept': {
    name: 'dmem-mce-page-not-kept',
    patch: 31,
    find: 'if (__test_and_set_bit(pos, dregion->error_bitmap))',
    replace: 'if (test_bit(pos, dregion->error_bitmap))',
  },
  /** Mutant: dmem_alloc_init() (03/37) lets a mount with another page size share a busy pool. */
  'dmem-other-pagesize-not-busy': {
    name: 'dmem-other-pagesize-not-busy',
    patch: 3,
    find: 'ret = -EBUSY;',
    replace: 'ret = 0;',
  },
  /** Mutant: dmem_alloc_pages_nodemask() (03/37) serves no node outside the mask: the test module's node test fails. */
  'dmem-nodemask-refused': {
    name: 'dmem-nodemask-refused',
    patch: 3,
    find: 'if (nid >= sizeof(ARRAY_SIZE(dmem_pool.nodes)))',
    replace: 'if (nid >= sizeof(ARRAY_SIZE(dmem_pool.nodes)) || (nodemask && !node_isset(nid, *nodemask)))',
  },
  // Fixing mutants: a known failure of the series fixed in a line.
  /** Fix: a 4K fault that cannot be served (05/37) gets SIGBUS instead of a vm_fault_t made of -EINVAL. */
  'dmemfs-4k-fault-sigbus': {
    name: 'dmemfs-4k-fault-sigbus',
    patch: 5,
    find: 'ret = PTR_ERR(entry);',
    replace: 'ret = VM_FAULT_SIGBUS;',
  },
  /**
   * Fix: radix_get_create_entry() (05/37) inserts its entry only where there is none; the loser of
   * a race frees its dpages (the existing -EEXIST path) and takes the winner's.
   */
  'dmemfs-racing-fault-xa-insert': {
    name: 'dmemfs-racing-fault-xa-insert',
    patch: 5,
    find: 'entry = xa_store(&mapping->i_pages, index, entry, gfp_masks);',
    replace:
      'ret = xa_insert(&mapping->i_pages, index, entry, gfp_masks); if (ret == -EBUSY) ret = -EEXIST; ' +
      'entry = ret ? XA_ERROR(ret) : NULL;',
  },
  /** Fix: radix_get_create_entry() (05/37) zeroes the dpages it hands out. */
  'dmemfs-dpages-zeroed': {
    name: 'dmemfs-dpages-zeroed',
    patch: 5,
    find: 'try_dpages = dpages;',
    replace: 'try_dpages = dpages; memset(__va(addr), 0, (size_t)dpages << inode->i_sb->s_blocksize_bits);',
  },
  /** Fix: memory_failure() (31/37) returns -EBUSY for a dmem page, so set_memory_uc() is not called on it. */
  'dmem-mce-not-uc': {
    name: 'dmem-mce-not-uc',
    patch: 31,
    find: 'return 0;',
    replace: 'return -EBUSY;',
  },
  /** Partial fix: the dmem MCE path (32/37) always kills the processes it collects (early kill then signals). */
  'dmem-mce-force-kill': {
    name: 'dmem-mce-force-kill',
    patch: 32,
    find: 'forcekill = flags & MF_MUST_KILL;',
    replace: 'forcekill = 1;',
  },
  /** Fix (debug variant): dmemfs_create_dmemfs_inode() (32/37) allocates without sleeping under its spinlock. */
  'dmemfs-inode-alloc-atomic': {
    name: 'dmemfs-inode-alloc-atomic',
    patch: 32,
    find: 'kmalloc(sizeof(struct dmemfs_inode), GFP_NOIO)',
    replace: 'kmalloc(sizeof(struct dmemfs_inode), GFP_ATOMIC)',
  },
} satisfies Record<string, PatchEdit>;

export type EditName = keyof typeof EDITS;

/** The edits by name, in order; an unknown name is an error listing the known ones. */
export function namedEdits(names: readonly string[]): PatchEdit[] {
  return names.map((n) => {
    const e = (EDITS as Record<string, PatchEdit>)[n];
    if (!e)
      throw new RigError('unknown-edit', `no edit named "${n}"`, {
        fix: `known: ${Object.keys(EDITS).join(', ')} (kernel/edits.ts)`,
      });
    return e;
  });
}

/** The name of a series with edits: rfc-v2-on-debian-5.10.223+get_dmem_pfn-pdnode. */
export const editedName = (series: string, edits: readonly PatchEdit[]) =>
  [series, ...edits.map((e) => e.name)].join('+');
