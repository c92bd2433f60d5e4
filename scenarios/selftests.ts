/**
 * The kernel's own mm selftests (tools/testing/selftests/vm of the tree under test) as data:
 * which program runs with which arguments, as run_vmtests runs them in 5.10, with the bound each
 * gets; the runs pointed at a dmemfs mount beside their usual target; and the outcome each is
 * held to on the baseline kernel, on the series, and on dmemfs, with why. An outcome is
 * `pass`, `skip: REASON`, `fail: REASON`, `timeout: STATE` or `report: TITLE` (a kernel
 * report while it ran); REASON is a label of EXPLAINED where one matches the test's output, and
 * the output's last line where none does (so an outcome nobody has explained fails its check).
 */
import type { SelftestTarget, SELFTEST_SCRIPTS } from '../kernel/selftests.js';

export interface SelftestCase {
  /** Measurement stem: `<id>_baseline`, `<id>_series` (and `<id>_dmemfs` for DMEMFS_CASES). */
  id: string;
  program: SelftestTarget | (typeof SELFTEST_SCRIPTS)[number];
  /** Its arguments; `{mnt}` is the mount it is pointed at (hugetlbfs, or dmemfs in DMEMFS_CASES). */
  args: string[];
  /** Run in the directory holding the mount as `huge` (hugepage-mmap opens huge/hugepagefile). */
  inMountParent?: boolean;
  /** As the unprivileged user (run_vmtests: `sudo -u nobody`). */
  unprivileged?: boolean;
  /** sysctls set before it runs and restored after (run_vmtests sets shmmax and shmall for hugepage-shm). */
  sysctls?: Record<string, string>;
  /** Seconds it may run (times the guest's timeout scale). */
  maxS: number;
  /** Why its arguments are not run_vmtests' own, where they are not. */
  why?: string;
  /** The outcome on the baseline kernel, in this rig's boot. The series is held to the same. */
  baseline: string;
  /** Where the series' outcome is not the baseline's, what it is and why (a finding, or an explanation). */
  series?: { outcome: string; because: string };
  /** Why the baseline's outcome is what it is, when it is not a pass. */
  because?: string;
}

/** A run pointed at a dmemfs mount (2M pages) instead of its hugetlbfs one: on the series only. */
export interface DmemfsCase extends Omit<SelftestCase, 'baseline' | 'series'> {
  /** The outcome on dmemfs, and what in dmemfs makes it so. */
  dmemfs: string;
  because: string;
}

/** Output patterns and the label an outcome carries for them: the reasons, said once. */
export const EXPLAINED: ReadonlyArray<{ pattern: RegExp; label: string }> = [
  { pattern: /userfaultfd syscall not available/, label: 'no userfaultfd syscall (CONFIG_USERFAULTFD is off)' },
  { pattern: /gup_benchmark: No such file or directory|open.*gup_benchmark/, label: 'no gup_benchmark in debugfs' },
  { pattern: /Killed by SIGBUS|Bus error/, label: 'SIGBUS' },
];

/** The hugetlbfs mount of the runs, and where it is (hugepage-mmap wants it as ./huge). */
export const HUGE_PARENT = '/run/selftests';
export const HUGE_MNT = `${HUGE_PARENT}/huge`;

