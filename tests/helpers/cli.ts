/** The rig's CLI as a child process: run to the end, or interrupt it at a chosen moment. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';

export const CLI = join(projectRoot(), 'dist', 'scripts', 'cli.js');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Whether the `at` pattern was seen (and the signal sent). */
  interrupted: boolean;
  seconds: number;
}

/**
 * Run `dmemfs-rig args...`. With `interrupt`, send `signal` once stderr matches `at` (after
 * `delayMs`); the run is killed outright after `timeoutMs` either way.
 */
export function rigCli(
  args: string[],
  opts: {
    env?: Record<string, string>;
    interrupt?: { at: RegExp; signal: NodeJS.Signals; delayMs?: number };
    timeoutMs?: number;
  } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    const started = Date.now();
    const p = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    const hard = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 20 * 60_000);
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (opts.interrupt && !interrupted && opts.interrupt.at.test(stderr)) {
        interrupted = true;
        setTimeout(() => p.kill(opts.interrupt!.signal), opts.interrupt.delayMs ?? 0);
      }
    });
    p.on('close', (code, signal) => {
      clearTimeout(hard);
      resolve({ code, signal, stdout, stderr, interrupted, seconds: (Date.now() - started) / 1000 });
    });
  });
}
