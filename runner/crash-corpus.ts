/**
 * Records the crash-pattern corpus (tests/fixtures/crashes/): each case makes the first guest's
 * Debian kernel fail one named way (images/crash-module/: a kernel module, and a userspace
 * program for "segfault at" and its near misses), and the console around the failure is
 * written as a fixture headed by what the crash patterns make of it. Run by hand
 * (`dmemfs-rig record crashes`) when a pattern is added; the tests read the fixtures.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { ensureDir, projectRoot } from '../core/paths.js';
import type { AccelChoice } from '../vm/accel.js';
import { findReports, type ReportKind } from '../vm/crash-patterns.js';
import type { Guest } from '../vm/guest.js';
import { bootFirstGuest, prepareFirstGuest, type FirstGuestFiles } from './first-guest.js';

export interface CrashCase {
  /** The fixture's file name, without .log. */
  file: string;
  /** What the case makes the kernel do (the fixture's SOURCE line says it). */
  what: string;
  append?: string[];
  /** Shell commands run before the trigger (sysctls). */
  setup?: string[];
  /** The trigger: a command over SSH (may never return: the kernel dies). */
  trigger: string;
  /** The console line the case waits for. */
  until: RegExp;
  /** A near miss: the corpus says no report may be found in it. */
  nearMiss?: boolean;
  /** The kind the patterns must find, said apart from them: a fixture whose parse differs is not written. */
  kind?: ReportKind;
}

const TRAPS = /traps: rig-segv\[\d+\] trap invalid opcode/;

/** A case that kills the kernel (oops=panic): the module's named failure, until the panic's end. */
const fatal = (file: string, what: string, word: string, kind: ReportKind): CrashCase => ({
  file,
  kind,
  what,
  trigger: `echo ${word} > /proc/rig_crash`,
  until: /end Kernel panic/,
});

export const CRASH_CASES: readonly CrashCase[] = [
  fatal('divide-error', 'divl by zero in a module', 'divide', 'exception'),
  fatal('int3', 'int3 in a module, no kprobe', 'int3', 'exception'),
  fatal('invalid-opcode', 'ud2 in a module, not a BUG()', 'ud2', 'exception'),
  // Hardware raises #SS ("stack segment") for it; QEMU TCG raises #GP (stack-segment.log is derived).
  fatal(
    'non-canonical-gpf',
    'a load through RBP at a non-canonical address (hardware raises #SS for it; QEMU TCG raises #GP)',
    'stack-segment',
    'gpf',
  ),
  fatal('stack-overflow', 'unbounded recursion in a module (VMAP_STACK guard page)', 'stack-overflow', 'bug'),
  {
    file: 'soft-lockup',
    kind: 'lockup',
    what: '6 s with preemption off, watchdog_thresh=1, softlockup_panic=0',
    append: ['softlockup_panic=0'],
    setup: ['sysctl -w kernel.watchdog_thresh=1', 'echo 6 > /sys/module/rig_crash/parameters/spin_s'],
    trigger: 'echo soft-lockup > /proc/rig_crash',
    until: /soft lockup/,
  },
  {
    file: 'soft-lockup-panic',
    kind: 'lockup',
    what: "the same soft lockup with every guest's softlockup_panic=1 (the panic after the report)",
    setup: ['sysctl -w kernel.watchdog_thresh=1', 'echo 6 > /sys/module/rig_crash/parameters/spin_s'],
    trigger: 'echo soft-lockup > /proc/rig_crash',
    until: /end Kernel panic/,
  },
  {
    file: 'rcu-stall',
    kind: 'rcu-stall',
    what: '10 s in an RCU read-side section with preemption off, rcu_cpu_stall_timeout=3',
    append: ['rcupdate.rcu_cpu_stall_timeout=3'],
    setup: ['echo 10 > /sys/module/rig_crash/parameters/spin_s'],
    trigger: 'echo rcu-stall > /proc/rig_crash',
    until: /detected stalls? on CPU|self-detected stall/,
  },
  {
    file: 'hung-task',
    kind: 'hung-task',
    what: '8 s in TASK_UNINTERRUPTIBLE, hung_task_timeout_secs=2, hung_task_panic=0',
    append: ['hung_task_panic=0'],
    setup: ['sysctl -w kernel.hung_task_timeout_secs=2', 'echo 8 > /sys/module/rig_crash/parameters/spin_s'],
    trigger: 'echo hung-task > /proc/rig_crash',
    until: /blocked for more than/,
  },
  {
    file: 'nmi-backtrace',
    kind: 'nmi-backtrace',
    what: 'sysrq l: a backtrace of every CPU through NMIs',
    setup: ['echo 1 > /proc/sys/kernel/sysrq'],
    trigger: 'echo l > /proc/sysrq-trigger',
    until: /NMI backtrace for cpu 1/,
  },
  {
    file: 'segfault',
    kind: 'segfault',
    what: 'a NULL store in a userspace program',
    trigger: '/tmp/rig-segv segv',
    until: /segfault at/,
  },
  {
    file: 'near-miss-user-traps',
    what: "userspace divide error, int3 and ud2: the kernel's one-line notes, not kernel reports",
    trigger: 'for c in divide int3 ud2; do /tmp/rig-segv $c; done',
    until: TRAPS,
    nearMiss: true,
  },
];

