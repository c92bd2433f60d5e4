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
