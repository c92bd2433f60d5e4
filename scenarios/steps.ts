/**
 * Steps several scenarios take in the guest: mounting dmemfs, mapping as another user, waiting
 * for a helper's line, measuring a comparison column, finding a victim page's address.
 */
import { RigError } from '../core/errors.js';
import type { GuestHandle as Guest } from '../vm/guest-handle.js';
import { eq, is, within, type KernelReport } from '../core/results.js';
import { logMatches } from './probes.js';
import type { ScenarioContext } from './types.js';

export async function mountDmemfs(g: Guest, pagesize: string): Promise<{ ok: boolean; err: string }> {
  const r = await g.exec([
    'sh',
    '-c',
    'mkdir -p /mnt/dmem && mount -t dmemfs -o "pagesize=$1" none /mnt/dmem',
    'mount',
    pagesize,
  ]);
  return { ok: r.code === 0, err: r.stderr.trim() };
}

/** The unprivileged user of the L1 image (uid/gid 1000), no supplementary groups and no capabilities. */
export const UNPRIVILEGED = ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', '--inh-caps=-all'];

export interface MapResult {
  ok: boolean;
  minor_faults: number;
  kernel_page_size_kb: number;
  mmu_page_size_kb?: number;
  verified: boolean;
  errno_name?: string;
  step?: string;
  error?: string;
  elapsed_s?: number;
}

/** map-and-touch with the given arguments, as root or as the unprivileged user. */
export function mapAndTouch(
  ctx: Pick<ScenarioContext<never>, 'json'>,
  g: Guest,
  args: string[],
  opts: { unprivileged?: boolean } = {},
): Promise<MapResult & { _code: number | null; _stderr: string }> {
  return ctx.json<MapResult>(g, [...(opts.unprivileged ? UNPRIVILEGED : []), 'map-and-touch', ...args]);
}

/** What an unprivileged mapping came to: "allowed", or the errno that refused it. */
export function accessOutcome(r: MapResult): string {
  return r.ok ? 'allowed' : (r.errno_name ?? `error at ${r.step ?? '?'}`);
}

/** Poll a file in the guest until a line matches (background helpers write JSON lines there). */
export async function waitForLine(g: Guest, path: string, re: RegExp, timeoutMs: number): Promise<string | undefined> {
  return (await watchLog(g, path, re, { timeoutMs })).line;
}

/**
 * Poll a file in the guest until a line matches; with `quietMs`, stop early when the file has
 * not grown for that long (a writer that stalled), and say for how long.
 */
export async function watchLog(
  g: Guest,
  path: string,
  re: RegExp,
  opts: { timeoutMs: number; quietMs?: number },
): Promise<{ line?: string; quietMs?: number; text: string }> {
  const end = Date.now() + opts.timeoutMs;
  let text = '';
  let grewAt = Date.now();
  while (Date.now() < end) {
    // Reading is idempotent: a dropped connection is re-established and the read repeated, and a
    // session the guest's SSH server would not start (seen once in CI: "Unable to exec", while L1
    // was busy running an L2) is tried again at the next poll.
    const r = await g.exec(['cat', path]).catch((e: unknown) => {
      if (e instanceof RigError && (e.kind === 'ssh-dropped' || e.kind === 'ssh-exec')) return undefined;
      throw e;
    });
    if (r) {
      if (r.stdout.length !== text.length) grewAt = Date.now();
      text = r.stdout;
      const line = text.split('\n').find((l) => re.test(l));
      if (line) return { line, text };
    }
    if (opts.quietMs !== undefined && Date.now() - grewAt >= opts.quietMs)
      return { quietMs: Date.now() - grewAt, text };
    await new Promise((res) => setTimeout(res, 500));
  }
  return { text };
}

/** What measureColumns records for each column, as `${col}_${name}`. */
export const COLUMN_MEASURES = ['ok', 'faults', 'kernel_page_kb', 'verified', 'free_restored'] as const;
export type ColumnMeasure<C extends string> = `${C}_${(typeof COLUMN_MEASURES)[number]}`;

