/**
 * SSH to a guest with ssh2: a fresh ed25519 key pair per run (files 0600), connection to a
 * port forwarded on 127.0.0.1 retried until a deadline, commands given as argument arrays
 * (quoted for the remote shell here, never built from strings), uploads over stdin.
 */
import ssh2, { type ClientChannel } from 'ssh2';
const { Client, utils } = ssh2;
type Client = InstanceType<typeof Client>;
import { writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { createHash } from 'node:crypto';
import { RigError } from '../core/errors.js';
import { run } from '../core/exec.js';

export interface KeyPair {
  privateKeyPath: string;
  publicKeyPath: string;
  /** "ssh-ed25519 AAAA... comment" */
  publicKey: string;
  privateKey: string;
}

/** Generate a key pair for this run into `dir` (a private run directory). */
export function generateRunKey(dir: string, comment = 'dmemfs-rig'): KeyPair {
  const kp = utils.generateKeyPairSync('ed25519', { comment });
  const privateKeyPath = join(dir, 'id_ed25519');
  const publicKeyPath = join(dir, 'id_ed25519.pub');
  writeFileSync(privateKeyPath, kp.private, { mode: 0o600 });
  chmodSync(privateKeyPath, 0o600);
  writeFileSync(publicKeyPath, kp.public + '\n', { mode: 0o600 });
  chmodSync(publicKeyPath, 0o600);
  return { privateKeyPath, publicKeyPath, publicKey: kp.public.trim(), privateKey: kp.private };
}

/** The guest's SSH host key for one boot: made by the rig, handed to that boot, pinned by the client. */
export interface HostKey {
  /** dropbear's private key file (0600, in the boot's private run directory). */
  path: string;
  /** "ssh-ed25519 AAAA..." */
  publicKey: string;
  /** The key blob in SSH wire format, compared byte for byte with what the server offers. */
  blob: Buffer;
}

/** The name under which QEMU's fw_cfg hands the host key to the guest (read by the guest's init). */
export const HOST_KEY_FW_CFG = 'opt/dmemfs-rig/host_key';

/** Make a host key for one boot into `dir` with dropbearkey (dropbear reads only its own format). */
export async function generateHostKey(dir: string): Promise<HostKey> {
  const path = join(dir, 'dropbear_host_key');
  await run('dropbearkey', ['-t', 'ed25519', '-f', path], {
    what: 'dropbearkey',
    fix: "run `npm run setup` (it installs Debian's dropbear-bin)",
  });
  chmodSync(path, 0o600);
  const out = (await run('dropbearkey', ['-y', '-f', path], { what: 'dropbearkey -y' })).stdout;
  const line = out.split('\n').find((l) => l.startsWith('ssh-ed25519 '));
  if (!line) throw new RigError('ssh-key', `dropbearkey -y printed no public key: ${out.slice(0, 200)}`);
  const { blob } = publicKeyBlob(line);
  return { path, publicKey: line.split(/\s+/).slice(0, 2).join(' '), blob: Buffer.from(blob, 'base64') };
}

/** OpenSSH's fingerprint of a key blob: SHA256:<base64 without padding>. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The base64 blob of an OpenSSH public key line (what the guest init writes to authorized_keys). */
export function publicKeyBlob(publicKey: string): { type: string; blob: string } {
  const [type, blob] = publicKey.trim().split(/\s+/);
  if (!type || !blob || !/^[A-Za-z0-9+/=]+$/.test(blob))
    throw new RigError('ssh-key', `malformed public key: ${publicKey.slice(0, 40)}`);
  return { type, blob };
}

/** Quote one argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new RigError('ssh-exec', 'empty command');
  return argv.map(shellQuote).join(' ');
}

export interface ExecResult {
  argv: string[];
  code: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ExecOptions {
  timeoutMs?: number;
  stdin?: string | Buffer;
  /** Throw a RigError when the exit code is not 0. */
  check?: boolean;
  /**
   * Guest.exec's silence watchdog: how long the command and the console may both stay quiet
   * (default 30 s x the accelerator's timeout scale, DMEMFS_RIG_SILENCE_S), or false for a
   * command that is quiet by design (a holder waiting to be killed).
   */
  silenceMs?: number | false;
  /** Called on every chunk the command writes (stdout or stderr). */
  onOutput?: () => void;
  /** Closes the channel and rejects with the signal's reason. */
  signal?: AbortSignal;
}

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly port: number,
  ) {}

  private dropped: Error | undefined;

  /** The connection is gone (closed or failed); a new session is needed. */
  get isDropped(): boolean {
    return this.dropped !== undefined;
  }
  /** How the connection came about: tries, and host times (ms) of the first banner and of login. */
  stats = { tries: 0, bannerAt: 0, loginAt: 0 };

  /**
   * Connect to 127.0.0.1:port, retrying until `deadline` (ms since epoch). QEMU's user
   * network accepts TCP before the guest listens, so each try is a full SSH handshake.
   */
  static async connect(opts: {
    port: number;
    privateKey: string;
    deadline: number;
    username?: string;
    abort?: () => Error | undefined;
    /** The host key this boot was given: any other is refused at once (never retried). */
    hostKey?: HostKey;
  }): Promise<SshSession> {
    let last: unknown;
    let tries = 0;
    while (Date.now() < opts.deadline) {
      const aborted = opts.abort?.();
      if (aborted) throw aborted;
      tries++;
      try {
        // Cheap probes first: the server speaks first, so no banner means nobody listens yet.
        if (!(await waitForBanner(opts.port, Math.min(opts.deadline, Date.now() + 5000), opts.abort))) {
          last = new Error('no SSH banner yet');
          continue;
        }
        const bannerAt = Date.now();
        const client = await handshake(
          opts.port,
          opts.privateKey,
          opts.username ?? 'root',
          Math.min(8000, Math.max(1000, opts.deadline - Date.now())),
          opts.hostKey,
        );
        const s = new SshSession(client, opts.port);
        s.stats = { tries, bannerAt, loginAt: Date.now() };
        client.on('error', (e) => (s.dropped = e));
        client.on('close', () => (s.dropped ??= new RigError('ssh-dropped', 'SSH connection closed')));
        return s;
      } catch (e) {
        if (e instanceof RigError && e.kind === 'ssh-host-key') throw e;
        last = e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new RigError(
      'ssh-timeout',
      `no SSH login on 127.0.0.1:${opts.port} after ${tries} tries: ` +
        `${last instanceof Error ? last.message : String(last)}`,
      {
        fix: 'check the console log: the guest may not have reached its SSH server',
      },
    );
  }

  /** Run a command given as an argument array. */
  exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const cmd = quoteArgv(argv);
    const started = Date.now();
    const timeoutMs = opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      if (this.dropped) return reject(new RigError('ssh-dropped', `SSH connection is gone: ${this.dropped.message}`));
      let channel: ClientChannel | undefined;
      let settled = false;
      const onClose = () => finish(new RigError('ssh-dropped', `SSH connection dropped while running: ${cmd}`));
      const finish = (err: Error | undefined, res?: ExecResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.client.off('close', onClose);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res!);
      };
      const timer = setTimeout(() => {
        channel?.close();
        finish(
          new RigError('ssh-exec-timeout', `command did not finish within ${timeoutMs} ms: ${cmd}`, {
            fix: 'the guest may hang; see its console log',
          }),
        );
      }, timeoutMs);
      this.client.once('close', onClose);
      const onAbort = () => {
        channel?.close();
        const why = opts.signal?.reason;
        finish(why instanceof Error ? why : new RigError('ssh-exec', `command stopped: ${cmd}`));
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.client.exec(cmd, (err, ch) => {
        if (err) return finish(new RigError('ssh-exec', `could not start ${cmd}: ${err.message}`));
        channel = ch;
        if (settled) return void ch.close();
        collect(ch, argv, started, opts.onOutput).then((res) => {
          if (opts.check && res.code !== 0) finish(commandFailed(cmd, res));
          else finish(undefined, res);
        });
        if (opts.stdin !== undefined) ch.end(opts.stdin);
        else ch.end();
      });
    });
  }

  /** Write `data` (or a local file) to `remotePath` with `mode`, through `cat` on the guest. */
  async upload(remotePath: string, data: Buffer | { localPath: string }, mode = 0o644): Promise<void> {
    const bytes = Buffer.isBuffer(data) ? data : readFileSync(data.localPath);
    await this.exec(['sh', '-c', 'cat > "$1" && chmod "$2" "$1"', 'upload', remotePath, mode.toString(8)], {
      stdin: bytes,
      check: true,
      timeoutMs: 120_000,
    });
  }

  /**
   * The user's terminal on the guest: a login shell with a PTY (argv empty), or one command whose
   * output streams as it comes (argv given; a PTY only when stdin is a terminal). Resolves with
   * the exit status; a dropped connection rejects.
   */
  attach(
    argv: readonly string[],
    io: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream },
  ): Promise<number> {
    const tty = Boolean(io.stdin.isTTY);
    const pty = {
      term: process.env.TERM ?? 'xterm-256color',
      rows: io.stdout.rows ?? 24,
      cols: io.stdout.columns ?? 80,
    };
    return new Promise((resolve, reject) => {
      if (this.dropped) return reject(new RigError('ssh-dropped', `SSH connection is gone: ${this.dropped.message}`));
      const onClose = () => reject(new RigError('ssh-dropped', 'SSH connection dropped'));
      this.client.once('close', onClose);
      const started = (err: Error | undefined, ch: ClientChannel) => {
        if (err) return reject(new RigError('ssh-exec', `could not open a session: ${err.message}`));
        let code = 255;
        const resize = () => ch.setWindow(io.stdout.rows ?? 24, io.stdout.columns ?? 80, 0, 0);
        if (tty) {
          io.stdin.setRawMode(true);
          io.stdout.on('resize', resize);
        }
        io.stdin.pipe(ch);
        ch.pipe(io.stdout, { end: false });
        ch.stderr.pipe(io.stderr, { end: false });
        ch.on('exit', (c: number | null, signal?: string) => (code = c ?? (signal ? 128 + 9 : 255)));
        ch.on('close', () => {
          io.stdin.unpipe(ch);
          io.stdin.pause();
          if (tty) {
            io.stdin.setRawMode(false);
            io.stdout.off('resize', resize);
          }
          this.client.off('close', onClose);
          resolve(code);
        });
      };
      if (argv.length === 0) this.client.shell(pty, started);
      else this.client.exec(quoteArgv(argv), tty ? { pty } : {}, started);
    });
  }

  close(): void {
    this.client.end();
  }
}

