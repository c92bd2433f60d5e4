/** The rig's CLI as a child process: run to the end, or interrupt it at a chosen moment. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';

export const CLI = join(projectRoot(), 'dist', 'scripts', 'cli.js');

/** Shell: take $1 pids with short-lived processes, then shift it away. */
const SKIP_PIDS = 'n=$1; shift; while [ "$n" -gt 0 ]; do /bin/true; n=$((n - 1)); done;';

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
    /**
     * Run it as in a container: its own pid namespace and /proc, the same disk and boot
     * (util-linux unshare); its own hostname if given, else the host's (as with docker's
     * --uts=host). The rig is pid 1 there, or a later pid after `skipPids` short-lived processes.
     */
    container?: { hostname?: string; skipPids?: number };
    /** Called with stderr so far on each chunk. */
    onStderr?: (stderr: string) => void;
  } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    const started = Date.now();
    const c = opts.container;
    const argv = c
      ? [
          ...['unshare', '--pid', '--fork', '--mount', '--mount-proc', ...(c.hostname ? ['--uts'] : []), '--'],
          // After skipped pids the rig runs as the shell's child (exec would keep the shell's pid 1).
          ...[
            'sh',
            '-c',
            `${c.hostname ? 'hostname "$1" && ' : ''}shift && ${SKIP_PIDS} ${c.skipPids ? '' : 'exec '}"$@"`,
          ],
          ...['container', c.hostname ?? '-', String(c.skipPids ?? 0), process.execPath, CLI, ...args],
        ]
      : [process.execPath, CLI, ...args];
    const p = spawn(argv[0]!, argv.slice(1), {
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
      opts.onStderr?.(stderr);
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