/** One comparison column: a file (or anonymous memory) mapped at a page size. */
export interface Column<C extends string = string> {
  col: C;
  argv: string[];
  size: number;
  page: number;
  prepare?: string[];
  /** A counter of free pages (sysfs file) that must be back at its start value after the file is removed. */
  freeCounter?: string;
  /** Why a column without a counter has no pages to give back (its free_restored is a skip with this reason). */
  noFreeCounter?: string;
  /** Anonymous memory: faults and page size are recorded, not held (THP decides them). */
  recordOnly?: boolean;
}

/** Why a device-dax column has no free_restored: nothing is allocated from it, nothing goes back. */
export const DEVICE_HAS_NO_POOL = 'n/a: a device: no files, no allocator; its size is fixed when it is created';

/** One map-and-touch per column, held to one fault per page of the column's size. */
export async function measureColumns<C extends string>(
  ctx: ScenarioContext<NoInfer<ColumnMeasure<C>>>,
  g: Guest,
  cases: Array<Column<C>>,
): Promise<void> {
  for (const c of cases) await measureColumn(ctx, g, c);
}

async function measureColumn<C extends string>(ctx: ScenarioContext<ColumnMeasure<C>>, g: Guest, c: Column<C>) {
  if (c.prepare) {
    const p = await g.exec(c.prepare);
    ctx.evidence(`${c.col}: ${c.prepare.join(' ')}`, `${p.stdout}${p.stderr}`.slice(-2000));
  }
  const readCounter = async () =>
    c.freeCounter ? Number((await g.exec(['cat', c.freeCounter], { check: true })).stdout.trim()) : undefined;
  const freeBefore = await readCounter();
  const create = c.argv.includes('--file') ? ['--create'] : [];
  const r = await mapAndTouch(ctx, g, [...c.argv, ...create, '--size', String(c.size)]);
  ctx.evidence(`map-and-touch ${c.col}`, JSON.stringify(r));
  if (!r.ok)
    ctx.evidence(`kernel log after ${c.col}`, (await logMatches(g, /dax|hugetlb|pmem/i)).slice(-15).join('\n'));
  const pages = c.size / c.page;
  ctx.measure(`${c.col}_ok`, r.ok, { expect: is(true), ...(r.error ? { note: r.error } : {}) });
  ctx.measure(`${c.col}_faults`, r.minor_faults ?? null, {
    unit: `faults for ${c.size >> 20} MiB`,
    ...(c.recordOnly ? {} : { expect: within(pages, FIRST_TOUCH_EXTRA), why: ONE_FAULT_PER_PAGE }),
  });
  ctx.measure(`${c.col}_kernel_page_kb`, r.kernel_page_size_kb ?? null, {
    unit: 'kB',
    ...(c.recordOnly ? {} : { expect: eq(c.page / 1024) }),
  });
  ctx.measure(`${c.col}_verified`, r.verified ?? null, { expect: is(true) });
  await giveBack(ctx, g, c, freeBefore, readCounter);
}

/** Give the pages back (a hugetlbfs file keeps its pool pages until unlinked; device files stay) and count them. */
async function giveBack<C extends string>(
  ctx: ScenarioContext<ColumnMeasure<C>>,
  g: Guest,
  c: Column<C>,
  freeBefore: number | undefined,
  readCounter: () => Promise<number | undefined>,
): Promise<void> {
  const file = c.argv[c.argv.indexOf('--file') + 1];
  if (c.argv.includes('--file') && file && !file.startsWith('/dev/dax')) await g.exec(['rm', '-f', file]);
  if (freeBefore === undefined)
    return void ctx.skipMeasure(
      `${c.col}_free_restored`,
      c.noFreeCounter ?? 'n/a: no free-page counter for this column',
    );
  ctx.measure(`${c.col}_free_restored`, (await readCounter()) ?? null, {
    unit: 'pages',
    expect: eq(freeBefore),
    note: `${c.freeCounter} after unlink`,
  });
}

/**
 * Faults beyond one per page that map-and-touch's first touch may add: the helper's own stack
 * and data pages it touches between its two getrusage() calls (0 or 1 seen at every size).
 */
export const FIRST_TOUCH_EXTRA = 1;
export const ONE_FAULT_PER_PAGE =
  'one minor fault per page mapped, plus at most one fault of the helper itself between its two getrusage() calls';

