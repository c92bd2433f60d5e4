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

/**
 * Output patterns and the label an outcome carries for them (of one program, or any): the
 * reasons, said once.
 */
export const EXPLAINED: ReadonlyArray<{ program?: string; pattern: RegExp; label: string }> = [
  { pattern: /userfaultfd syscall not available/, label: 'no userfaultfd syscall (CONFIG_USERFAULTFD is off)' },
  {
    program: 'gup_benchmark',
    pattern: /^open: No such file or directory$/m,
    label: 'no /sys/kernel/debug/gup_benchmark (CONFIG_GUP_BENCHMARK is off)',
  },
  {
    program: 'va_128TBswitch',
    pattern: /mmap\(ADDR_SWITCH_HINT, 2 \* PAGE_SIZE, MAP_FIXED\): 0xffffffffffffffff - FAILED/,
    label: 'MAP_FIXED across 128 TiB refused: 4-level paging (the guest CPU has no la57)',
  },
  {
    program: 'test_vmalloc.sh',
    pattern: /CONFIG_TEST_VMALLOC=m/,
    label: 'no test_vmalloc module (CONFIG_TEST_VMALLOC)',
  },
  { program: 'test_hmm.sh', pattern: /CONFIG_TEST_HMM=m/, label: 'no test_hmm module (CONFIG_TEST_HMM)' },
  {
    program: 'userfaultfd',
    pattern: /mmap of hugetlbfs file failed: Invalid argument/,
    label: 'mmap(MAP_HUGETLB) of the file: EINVAL',
  },
];

/** Signals a test may die of, by number. */
const SIGNALS: Record<number, string> = { 6: 'SIGABRT', 7: 'SIGBUS', 9: 'SIGKILL', 11: 'SIGSEGV' };

/** The hugetlbfs mount of the runs, and where it is (hugepage-mmap wants it as ./huge). */
export const HUGE_PARENT = '/run/selftests';
export const HUGE_MNT = `${HUGE_PARENT}/huge`;

