/**
 * One running guest: QEMU started from a MachineSpec, its console watched, QMP connected,
 * SSH logged in. Any fatal console report or an early QEMU exit fails whatever the guest
 * is doing at that moment (boot wait or a command), with the console excerpt as evidence.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import { requireTool } from '../core/exec.js';
import { info, logLevel, verbose, warn } from '../core/log.js';
import { makePrivateRunDir } from '../core/paths.js';
import { TCG_TIMEOUT_SCALE, type AccelChoice } from './accel.js';
import { ConsoleWatcher, crashError } from './console-watch.js';
import { NESTED_KVM_ARTIFACTS } from './crash-patterns.js';
import { OVMF_IMAGE, qemuArgs, type MachineSpec } from './machine-spec.js';
import { checkHostMemory, type MemoryGate } from './host-memory.js';
import { freeLoopbackPort, isHostFwdBindError } from './ports.js';
import { qemuPrefix, track } from '../core/processes.js';
import { QmpClient } from './qmp.js';
import { generateRunKey, publicKeyBlob, SshSession, type ExecOptions, type ExecResult, type KeyPair } from './ssh.js';
import type { CrashReport, ReportKind } from './crash-patterns.js';

/** How long after "sshd started" a login may take before the boot counts as stalled. */
export const LOGIN_STALL_MS = 30_000;

/**
 * How long a booting guest's console may stay silent before the boot counts as stalled. Normal
 * boots of every kernel the rig runs never pause more than 2.2 s between console lines, TCG
 * included (measured on 60 consoles); a stall seen rarely under TCG (the stock kernel stopped
 * after its quota line for two minutes) would otherwise cost the whole boot timeout and fail.
 */
export const BOOT_QUIET_MS = 45_000;

/** Boot failures that get one more boot (Guest.start). */
export const RETRIED_BOOT_FAILURES: ReadonlySet<string> = new Set(['ssh-login-failed', 'boot-stalled', 'boot-reset']);

/** Whether a guest that has not reached its SSH server has been silent for BOOT_QUIET_MS. */
export function bootQuiet(
  lines: readonly { raw: string; at: number }[],
  spawnedAt: number,
  now: number,
  quietMs = BOOT_QUIET_MS,
): number | undefined {
  if (lines.some((l) => /rig-init: sshd started/.test(l.raw))) return undefined;
  const last = lines.at(-1)?.at ?? spawnedAt;
  return now - last >= quietMs ? now - last : undefined;
}

export function qemuBinary(): string {
  return process.env.DMEMFS_RIG_QEMU ?? 'qemu-system-x86_64';
}

export interface GuestOptions {
  /** The machine without SSH forwarding (the launcher adds it). */
  spec: MachineSpec;
  accel: AccelChoice;
  /** Whether to wait for SSH (the guest image reads its key from rig.key= on the command line). */
  ssh?: boolean;
  /** Seconds to reach SSH under KVM; multiplied by accel.timeoutScale. */
  bootTimeoutSec?: number;
  /** Console report titles that a scenario expects (recorded, not fatal). */
  consoleAllow?: RegExp[];
  fatalKinds?: ReadonlySet<ReportKind>;
  /** Called when QEMU has been spawned (pid known). */
  onSpawn?: (pid: number) => void;
  /** Called once QMP is connected, before SSH (fault tests reset the guest through it). */
  onQmp?: (qmp: QmpClient) => void;
  /** Console silence before SSH that counts as a stalled boot (default BOOT_QUIET_MS). */
  bootQuietMs?: number;
  /** Where the SSH forward's host port comes from (default: a free loopback port, probed). */
  pickPort?: () => Promise<number>;
  /** The run's shared host memory (several workers): the boot waits for its RAM there. */
  memory?: MemoryGate;
}

export interface BootTimings {
  /** Host ms from spawn to first successful SSH command. */
  spawnedAt: number;
  sshReadyAt?: number;
}