/** Who may map `path` by its mode: 0600 (root's) must refuse the unprivileged user, 0666 must let it map. */
export async function modeChecks<P extends string>(
  ctx: ScenarioContext<`${NoInfer<P>}_unprivileged_mode_0600` | `${NoInfer<P>}_unprivileged_mode_0666`>,
  g: Guest,
  prefix: P,
  paths: { private: string; shared: string; restoreMode?: string },
  mapArgs: string[],
): Promise<void> {
  await g.exec(['chmod', '600', paths.private], { check: true });
  const denied = await mapAndTouch(ctx, g, ['--file', paths.private, ...mapArgs], { unprivileged: true });
  ctx.measure(`${prefix}_unprivileged_mode_0600`, accessOutcome(denied), { expect: is('EACCES') });
  await g.exec(['chmod', '666', paths.shared], { check: true });
  const allowed = await mapAndTouch(ctx, g, ['--file', paths.shared, ...mapArgs], { unprivileged: true });
  ctx.measure(`${prefix}_unprivileged_mode_0666`, allowed.ok, {
    expect: is(true),
    ...(allowed.error ? { note: allowed.error } : {}),
  });
  if (paths.restoreMode) await g.exec(['chmod', paths.restoreMode, paths.shared]);
}

/** The JSON lines mce-victim prints. */
export interface VictimEvent {
  event: string;
  vaddr?: string;
  paddr?: string;
  paddr_unavailable?: string;
  si_code_name?: string;
  si_addr?: string;
  si_addr_lsb?: number;
  addr_matches?: boolean;
}

/**
 * The guest-physical address of a victim spinning on vCPU 1: pagemap where it shows the page,
 * else QEMU's gva2gpa with vCPU 1's page tables, accepted only inside `accept`.
 */
export async function victimPaddr(
  g: Guest,
  ready: VictimEvent,
  accept: (pa: number) => boolean,
): Promise<{ paddr: string | undefined; source: string }> {
  if (ready.paddr) return { paddr: ready.paddr, source: 'pagemap' };
  for (let i = 0; i < 10 && ready.vaddr; i++) {
    const out = await g.qmp!.hmp(`gva2gpa ${hmpAddress(ready.vaddr, 'virtual')}`, 10_000, 1);
    const m = /gpa:\s*(0x[0-9a-f]+)/i.exec(out);
    const pa = m ? Number(m[1]) : NaN;
    // (no bitwise masking: JavaScript's bit operators truncate to 32 bits)
    if (m && accept(pa)) return { paddr: `0x${(pa - (pa % 4096)).toString(16)}`, source: 'gva2gpa on vCPU 1' };
    await new Promise((r) => setTimeout(r, 300));
  }
  return { paddr: undefined, source: 'none' };
}

/** What a bounded helper run came to: its JSON, or the state of a process that stopped moving. */
export type BoundedRun =
  | { finished: true; json: Record<string, unknown> | undefined; output: string }
  | { finished: false; seconds: number; state: string; stack: string; tasks: string };

/**
 * Run a helper in the guest in the background. Its output (JSON on stdout, progress lines on
 * stderr) goes to a file; a helper whose output has not grown for `quietS` seconds, or that runs
 * past `maxS` (both times the guest's timeout scale), is a finding: its state, wchan and kernel
 * stack are read, and its entry of the kernel's task dump (sysrq t, kept off the console so no
 * report is raised), before it is killed.
 */