/** Why a test cannot run on the rig's kernels: an option of the selftests' config the profile does not set. */
const NOT_CONFIGURED = (opt: string) =>
  `the rig's kernel config (kernel/config/*.config, the same fragments on both kernels) does not set ${opt}, ` +
  'which tools/testing/selftests/vm/config asks for';

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
  {
    id: 'gup_benchmark_U',
    program: 'gup_benchmark',
    args: ['-U'],
    maxS: 60,
    baseline: 'fail: no /sys/kernel/debug/gup_benchmark (CONFIG_GUP_BENCHMARK is off)',
    because: NOT_CONFIGURED('CONFIG_GUP_BENCHMARK'),
  },
  {
    id: 'gup_benchmark_b',
    program: 'gup_benchmark',
    args: ['-b'],
    maxS: 60,
    baseline: 'fail: no /sys/kernel/debug/gup_benchmark (CONFIG_GUP_BENCHMARK is off)',
    because: NOT_CONFIGURED('CONFIG_GUP_BENCHMARK'),
  },
  {
    id: 'userfaultfd_anon',
    program: 'userfaultfd',
    args: ['anon', '16', '8'],
    why: 'run_vmtests: anon 128 32; 16 MiB and 8 bounces keep it to seconds under TCG',
    maxS: 120,
    baseline: 'fail: no userfaultfd syscall (CONFIG_USERFAULTFD is off)',
    because: NOT_CONFIGURED('CONFIG_USERFAULTFD'),
  },
  {
    id: 'userfaultfd_hugetlb',
    program: 'userfaultfd',
    args: ['hugetlb', '128', '8', '{mnt}/ufd_test_file'],
    why: 'run_vmtests: 32 bounces; 128 MiB is its size for 2 CPUs',
    maxS: 120,
    baseline: 'fail: no userfaultfd syscall (CONFIG_USERFAULTFD is off)',
    because: NOT_CONFIGURED('CONFIG_USERFAULTFD'),
  },
  {
    id: 'userfaultfd_shmem',
    program: 'userfaultfd',
    args: ['shmem', '16', '8'],
    why: 'run_vmtests: shmem 128 32',
    maxS: 120,
    baseline: 'fail: no userfaultfd syscall (CONFIG_USERFAULTFD is off)',
    because: NOT_CONFIGURED('CONFIG_USERFAULTFD'),
  },
  { id: 'compaction_test', program: 'compaction_test', args: [], maxS: 180, baseline: 'pass' },
  { id: 'on_fault_limit', program: 'on-fault-limit', args: [], unprivileged: true, maxS: 30, baseline: 'pass' },
  { id: 'map_populate', program: 'map_populate', args: [], maxS: 30, baseline: 'pass' },
  { id: 'mlock_random_test', program: 'mlock-random-test', args: [], maxS: 60, baseline: 'pass' },
  { id: 'mlock2_tests', program: 'mlock2-tests', args: [], maxS: 60, baseline: 'pass' },
  { id: 'thuge_gen', program: 'thuge-gen', args: [], maxS: 60, baseline: 'pass' },
  { id: 'virtual_address_range', program: 'virtual_address_range', args: [], maxS: 120, baseline: 'pass' },
  {
    id: 'va_128TBswitch',
    program: 'va_128TBswitch',
    args: [],
    maxS: 60,
    baseline: 'fail: MAP_FIXED across 128 TiB refused: 4-level paging (the guest CPU has no la57)',
    because:
      "5.10's test expects a MAP_FIXED mapping across the 128 TiB boundary to succeed, which needs 5-level " +
      'paging; the guest CPU (QEMU EPYC model) has no la57, so every 5.10 kernel fails it here',
  },
  {
    id: 'test_vmalloc',
    program: 'test_vmalloc.sh',
    args: ['smoke'],
    maxS: 120,
    baseline: 'skip: no test_vmalloc module (CONFIG_TEST_VMALLOC)',
    because: NOT_CONFIGURED('CONFIG_TEST_VMALLOC=m'),
  },
  { id: 'mremap_dontunmap', program: 'mremap_dontunmap', args: [], maxS: 60, baseline: 'pass' },
  {
    id: 'test_hmm',
    program: 'test_hmm.sh',
    args: ['smoke'],
    maxS: 60,
    baseline: 'skip: no test_hmm module (CONFIG_TEST_HMM)',
    because: NOT_CONFIGURED('CONFIG_TEST_HMM=m'),
  },
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
    dmemfs: 'fail: killed by SIGBUS',
    because:
      'it creates huge/hugepagefile, maps 256 MiB of it and writes: hugetlbfs sets the file size at mmap ' +
      '(hugetlbfs_file_mmap), dmemfs leaves it at 0 and faults nothing past EOF, so the first write is SIGBUS',
  },
  {
    id: 'userfaultfd_hugetlb_shared',
    program: 'userfaultfd',
    args: ['hugetlb_shared', '128', '8', '{mnt}/ufd_test_file'],
    maxS: 120,
    dmemfs: 'fail: mmap(MAP_HUGETLB) of the file: EINVAL',
    because:
      'the test maps its file with MAP_SHARED | MAP_HUGETLB, and mmap() refuses MAP_HUGETLB on any file that ' +
      'is not hugetlbfs (EINVAL) before userfaultfd is reached: it cannot be pointed at dmemfs as it is',
  },
  {
    id: 'write_to_hugetlbfs',
    program: 'write_to_hugetlbfs',
    args: ['-p', '{mnt}/write_test', '-s', '4194304', '-m', '0', '-o', '-w'],
    maxS: 60,
    dmemfs: 'fail: killed by SIGBUS',
    because:
      'it opens a new file (size 0), maps 4 MiB shared with MAP_POPULATE and writes: the populate fails quietly ' +
      'past EOF and the first write is SIGBUS on dmemfs, where hugetlbfs sized the file at mmap',
  },
];

/** The outcome of a finished run: pass, skip (kselftest's 4), or fail, with its reason. */
export function outcomeOf(code: number, output: string, program?: string): string {
  if (code === 0) return 'pass';
  const label = EXPLAINED.find((e) => (!e.program || e.program === program) && e.pattern.test(output))?.label;
  const last =
    output
      .trim()
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1)
      ?.slice(0, 120) ?? '(no output)';
  const n = code - 128;
  const signal = code > 128 && code < 160 ? `killed by ${SIGNALS[n] ?? `signal ${n}`}` : undefined;
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
