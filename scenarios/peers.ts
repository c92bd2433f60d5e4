/**
 * Programs written by other people, run on dmemfs files, as data: Debian 12's memtester, fio and
 * stress-ng (in the L1 image), each pointed at a file of a dmemfs mount and, as the control, of
 * a hugetlbfs one; and trinity, the syscall fuzzer, with the files of a dmemfs mount as its
 * victims. Each run's outcome is held to what was seen here and why: `pass`, `fail: WHERE: WHY`
 * (the step and errno the tool names), `timeout: state S`, or `report: TITLE` (a kernel report).
 */

/** Where a peer case runs: a file of a mount, by file system and page size. */
export const PEER_TARGETS = ['dmemfs_4K', 'dmemfs_2M', 'hugetlbfs_2M'] as const;
export type PeerTarget = (typeof PEER_TARGETS)[number];

export const PEER_IDS = [
  'memtester',
  'fio_buffered',
  'fio_direct',
  'stress_stackmmap',
  'stress_tlb_shootdown',
] as const;
export type PeerId = (typeof PEER_IDS)[number];

export interface PeerCase {
  id: PeerId;
  /** The program and its arguments; `{file}` is the target file, `{dir}` its mount. */
  argv: string[];
  /** Size the file (truncate -s) before: memtester maps what is there; dmemfs faults nothing past EOF. */
  truncateMiB?: number;
  maxS: number;
  /** The outcome on each target it runs on, and why. A target not listed is not run. */
  outcomes: Partial<Record<PeerTarget, { outcome: string; because: string }>>;
}

/**
 * fio writing 8 MiB to a file of the L1's ext4 root with its buffers in a shared mapping of
 * {file}, in 2 MiB blocks: fio sizes the buffer file with ftruncate to one block, and a 2M file
 * system takes only sizes of whole pages.
 */
/** memtester 4.6 maps only what -d names if it is a character device. */
const MEMTESTER_NO_FILE =
  'memtester 4.6 checks that the -d path is a character device (S_ISCHR) before it maps it, and stops ' +
  '("can not mmap non-char device"): it cannot be pointed at a file of any file system, dmemfs or hugetlbfs';

const STACK_EINVAL =
  'stackmmap sizes its stack file with ftruncate to a size that is no whole number of 2 MiB pages, which ' +
  'a file system of 2 MiB pages refuses: EINVAL at setup, hugetlbfs and dmemfs alike';
const TLB_EINVAL = 'fail: tlb-shootdown: ftruncate to 16384 bytes on FILE failed, errno=22 (Invalid argument)';
const TLB_WHY =
  'tlb-shootdown sizes its file with ftruncate to 16 KiB, and a file system of 2 MiB pages takes only ' +
  'whole pages: EINVAL at setup, hugetlbfs and dmemfs alike';

const fio = (direct: 0 | 1): string[] => [
  'fio',
  '--name=peer',
  '--filename=/var/tmp/fio.data',
  '--size=8M',
  '--bs=2M',
  '--rw=write',
  '--ioengine=psync',
  `--direct=${direct}`,
  '--iomem=mmapshared:{file}',
  '--output-format=terse',
];

export const PEER_CASES: readonly PeerCase[] = [
  {
    id: 'memtester',
    argv: ['memtester', '-p', '0', '-d', '{file}', '4M', '1'],
    truncateMiB: 4,
    maxS: 300,
    outcomes: {
      dmemfs_4K: { outcome: 'fail: memtester: -d is not a character device', because: MEMTESTER_NO_FILE },
      dmemfs_2M: { outcome: 'fail: memtester: -d is not a character device', because: MEMTESTER_NO_FILE },
      hugetlbfs_2M: { outcome: 'fail: memtester: -d is not a character device', because: MEMTESTER_NO_FILE },
    },
  },
  {
    id: 'fio_buffered',
    argv: fio(0),
    maxS: 120,
    outcomes: {
      dmemfs_2M: {
        outcome: 'pass',
        because:
          'fio sizes its buffer file with ftruncate to one 2 MiB block, maps it shared and writes 8 MiB from it ' +
          'through the page cache: copied by the CPU, the dmemfs mapping works like any other',
      },
      hugetlbfs_2M: {
        outcome: 'pass',
        because: 'the control: the same buffered write from a hugetlbfs mapping',
      },
    },
  },
  {
    id: 'fio_direct',
    argv: fio(1),
    maxS: 120,
    outcomes: {
      dmemfs_2M: {
        outcome: 'fail: killed by SIGSEGV (fio)',
        because:
          'with direct=1 the same write must pin its buffer (get_user_pages), and dmemfs maps VM_PFNMAP, which ' +
          'GUP refuses: fio 3.33 dies of SIGSEGV on its first direct write (a user-mode write at a small ' +
          'address in fio), where the buffered write from the same mapping and the direct write from ' +
          'hugetlbfs both work. That the refused pin is what fio trips on is read from the code, not traced',
      },
      hugetlbfs_2M: {
        outcome: 'pass',
        because: 'O_DIRECT pins the hugetlbfs buffer through GUP (its pages have struct pages): it runs',
      },
    },
  },
  {
    id: 'stress_stackmmap',
    argv: ['stress-ng', '--stackmmap', '1', '--temp-path', '{dir}', '--timeout', '10', '--metrics-brief'],
    maxS: 120,
    outcomes: {
      dmemfs_4K: {
        outcome: 'pass',
        because:
          'at 4K its file sizes are whole pages: the stackmmap stressor runs its 10 s on the dmemfs file with no ' +
          'error and no kernel report',
      },
      dmemfs_2M: { outcome: 'fail: stackmmap: ftruncate failed, errno=22 (Invalid argument)', because: STACK_EINVAL },
      hugetlbfs_2M: {
        outcome: 'fail: stackmmap: ftruncate failed, errno=22 (Invalid argument)',
        because: STACK_EINVAL,
      },
    },
  },
  {
    id: 'stress_tlb_shootdown',
    argv: ['stress-ng', '--tlb-shootdown', '1', '--temp-path', '{dir}', '--timeout', '10', '--metrics-brief'],
    maxS: 120,
    outcomes: {
      dmemfs_4K: {
        outcome: 'pass',
        because:
          'at 4K its file sizes are whole pages: the tlb-shootdown stressor runs its 10 s on the dmemfs file ' +
          'with no error and no kernel report',
      },
      dmemfs_2M: { outcome: TLB_EINVAL, because: TLB_WHY },
      hugetlbfs_2M: { outcome: TLB_EINVAL, because: TLB_WHY },
    },
  },
];