/**
 * Overlapping short banner probes, one started every intervalMs: a probe sent before the
 * guest's network answers waits in slirp's SYN retransmission, so each gives up after probeMs
 * (a live dropbear answers in about 15 ms) and a new one takes its place.
 */
export function waitForBanner(
  port: number,
  deadline: number,
  abort?: () => Error | undefined,
  intervalMs = 100,
  probeMs = 500,
): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    let inFlight = 0;
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      resolve(v);
    };
    const launch = () => {
      if (done) return;
      if (Date.now() > deadline || abort?.()) return finish(false);
      // dropbear accepts at most 5 unauthenticated connections per address, and every
      // connection through slirp comes from 10.0.2.2: never have more than 3 pending.
      if (inFlight >= 3) return;
      inFlight++;
      void sshBanner(port, probeMs).then((b) => {
        inFlight--;
        if (b) finish(true);
      });
    };
    const timer = setInterval(launch, intervalMs);
    launch();
  });
}

/** Resolve with the server's identification line, or undefined within timeoutMs. */
export function sshBanner(port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.startsWith('SSH-') ? buf.slice(0, nl).trim() : undefined);
    });
    sock.on('error', () => done(undefined));
    sock.on('close', () => done(undefined));
  });
}

function handshake(
  port: number,
  privateKey: string,
  username: string,
  timeoutMs: number,
  hostKey: HostKey | undefined,
): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    let offered: Buffer | undefined;
    const fail = (e: Error) => {
      c.end();
      reject(offered && hostKey && !offered.equals(hostKey.blob) ? hostKeyMismatch(port, hostKey, offered) : e);
    };
    c.once('ready', () => {
      c.off('error', fail);
      resolve(c);
    });
    c.once('error', fail);
    c.connect({
      host: '127.0.0.1',
      port,
      username,
      privateKey,
      readyTimeout: timeoutMs,
      // The key the rig made for this boot, byte for byte: a process that took the port before
      // QEMU did is refused before it sees anything of ours. Without one (a guest image the
      // rig did not boot), any key on loopback.
      hostVerifier: (key: Buffer) => {
        offered = Buffer.from(key);
        return !hostKey || offered.equals(hostKey.blob);
      },
      tryKeyboard: false,
      // Two minutes without an answer before the connection counts as dead: a TCG vCPU that
      // runs a nested guest can stall for tens of seconds (a drop at 30 s was seen). A real
      // hang is caught by each command's own timeout, a closed connection at once.
      keepaliveInterval: 5000,
      keepaliveCountMax: 24,
    });
  });
}

