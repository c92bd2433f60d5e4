/**
 * One running guest: QEMU started from a MachineSpec, its console watched, QMP connected,
 * SSH logged in. Any fatal console report or an early QEMU exit fails whatever the guest
 * is doing at that moment (boot wait or a command), with the console excerpt as evidence.
 */
import { spawnStreaming as spawn, type ChildProcess } from '../core/exec.js';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import { requireTool } from '../core/exec.js';
import { info, logLevel, verbose, warn } from '../core/log.js';
import { makePrivateRunDir } from '../core/paths.js';
import { TCG_TIMEOUT_SCALE, type AccelChoice } from './accel.js';
import { ConsoleWatcher, crashError } from './console-watch.js';
import { NESTED_KVM_ARTIFACTS } from './crash-patterns.js';
import { OVMF_IMAGE, qemuArgs, type Accel, type MachineSpec } from './machine-spec.js';
import type { GuestHandle } from './guest-handle.js';
import { ExecRecorder } from './recording.js';
import { checkHostMemory, type MemoryGate } from './host-memory.js';
import { freeLoopbackPort, isHostFwdBindError } from './ports.js';
import { qemuPrefix, track } from '../core/processes.js';
import { QmpClient } from './qmp.js';
import {
  generateHostKey,
  generateRunKey,
  publicKeyBlob,
  SshSession,
  type ExecOptions,
  type ExecResult,
  type HostKey,
  type KeyPair,
  quoteArgv,
} from './ssh.js';
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
  /** Keep every command's result (vm/recording.ts): `run --record` writes them into the bundle. */
  record?: boolean;
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

/** What one boot adds to its machine spec: its run directory, and the SSH port and keys. */
export interface GuestWiring {
  runDir: string;
  ssh?: { port: number; publicKey: string; hostKeyFile: string };
}

/**
 * The spec a boot runs (the SSH forward and the run's public key added) and QEMU's arguments
 * for it: what Guest.start spawns, as a pure function (the golden files hold it per boot).
 */
export function guestArgs(base: MachineSpec, accel: Accel, w: GuestWiring): { spec: MachineSpec; args: string[] } {
  const spec: MachineSpec = { ...base, append: [...base.append], forwards: [...base.forwards] };
  if (w.ssh) {
    spec.forwards.push({ hostPort: w.ssh.port, guestPort: 22 });
    spec.append.push(`rig.key=${w.ssh.publicKey}`);
  }
  const args = qemuArgs(spec, {
    accel,
    qmpSocket: join(w.runDir, 'qmp.sock'),
    pidFile: join(w.runDir, 'qemu.pid'),
    ...(w.ssh ? { hostKeyFile: w.ssh.hostKeyFile } : {}),
  });
  return { spec, args };
}