export async function boundedHelper(
  g: Guest,
  argv: string[],
  bound: { quietS: number; maxS: number },
): Promise<BoundedRun> {
  const out = '/run/rig-bounded.out';
  const started = await g.exec(['sh', '-c', 'out=$1; shift; "$@" > "$out" 2>&1 & echo $!', 'bounded', out, ...argv], {
    check: true,
  });
  const pid = started.stdout.trim();
  const scale = g.opts.accel.timeoutScale;
  const t0 = Date.now();
  let size = -1;
  let grewAt = t0;
  for (;;) {
    const r = await g.exec(['sh', '-c', 'kill -0 "$1" 2>/dev/null && echo alive; stat -c %s "$2"', 'poll', pid, out]);
    if (!/alive/.test(r.stdout)) break;
    const now = Date.now();
    const n = Number(r.stdout.split('\n')[1] ?? 0);
    if (n !== size) [size, grewAt] = [n, now];
    if (now - grewAt > bound.quietS * scale * 1000 || now - t0 > bound.maxS * scale * 1000)
      return { finished: false, seconds: Math.round((now - t0) / 1000), ...(await stuckTask(g, pid)) };
    await new Promise((res) => setTimeout(res, 300));
  }
  const text = (await g.exec(['cat', out])).stdout;
  const line = text
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  return { finished: true, json: line ? (JSON.parse(line) as Record<string, unknown>) : undefined, output: text };
}

/** What a bounded command came to: its exit code and output, or the state of a process past its bound. */
export type BoundedCommand =
  | { finished: true; code: number; output: string; seconds: number }
  | { finished: false; seconds: number; state: string; stack: string; tasks: string };

/**
 * Run a program in the guest in the background, in `cwd`, its output (stdout and stderr) to a
 * file and its exit status to another; one still running after `maxS` seconds (times the
 * guest's timeout scale) is read like a stuck helper (state, wchan, stack, task-dump entry) and
 * killed. For programs written elsewhere (the kernel's selftests): no JSON is expected of them.
 */
export async function boundedCommand(
  g: Guest,
  argv: string[],
  opts: { maxS: number; cwd?: string },
): Promise<BoundedCommand> {
  const out = '/run/rig-command.out';
  const started = await g.exec(
    [
      'sh',
      '-c',
      'out=$1; dir=$2; shift 2; rm -f "$out" "$out.rc" "$out.pid"; cd "$dir" || exit 1; ' +
        '( "$@" > "$out" 2>&1 < /dev/null & echo $! > "$out.pid"; wait $!; echo $? > "$out.rc" ) ' +
        '> /dev/null 2>&1 < /dev/null & while [ ! -s "$out.pid" ]; do sleep 0.1; done; cat "$out.pid"',
      'bounded',
      out,
      opts.cwd ?? '/',
      ...argv,
    ],
    { check: true },
  );
  const pid = started.stdout.trim();
  const t0 = Date.now();
  const bound = opts.maxS * g.opts.accel.timeoutScale * 1000;
  for (;;) {
    const r = await g.exec(['sh', '-c', 'cat "$1.rc" 2>/dev/null', 'poll', out]);
    const seconds = Math.round((Date.now() - t0) / 100) / 10;
    if (/^\d+/.test(r.stdout.trim())) {
      const text = (await g.exec(['cat', out])).stdout;
      return { finished: true, code: Number(r.stdout.trim()), output: text, seconds };
    }
    if (Date.now() - t0 > bound) return { finished: false, seconds: Math.round(seconds), ...(await stuckTask(g, pid)) };
    await new Promise((res) => setTimeout(res, 300));
  }
}

/** A program run to its outcome: what it came to, or the kernel report the guest died of. */
export type ProgramOutcome =
  | { alive: true; outcome: string; evidence: string; seconds: number; reports: KernelReport[] }
  | { alive: false; outcome: string; reports: KernelReport[] };

/**
 * Run a program written elsewhere with boundedCommand and say what it came to: a kernel report
 * on the console while it ran (`report: TITLE`, the reports attached), past its bound (`timeout:
 * state S`, its stack as evidence), or the words `classify` makes of its exit code and output.
 */
