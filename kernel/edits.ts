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
