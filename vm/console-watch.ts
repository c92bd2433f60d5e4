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
}

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
  readonly lines: ConsoleLine[] = [];
  readonly reports: Array<CrashReport & { fatal: boolean }> = [];
  private partial = '';
  private log: WriteStream | undefined;
  /** The report being read; `awaitsEnd` when it began after "[ cut here ]", so it ends with "---[ end trace". */
  private open: { kind: ReportKind; title: string; start: number; awaitsEnd: boolean } | undefined;
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

  feed(chunk: Buffer | string): void {
    const s = chunk.toString();
    this.log?.write(s);
    this.opts.mirror?.write(s);
    this.partial += s;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const raw = this.partial.slice(0, nl).replace(/\r$/, '');
      this.partial = this.partial.slice(nl + 1);
      this.addLine(raw);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.partial) this.addLine(this.partial);
    this.partial = '';
    this.closeReport();
    this.log?.end();
  }

  private addLine(raw: string): void {
    const { ts, text } = splitTimestamp(raw);
    const line: ConsoleLine = { index: this.lines.length, raw, text, ts, at: Date.now() };
    this.lines.push(line);
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
        this.armSettle();
        return;
      }
      this.closeReport(line.index);
    }
    const t = matchTrigger(raw);
    if (t) {
      const cut = CUT_HERE.test(this.lines[line.index - 1]?.raw ?? '');
      this.open = { kind: t.kind, title: t.title, start: line.index, awaitsEnd: cut };
      this.armSettle();
    }
  }

  private armSettle(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    const wait = this.open?.awaitsEnd ? this.settleMs * END_WAIT : this.settleMs;
    this.settleTimer = setTimeout(() => this.closeReport(), wait);
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
    const excerpt = this.lines
      .slice(Math.max(0, o.start - 5), end)
      .map((l) => l.raw)
      .slice(0, 90);
    const fatal = this.fatal.has(o.kind) && !this.allow.some((re) => re.test(o.title));
    const report = { kind: o.kind, title: o.title, excerpt, lineIndex: o.start, fatal };
    this.reports.push(report);
    this.emit('report', report);
    if (fatal) this.emit('crash', report);
  }

  /** The first fatal report so far. */
  firstCrash(): (CrashReport & { fatal: boolean }) | undefined {
    return this.reports.find((r) => r.fatal);
  }

  /** Resolve with the first line (past or future) matching `re`. */
  waitForLine(re: RegExp, timeoutMs: number, fromIndex = 0): Promise<ConsoleLine> {
    const past = this.lines.slice(fromIndex).find((l) => re.test(l.raw));
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
