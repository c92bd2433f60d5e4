/**
 * Progress and log output. Everything goes to stderr so that stdout stays free for
 * machine-readable output (JSON, TAP). Three levels: quiet (errors and results only),
 * normal (progress), verbose (also streams guest consoles and commands).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type LogLevel = 'quiet' | 'normal' | 'verbose';

/** The worker a line comes from, when a run has several (runner/workers.ts). */
const worker = new AsyncLocalStorage<string>();

/** Run `fn` with every line it logs (and its callees log) prefixed by `name`. */
export function withLogPrefix<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return worker.run(name, fn);
}

const fromEnv = process.env.DMEMFS_RIG_LOG;
let level: LogLevel = fromEnv === 'quiet' || fromEnv === 'verbose' ? fromEnv : 'normal';

export function setLogLevel(l: LogLevel): void {
  level = l;
}
export function logLevel(): LogLevel {
  return level;
}

function stamp(): string {
  const w = worker.getStore();
  return `${new Date().toISOString().slice(11, 19)}${w ? ` ${w}` : ''}`;
}

export function info(msg: string): void {
  if (level !== 'quiet') process.stderr.write(`[rig ${stamp()}] ${msg}\n`);
}

export function verbose(msg: string): void {
  if (level === 'verbose') process.stderr.write(`[rig ${stamp()}] ${msg}\n`);
}

export function warn(msg: string): void {
  process.stderr.write(`[rig ${stamp()}] warning: ${msg}\n`);
}

/**
 * A progress reporter for long work (download, extract, build). It prints at most
 * every `intervalMs` (and always the final line), so CI logs stay readable.
 */
export class Progress {
  private last = 0;
  private readonly started = Date.now();
  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly unit = '',
    private readonly intervalMs = 10_000,
  ) {
    info(`${label}: started${total ? ` (${fmt(total)}${unit} expected)` : ''}`);
  }

  update(done: number, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < this.intervalMs) return;
    this.last = now;
    const secs = ((now - this.started) / 1000).toFixed(0);
    const pct = this.total ? ` (${Math.min(100, Math.floor((100 * done) / this.total))}%)` : '';
    info(`${this.label}: ${fmt(done)}${this.total ? `/${fmt(this.total)}` : ''}${this.unit}${pct} after ${secs}s`);
  }

  done(summary = 'done'): number {
    const secs = (Date.now() - this.started) / 1000;
    info(`${this.label}: ${summary} in ${secs.toFixed(1)}s`);
    return secs;
  }
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
