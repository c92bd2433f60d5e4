/**
 * Process hygiene: every QEMU the rig starts is registered here and killed when the rig
 * exits for any reason (normal exit, error, SIGINT, SIGTERM, SIGHUP). QEMU is also started
 * under `setpriv --pdeathsig KILL`, so even a SIGKILL of the rig takes its guests down.
 */
import type { ChildProcess } from './exec.js';
import { existsSync } from 'node:fs';

const live = new Set<ChildProcess>();
/** Workers (make, tar, ...) started in their own process group: the whole group is killed. */
const groups = new Set<ChildProcess>();
let installed = false;
let exiting = false;
let graceful: (() => Promise<void>) | undefined;

/**
 * What to do on SIGINT/SIGTERM/SIGHUP before everything is killed: at most 5 s of clean stopping
 * (a shell's guest is stopped through QMP and its key removed). Undefined: kill at once.
 */
export function onInterrupt(stop: (() => Promise<void>) | undefined): void {
  install();
  graceful = stop;
}

function killAll(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const p of groups) {
    try {
      if (p.pid) process.kill(-p.pid, signal);
    } catch {
      /* already gone */
    }
  }
  for (const p of live) {
    try {
      if (p.pid) process.kill(p.pid, signal);
    } catch {
      /* already gone */
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => killAll('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (exiting) return;
      exiting = true;
      process.stderr.write(`[rig] ${sig}: stopping ${live.size} guest(s)\n`);
      const code = sig === 'SIGINT' ? 130 : sig === 'SIGTERM' ? 143 : 129;
      const hard = () => {
        killAll('SIGKILL');
        process.exit(code);
      };
      if (!graceful) return hard();
      // A command that can stop its guests cleanly (QMP quit, keys removed) gets 5 s to do it.
      const t = setTimeout(hard, 5000);
      graceful().finally(() => {
        clearTimeout(t);
        hard();
      });
    });
  }
}

export function track(p: ChildProcess): void {
  install();
  live.add(p);
  p.once('exit', () => live.delete(p));
}

/**
 * A long-running worker (make and its compilers, tar, dpkg-deb) spawned with
 * `detached: true`: its whole process group goes when the rig exits or is interrupted, so
 * an interrupted build never keeps writing into a work directory a rerun will use.
 */
export function trackGroup(p: ChildProcess): void {
  install();
  groups.add(p);
  p.once('exit', () => groups.delete(p));
}

export function liveCount(): number {
  return live.size;
}

/** Prefix for a child command so the kernel kills it when the rig dies (even by SIGKILL). */
export function deathSignalPrefix(): string[] {
  return existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : [];
}

/**
 * For QEMU: the death signal, and no core dump (a crashed QEMU would write its guest's RAM, gigabytes,
 * into the working directory where a runner allows cores). Both exec the command: its pid is QEMU's.
 */
export function qemuPrefix(): string[] {
  return [...(existsSync('/usr/bin/prlimit') ? ['/usr/bin/prlimit', '--core=0', '--'] : []), ...deathSignalPrefix()];
}

/** Install the handlers early (CLI start), so a signal during setup also cleans up. */
export function installHygiene(): void {
  install();
}