export async function programOutcome(
  g: Guest,
  argv: string[],
  opts: { maxS: number; cwd?: string },
  classify: (code: number, output: string) => string,
): Promise<ProgramOutcome> {
  const seen = g.console.reports.length;
  try {
    const r = await boundedCommand(g, argv, opts);
    await consoleSettled(g);
    const reports: KernelReport[] = g.console.reports
      .slice(seen)
      .map((x) => ({ kind: x.kind, title: x.title, excerpt: x.excerpt.join('\n') }));
    const kernel = reports.filter((x) => x.kind !== 'segfault');
    // The kernel's line about a program it killed with SIGSEGV is the program's failure, not a kernel report.
    const segv = reports.find((x) => x.kind === 'segfault');
    const outcome = kernel.length
      ? `report: ${kernel[0]!.title}`
      : segv
        ? `fail: killed by SIGSEGV (${/^(\S+?)\[/.exec(segv.title)?.[1] ?? 'a program'})`
        : r.finished
          ? classify(r.code, r.output)
          : `timeout: state ${/State:\s*(\S)/.exec(r.state)?.[1] ?? '?'}`;
    const evidence = r.finished ? r.output.slice(-4000) : `${r.state}\n${r.stack}\n${r.tasks}`;
    return { alive: true, outcome, evidence, seconds: r.seconds, reports };
  } catch (e) {
    const report = crashReport(e, g);
    if (!report) throw e;
    return { alive: false, outcome: `report: ${report.title}`, reports: [report] };
  }
}

/**
 * Wait until the console has shown everything the kernel printed so far: a marker written to
 * /dev/kmsg seen on it, and no report still being read (one completes after a quiet spell).
 * Without it a report of one program's run arrives during the next one's.
 */
export async function consoleSettled(g: Guest, maxMs = 15_000 * g.opts.accel.timeoutScale): Promise<void> {
  const mark = `rig-settled-${Date.now().toString(36)}`;
  await g.exec(['sh', '-c', 'echo "$1" > /dev/kmsg', 'mark', mark]);
  const t0 = Date.now();
  const shown = () => g.console.lines.slice(-200).some((l) => l.text.includes(mark));
  while (Date.now() - t0 < maxMs && (!shown() || g.console.reading)) await new Promise((res) => setTimeout(res, 200));
}

/** A stuck task's state, wchan, kernel stack and task-dump entry; then it is killed. */
async function stuckTask(g: Guest, pid: string): Promise<{ state: string; stack: string; tasks: string }> {
  const state = await g.exec([
    'sh',
    '-c',
    'grep ^State: "/proc/$1/status"; echo "wchan $(cat "/proc/$1/wchan")"',
    's',
    pid,
  ]);
  const stack = await g.exec(['cat', `/proc/${pid}/stack`]);
  const dump = await g.exec([
    'sh',
    '-c',
    'echo 1 > /proc/sys/kernel/sysrq; dmesg -C; dmesg -n 1; echo t > /proc/sysrq-trigger; dmesg -n 7; dmesg',
  ]);
  await g.exec(['kill', '-9', pid]);
  // The task's own entry: from its "task:NAME ... pid:PID" line to the next task.
  const lines = dump.stdout.split('\n');
  const from = lines.findIndex((l) => new RegExp(`task:\\S+.* pid:\\s*${pid} `).test(l));
  const to = from < 0 ? -1 : lines.findIndex((l, i) => i > from && / task:\S+/.test(l));
  return {
    state: state.stdout.trim().replace(/\s+/g, ' '),
    stack: stack.stdout.trim(),
    tasks: from < 0 ? '(not in the task dump)' : lines.slice(from, to < 0 ? undefined : to).join('\n'),
  };
}

/** The kernel report behind a guest crash error, as the console watcher recorded it. */
export function crashReport(e: unknown, g: Guest): KernelReport | undefined {
  if (!(e instanceof RigError && e.kind.startsWith('kernel-'))) return undefined;
  const r = g.console.firstCrash();
  return r ? { kind: r.kind, title: r.title, excerpt: r.excerpt.join('\n') } : undefined;
}

/**
 * Whether the guest still answers after a step that may have killed it: a command that runs, or
 * the crash that ended it (its kernel report, for the measurement that records it).
 */
export async function guestSurvived(g: Guest): Promise<{ alive: boolean; report?: KernelReport; why?: string }> {
  const crash = () => {
    const r = g.console.firstCrash();
    return r ? { report: { kind: r.kind, title: r.title, excerpt: r.excerpt.join('\n') } } : {};
  };
  try {
    const r = await g.exec(['true']);
    const failed = g.failureReason();
    if (r.code === 0 && !failed) return { alive: true };
    return { alive: false, why: failed?.message ?? `true exited ${r.code}`, ...crash() };
  } catch (e) {
    return { alive: false, why: e instanceof Error ? e.message.split('\n')[0] : String(e), ...crash() };
  }
}

