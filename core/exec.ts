/**
 * Running host commands: always an argument array, never a shell string. Failures carry
 * the command, the exit code and the tail of its output. Every host process the rig starts
 * starts here (the lint refuses node:child_process and execa anywhere else): run() and tryRun()
 * for a command whose result is awaited, spawnStreaming() for one whose output is read as it
 * comes (make, tar, QEMU), and startProcess() for one awaited with execa's own options
 * (timeouts, a clean environment) while it is tracked.
 */
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { execa, type Options as ExecaOptions, type ResultPromise } from 'execa';
import { accessSync, constants } from 'node:fs';
import { RigError } from './errors.js';
import { verbose } from './log.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function run(
  file: string,
  args: readonly string[],
  opts: ExecaOptions & { fix?: string; what?: string } = {},
): Promise<RunResult> {
  const { fix, what, ...execaOpts } = opts;
  verbose(`$ ${file} ${args.join(' ')}`);
  try {
    const r = await execa(file, args, { reject: true, stripFinalNewline: false, ...execaOpts });
    return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? 0 };
  } catch (e) {
    const err = e as {
      exitCode?: number;
      stderr?: unknown;
      stdout?: unknown;
      code?: string;
      shortMessage?: string;
      signal?: string;
    };
    if (err.code === 'ENOENT') {
      throw new RigError('missing-tool', `${file} is not installed`, {
        fix: fix ?? 'run `npm run setup` (installs the host packages the rig needs)',
      });
    }
    const out = `${String(err.stderr ?? '')}\n${String(err.stdout ?? '')}`.trim();
    throw new RigError(
      'command-failed',
      `${what ?? file} failed (${err.signal ? `signal ${err.signal}` : `exit ${err.exitCode}`}): ${file} ` +
        `${args.join(' ')}`,
      {
        ...(fix ? { fix } : {}),
        evidence: out.split('\n').slice(-30).join('\n'),
        cause: e,
      },
    );
  }
}

/** Like run(), but returns the result instead of throwing on a non-zero exit. */
export async function tryRun(
  file: string,
  args: readonly string[],
  opts: ExecaOptions = {},
): Promise<RunResult & { ok: boolean }> {
  try {
    const r = await execa(file, args, { reject: false, ...opts });
    return {
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? ''),
      exitCode: r.exitCode ?? -1,
      ok: r.exitCode === 0,
    };
  } catch (e) {
    return { stdout: '', stderr: String(e), exitCode: -1, ok: false };
  }
}

/** The full path of a command (as given when it contains a slash, else searched in PATH), or undefined. */
export function findTool(cmd: string): string | undefined {
  const candidates = cmd.includes('/')
    ? [cmd]
    : (process.env.PATH ?? '')
        .split(':')
        .filter(Boolean)
        .map((d) => `${d}/${cmd}`);
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Fail early, naming the tool and the setup step that installs it. */
export function requireTool(cmd: string, pkg: string): string {
  const p = findTool(cmd);
  if (!p)
    throw new RigError('missing-tool', `${cmd} is not installed (or not executable)`, {
      fix: `run the rig's setup step (npm run setup), which installs the Debian package ${pkg}`,
    });
  return p;
}

export type { ChildProcess } from 'node:child_process';

/**
 * A process whose output streams as it runs (make, tar, QEMU): node's spawn, with its overloads
 * (piped streams typed as present), the command logged.
 */
export const spawnStreaming = ((file: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess => {
  verbose(`$ ${file} ${args.join(' ')}`);
  return spawn(file, [...args], opts);
}) as typeof spawn;

/** execa's subprocess, awaited by the caller with its own options (a timeout, a clean environment). */
export function startProcess<O extends ExecaOptions>(
  file: string,
  args: readonly string[],
  opts: O,
): ResultPromise<{} & O> {
  verbose(`$ ${file} ${args.join(' ')}`);
  return execa(file, args, opts);
}

/** A short command's stdout, synchronously (for the few places that cannot await: a bundle's provenance). */
export function runSync(file: string, args: readonly string[], opts: { timeoutMs?: number } = {}): string {
  verbose(`$ ${file} ${args.join(' ')}`);
  return execFileSync(file, [...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
  });
}