export class Guest {
  readonly runDir: string;
  readonly console: ConsoleWatcher;
  readonly key: KeyPair;
  readonly args: string[];
  readonly timings: BootTimings;
  /** Earlier boots of this guest that stalled: the reason and where their console is. */
  readonly restarts: string[] = [];
  qmp: QmpClient | undefined;
  ssh: SshSession | undefined;
  private proc: ChildProcess | undefined;
  private stderr = '';
  private failure: RigError | undefined;
  private failureWaiters: Array<(e: RigError) => void> = [];
  exitCode: number | null | undefined;
  private exited: Promise<void>;
  private resolveExited!: () => void;

  private constructor(
    readonly opts: GuestOptions,
    runDir: string,
    key: KeyPair,
    args: string[],
  ) {
    this.runDir = runDir;
    this.key = key;
    this.args = args;
    this.timings = { spawnedAt: 0 };
    this.console = new ConsoleWatcher({
      logPath: join(runDir, 'console.log'),
      // 1.5 s between the lines of one report, stretched for a slower kernel (a debug build under
      // TCG paused 2-3 s inside a report and split it: its Call Trace became a report of its own).
      settleMs: 1500 * Math.max(1, opts.accel.timeoutScale / TCG_TIMEOUT_SCALE),
      allow: [...(opts.consoleAllow ?? []), ...(opts.accel.nested ? NESTED_KVM_ARTIFACTS.map((a) => a.title) : [])],
      ...(opts.fatalKinds ? { fatal: opts.fatalKinds } : {}),
      // The console's bound per boot (default 64 MiB on disk), for a runner's disk or a test.
      ...(Number(process.env.DMEMFS_RIG_CONSOLE_MAX_MIB) > 0
        ? { maxLogBytes: Number(process.env.DMEMFS_RIG_CONSOLE_MAX_MIB) * 1048576 }
        : {}),
      ...(logLevel() === 'verbose' ? { mirror: process.stderr } : {}),
    });
    this.exited = new Promise((r) => (this.resolveExited = r));
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Start QEMU and (unless ssh:false) wait for an SSH login. */
  static async start(opts: GuestOptions): Promise<Guest> {
    const release = opts.memory ? await opts.memory.acquire(opts.spec) : undefined;
    try {
      const g = await Guest.startHeld(opts);
      if (release) g.releaseMemory = release;
      return g;
    } catch (e) {
      release?.();
      throw e;
    }
  }

  /** Called when QEMU has exited: gives the run's memory gate back this guest's RAM. */
  private releaseMemory: () => void = () => undefined;

  private static async startHeld(opts: GuestOptions): Promise<Guest> {
    const restarts: string[] = [];
    for (let attempt = 1; ; attempt++) {
      const g = await Guest.spawnOnce(opts);
      try {
        await g.waitReady();
        g.restarts.push(...restarts);
        return g;
      } catch (e) {
        await g.stop();
        // A port taken between our probe and QEMU's bind: pick another one.
        if (attempt < 3 && isHostFwdBindError(g.stderr)) {
          info(`${opts.spec.name}: forwarded port was taken, retrying with another`);
          continue;
        }
        // A boot that stalled (silent console, or SSH up and no login) or reset without a kernel
        // report: one more boot, said aloud. A kernel that does it every time fails on the second
        // boot with the same evidence.
        if (attempt < 2 && e instanceof RigError && RETRIED_BOOT_FAILURES.has(e.kind)) {
          warn(`${e.message}; booting once more (evidence of the first boot: ${g.runDir}/console.log)`);
          restarts.push(`${e.kind}: ${e.message} (console: ${g.runDir}/console.log)`);
          continue;
        }
        throw e;
      }
    }
  }

  private static async spawnOnce(opts: GuestOptions): Promise<Guest> {
    // With a gate, the run's budget was checked when the RAM was held (other guests use some now).
    if (!opts.memory) checkHostMemory(opts.spec);
    requireTool(qemuBinary(), 'qemu-system-x86');
    if (opts.spec.firmware === 'efi' && !existsSync(OVMF_IMAGE))
      throw new RigError('missing-tool', `${opts.spec.name} boots through UEFI, but ${OVMF_IMAGE} is missing`, {
        fix: "run `npm run setup` (it installs Debian's ovmf)",
      });
    const runDir = makePrivateRunDir(opts.spec.name);
    const key = generateRunKey(runDir, `dmemfs-rig-${opts.spec.name}`);
    const spec: MachineSpec = { ...opts.spec, append: [...opts.spec.append], forwards: [...opts.spec.forwards] };
    if (opts.ssh !== false) {
      const port = await (opts.pickPort ?? freeLoopbackPort)();
      spec.forwards.push({ hostPort: port, guestPort: 22 });
      spec.append.push(`rig.key=${publicKeyBlob(key.publicKey).blob}`);
    }
    const args = qemuArgs(spec, {
      accel: opts.accel.accel,
      qmpSocket: join(runDir, 'qmp.sock'),
      pidFile: join(runDir, 'qemu.pid'),
    });
    writeFileSync(join(runDir, 'qemu-args.json'), JSON.stringify([qemuBinary(), ...args], null, 1), { mode: 0o600 });
    const g = new Guest({ ...opts, spec }, runDir, key, args);
    g.spawn();
    return g;
  }

  private spawn(): void {
    const argv = [...qemuPrefix(), qemuBinary(), ...this.args];
    verbose(`spawn: ${argv.join(' ')}`);
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    this.timings.spawnedAt = Date.now();
    track(p);
    p.stdout!.on('data', (d: Buffer) => this.console.feed(d));
    p.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 65536) this.stderr = this.stderr.slice(-65536);
    });
    p.on('error', (e) =>
      this.fail(
        new RigError('qemu-spawn', `could not start ${argv[0]}: ${e.message}`, {
          fix: 'run `npm run setup` to install qemu-system-x86',
        }),
      ),
    );
    p.on('exit', (code, signal) => {
      this.exitCode = code;
      this.console.end();
      this.releaseMemory();
      this.resolveExited();
      if (!this.stopping) {
        const crash = this.console.firstCrash();
        // QEMU runs with -no-reboot: exit 0 before SSH and without a kernel report is a reset
        // during the boot (seen under nested SVM on TCG: the inner guest reset half way).
        const reset = !crash && code === 0 && !signal && !this.timings.sshReadyAt;
        this.fail(
          crash
            ? crashError(crash)
            : reset
              ? new RigError('boot-reset', 'the guest reset during its boot, without a kernel report', {
                  evidence: this.console.tail(20),
                })
              : qemuExitError(code, signal, [this.stderr.trim(), this.console.tail(20)]),
        );
      }
    });
    this.console.on('crash', (r: CrashReport) => this.fail(crashError(r)));
    if (p.pid) this.opts.onSpawn?.(p.pid);
    info(`${this.opts.spec.name}: QEMU started (pid ${p.pid}, ${this.opts.accel.accel}), run dir ${this.runDir}`);
  }

  private stopping = false;

  private fail(e: RigError): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.failureWaiters) w(e);
    this.failureWaiters = [];
    // A crashed guest is of no further use: stop it now, so nothing waits on it.
    if (this.proc && this.exitCode === undefined) this.kill();
  }

  /** A promise that rejects when the guest fails (crash, unexpected exit). Never resolves. */
  failed(): Promise<never> {
    const p = new Promise<never>((_, reject) => {
      if (this.failure) reject(this.failure);
      else this.failureWaiters.push(reject);
    });
    p.catch(() => undefined);
    return p;
  }

  failureReason(): RigError | undefined {
    return this.failure;
  }

  private bootTimeoutMs(): number {
    return (this.opts.bootTimeoutSec ?? 20) * this.opts.accel.timeoutScale * 1000;
  }

  /**
   * The guest said its SSH server started LOGIN_STALL_MS ago and no login has succeeded: a
   * stalled boot (seen rarely under TCG), reported at once so the caller boots again instead of
   * waiting for the whole boot timeout.
   */
  private loginStall(): RigError | undefined {
    const up = this.console.lines.find((l) => /rig-init: sshd started/.test(l.raw));
    if (!up || Date.now() - up.at < LOGIN_STALL_MS) return undefined;
    return new RigError(
      'ssh-login-failed',
      `${this.opts.spec.name}: the guest started its SSH server ${Math.round((Date.now() - up.at) / 1000)} s ago ` +
        'and no login succeeded',
      { fix: 'a rare stall of the guest; booting again usually passes', evidence: this.console.tail(25) },
    );
  }

  /** The console has been silent for BOOT_QUIET_MS before the SSH server started. */
  private bootStall(): RigError | undefined {
    const quiet = bootQuiet(this.console.lines, this.timings.spawnedAt, Date.now(), this.opts.bootQuietMs);
    if (quiet === undefined) return undefined;
    return new RigError(
      'boot-stalled',
      `${this.opts.spec.name}: the console has been silent for ${Math.round(quiet / 1000)} s ` +
        'before the SSH server started',
      { fix: 'a rare stall of the guest; booting again usually passes', evidence: this.console.tail(25) },
    );
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + this.bootTimeoutMs();
    const qmpP = QmpClient.connect(join(this.runDir, 'qmp.sock'), 15_000 * Math.min(this.opts.accel.timeoutScale, 3));
    this.qmp = await Promise.race([qmpP, this.failed()]);
    this.opts.onQmp?.(this.qmp);
    if (this.opts.ssh === false) return;
    const port = this.opts.spec.forwards.find((f) => f.guestPort === 22)!.hostPort;
    info(
      `${this.opts.spec.name}: waiting for SSH on 127.0.0.1:${port} (timeout ` +
        `${Math.round(this.bootTimeoutMs() / 1000)}s)`,
    );
    try {
      this.ssh = await Promise.race([
        SshSession.connect({
          port,
          privateKey: this.key.privateKey,
          deadline,
          abort: () => this.failure ?? this.loginStall() ?? this.bootStall(),
        }),
        this.failed(),
      ]);
    } catch (e) {
      if (e instanceof RigError && e.kind === 'ssh-timeout') {
        const sshdUp = this.console.lines.some((l) => /rig-init: sshd started/.test(l.raw));
        throw new RigError(
          sshdUp ? 'ssh-login-failed' : 'boot-timeout',
          `${this.opts.spec.name}: no SSH within ` +
            `${Math.round(this.bootTimeoutMs() / 1000)}s${sshdUp ? ' although the guest started its SSH server' : ''}`,
          {
            fix: 'see the console tail below; raise bootTimeoutSec for slow hosts',
            evidence: `${e.message}\n--- console ---\n${this.console.tail(25)}`,
          },
        );
      }
      throw e;
    }
    // The first successful command marks readiness (a handshake alone could be slirp's).
    await this.exec(['true'], { check: true, timeoutMs: 30_000 * this.opts.accel.timeoutScale });
    this.timings.sshReadyAt = Date.now();
    info(
      `${this.opts.spec.name}: SSH ready after ` +
        `${((this.timings.sshReadyAt - this.timings.spawnedAt) / 1000).toFixed(1)}s`,
    );
  }

  /** Run a command in the guest; fails at once if the guest crashes meanwhile. */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (!this.ssh) throw new RigError('no-ssh', `${this.opts.spec.name}: SSH is not connected`);
    if (this.failure) throw this.failure;
    if (this.ssh.isDropped && this.exitCode === undefined) await this.reconnect();
    const scaled = {
      ...opts,
      timeoutMs: (opts.timeoutMs ?? 60_000) * (opts.timeoutMs ? 1 : this.opts.accel.timeoutScale),
    };
    try {
      return await Promise.race([this.ssh.exec(argv, scaled), this.failed()]);
    } catch (e) {
      // A dropped connection or a hang is often the symptom of a crash whose report is still
      // arriving on the console: give the console a moment to say so, and report the cause.
      if (e instanceof RigError && (e.kind === 'ssh-dropped' || e.kind === 'ssh-exec-timeout')) {
        const cause = await Promise.race([
          this.failed().catch((f: RigError) => f),
          new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000)),
        ]);
        if (cause) throw cause;
        throw new RigError(e.kind, e.message, { fix: e.fix ?? 'see the console log', evidence: this.console.tail(20) });
      }
      throw e;
    }
  }

  /**
   * A new SSH session after the previous one was lost while QEMU and the guest kernel live
   * on. The command that was running when it dropped has already failed (its outcome is
   * unknown); later commands run on the new session.
   */
  private async reconnect(): Promise<void> {
    const port = this.opts.spec.forwards.find((f) => f.guestPort === 22)!.hostPort;
    warn(`${this.opts.spec.name}: the SSH connection was lost; reconnecting`);
    this.ssh?.close();
    this.ssh = await Promise.race([
      SshSession.connect({
        port,
        privateKey: this.key.privateKey,
        deadline: Date.now() + 60_000 * this.opts.accel.timeoutScale,
        abort: () => this.failure,
      }),
      this.failed(),
    ]);
    this.reconnects++;
  }

  /** How often the SSH session had to be re-established. */
  reconnects = 0;

  /** Seconds (printk clock) at which the kernel started init, from the console. */
  async kernelInitSeconds(timeoutMs = 5000): Promise<number | undefined> {
    const l = await this.console.waitForLine(/Run \S+ as init process/, timeoutMs).catch(() => undefined);
    return l?.ts;
  }

  private kill(): void {
    try {
      if (this.proc?.pid) process.kill(this.proc.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }

  /** Stop QEMU: QMP quit, then SIGKILL after a grace period. Removes the run's private key. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.ssh?.close();
    if (this.exitCode === undefined && this.proc) {
      if (this.qmp) await this.qmp.execute('quit', undefined, 2000).catch(() => undefined);
      const t = setTimeout(() => this.kill(), 3000);
      await this.exited;
      clearTimeout(t);
    }
    this.qmp?.close();
    this.console.end();
    rmSync(this.key.privateKeyPath, { force: true });
    this.releaseMemory();
  }

  stderrText(): string {
    return this.stderr;
  }
}

/** Signals that mean QEMU itself crashed (a fault or an assertion of its own), not that it was stopped. */
const QEMU_CRASH_SIGNALS: ReadonlySet<string> = new Set([
  'SIGSEGV',
  'SIGABRT',
  'SIGBUS',
  'SIGILL',
  'SIGFPE',
  'SIGTRAP',
]);

/** QEMU gone without the rig stopping it: crashed (a signal of its own making) or exited/killed. */
export function qemuExitError(code: number | null, signal: NodeJS.Signals | null, evidence: string[]): RigError {
  const text = evidence.filter(Boolean).join('\n--- console ---\n');
  if (signal && QEMU_CRASH_SIGNALS.has(signal))
    return new RigError(
      'qemu-crash',
      `QEMU crashed (${signal}): a fault of the emulator, not a report of the guest kernel`,
      {
        fix:
          "see QEMU's stderr in the evidence; a run again tells a one-off from a bug of this QEMU with these " +
          'arguments (qemu-args.json in the run directory)',
        evidence: text,
      },
    );
  // QEMU runs with -no-reboot: a guest that reboots (or powers off) makes it exit 0.
  if (code === 0 && !signal)
    return new RigError('guest-reboot', 'the guest rebooted or powered off (QEMU exited 0) without a kernel report', {
      fix: 'see the console tail: something in the guest asked for it (reboot, a watchdog, a triple fault)',
      evidence: text,
    });
  return new RigError('qemu-exit', `QEMU exited unexpectedly (code ${code}${signal ? `, signal ${signal}` : ''})`, {
    evidence: text,
  });
}
