/**
 * Live watcher of a guest's serial console: every byte goes to a log file; complete lines
 * are checked for crash reports as they arrive. A fatal report is announced as soon as it
 * is complete (end marker, 1.5 s without new lines, 80 lines, or end of stream), so a
 * panic fails the run in seconds, not at a timeout.
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import {
  CONTINUATIONS,
  panicTitle,
  DEFAULT_FATAL,
  isEndMarker,
  matchTrigger,
  splitTimestamp,
  type CrashReport,
  type ReportKind,
} from './crash-patterns.js';
import { RigError } from '../core/errors.js';

export interface ConsoleWatchOptions {
  logPath?: string;
  fatal?: ReadonlySet<ReportKind>;
  /** Reports whose title matches one of these are recorded but not fatal (expected by a scenario). */
  allow?: RegExp[];
  /** Mirror console text to this stream (verbose mode). */
  mirror?: NodeJS.WritableStream;
  settleMs?: number;
  /** Lines kept in memory (the oldest go first, never those of a report being read). */
  maxLines?: number;
  /** Bytes written to the log file; past it, the rest is counted and said at the end. */
  maxLogBytes?: number;
}

/** A guest that floods its console: 20 000 lines in memory and 64 MiB on disk, per boot. */
export const CONSOLE_MAX_LINES = 20_000;
export const CONSOLE_MAX_LOG_BYTES = 64 << 20;
/** The longest line kept whole; a longer run of bytes without a newline is cut. */
const MAX_LINE = 16_384;
/** Reports kept per boot; more are counted (a flood of WARNINGs). */
const MAX_REPORTS = 500;

export interface ConsoleLine {
  index: number;
  raw: string;
  text: string;
  ts: number | undefined;
  /** Host time (ms since epoch) when the line was complete. */
  at: number;
}

const CUT_HERE = /-{3,}\[ cut here \]-{3,}/;
/** How many settle times a report that ends with its own end marker may wait for it. */
const END_WAIT = 6;

export class ConsoleWatcher extends EventEmitter {
  /** The lines kept: the last maxLines of them (line.index counts from the first line of the boot). */
  readonly lines: ConsoleLine[] = [];
  readonly reports: Array<CrashReport & { fatal: boolean }> = [];
  /** What a flood cost: lines dropped from memory, bytes not written to the log, reports not kept. */
  readonly dropped = { lines: 0, logBytes: 0, reports: 0 };
  private logBytes = 0;
  private partial = '';
  private log: WriteStream | undefined;
  /** The report being read; `awaitsEnd` when it began after "[ cut here ]", so it ends with "---[ end trace". */
  private open: { kind: ReportKind; title: string; start: number; awaitsEnd: boolean; panicked: boolean } | undefined;
  /** The last report closed: a panic soon after it is its consequence (panicTitle). */
  private lastClosed: { title: string; endLine: number } | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private readonly fatal: ReadonlySet<ReportKind>;
  private readonly allow: RegExp[];
  /**
   * A report is complete this long after its last line; one that ends with its own end marker
   * (a WARNING or BUG after "[ cut here ]") waits END_WAIT times as long for it, since a busy
   * TCG guest can pause its console for seconds in the middle of a Call Trace.
   */
  readonly settleMs: number;
  private ended = false;

  constructor(private readonly opts: ConsoleWatchOptions = {}) {
    super();
    this.fatal = opts.fatal ?? DEFAULT_FATAL;
    this.allow = opts.allow ?? [];
    this.settleMs = opts.settleMs ?? 1500;
    if (opts.logPath) this.log = createWriteStream(opts.logPath, { flags: 'a', mode: 0o600 });
  }

  /** Allow more report titles while running (a scenario step that expects a trace). */
  allowTitles(...res: RegExp[]): void {
    this.allow.push(...res);
  }

  /** Every line so far, dropped ones included: the index the next line gets. */
  get lineCount(): number {
    return this.dropped.lines + this.lines.length;
  }

  /** The kept line with this (whole-boot) index. */
  lineAt(index: number): ConsoleLine | undefined {
    return this.lines[index - this.dropped.lines];
  }

  /** The kept lines from this (whole-boot) index on. */
  linesFrom(index: number): ConsoleLine[] {
    return this.lines.slice(Math.max(0, index - this.dropped.lines));
  }

  /** "console flooded: N bytes dropped" when the log was cut, else undefined. */
  floodNote(): string | undefined {
    const d = this.dropped;
    if (!d.logBytes && !d.reports) return undefined;
    const cap = this.opts.maxLogBytes ?? CONSOLE_MAX_LOG_BYTES;
    return (
      `console flooded: ${d.logBytes} bytes dropped from the log (after ${cap} bytes), ` +
      `${d.lines} lines from memory, ${d.reports} reports not kept`
    );
  }

  private writeLog(s: string): void {
    if (!this.log) return;
    const cap = this.opts.maxLogBytes ?? CONSOLE_MAX_LOG_BYTES;
    const n = Buffer.byteLength(s);
    if (this.logBytes + n <= cap) this.log.write(s);
    else {
      const room = Math.max(0, cap - this.logBytes);
      if (room) this.log.write(Buffer.from(s).subarray(0, room));
      this.dropped.logBytes += n - room;
    }
    this.logBytes += n;
  }

  /** When the guest last wrote to its console (ms since epoch; 0 before its first byte). */
  lastOutputAt = 0;