export class Guest implements GuestHandle {
  readonly runDir: string;
  readonly console: ConsoleWatcher;
  readonly key: KeyPair;
  readonly args: string[];
  readonly timings: BootTimings;
  /** Earlier boots of this guest that stalled: the reason and where their console is. */
  readonly restarts: string[] = [];
  qmp: QmpClient | undefined;
  ssh: SshSession | undefined;
  /** Every command's result, when the boot records (GuestOptions.record). */
  readonly recording: ExecRecorder | undefined;
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
    /** The SSH host key made for this boot and pinned by every connection to it. */
    readonly hostKey?: HostKey,
  ) {
    this.runDir = runDir;
    this.key = key;
    this.args = args;
    this.timings = { spawnedAt: 0 };
    this.recording = opts.record ? new ExecRecorder() : undefined;
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
    let hostKey: HostKey | undefined;
    let ssh: GuestWiring['ssh'];
    if (opts.ssh !== false) {
      const port = await (opts.pickPort ?? freeLoopbackPort)();
      hostKey = await generateHostKey(runDir);
      ssh = { port, publicKey: publicKeyBlob(key.publicKey).blob, hostKeyFile: hostKey.path };
    }
    const { spec, args } = guestArgs(opts.spec, opts.accel.accel, { runDir, ...(ssh ? { ssh } : {}) });
    writeFileSync(join(runDir, 'qemu-args.json'), JSON.stringify([qemuBinary(), ...args], null, 1), { mode: 0o600 });
    const g = new Guest({ ...opts, spec }, runDir, key, args, hostKey);
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
    if (this.recording) this.recordQmp(this.qmp);
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
          ...(this.hostKey ? { hostKey: this.hostKey } : {}),
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

  /** Run a command in the guest; fails at once if the guest crashes or goes silent meanwhile. */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (!this.ssh) throw new RigError('no-ssh', `${this.opts.spec.name}: SSH is not connected`);
    if (this.failure) throw this.failure;
    if (this.ssh.isDropped && this.exitCode === undefined) await this.reconnect();
    const ctl = new AbortController();
    const watch = new SilenceWatch(this.silenceBound(opts), this.console);
    const scaled: ExecOptions = {
      ...opts,
      timeoutMs: (opts.timeoutMs ?? 60_000) * (opts.timeoutMs ? 1 : this.opts.accel.timeoutScale),
      signal: ctl.signal,
      onOutput: () => {
        watch.output();
        opts.onOutput?.();
      },
    };
    const silent = watch.bound ? this.silenceWatchdog(argv, watch, ctl) : undefined;
    try {
      const r = await Promise.race([this.ssh.exec(argv, scaled), this.failed(), ...(silent ? [silent] : [])]);
      this.recording?.result(argv, this.console.lineCount, r);
      return r;
    } catch (e) {
      const cause = await this.causeOf(e);
      this.recording?.error(argv, this.console.lineCount, cause);
      throw cause;
    } finally {
      watch.stop();
      if (watch.longest > this.quietest.ms)
        this.quietest = { ms: watch.longest, command: quoteArgv(argv).slice(0, 200) };
    }
  }

  /** Every QMP command from here on (HMP included: it is human-monitor-command) into the recording. */
  private recordQmp(q: QmpClient): void {
    const rec = this.recording!;
    const execute = q.execute.bind(q);
    q.execute = (async (command: string, args?: Record<string, unknown>, timeoutMs?: number) => {
      try {
        const r = await execute(command, args, timeoutMs);
        rec.qmpResult(command, args, this.console.lineCount, r);
        return r;
      } catch (e) {
        rec.qmpError(command, args, this.console.lineCount, e);
        throw e;
      }
    }) as QmpClient['execute'];
  }

  /**
   * A dropped connection or a hang is often the symptom of a crash whose report is still
   * arriving on the console: give the console a moment to say so, and report the cause.
   */
  private async causeOf(e: unknown): Promise<unknown> {
    if (!(e instanceof RigError && (e.kind === 'ssh-dropped' || e.kind === 'ssh-exec-timeout'))) return e;
    const cause = await Promise.race([
      this.failed().catch((f: RigError) => f),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000)),
    ]);
    return (
      cause ?? new RigError(e.kind, e.message, { fix: e.fix ?? 'see the console log', evidence: this.console.tail(20) })
    );
  }

  /**
   * The longest time any command and the console were both quiet on this boot (what the silence
   * bound has to stay above; kept in the boot record).
   */
  quietest = { ms: 0, command: '' };

  /** The silence bound for one command: its own, DMEMFS_RIG_SILENCE_S, or 30 s x the timeout scale. */
  private silenceBound(opts: ExecOptions): number | undefined {
    if (opts.silenceMs === false) return undefined;
    if (opts.silenceMs !== undefined) return opts.silenceMs;
    return silenceMsFor(this.opts.accel, process.env.DMEMFS_RIG_SILENCE_S);
  }

  /**
   * Rejects with `guest-silent` once the command and the console have both been quiet for the
   * bound: first the stacks of the command and of every task in D state (over a second channel),
   * then a task dump on the console (sysrq t), then the command's channel is closed and the guest
   * stopped (a guest that went silent is not used again). Never waits for the command's timeout.
   */
  private silenceWatchdog(argv: readonly string[], watch: SilenceWatch, ctl: AbortController): Promise<never> {
    const p = new Promise<never>((_, reject) => {
      watch.onSilent = () => {
        void this.silentEvidence(argv, watch).then((err) => {
          ctl.abort(err);
          this.fail(err);
          reject(err);
        });
      };
    });
    p.catch(() => undefined);
    return p;
  }

  private async silentEvidence(argv: readonly string[], watch: SilenceWatch): Promise<RigError> {
    const cmd = quoteArgv(argv);
    const silentAt = Date.now();
    const dumpMs = 10_000 * Math.min(this.opts.accel.timeoutScale, 3);
    const status = await (this.qmp
      ? this.qmp.execute<{ status: string }>('query-status', undefined, 5000).then(
          (s) => s.status,
          () => 'not answering QMP',
        )
      : Promise.resolve('unknown (no QMP)'));
    // Stopped vCPUs answer nothing: a dump would only wait out its bound.
    const dump =
      status !== 'running'
        ? `no stacks: QEMU says the guest is ${status}`
        : await Promise.race([
            this.ssh!.exec(['sh', '-c', SILENT_DUMP, 'rig-silent', ...argv], { timeoutMs: dumpMs }).then(
              (r) => `${r.stdout}${r.stderr}`.slice(0, 16_384),
              (e: unknown) =>
                `the guest did not answer a second command either: ${e instanceof Error ? e.message : String(e)}`,
            ),
            this.failed().catch((f: RigError) => `the guest failed meanwhile: ${f.message}`),
          ]);
    // The task dump goes to the console: give it a moment to arrive, until the console settles.
    if (status === 'running') {
      await this.console.waitForLine(/sysrq: Show State/, 3000, 0).catch(() => undefined);
      for (let i = 0; i < 20 && Date.now() - this.console.lastOutputAt < 1000; i++)
        await new Promise((r) => setTimeout(r, 500));
    }
    const consoleSince = this.console.lines.filter((l) => l.at >= silentAt).map((l) => l.raw);
    const stacks = commandStacks(dump, consoleSince);
    const quietS = Math.round(watch.firedAfterMs / 1000);
    return new RigError(
      'guest-silent',
      `${this.opts.spec.name}: no console output and no output from \`${cmd.slice(0, 160)}\` for ${quietS} s ` +
        `(bound ${Math.round(watch.bound! / 1000)} s); QEMU says the guest is ${status}`,
      {
        fix:
          "the guest or the command hangs: the command's stack and a task dump (sysrq t) are in the evidence and " +
          `the console log (${this.runDir}/console.log); a command quiet by design takes silenceMs: false, ` +
          'and DMEMFS_RIG_SILENCE_S sets the bound (0: off)',
        evidence:
          `the command's stack (from the task dump):\n${stacks || '(not in the task dump)'}\n\n` +
          `its processes, and tasks in D state:\n${dump}\n\nconsole since:\n${consoleSince.slice(0, 400).join('\n')}`,
      },
    );
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
        ...(this.hostKey ? { hostKey: this.hostKey } : {}),
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

/**
 * The task dump's entries (sysrq t on the console) of the processes the dump script named as the
 * command's: /proc/PID/stack needs CONFIG_STACKTRACE, which a kernel under test may lack, while
 * the task dump prints every task's stack.
 */
export function commandStacks(dump: string, consoleLines: readonly string[]): string {
  const pids = [...dump.matchAll(/^== pid (\d+) \([^,]*, command\)/gm)].map((m) => m[1]!);
  const out: string[] = [];
  for (const pid of pids) {
    const start = consoleLines.findIndex((l) => new RegExp(`\\btask:\\S+\\s+state:\\S+.*\\bpid:\\s*${pid}\\b`).test(l));
    if (start < 0) continue;
    let end = start + 1;
    while (end < consoleLines.length && end - start < 40 && !/\btask:\S/.test(consoleLines[end]!)) end++;
    out.push(...consoleLines.slice(start, end));
  }
  return out.join('\n');
}

/** The default silence bound: 30 s scaled like every other timeout, or DMEMFS_RIG_SILENCE_S (0: off). */
export function silenceMsFor(accel: Pick<AccelChoice, 'timeoutScale'>, env: string | undefined): number | undefined {
  if (env !== undefined && env.trim() !== '') {
    const s = Number(env);
    if (!Number.isFinite(s) || s < 0)
      throw new RigError('usage', `DMEMFS_RIG_SILENCE_S=${env} is not a number of seconds`, {
        fix: 'give seconds (0 turns the silence watchdog off)',
      });
    return s === 0 ? undefined : s * 1000;
  }
  return SILENCE_BASE_MS * accel.timeoutScale;
}

export const SILENCE_BASE_MS = 30_000;

/**
 * Run on the guest over a second channel of the same SSH connection when a command went silent:
 * dropbear starts every channel's command under the connection's own dropbear process, so the
 * command is what runs under that process apart from this script and its shells. Their stacks and those of every task
 * in D state are printed; then a task dump (sysrq t) goes to the console.
 */
export const SILENT_DUMP = [
  "cat /proc/[0-9]*/status 2>/dev/null | awk -v me=$$ '",
  '/^Name:/ { nm = $2 } /^State:/ { st = $2 } /^Pid:/ { pid = $2 }',
  '/^PPid:/ { pp[pid] = $2; state[pid] = st; name[pid] = nm; n[++k] = pid }',
  // The connection's dropbear: the first ancestor of this script of that name (its shells apart).
  'END { c = me; while (c > 1 && name[c] != "dropbear") { self[c] = 1; c = pp[c] }',
  '  if (c <= 1) c = pp[me]',
  '  for (r = 0; r < 8; r++) for (i = 1; i <= k; i++)',
  '    if ((pp[n[i]] == c || mark[pp[n[i]]]) && !self[n[i]]) mark[n[i]] = 1',
  '  for (i = 1; i <= k; i++)',
  '    if (mark[n[i]]) print n[i], "command"; else if (state[n[i]] == "D") print n[i], "D-state"',
  "}' > /run/rig-silent.$$",
  'while read -r p why; do',
  '  echo "== pid $p ($(cat /proc/$p/comm 2>/dev/null), $why) $(grep "^State:" /proc/$p/status 2>/dev/null)"',
  '  echo "wchan $(cat /proc/$p/wchan 2>/dev/null) syscall $(cut -d" " -f1 /proc/$p/syscall 2>/dev/null)"',
  '  cat /proc/$p/stack 2>/dev/null',
  'done < /run/rig-silent.$$',
  'grep -q command /run/rig-silent.$$ || echo "(no process runs the command any more)"',
  'rm -f /run/rig-silent.$$; echo t > /proc/sysrq-trigger',
].join('\n');

/** How long a command and the console have been quiet, checked once a second. */
export class SilenceWatch {
  private lastCommandOutput = Date.now();
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  longest = 0;
  /** How long both had been quiet when the watch fired. */
  firedAfterMs = 0;
  onSilent: (() => void) | undefined;

  constructor(
    readonly bound: number | undefined,
    private readonly console: Pick<ConsoleWatcher, 'lastOutputAt'>,
    tickMs = bound ? Math.min(1000, Math.max(50, bound / 10)) : 1000,
  ) {
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  output(): void {
    this.lastCommandOutput = Date.now();
  }

  quietMs(now = Date.now()): number {
    return now - Math.max(this.started, this.lastCommandOutput, this.console.lastOutputAt);
  }

  private tick(): void {
    const q = this.quietMs();
    if (q > this.longest) this.longest = q;
    if (this.bound && q >= this.bound && this.onSilent) {
      this.firedAfterMs = q;
      const f = this.onSilent;
      this.stop();
      f();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.onSilent = undefined;
  }
}
