/**
 * Mutants: deliberate changes to the series (named edits, kernel/edits.ts) that a faithful rig
 * must notice. Each names the scenario and the measurement it must change; every other
 * scenario's verdict must stay as it was. A mutant that fixes a known failure must come out as
 * "no longer reproduces". `dmemfs-rig mutants` runs them; npm test runs the `inTest` ones.
 */
import type { EditName } from '../kernel/edits.js';
import type { MeasurementName, ScenarioId } from './catalog.js';

export interface Mutant {
  edit: EditName;
  scenario: ScenarioId;
  measurement: string;
  /** breaks: the measurement must stop passing; fixes: the named signature must stop reproducing in it. */
  effect: 'breaks' | 'fixes';
  signature?: string;
  /** Other measurements of the same scenario that change with it (a crash takes its neighbours along). */
  alsoChanges?: string[];
  /** Which check this mutant proves can fail. */
  proves: string;
  /** Part of npm test's subset. */
  inTest?: boolean;
  /** Only on this kernel variant (its scenario's checks exist nowhere else). */
  variant?: 'debug';
}

/**
 * A mutant of `scenario`: its measurement names (the one it changes, and those that change with
 * it) are checked by the compiler against the scenario's own, as signatureOf does for signatures.
 */
export function mutantOf<I extends ScenarioId>(
  scenario: I,
  m: Omit<Mutant, 'scenario' | 'measurement' | 'alsoChanges'> & {
    measurement: MeasurementName<I>;
    alsoChanges?: MeasurementName<I>[];
  },
): Mutant {
  return { ...m, scenario };
}