/** The module and the program, built against the first guest's kernel headers. */
async function buildCrashers(files: FirstGuestFiles): Promise<{ ko: string; segv: string }> {
  const release = files.kernel.release;
  const headers = `/usr/src/linux-headers-${release}`;
  const src = join(projectRoot(), 'images', 'crash-module');
  const dir = mkdtempSync(join(tmpdir(), 'rig-crash-'));
  for (const f of ['rig_crash.c', 'Kbuild']) copyFileSync(join(src, f), join(dir, f));
  try {
    await run('make', ['-s', '-C', headers, `M=${dir}`, 'modules']);
  } catch (e) {
    throw new RigError('missing-tool', `could not build the crash module against ${headers}`, {
      fix: `apt-get install linux-headers-${release}`,
      evidence: String(e),
    });
  }
  await run('gcc', ['-O1', '-static', '-o', join(dir, 'rig-segv'), join(src, 'segv.c')]);
  return { ko: join(dir, 'rig_crash.ko'), segv: join(dir, 'rig-segv') };
}

/** One case on a fresh guest: the console from a little before the trigger to the report's end. */
async function recordCase(
  files: FirstGuestFiles,
  accel: AccelChoice,
  crashers: { ko: string; segv: string },
  c: CrashCase,
): Promise<string[]> {
  // Nothing is fatal to the rig here: the guest goes on (or panics and QEMU exits) by itself, so
  // the console is whole to its last line.
  const g = await bootFirstGuest(files, accel, {
    name: `crash-${c.file}`,
    fatalKinds: new Set(),
    ...(c.append ? { append: c.append } : {}),
  });
  try {
    await upload(g, crashers);
    await g.exec(['insmod', '/tmp/rig_crash.ko'], { check: true });
    for (const s of c.setup ?? []) await g.exec(['sh', '-c', s], { check: true });
    const from = g.console.lineCount;
    // Quiet by design until the kernel dies: no silence watchdog.
    void g.exec(['sh', '-c', c.trigger], { timeoutMs: 300_000, silenceMs: false }).catch(() => undefined);
    // The line waited for, or the guest's end (a panic: QEMU exits); then the report's last lines.
    let ended = false;
    void g.failed().catch(() => (ended = true));
    const deadline = Date.now() + 120_000 * accel.timeoutScale;
    while (!ended && !g.console.linesFrom(from).some((l) => c.until.test(l.raw))) {
      if (Date.now() > deadline)
        throw new RigError('console-timeout', `${c.file}: the console never showed ${c.until}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await g.console.settled();
    const lines = g.console.linesFrom(from).map((l) => l.raw);
    const start = Math.max(
      0,
      lines.findIndex((l) => /rig_crash: |rig-segv|sysrq: /.test(l)),
    );
    return lines.slice(start, start + 90);
  } finally {
    await g.stop();
  }
}

async function upload(g: Guest, crashers: { ko: string; segv: string }): Promise<void> {
  const ssh = g.ssh!;
  await ssh.upload('/tmp/rig_crash.ko', readFileSync(crashers.ko));
  await ssh.upload('/tmp/rig-segv', readFileSync(crashers.segv), 0o755);
}

/** The patterns found what the case declares (a near miss: nothing), or no fixture is written. */
function checkKind(c: CrashCase, found: ReportKind | undefined, lines: string[]): void {
  const want = c.nearMiss ? undefined : c.kind;
  if (want === found) return;
  throw new RigError('crash-mismatch', `${c.file}: the patterns found ${found ?? 'no report'}, not ${want ?? 'none'}`, {
    fix: 'see the console below the case; a pattern (vm/crash-patterns.ts) or the case is wrong',
    evidence: lines.join('\n'),
  });
}

/** The fixture: a header (what the patterns find, where it came from), a blank line, the console. */
export function fixtureText(c: CrashCase, release: string, lines: string[], date: string): string {
  const r = findReports(lines)[0];
  checkKind(c, r?.kind, lines);
  const head = [
    `TITLE: ${c.nearMiss || !r ? 'none' : r.title.replace(/^\[\s*\d+\.\d+\]\s*/, '')}`,
    `TYPE: ${c.nearMiss || !r ? 'none' : r.kind}`,
    `PANICKED: ${r?.panicked || r?.kind === 'panic' ? 'yes' : 'no'}`,
    `SOURCE: recorded by \`dmemfs-rig record crashes\`, first guest, Debian ${release}, ${date}: ${c.what}`,
  ];
  return `${head.join('\n')}\n\n${lines.join('\n')}\n`;
}

export async function recordCrashes(
  accel: AccelChoice,
  opts: { out?: string; only?: string[] } = {},
): Promise<string[]> {
  const files = await prepareFirstGuest();
  const crashers = await buildCrashers(files);
  const out = ensureDir(opts.out ?? join(projectRoot(), 'tests', 'fixtures', 'crashes'));
  const date = new Date().toISOString().slice(0, 10);
  const written: string[] = [];
  try {
    for (const c of CRASH_CASES.filter((x) => !opts.only?.length || opts.only.includes(x.file))) {
      info(`record crashes: ${c.file} (${c.what})`);
      const lines = await recordCase(files, accel, crashers, c);
      const path = join(out, `${c.file}.log`);
      writeFileSync(path, fixtureText(c, files.kernel.release, lines, date));
      written.push(path);
    }
  } finally {
    rmSync(join(crashers.ko, '..'), { recursive: true, force: true });
  }
  return written;
}