/** What the tools say when they stop, as `WHERE: WHY` (the first pattern that matches). */
export const PEER_FAILURES: ReadonlyArray<{ pattern: RegExp; say: (m: RegExpExecArray) => string }> = [
  // fio: "fio: pid=123, err=14/file:io_u.c:1845, func=io_u error, error=Bad address"
  { pattern: /err=\s*\d+\/file:\S+, func=([^,]+), error=(.+)/, say: (m) => `${m[1]!.trim()}: ${m[2]!.trim()}` },
  { pattern: /can not mmap non-char device/, say: () => 'memtester: -d is not a character device' },
  // memtester: "mmap: Invalid argument" / "failed to mmap ... "
  { pattern: /^(mmap|open|ftruncate|mlock)[^:\n]*:\s*(.+)$/m, say: (m) => `${m[1]}: ${m[2]!.trim()}` },
  // stress-ng: "stress-ng: fail:  [123] stackmmap: mmap failed, errno=19 (No such device)"
  { pattern: /(?:fail|error):\s+\[\d+\]\s+(\S+?):?\s+(.+)$/m, say: (m) => `${m[1]}: ${m[2]!.trim()}` },
  { pattern: /Bus error|SIGBUS/, say: () => 'SIGBUS' },
  // fio: "fio: pid=136, got signal=11"
  { pattern: /fio: pid=\d+, got signal=(\d+)/, say: (m) => `fio killed by signal ${m[1]}` },
];

/** A tool's words without what changes from run to run: pids in brackets, its temporary file names. */
export function normalized(words: string): string {
  return words
    .replace(/\[\d+\]/g, '[N]')
    .replace(/\/\S*\d\S*/g, 'FILE')
    .slice(0, 160);
}

/** A finished peer run's outcome from its exit code and output. */
export function peerOutcome(code: number, output: string): string {
  if (code === 0) return 'pass';
  for (const f of PEER_FAILURES) {
    const m = f.pattern.exec(output);
    if (m) return `fail: ${normalized(f.say(m))}`;
  }
  if (code > 128 && code < 160) return `fail: killed by signal ${code - 128}`;
  const last = output.trim().split('\n').at(-1)?.trim().slice(0, 120) ?? '';
  return `fail: exit ${code}: ${last || '(no output)'}`;
}

/** The argv with the target put in (no shell). */
export function peerArgv(c: Pick<PeerCase, 'argv'>, file: string, dir: string): string[] {
  return c.argv.map((a) => a.replaceAll('{file}', file).replaceAll('{dir}', dir));
}

/**
 * trinity on dmemfs: its victims the files of a dmemfs mount, its targets the memory-management
 * calls, for a bounded time per page size, with a fixed seed the command line carries.
 */
export const FUZZ = {
  /** The calls it may make (trinity -c each). */
  syscalls: [
    'mmap',
    'munmap',
    'mremap',
    'madvise',
    'mprotect',
    'msync',
    'mlock',
    'munlock',
    'truncate',
    'ftruncate',
    'fallocate',
  ],
  /** Descriptor sources other than the victim files, turned off. */
  disabledFds: ['sockets', 'pipes', 'perf', 'epoll', 'eventfd', 'pseudo', 'timerfd', 'testfile', 'memfd', 'drm'],
  /** The victim files in the mount, and the size each is truncated to (MiB). */
  victims: 8,
  victimMiB: 4,
  children: 2,
  /** The seed when DMEMFS_RIG_FUZZ_SEED does not give one. */
  seed: 20201207,
} as const;

/** The trinity command line, run unprivileged (trinity refuses root): the seed reproduces the run. */
export function trinityArgv(dir: string, seed: number, seconds: number, logDir: string): string[] {
  return [
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    'timeout',
    '-s',
    'INT',
    '-k',
    '10',
    String(seconds),
    'trinity',
    '-V',
    dir,
    '-s',
    String(seed),
    '-C',
    String(FUZZ.children),
    '-l',
    logDir,
    `--disable-fds=${FUZZ.disabledFds.join(',')}`,
    ...FUZZ.syscalls.flatMap((s) => ['-c', s]),
  ];
}

/** The number of calls trinity says it made ("Ran 12345 syscalls"), or null when it did not say. */
export function trinityCalls(output: string): number | null {
  const all = [...output.matchAll(/Ran (\d+) syscalls/g)].map((m) => Number(m[1]));
  return all.length ? Math.max(...all) : null;
}