/** QEMU's edu device (1234:11e8) bound to vfio-pci: its PCI address, whether the bind took, the evidence. */
export async function bindEduToVfio(g: Guest): Promise<{ bdf?: string; bound: boolean; evidence: string }> {
  const find = await g.exec([
    'sh',
    '-c',
    'for d in /sys/bus/pci/devices/*; do ' +
      'if [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ]; then basename $d; fi; done',
  ]);
  const bdf = find.stdout.trim().split('\n')[0] ?? '';
  if (!/^[0-9a-f]{4}:/.test(bdf)) return { bound: false, evidence: find.stdout + find.stderr };
  const bind = await g.exec([
    'sh',
    '-c',
    'echo vfio-pci > "/sys/bus/pci/devices/$1/driver_override" && echo "$1" > /sys/bus/pci/drivers_probe && ' +
      'basename "$(readlink "/sys/bus/pci/devices/$1/driver")" && ' +
      'basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"',
    'bind',
    bdf,
  ]);
  return { bdf, bound: /^vfio-pci$/m.test(bind.stdout), evidence: bind.stdout + bind.stderr };
}

/** MISSION.md: a recoverable injected MCE needs an Intel-vendor CPU and the broadcast HMP command. */
/**
 * An address from a guest helper's JSON, checked before it goes into an HMP command line: hex,
 * at most 16 digits, below `limit` (a user virtual address below 2^47, a physical one below 2^52),
 * so nothing a guest prints can add words to the monitor command.
 */
export function hmpAddress(text: unknown, what: 'virtual' | 'physical'): string {
  const limit = what === 'virtual' ? 2 ** 47 : 2 ** 52;
  if (typeof text !== 'string' || !/^0x[0-9a-f]{1,16}$/i.test(text) || !(Number(text) < limit))
    throw new RigError('bad-guest-value', `a guest helper gave ${JSON.stringify(text)} as a ${what} address`, {
      fix: `an HMP address must be 0x followed by hex digits, below 0x${limit.toString(16)}; see the helper's output`,
    });
  return text.toLowerCase();
}

export const MCE_HMP = (paddr: string) => `mce -b 0 9 0xbd000000000000c0 0x5 ${hmpAddress(paddr, 'physical')} 0x86`;

export interface Injection {
  ready: VictimEvent | undefined;
  final: VictimEvent | undefined;
  paddrSource: string;
  /** Kernel reports that appeared between the victim's start and its last word. */
  reports: KernelReport[];
  /** The kernel's log lines for the injected page ("Memory failure: 0xPFN: ...", "MCE 0xPFN: handled by dmem"). */
  logged: string[];
}

/**
 * The kernel log lines that say the error at `paddr` reached memory_failure() (or the series'
 * dmem handler): "Memory failure: 0xPFN: ..." and "MCE 0xPFN: handled by dmem". Without one, the
 * injection did not land, and a victim that saw nothing proves nothing.
 */
export async function injectionLogged(g: Guest, paddr: string | undefined): Promise<string[]> {
  if (!paddr || !/^0x[0-9a-f]+$/i.test(paddr)) return [];
  const pfn = `0x${Math.floor(Number(paddr) / 4096).toString(16)}`;
  return logMatches(g, new RegExp(`(Memory failure: ${pfn}:|MCE ${pfn}: )`));
}

/** The event a victim reported, where "timeout" counts only for an injection the kernel logged. */
export function victimOutcome(v: Pick<Injection, 'ready' | 'final' | 'logged'>): string {
  const event = v.final?.event ?? (v.ready ? (v.ready.paddr ? 'no final event' : 'no paddr') : 'victim did not start');
  return event === 'timeout' && v.logged.length === 0 ? 'injection not logged' : event;
}

export interface VictimOptions {
  accept?: (pa: number) => boolean;
  timeoutS?: number;
  extra?: string[];
}

