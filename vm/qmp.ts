/**
 * QMP client over a unix socket: greeting, capability negotiation, commands with ids,
 * asynchronous events, and HMP passthrough (human-monitor-command), e.g. for `mce`.
 */
import { connect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { RigError } from '../core/errors.js';

export type QmpMessage = Record<string, unknown>;

/** Splits a byte stream into QMP JSON messages (one per CRLF-terminated line). */
export class QmpFramer {
  private buf = '';
  push(chunk: string | Buffer): QmpMessage[] {
    this.buf += chunk.toString();
    const out: QmpMessage[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        throw new RigError('qmp-protocol', `QMP sent a line that is not JSON: ${line.slice(0, 200)}`);
      }
      if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
        throw new RigError('qmp-protocol', `QMP sent a non-object message: ${line.slice(0, 200)}`);
      }
      out.push(msg as QmpMessage);
    }
    return out;
  }
  /** Bytes received but not yet a whole message. */
  pending(): string {
    return this.buf;
  }
}

export function encodeCommand(execute: string, args: Record<string, unknown> | undefined, id: string): string {
  const msg: QmpMessage = { execute, id };
  if (args && Object.keys(args).length) msg.arguments = args;
  return JSON.stringify(msg) + '\r\n';
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends RigError {
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    desc: string,
  ) {
    super('qmp-error', `QMP ${command} failed: ${qmpClass}: ${desc}`);
  }
}

export class QmpClient extends EventEmitter {
  private socket: Socket | undefined;
  private readonly framer = new QmpFramer();
  private nextId = 1;
  private readonly waiting = new Map<
    string,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string }
  >();
  private greetingResolve: ((m: QmpMessage) => void) | undefined;
  readonly events: QmpEvent[] = [];
  greeting: QmpMessage | undefined;
  private closed = false;

  /** Connect (retrying while QEMU creates the socket), read the greeting, negotiate. */
  static async connect(path: string, timeoutMs = 15_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    while (Date.now() < deadline) {
      if (existsSync(path)) {
        try {
          const c = new QmpClient();
          await c.open(path, Math.max(1000, deadline - Date.now()));
          return c;
        } catch (e) {
          lastErr = e;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new RigError(
      'qmp-connect',
      `could not connect to QMP at ${path} within ${timeoutMs} ms: ${String(lastErr ?? 'socket never appeared')}`,
      {
        fix: 'check that QEMU started (see its stderr) and that the run directory is writable',
      },
    );
  }

  private open(path: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      this.socket = sock;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new RigError('qmp-connect', `no QMP greeting from ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.on('error', (e) => {
        clearTimeout(timer);
        this.failAll(e);
        reject(e);
      });
      sock.on('close', () => {
        this.closed = true;
        this.failAll(new RigError('qmp-closed', 'QMP connection closed (QEMU exited?)'));
        this.emit('close');
      });
      sock.on('data', (d) => {
        let msgs: QmpMessage[];
        try {
          msgs = this.framer.push(d);
        } catch (e) {
          this.emit('protocol-error', e);
          return;
        }
        for (const m of msgs) this.dispatch(m);
      });
      this.greetingResolve = (g) => {
        this.greeting = g;
        this.execute('qmp_capabilities')
          .then(() => {
            clearTimeout(timer);
            resolve();
          })
          .catch((e) => {
            clearTimeout(timer);
            reject(e);
          });
      };
    });
  }

  private dispatch(m: QmpMessage): void {
    if ('QMP' in m) {
      this.greetingResolve?.(m);
      this.greetingResolve = undefined;
      return;
    }
    if ('event' in m) {
      const ev = m as unknown as QmpEvent;
      this.events.push(ev);
      this.emit('event', ev);
      return;
    }
    const id = typeof m.id === 'string' ? m.id : undefined;
    const w = id ? this.waiting.get(id) : undefined;
    if (!w || !id) return;
    this.waiting.delete(id);
    if ('error' in m) {
      const err = m.error as { class?: string; desc?: string };
      w.reject(new QmpError(w.command, err.class ?? 'GenericError', err.desc ?? 'unknown error'));
    } else {
      w.resolve(m.return);
    }
  }

  private failAll(e: Error): void {
    for (const [id, w] of this.waiting) {
      this.waiting.delete(id);
      w.reject(e);
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    if (!this.socket || this.closed) return Promise.reject(new RigError('qmp-closed', `QMP ${command}: not connected`));
    const id = `rig-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new RigError('qmp-timeout', `QMP ${command} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        command,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket!.write(encodeCommand(command, args, id));
    });
  }

  /** Run an HMP command (e.g. "mce -b 0 9 ...") and return its text output. */
  hmp(commandLine: string, timeoutMs?: number, cpuIndex?: number): Promise<string> {
    return this.execute<string>(
      'human-monitor-command',
      { 'command-line': commandLine, ...(cpuIndex === undefined ? {} : { 'cpu-index': cpuIndex }) },
      timeoutMs,
    );
  }

  /** Wait for an event by name (already received ones count when `since` is given). */
  waitEvent(name: string, timeoutMs: number, since = this.events.length): Promise<QmpEvent> {
    const earlier = this.events.slice(since).find((e) => e.event === name);
    if (earlier) return Promise.resolve(earlier);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('event', on);
        reject(new RigError('qmp-timeout', `no QMP event ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (e: QmpEvent) => {
        if (e.event !== name) return;
        clearTimeout(timer);
        this.off('event', on);
        resolve(e);
      };
      this.on('event', on);
    });
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
  }
}
