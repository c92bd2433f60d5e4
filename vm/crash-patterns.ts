/**
 * Recognition of kernel crash reports in console output. Kept apart from the watcher so it
 * can be tested against real console logs (tests/fixtures/consoles/).
 */
export type ReportKind =
  | 'panic'
  | 'oops'
  | 'bug'
  | 'gpf'
  | 'sanitizer'
  | 'warning'
  | 'rcu-stall'
  | 'hung-task'
  | 'call-trace'
  | 'init-failure'
  | 'exception'
  | 'lockup'
  | 'nmi-backtrace'
  | 'segfault';

export interface Trigger {
  kind: ReportKind;
  re: RegExp;
}

/** Order matters: the first pattern that matches a line names the report. */
export const TRIGGERS: readonly Trigger[] = [
  { kind: 'panic', re: /Kernel panic - not syncing:\s*(.*)$/ },
  // die() of a CPU exception in the kernel: "divide error: 0000 [#1] SMP". The same names in
  // userspace are one-line notes ("traps: prog[12] trap divide error ip:..."), not reports.
  {
    kind: 'exception',
    re: /^((?:divide error|invalid opcode|int3|stack segment|double fault|invalid TSS|segment not present|bounds|overflow|alignment check|coprocessor segment overrun|kernel stack overflow \(double-fault\)|stack guard page): [0-9a-f]{4} \[#\d+\].*)$/,
  },
  // The lockup detectors: their reports say "BUG:" but the kernel goes on (unless *_panic is set).
  { kind: 'lockup', re: /\b(BUG: soft lockup - CPU#\d+ stuck for .*|BUG: workqueue lockup .*)$/ },
  { kind: 'lockup', re: /\b(Watchdog detected hard LOCKUP on cpu \d+.*)$/ },
  { kind: 'sanitizer', re: /^(UBSAN: .*)$/ },
  // Debug checks that report and let the kernel go on (KASAN, KFENCE, might_sleep, bad page state).
  {
    kind: 'sanitizer',
    re: /\bBUG: (KASAN: .*|KFENCE: .*|sleeping function called from invalid context.*|scheduling while atomic.*|Bad page (?:state|map).*)$/,
  },
  { kind: 'bug', re: /kernel BUG at (.*)$/ },
  { kind: 'bug', re: /\bBUG: (.*)$/ },
  { kind: 'gpf', re: /general protection fault(.*)$/ },
  { kind: 'oops', re: /\bOops: (.*)$/ },
  { kind: 'warning', re: /\bWARNING: (.*)$/ },
  { kind: 'rcu-stall', re: /rcu: INFO: (.*detected stalls?.*)$/ },
  { kind: 'rcu-stall', re: /(rcu_\w+ (self-)?detected stalls?.*)$/ },
  { kind: 'hung-task', re: /INFO: (task .* blocked for more than .*)$/ },
  { kind: 'nmi-backtrace', re: /^(NMI backtrace for cpu \d+.*)$/ },
  { kind: 'call-trace', re: /^\s*(Call Trace:)\s*$/ },
  // A userspace program of the guest (a rig helper) killed by SIGSEGV: "prog[12]: segfault at 0 ip ...".
  { kind: 'segfault', re: /^(\S+\[\d+\]: segfault at [0-9a-f]+ ip .*)$/ },
  // The rig's own guest init says when it cannot go on (no root, no SSH server).
  { kind: 'init-failure', re: /^rig-init: FATAL: (.*)$/ },
];

/** Lines that close a report. */
export const END_MARKERS: readonly RegExp[] = [/---\[ end trace [0-9a-f]+ \]---/, /---\[ end Kernel panic/];

/** Kinds that fail a run unless a scenario explicitly allows them. */
export const DEFAULT_FATAL: ReadonlySet<ReportKind> = new Set([
  'panic',
  'oops',
  'bug',
  'gpf',
  'sanitizer',
  'warning',
  'rcu-stall',
  'hung-task',
  'call-trace',
  'init-failure',
  'exception',
  'lockup',
  'nmi-backtrace',
  'segfault',
]);

/**
 * Kinds that stop a scenario: the kernel is dead or its state can no longer be trusted. The
 * others (WARNING, lockdep, KASAN, stalls) are recorded; the judge fails the scenario for each
 * one no measurement claimed, while the scenario goes on measuring.
 */
export const SCENARIO_FATAL: ReadonlySet<ReportKind> = new Set([
  'panic',
  'oops',
  'bug',
  'gpf',
  'exception',
  'init-failure',
]);

const PRINTK_TS = /^\[\s*(\d+\.\d+)\]\s?/;

/** Split a console line into its printk timestamp (seconds) and the text. */
export function splitTimestamp(rawLine: string): { ts: number | undefined; text: string } {
  const line = rawLine.replace(/\r+$/, '');
  const m = PRINTK_TS.exec(line);
  if (!m) return { ts: undefined, text: line };
  return { ts: Number(m[1]), text: line.slice(m[0].length) };
}

export function matchTrigger(line: string): { kind: ReportKind; title: string } | undefined {
  const { text } = splitTimestamp(line);
  for (const t of TRIGGERS) {
    const m = t.re.exec(text);
    if (m) return { kind: t.kind, title: text.trim() };
  }
  return undefined;
}

export function isEndMarker(line: string): boolean {
  return END_MARKERS.some((re) => re.test(line));
}

export interface CrashReport {
  kind: ReportKind;
  title: string;
  /** Console lines of the report, with a few lines of context before it. */
  excerpt: string[];
  /** Index of the triggering line in the whole console. */
  lineIndex: number;
  /** Index of the line after the report's last one. */
  endLine?: number;
  /** The kernel panicked inside this report (a panic line among its own): fatal whatever its kind. */
  panicked?: boolean;
}

/** Triggers that belong to the report already open: its Call Trace, the Oops after a BUG header, the panic after it. */
export const CONTINUATIONS: ReadonlySet<ReportKind> = new Set([
  'call-trace',
  'panic',
  'oops',
  'exception',
  'nmi-backtrace',
]);

/** Panics that follow a report of their own: oops=panic, *_panic=1, panic_on_warn, panic_on_rcu_stall. */
const CONSEQUENT_PANIC =
  /not syncing: (Fatal exception|softlockup: hung tasks|hung_task: blocked tasks|panic_on_warn set|RCU Stall|Hard LOCKUP)/i;

/** How far (in lines) a report may end before a panic for the panic to be its consequence. */
export const PANIC_CAUSE_LINES = 40;

/**
 * A panic right after a report (oops=panic prints "Fatal exception" after the Oops' end marker;
 * softlockup_panic, hung_task_panic and panic_on_warn panic after theirs) keeps that report's
 * header as its title: "watchdog: BUG: soft lockup - CPU#0 stuck for 3s! [sh:12] (then: Kernel
 * panic - not syncing: softlockup: hung tasks)". Its kind stays panic: the kernel is dead.
 */
export function panicTitle(panic: string, before: { title: string; endLine: number } | undefined, at: number): string {
  if (!before || at - before.endLine > PANIC_CAUSE_LINES || !CONSEQUENT_PANIC.test(panic)) return panic;
  return `${before.title} (then: ${panic})`;
}

/**
 * Where the report starting at line i ends (the line after its last), and whether a panic is among
 * its own lines. A Call Trace, the Oops line after a BUG or GPF header, and the panic that follows
 * an Oops belong to the report already open; any other trigger starts a report of its own (as in
 * the live watcher).
 */
function reportEnd(lines: string[], i: number, maxLines: number): { end: number; panicked: boolean } {
  let panicked = false;
  let j = i + 1;
  for (; j < lines.length && j - i < maxLines; j++) {
    if (isEndMarker(lines[j]!)) return { end: j + 1, panicked };
    const next = matchTrigger(lines[j]!);
    if (next && !CONTINUATIONS.has(next.kind) && j - i > 2) break;
    if (next?.kind === 'panic') panicked = true;
  }
  return { end: j, panicked };
}

/**
 * Offline parsing: find every report in a whole console log. A report runs from its trigger
 * to an end marker, the next trigger that is not part of it, or 80 lines.
 */
export function findReports(rawLines: string[], context = 5, maxLines = 80): CrashReport[] {
  const lines = rawLines.map((l) => l.replace(/\r+$/, ''));
  const out: CrashReport[] = [];
  let i = 0;
  while (i < lines.length) {
    const t = matchTrigger(lines[i]!);
    if (!t) {
      i++;
      continue;
    }
    const { end: j, panicked } = reportEnd(lines, i, maxLines);
    const prev = out.at(-1);
    const title =
      t.kind === 'panic' && prev
        ? panicTitle(t.title, { title: prev.title, endLine: prev.endLine ?? prev.lineIndex }, i)
        : t.title;
    const excerpt = lines.slice(Math.max(0, i - context), j);
    out.push({
      kind: t.kind,
      title,
      excerpt,
      lineIndex: i,
      endLine: j,
      ...(panicked || t.kind === 'panic' ? { panicked: true } : {}),
    });
    i = j;
  }
  return out;
}

/**
 * Reports a nested hypervisor causes, not the kernel under test: not fatal when the rig runs
 * KVM inside a virtual machine (AccelChoice.nested). Each with what was seen.
 */
export const NESTED_KVM_ARTIFACTS: ReadonlyArray<{ title: RegExp; why: string }> = [
  {
    title: /at arch\/x86\/kernel\/fpu\/xstate\.c:\d+ fpu__init_system_xstate/,
    why:
      'XSAVE consistency problem at boot: the hypervisor below reports a CPUID leaf 0xD size that disagrees ' +
      'with the features it enables (seen: 2696 != 576 under nested SVM on TCG); the kernel falls back and boots',
  },
];