export const SELFTESTS: readonly SelftestCase[] = [
  { id: 'hugepage_mmap', program: 'hugepage-mmap', args: [], inMountParent: true, maxS: 60, baseline: 'pass' },
  {
    id: 'hugepage_shm',
    program: 'hugepage-shm',
    args: [],
    sysctls: { 'kernel.shmmax': '268435456', 'kernel.shmall': '4194304' },
    maxS: 60,
    baseline: 'pass',
  },
  { id: 'map_hugetlb', program: 'map_hugetlb', args: [], maxS: 60, baseline: 'pass' },
  { id: 'map_fixed_noreplace', program: 'map_fixed_noreplace', args: [], maxS: 30, baseline: 'pass' },
  { id: 'gup_benchmark_U', program: 'gup_benchmark', args: ['-U'], maxS: 60, baseline: 'pass' },
  { id: 'gup_benchmark_b', program: 'gup_benchmark', args: ['-b'], maxS: 60, baseline: 'pass' },
  {
    id: 'userfaultfd_anon',
    program: 'userfaultfd',
    args: ['anon', '16', '8'],
    why: 'run_vmtests: anon 128 32; 16 MiB and 8 bounces keep it to seconds under TCG',
    maxS: 120,
    baseline: 'pass',
  },
  {
    id: 'userfaultfd_hugetlb',
    program: 'userfaultfd',
    args: ['hugetlb', '128', '8', '{mnt}/ufd_test_file'],
    why: 'run_vmtests: 32 bounces; 128 MiB is its size for 2 CPUs',
    maxS: 120,
    baseline: 'pass',
  },
  {
    id: 'userfaultfd_shmem',
    program: 'userfaultfd',
    args: ['shmem', '16', '8'],
    why: 'run_vmtests: shmem 128 32',
    maxS: 120,
    baseline: 'pass',
  },
  { id: 'compaction_test', program: 'compaction_test', args: [], maxS: 180, baseline: 'pass' },
  { id: 'on_fault_limit', program: 'on-fault-limit', args: [], unprivileged: true, maxS: 30, baseline: 'pass' },
  { id: 'map_populate', program: 'map_populate', args: [], maxS: 30, baseline: 'pass' },
  { id: 'mlock_random_test', program: 'mlock-random-test', args: [], maxS: 60, baseline: 'pass' },
  { id: 'mlock2_tests', program: 'mlock2-tests', args: [], maxS: 60, baseline: 'pass' },
  { id: 'thuge_gen', program: 'thuge-gen', args: [], maxS: 60, baseline: 'pass' },
  { id: 'virtual_address_range', program: 'virtual_address_range', args: [], maxS: 120, baseline: 'pass' },
  { id: 'va_128TBswitch', program: 'va_128TBswitch', args: [], maxS: 60, baseline: 'pass' },
  { id: 'test_vmalloc', program: 'test_vmalloc.sh', args: ['smoke'], maxS: 120, baseline: 'pass' },
  { id: 'mremap_dontunmap', program: 'mremap_dontunmap', args: [], maxS: 60, baseline: 'pass' },
  { id: 'test_hmm', program: 'test_hmm.sh', args: ['smoke'], maxS: 60, baseline: 'pass' },
  {
    id: 'write_to_hugetlbfs',
    program: 'write_to_hugetlbfs',
    args: ['-p', '{mnt}/write_test', '-s', '4194304', '-m', '0', '-o', '-w'],
    why: 'not in run_vmtests (charge_reserved_hugetlb.sh runs it): 4 MiB written through a shared mapping',
    maxS: 60,
    baseline: 'pass',
  },
];

/** The path-taking tests pointed at a dmemfs mount (pagesize=2M) where their hugetlbfs one was. */
export const DMEMFS_CASES: readonly DmemfsCase[] = [
  {
    id: 'hugepage_mmap',
    program: 'hugepage-mmap',
    args: [],
    inMountParent: true,
    maxS: 60,
    dmemfs: 'pass',
    because: '',
  },
  {
    id: 'userfaultfd_hugetlb_shared',
    program: 'userfaultfd',
    args: ['hugetlb_shared', '128', '8', '{mnt}/ufd_test_file'],
    maxS: 120,
    dmemfs: 'pass',
    because: '',
  },
  {
    id: 'write_to_hugetlbfs',
    program: 'write_to_hugetlbfs',
    args: ['-p', '{mnt}/write_test', '-s', '4194304', '-m', '0', '-o', '-w'],
    maxS: 60,
    dmemfs: 'pass',
    because: '',
  },
];

/** The outcome of a finished run: pass, skip (kselftest's 4), or fail, with its reason. */
export function outcomeOf(code: number, output: string): string {
  if (code === 0) return 'pass';
  const label = EXPLAINED.find((e) => e.pattern.test(output))?.label;
  const last =
    output
      .trim()
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1)
      ?.slice(0, 120) ?? '(no output)';
  const signal = code > 128 && code < 160 ? `killed by signal ${code - 128}` : undefined;
  const reason = label ?? signal ?? `exit ${code}: ${last}`;
  return code === 4 ? `skip: ${reason}` : `fail: ${reason}`;
}

/** The command line of a case: its program in `dir`, `{mnt}` replaced by the mount. */
export function caseArgv(
  c: Pick<SelftestCase, 'program' | 'args' | 'unprivileged'>,
  dir: string,
  mnt: string,
): string[] {
  const argv = [`${dir}/${c.program}`, ...c.args.map((a) => a.replaceAll('{mnt}', mnt))];
  return c.unprivileged ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv;
}