export const MUTANTS: Mutant[] = [
  mutantOf('dmemfs-files', {
    edit: 'dmemfs-1g-maps-at-2m',
    measurement: 'faults_1G',
    effect: 'breaks',
    proves: 'the mapping size is measured by faults: a 1G dpage mapped 2M at a time is 512 faults, not 1',
  }),
  mutantOf('dmemfs-files', {
    edit: 'dmemfs-1g-leaks-on-truncate',
    measurement: 'free_dpages_restored_1G',
    effect: 'breaks',
    proves: "the pool's accounting is checked after unlink: a dpage that is never given back is seen",
    inTest: true,
  }),
  mutantOf('dmemfs-files', {
    edit: 'dmemfs-1g-write-fault-bug',
    measurement: 'data_verified_1G',
    effect: 'breaks',
    alsoChanges: ['faults_1G', 'dpages_used_1G', 'free_dpages_restored_1G', 'smaps_kernel_page_kb_1G'],
    proves: 'a kernel BUG in a path that passes today fails the scenario, with the report as evidence',
  }),
  mutantOf('reservation', {
    edit: 'dmem-registered-pages-off-by-one',
    measurement: 'registered_kb',
    effect: 'breaks',
    proves: 'debugfs registered_pages is held to the exact reservation: one page too many per region is seen',
  }),
  mutantOf('reservation-bad-values', {
    edit: 'dmem-param-keep-with-addr-accepted',
    measurement: 'kernel_rejected_with_message',
    effect: 'breaks',
    alsoChanges: ['regions_registered', 'dmem_lines_in_log'],
    proves: 'each bad dmem= value must be refused by the kernel itself: "!" with @addr accepted is seen',
  }),
  mutantOf('dmemfs-numa', {
    edit: 'dmem-preferred-takes-local-node',
    measurement: 'preferred_0_node0_dpages',
    effect: 'breaks',
    alsoChanges: [
      'preferred_0_node1_dpages',
      'preferred_0_paddr_node',
      'preferred_1_node0_dpages',
      'preferred_1_node1_dpages',
      'preferred_1_paddr_node',
      'preferred_overflow_node0_dpages',
      'preferred_overflow_node1_dpages',
    ],
    proves: 'MPOL_PREFERRED is measured from a CPU of the other node: "preferred" and "local" give different nodes',
  }),
  mutantOf('dmemfs-numa', {
    edit: 'dmem-membind-not-enforced',
    measurement: 'membind_overflow_exit',
    effect: 'breaks',
    proves: 'MPOL_BIND past its node is held to SIGBUS (exit 135), not to "any non-zero exit"',
  }),
  mutantOf('dmemfs-numa', {
    edit: 'dmem-node-free-count-not-restored',
    measurement: 'node1_free_dpages_restored',
    effect: 'breaks',
    // Every later count of node 1's free dpages starts from the wrong one.
    alsoChanges: ['node0_free_dpages_restored', 'preferred_overflow_node1_dpages'],
    proves: "each node's free dpages are checked after unlink, not only the pool's total",
  }),
  mutantOf('nested-guest', {
    edit: 'kvm-dmem-pmd-unresolved',
    measurement: 'l2_done',
    effect: 'breaks',
    // The scenario stops at the L2 that never finished: what it measures after it is not taken.
    alsoChanges: [
      'l2_memtotal_kb',
      'l2_touched_mib',
      'kvm_largepages',
      'l2_attempts',
      'l2_seconds',
      'node1_dpages_used',
      'node0_dpages_used',
      'free_dpages_restored',
    ],
    proves: 'an L2 that KVM cannot run from its dmemfs RAM fails the scenario, with its console as evidence',
  }),
  mutantOf('hot-unplug-dimm', {
    edit: 'dmem-holes-message-reworded',
    measurement: 'dmem_at_dimm_kernel_message',
    effect: 'breaks',
    proves: "dmem= aimed at a DIMM is held to the kernel's own refusal, by its words",
  }),
  mutantOf('mce-dmemfs', {
    edit: 'dmem-mce-page-not-kept',
    measurement: 'free_dpages_after_unlink_delta',
    effect: 'breaks',
    proves: 'a poisoned dpage must leave the pool for good: one handed out again after unlink is seen',
  }),
  mutantOf('pool-boundaries', {
    edit: 'dmem-other-pagesize-not-busy',
    measurement: 'second_mount_other_size_dmemfs_2M',
    effect: 'breaks',
    alsoChanges: ['second_mount_other_size_dmemfs_4K', 'second_mount_other_size_dmemfs_1G'],
    proves: 'a mount with another page size while the pool is busy is held to EBUSY, by its errno',
  }),
  mutantOf('dmem-test-module', {
    edit: 'dmem-nodemask-refused',
    measurement: 'verdict',
    effect: 'breaks',
    alsoChanges: ['insmod', 'node_test_exhausted_node0'],
    proves: "the series' own test module is judged by what it prints: its node test failing is seen",
  }),
  mutantOf('vfio-pin', {
    edit: 'get_dmem_pfn-pdnode',
    measurement: 'map_dma',
    effect: 'fixes',
    signature: 'vfio-get-dmem-pfn-null',
    proves: 'a fixed known failure is reported as "no longer reproduces", not as a silent pass',
    inTest: true,
  }),
  mutantOf('pool-boundaries', {
    edit: 'dmemfs-4k-fault-sigbus',
    measurement: 'no_pool_fill_dmemfs_4K',
    effect: 'fixes',
    signature: 'dmemfs-4k-fault-error-spins',
    proves: 'the 4K spin is judged case by case: with SIGBUS returned, every case it named comes out fixed',
  }),
  mutantOf('pool-boundaries', {
    edit: 'dmemfs-racing-fault-xa-insert',
    measurement: 'threads_pages_used_dmemfs_4K',
    effect: 'fixes',
    signature: 'dmemfs-racing-faults-double-allocate',
    proves: 'a fixed race is called fixed only after the tries its rate needs, all clean',
  }),
  mutantOf('pool-boundaries', {
    edit: 'dmemfs-dpages-zeroed',
    measurement: 'shrink_after_grow_dmemfs_2M',
    effect: 'fixes',
    signature: 'dmemfs-new-file-reads-old-data',
    proves: 'stale data is told from zeroed data by what the helper reads back',
  }),
  mutantOf('mce-dmemfs', {
    edit: 'dmem-mce-not-uc',
    measurement: 'kernel_warnings_after_mce',
    effect: 'fixes',
    signature: 'mce-dmem-set-memory-uc-warning',
    proves: 'the WARNING after a dmem MCE is counted: without set_memory_uc() on a dmem pfn it is gone',
  }),
  mutantOf('mce-dmemfs', {
    edit: 'dmem-mce-force-kill',
    measurement: 'sigbus_early_kill',
    effect: 'fixes',
    signature: 'mce-dmem-no-sigbus',
    alsoChanges: ['si_code_early_kill', 'si_addr_matches_page', 'si_addr_lsb'],
    proves:
      'a signature is judged measurement by measurement: early kill cured while the default sysctl still ' +
      'gets no SIGBUS reads "no longer reproduces" for the one and the known failure for the other',
  }),
  mutantOf('debug-checks', {
    edit: 'dmemfs-inode-alloc-atomic',
    measurement: 'mount_create_reports',
    effect: 'fixes',
    signature: 'dmemfs-inode-alloc-sleeps-under-spinlock',
    variant: 'debug',
    proves: 'a debug-kernel finding has a measurement that comes back clean when it is fixed',
  }),
];

/** What a mutants run found (runner/mutants.ts writes it; report/merge-mutants.ts merges shards of it). */
export interface MutantOutcome {
  edit: string;
  scenario: string;
  measurement: string;
  effect: Mutant['effect'];
  /** The named check on the reference and on the mutant. */
  reference: string;
  mutated: string;
  caught: boolean;
  /** Verdicts that changed and should not have: "scenario: pass -> fail" or "scenario/measurement: ok -> not ok". */
  collateral: string[];
  ok: boolean;
  /** Why the mutant could not be judged here: its scenario was skipped (on the reference or the mutant). */
  skipped?: string;
  proves: string;
  /** Changes left unjudged because a race decides them (scenarios/races.ts RACE_DEPENDENT). */
  byChance?: string[];
}

/** Per scenario: its held measurements (in the reference) and those some mutant was seen to break. */
export interface MutantCoverage {
  scenario: string;
  held: number;
  broken: string[];
  mutants: string[];
}

export interface MutantsResult {
  outcomes: MutantOutcome[];
  coverage: MutantCoverage[];
  seconds: number;
  /** A shard's result (mutants --shard K/N): which it is, and every shard's mutants (edit names). */
  shard?: { index: number; count: number; plan: string[][] };
}
