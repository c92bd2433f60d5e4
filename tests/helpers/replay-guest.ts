/**
 * A guest that replays a recording of a real boot (vm/recording.ts, `run --record`): each command
 * a scenario runs is answered by the next recorded command with the same argument array, after
 * the console has been fed up to where it stood when that command returned, so that reports
 * appear between the same commands as they did. A command the recording does not have is an
 * error naming it: the body changed what it runs, and the recording must be taken again.
 */
import { readFileSync } from 'node:fs';
import { RigError, type ErrorKind } from '../../core/errors.js';
import type { BootPool } from '../../runner/boot-pool.js';
import type { AccelChoice } from '../../vm/accel.js';
import { ConsoleWatcher } from '../../vm/console-watch.js';
import type { GuestHandle } from '../../vm/guest-handle.js';
import type { GuestRecording, RecordedExec, RecordedQmp } from '../../vm/recording.js';
import type { ExecResult } from '../../vm/ssh.js';

export class ReplayGuest implements GuestHandle {
  private readonly watcher: ConsoleWatcher;
  private fed = 0;
  private readonly used = new Set<number>();
  readonly qmp: GuestHandle['qmp'];
  private readonly usedQmp = new Set<number>();
  readonly ssh = { upload: async () => undefined } as unknown as GuestHandle['ssh'];
  readonly opts: GuestHandle['opts'];
  readonly exitCode = undefined;

  constructor(private readonly rec: GuestRecording) {
    // A report closes 1 ms after its last line here: the replay's settled() waits for that, not 1.5 s.
    this.watcher = new ConsoleWatcher({ settleMs: 1 });
    const accel = { accel: rec.accel, reason: 'replayed', timeoutScale: rec.accel === 'tcg' ? 6 : 1 } as AccelChoice;
    this.opts = { accel, spec: { name: `${rec.scenario}-${rec.boot}` } };
    this.qmp = rec.qmp ? this.replayQmp(rec.qmp) : undefined;
    // The boot's own commands came before the scenario had the guest: not the body's to ask for.
    for (let i = 0; i < (rec.setup ?? 0); i++) this.used.add(i);
  }

  get console(): GuestHandle['console'] {
    const w = this.watcher;
    return {
      get reports() {
        return w.reports;
      },
      get lines() {
        return w.lines;
      },
      get reading() {
        return w.reading;
      },
      firstCrash: () => w.firstCrash(),
      settled: async () => {
        await new Promise((r) => setTimeout(r, 10));
      },
    } as unknown as GuestHandle['console'];
  }

  /** The commands of the recording that the replay never asked for. */
  unused(): RecordedExec[] {
    return this.rec.execs.filter((_, i) => !this.used.has(i));
  }

  async exec(argv: readonly string[]): Promise<ExecResult> {
    const want = JSON.stringify(argv);
    const i = this.rec.execs.findIndex((e, k) => !this.used.has(k) && JSON.stringify(e.argv) === want);
    if (i < 0) throw new Error(`replay ${this.opts.spec.name}: not in the recording: ${want}`);
    this.used.add(i);
    const e = this.rec.execs[i]!;
    this.feedTo(e.at);
    await new Promise((r) => setTimeout(r, 5)); // a report that closed meanwhile is read
    if (e.error) throw new RigError((e.error.kind ?? 'command-failed') as ErrorKind, e.error.message);
    const r = e.result!;
    return { argv: [...argv], code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: 0 };
  }

  /** QMP, and HMP through it, answered from the recording in order, as commands are; events are not recorded. */
  private replayQmp(calls: RecordedQmp[]): GuestHandle['qmp'] {
    const execute = async (command: string, args?: Record<string, unknown>) => {
      const want = JSON.stringify([command, args ?? null]);
      const i = calls.findIndex((c, k) => !this.usedQmp.has(k) && JSON.stringify([c.command, c.args ?? null]) === want);
      if (i < 0) throw new Error(`replay ${this.opts.spec.name}: QMP not in the recording: ${want}`);
      this.usedQmp.add(i);
      const c = calls[i]!;
      this.feedTo(c.at);
      await new Promise((r) => setTimeout(r, 5));
      if (c.error) throw new RigError((c.error.kind ?? 'qmp-error') as ErrorKind, c.error.message);
      return c.result;
    };
    return {
      execute,
      hmp: (line: string, _timeoutMs?: number, cpuIndex?: number) =>
        execute('human-monitor-command', {
          'command-line': line,
          ...(cpuIndex === undefined ? {} : { 'cpu-index': cpuIndex }),
        }),
      events: [],
      waitEvent: async (name: string) => {
        throw new Error(`replay: QMP events are not recorded (${name})`);
      },
    } as unknown as GuestHandle['qmp'];
  }

  failureReason(): Error | undefined {
    return undefined;
  }

  async stop(): Promise<void> {
    this.feedTo(this.rec.console.length);
  }

  private feedTo(line: number): void {
    const upTo = Math.min(line, this.rec.console.length);
    if (upTo > this.fed) this.watcher.feed(this.rec.console.slice(this.fed, upTo).join('\n') + '\n');
    this.fed = Math.max(this.fed, upTo);
  }
}

/** The recordings of a bundle's scenario, by boot name (DIR/recordings/*.json). */
export function loadRecordings(files: string[]): Map<string, GuestRecording> {
  const out = new Map<string, GuestRecording>();
  for (const f of files) {
    const rec = JSON.parse(readFileSync(f, 'utf8')) as GuestRecording;
    out.set(rec.boot, rec);
  }
  return out;
}

/** A boot pool whose boots are replays: the scenario context's ctx.boot(name) gets the recording of that boot. */
export function replayPool(recordings: Map<string, GuestRecording>): {
  pool: BootPool;
  guests: Map<string, ReplayGuest>;
} {
  const guests = new Map<string, ReplayGuest>();
  const pool = {
    boot: async (_scenario: string, name: string) => {
      const rec = recordings.get(name);
      if (!rec) throw new Error(`replay: no recording of boot ${name}`);
      let g = guests.get(name);
      const reused = Boolean(g);
      if (!g) guests.set(name, (g = new ReplayGuest(rec)));
      return { guest: g, reused };
    },
    current: () => undefined,
    stop: async () => undefined,
    testModule: async () => undefined,
    selftests: async () => undefined,
  } as unknown as BootPool;
  return { pool, guests };
}
