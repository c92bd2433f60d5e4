/**
 * Mutants: deliberate changes to the series (named edits, kernel/edits.ts) that a faithful rig
 * must notice. Each names the scenario and the measurement it must change; every other
 * scenario's verdict must stay as it was. A mutant that fixes a known failure must come out as
 * "no longer reproduces". `dmemfs-rig mutants` runs them; npm test runs the `inTest` ones.
 */
import type { EditName } from '../kernel/edits.js';
import type { ScenarioId } from './catalog.js';

export interface Mutant {
  edit: EditName;
  scenario: ScenarioId;
  measurement: string;
  /** breaks: the measurement must stop passing; fixes: the named signature must stop reproducing. */
  effect: 'breaks' | 'fixes';
  signature?: string;
  /** Other measurements of the same scenario that change with it (a crash takes its neighbours along). */
  alsoChanges?: string[];
  /** Which check this mutant proves can fail. */
  proves: string;
  /** Part of npm test's subset. */
  inTest?: boolean;
}

export const MUTANTS: Mutant[] = [
  {
    edit: 'dmemfs-1g-maps-at-2m',
    scenario: 'dmemfs-files',
    measurement: 'faults_1G',
    effect: 'breaks',
    proves: 'the mapping size is measured by faults: a 1G dpage mapped 2M at a time is 512 faults, not 1',
  },
  {
    edit: 'dmemfs-1g-leaks-on-truncate',
    scenario: 'dmemfs-files',
    measurement: 'free_dpages_restored_1G',
    effect: 'breaks',
    proves: "the pool's accounting is checked after unlink: a dpage that is never given back is seen",
    inTest: true,
  },
  {
    edit: 'dmemfs-1g-write-fault-bug',
    scenario: 'dmemfs-files',
    measurement: 'data_verified_1G',
    effect: 'breaks',
    alsoChanges: ['faults_1G', 'dpages_used_1G', 'free_dpages_restored_1G', 'smaps_kernel_page_kb_1G'],
    proves: 'a kernel BUG in a path that passes today fails the scenario, with the report as evidence',
  },
  {
    edit: 'get_dmem_pfn-pdnode',
    scenario: 'vfio-pin',
    measurement: 'map_dma',
    effect: 'fixes',
    signature: 'vfio-get-dmem-pfn-null',
    proves: 'a fixed known failure is reported as "no longer reproduces", not as a silent pass',
    inTest: true,
  },
];