  feed(chunk: Buffer | string): void {
    this.lastOutputAt = Date.now();
    const s = chunk.toString();
    this.writeLog(s);
    this.opts.mirror?.write(s);
    this.partial += s;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const raw = this.partial.slice(0, nl).replace(/\r$/, '');
      this.partial = this.partial.slice(nl + 1);
      this.addLine(raw);
    }
    // Output that never ends its line (a flood of bytes) is cut into lines of MAX_LINE characters.
    while (this.partial.length > MAX_LINE) {
      this.addLine(this.partial.slice(0, MAX_LINE));
      this.partial = this.partial.slice(MAX_LINE);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.partial) this.addLine(this.partial);
    this.partial = '';
    this.closeReport();
    const note = this.floodNote();
    if (note) this.log?.write(`\n[dmemfs-rig] ${note}\n`);
    this.log?.end();
  }

  private addLine(raw: string): void {
    const { ts, text } = splitTimestamp(raw);
    const line: ConsoleLine = { index: this.lineCount, raw, text, ts, at: Date.now() };
    this.lines.push(line);
    this.trim();
    this.emit('line', line);
    if (this.open) {
      if (isEndMarker(raw) || line.index - this.open.start >= 80) {
        this.closeReport();
        return;
      }
      // Another report's header (a lockdep WARNING right after a sleeping-in-atomic BUG, say)
      // closes the open one there and opens its own: as findReports does offline.
      const next = matchTrigger(raw);
      if (!(next && !CONTINUATIONS.has(next.kind) && line.index - this.open.start > 2)) {
        if (next?.kind === 'panic') this.open.panicked = true;
        this.armSettle();
        return;
      }
      this.closeReport(line.index);
    }
    const t = matchTrigger(raw);
    if (t) {
      const cut = CUT_HERE.test(this.lineAt(line.index - 1)?.raw ?? '');
      const title = t.kind === 'panic' ? panicTitle(t.title, this.lastClosed, line.index) : t.title;
      this.open = { kind: t.kind, title, start: line.index, awaitsEnd: cut, panicked: t.kind === 'panic' };
      this.armSettle();
    }
  }

  private armSettle(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    const wait = this.open?.awaitsEnd ? this.settleMs * END_WAIT : this.settleMs;
    this.settleTimer = setTimeout(() => this.closeReport(), wait);
  }

  /** Drop the oldest lines past maxLines, but none of a report being read (its excerpt stays whole). */
  private trim(): void {
    const max = this.opts.maxLines ?? CONSOLE_MAX_LINES;
    const over = this.lines.length - max;
    if (over <= 0) return;
    const keepFrom = this.open ? this.open.start - 5 : Infinity;
    const n = Math.min(over + Math.floor(max / 10), Math.max(0, keepFrom - this.dropped.lines));
    if (n <= 0) return;
    this.lines.splice(0, n);
    this.dropped.lines += n;
  }

  /** Whether a report is still being read (its lines may still come). */
  get reading(): boolean {
    return this.open !== undefined;
  }

  /**
   * Resolves when the reports of what just ran are complete: the settle time has passed and no
   * report is still open (one waiting for its end marker closes at it, or at its longer bound).
   */
  async settled(): Promise<void> {
    await new Promise((r) => setTimeout(r, this.settleMs + 500));
    while (this.open && !this.ended) await new Promise((r) => setTimeout(r, 200));
  }

  /** Close the open report; its excerpt ends before line `end` (another report's start) or at the last line. */
  private closeReport(end?: number): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    const o = this.open;
    if (!o) return;
    this.open = undefined;
    const excerpt = this.linesFrom(o.start - 5)
      .slice(0, end === undefined ? undefined : end - Math.max(this.dropped.lines, o.start - 5))
      .map((l) => l.raw)
      .slice(0, 90);
    const fatalKind = this.fatal.has(o.kind) || (o.panicked && this.fatal.has('panic'));
    const fatal = fatalKind && !this.allow.some((re) => re.test(o.title));
    const endLine = end ?? this.lineCount;
    this.lastClosed = { title: o.title, endLine };
    const report = {
      kind: o.kind,
      title: o.title,
      excerpt,
      lineIndex: o.start,
      endLine,
      ...(o.panicked ? { panicked: true } : {}),
      fatal,
    };
    // A flood of reports keeps the first MAX_REPORTS (and every fatal one), and counts the rest.
    if (this.reports.length < MAX_REPORTS || fatal) this.reports.push(report);
    else this.dropped.reports++;
    this.emit('report', report);
    if (fatal) this.emit('crash', report);
  }

  /** The first fatal report so far. */
  firstCrash(): (CrashReport & { fatal: boolean }) | undefined {
    return this.reports.find((r) => r.fatal);
  }

  /** Resolve with the first line (past or future) matching `re`. */
  waitForLine(re: RegExp, timeoutMs: number, fromIndex = 0): Promise<ConsoleLine> {
    const past = this.linesFrom(fromIndex).find((l) => re.test(l.raw));
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('line', on);
        reject(
          new RigError('console-timeout', `console did not show ${re} within ${timeoutMs} ms`, {
            evidence: this.tail(15),
          }),
        );
      }, timeoutMs);
      const on = (l: ConsoleLine) => {
        if (!re.test(l.raw)) return;
        clearTimeout(timer);
        this.off('line', on);
        resolve(l);
      };
      this.on('line', on);
    });
  }

  tail(n: number): string {
    return this.lines
      .slice(-n)
      .map((l) => l.raw)
      .join('\n');
  }

  text(): string {
    return this.lines.map((l) => l.raw).join('\n');
  }
}

export function crashError(r: CrashReport): RigError {
  return new RigError(`kernel-${r.kind}`, `guest kernel ${r.kind}: ${r.title}`, {
    fix: 'see the console excerpt; the full console log is in the run directory',
    evidence: r.excerpt.join('\n'),
  });
}