function hostKeyMismatch(port: number, want: HostKey, offered: Buffer): RigError {
  return new RigError(
    'ssh-host-key',
    `the SSH server on 127.0.0.1:${port} offered host key ${fingerprint(offered)}, ` +
      `not ${fingerprint(want.blob)}, the one the rig made for this boot`,
    {
      fix:
        'another process answers on the port forwarded to the guest (or the guest image is not the ' +
        "rig's): the rig sent no credentials; see the console log and `ss -ltnp`",
    },
  );
}

/** Everything a channel says until it closes: stdout, stderr, exit code or signal. */
function collect(
  ch: ClientChannel,
  argv: readonly string[],
  started: number,
  onOutput?: () => void,
): Promise<ExecResult> {
  const out: Buffer[] = [];
  const errb: Buffer[] = [];
  let code: number | null = null;
  let signal: string | undefined;
  ch.on('data', (d: Buffer) => {
    out.push(d);
    onOutput?.();
  });
  ch.stderr.on('data', (d: Buffer) => {
    errb.push(d);
    onOutput?.();
  });
  ch.on('exit', (c: number | null, sig?: string) => {
    code = c;
    signal = sig;
  });
  return new Promise((resolve) =>
    ch.on('close', () =>
      resolve({
        argv: [...argv],
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(errb).toString(),
        ms: Date.now() - started,
      }),
    ),
  );
}

function commandFailed(cmd: string, res: ExecResult): RigError {
  const how = `exit ${res.code}${res.signal ? `, signal ${res.signal}` : ''}`;
  return new RigError('guest-command', `guest command failed (${how}): ${cmd}`, {
    evidence: (res.stderr || res.stdout).slice(-4000),
  });
}