/** Start mce-victim on `file` (spinning on vCPU 1), inject at its page, return its events and reports. */
export async function mceVictim(
  ctx: Pick<ScenarioContext, 'evidence'>,
  g: Guest,
  file: string,
  size: string,
  tag: string,
  opts: VictimOptions = {},
): Promise<Injection> {
  const mark = g.console.reports.length;
  const timeoutS = opts.timeoutS ?? 60;
  const log = `/tmp/victim-${tag}.json`;
  const argv = ['taskset', '-c', '1', 'mce-victim', '--spin', ...(file ? ['--file', file] : []), '--size', size];
  await g.exec(
    ['sh', '-c', 'log=$1; shift; "$@" > "$log" 2>&1 &', 'victim', log, ...argv, '--timeout', String(timeoutS)].concat(
      opts.extra ?? ['--create'],
    ),
    { check: true },
  );
  const readyLine = await waitForLine(g, log, /"event":"ready"/, 60_000);
  const ready = readyLine ? (JSON.parse(readyLine) as VictimEvent) : undefined;
  if (!ready) ctx.evidence(`mce-victim (${tag}) never got ready`, (await g.exec(['cat', log])).stdout.slice(-2000));
  let final: VictimEvent | undefined;
  let paddrSource = 'none';
  let logged: string[] = [];
  if (ready) {
    const found = await victimPaddr(g, ready, opts.accept ?? (() => true));
    paddrSource = found.source;
    if (found.paddr) {
      ready.paddr = found.paddr;
      const out = await g.qmp!.hmp(MCE_HMP(found.paddr));
      ctx.evidence(`HMP ${MCE_HMP(found.paddr)} (${tag})`, out || '(no output)');
      const finalLine = await waitForLine(g, log, /"event":"(sigbus|timeout)"/, (timeoutS + 30) * 1000);
      final = finalLine ? (JSON.parse(finalLine) as VictimEvent) : undefined;
      logged = await injectionLogged(g, found.paddr);
    }
  }
  // A report is complete 1.5 s after its last line (console-watch): let it settle.
  await g.console.settled();
  const reports = g.console.reports
    .slice(mark)
    .map((r) => ({ kind: r.kind, title: r.title, excerpt: r.excerpt.join('\n') }));
  return { ready, final, paddrSource, reports, logged };
}

/**
 * A hugetlbfs mount of 1 GiB pages with one page allocated at run time. At boot (hugepagesz=1G
 * hugepages=1) the allocation fails on the boots with max-ram-below-4g=1G and a dmem pool on each
 * node ("allocating 1 of page size 1.00 GiB failed"); later the page allocator finds one. Undefined
 * when it did, else why not.
 */
export async function oneGigHugePage(g: Guest, mnt: string): Promise<string | undefined> {
  const r = await g.exec([
    'sh',
    '-c',
    'n=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages; echo 1 > $n; cat $n; mkdir -p "$1" && ' +
      '(mountpoint -q "$1" || mount -t hugetlbfs -o pagesize=1G none "$1")',
    'huge1g',
    mnt,
  ]);
  if (r.code === 0 && r.stdout.trim().split('\n')[0] === '1') return undefined;
  const got = r.stdout.trim() || '?';
  return `no 1 GiB huge page could be allocated at run time (nr_hugepages ${got}; ${r.stderr.trim()})`;
}

/**
 * mceVictim on a mapping that is not dmemfs (a control), then the kernel's memory-failure lines
 * as evidence: the event the victim reported (or why there is none), its kernel reports, the log.
 */
export async function controlInjection(
  ctx: Pick<ScenarioContext, 'evidence'>,
  g: Guest,
  what: { label: string; file: string; size: string; tag: string; log: RegExp } & VictimOptions,
): Promise<{ event: string; note: string; reports: KernelReport[]; log: string[]; logged: string[] }> {
  const v = await mceVictim(ctx, g, what.file, what.size, what.tag, what);
  ctx.evidence(`victim on ${what.label}`, JSON.stringify(v));
  const log = await logMatches(g, what.log);
  ctx.evidence(`kernel log after the ${what.label} MCE`, log.slice(-12).join('\n'));
  return {
    event: victimOutcome(v),
    note: `${v.final?.si_code_name ?? v.paddrSource}; kernel: ${v.logged.join(' / ') || 'nothing logged for the page'}`,
    reports: v.reports,
    log,
    logged: v.logged,
  };
}
