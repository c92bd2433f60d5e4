/**
 * Recordings of real boots (`run --record`): every command a scenario ran in a guest, with what
 * it returned (or the error it raised) and how many console lines had been read when it did, and
 * the console itself. tests/helpers/replay-guest.ts answers a scenario body from one, so that its
 * sequencing, parsing and verdicts are unit-tested against what a real kernel said.
 */
export interface RecordedExec {
  argv: string[];
  /** Console lines read when the command returned (the replay feeds the console up to here first). */
  at: number;
  result?: { code: number | null; signal?: string; stdout: string; stderr: string };
  error?: { kind?: string; message: string };
}

/** A QMP command (HMP goes through human-monitor-command) with its answer, or its error. */
export interface RecordedQmp {
  command: string;
  args?: Record<string, unknown>;
  at: number;
  result?: unknown;
  error?: { kind?: string; message: string };
}

export interface GuestRecording {
  /** The scenario and the named boot (scenarios/boots.ts). */
  scenario: string;
  boot: string;
  accel: string;
  /** How many of execs the boot itself ran before the scenario had the guest (not the scenario's). */
  setup?: number;
  execs: RecordedExec[];
  /** The QMP commands, the same way (absent in recordings taken before QMP was recorded). */
  qmp?: RecordedQmp[];
  /** The console as read, one raw line each (the oldest may be gone past the watcher's line limit). */
  console: string[];
}

/** Output kept per command: enough for every parser the scenarios have. */
export const RECORDED_OUTPUT_MAX = 256 * 1024;

const cut = (s: string) => (s.length > RECORDED_OUTPUT_MAX ? s.slice(0, RECORDED_OUTPUT_MAX) : s);

export class ExecRecorder {
  readonly execs: RecordedExec[] = [];
  readonly qmp: RecordedQmp[] = [];

  qmpResult(command: string, args: Record<string, unknown> | undefined, at: number, result: unknown): void {
    this.qmp.push({ command, ...(args ? { args } : {}), at, result });
  }

  qmpError(command: string, args: Record<string, unknown> | undefined, at: number, e: unknown): void {
    const kind = (e as { kind?: unknown }).kind;
    const error = {
      ...(typeof kind === 'string' ? { kind } : {}),
      message: e instanceof Error ? e.message : String(e),
    };
    this.qmp.push({ command, ...(args ? { args } : {}), at, error });
  }

  result(
    argv: readonly string[],
    at: number,
    r: { code: number | null; signal?: string; stdout: string; stderr: string },
  ): void {
    this.execs.push({
      argv: [...argv],
      at,
      result: { code: r.code, ...(r.signal ? { signal: r.signal } : {}), stdout: cut(r.stdout), stderr: cut(r.stderr) },
    });
  }

  error(argv: readonly string[], at: number, e: unknown): void {
    const kind = (e as { kind?: unknown }).kind;
    this.execs.push({
      argv: [...argv],
      at,
      error: { ...(typeof kind === 'string' ? { kind } : {}), message: e instanceof Error ? e.message : String(e) },
    });
  }
}
