/**
 * Errors shown to the user name the problem and the fix.
 * Every failure the rig knows how to describe is a RigError; anything else is a bug in the rig.
 */
/**
 * Every kind of error the rig names (`error [kind]`): a union, so that a kind raised or matched
 * anywhere is one of these, checked by the compiler. `kernel-<report kind>` for a guest kernel's
 * own report (vm/console-watch.ts).
 */
export const ERROR_KINDS = [
  'apt-index',
  'bad-accel',
  'bad-append',
  'bad-bundle',
  'bad-compare',
  'bad-costs',
  'bad-dmem',
  'bad-edit',
  'bad-guest-value',
  'bad-jobs',
  'bad-mbox',
  'bad-name',
  'bad-package',
  'bad-prefix',
  'bad-profile',
  'bad-range',
  'bad-reference',
  'bad-shard',
  'bad-spec',
  'bench-run',
  'bisect-not-reproduced',
  'bisect-nothing',
  'bisect-unusable',
  'boot-reset',
  'boot-stalled',
  'boot-timeout',
  'build-failed',
  'cache-lock',
  'checksum-mismatch',
  'command-failed',
  'config-dropped',
  'console-timeout',
  'crash-mismatch',
  'dirty-source',
  'dirty-tree',
  'disk-full',
  'disk-space',
  'dmem-debugfs',
  'download',
  'duplicate-scenario',
  'duplicate-shard',
  'edit-lost',
  'exists',
  'extract-failed',
  'guest-command',
  'guest-reboot',
  'guest-silent',
  'helper-output',
  'host-memory',
  'kcidb-invalid',
  'l2-failed',
  'l2-stalled',
  'missing-keyring',
  'missing-module',
  'missing-package',
  'missing-series',
  'missing-shard',
  'missing-source',
  'missing-tool',
  'network',
  'no-bundle',
  'no-checksum',
  'no-compare',
  'no-kvm',
  'no-mbox',
  'no-package',
  'no-reproducer',
  'no-selftests',
  'no-series',
  'no-shards',
  'no-ssh',
  'no-terminal',
  'no-vmlinux',
  'nonlinear-range',
  'not-a-shard',
  'not-reproduced',
  'offline',
  'patch-failed',
  'out-exists',
  'port-in-use',
  'qemu-crash',
  'qemu-exit',
  'qemu-spawn',
  'qmp-closed',
  'qmp-connect',
  'qmp-error',
  'qmp-protocol',
  'qmp-timeout',
  'repro-build',
  'scenario-definition',
  'series-damaged',
  'series-incomplete',
  'series-mixed',
  'setup-failed',
  'setup-needs-root',
  'shard-incomplete',
  'shard-mismatch',
  'source-unreachable',
  'ssh-dropped',
  'ssh-exec',
  'ssh-exec-timeout',
  'ssh-host-key',
  'ssh-key',
  'ssh-login-failed',
  'ssh-timeout',
  'unknown-boot',
  'unknown-edit',
  'unknown-measurement',
  'unknown-mutant',
  'unknown-profile',
  'unknown-scenario',
  'unknown-series',
  'unknown-signature',
  'unpack-failed',
  'unsafe-run-dir',
  'usage',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number] | `kernel-${string}`;

export class RigError extends Error {
  /** What the user can do about it. */
  readonly fix: string | undefined;
  /** Supporting text (console excerpt, command output), shown after the message. */
  readonly evidence: string | undefined;
  /** A short machine-readable category, e.g. "kernel-panic", "port-in-use". */
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, opts: { fix?: string; evidence?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RigError';
    this.kind = kind;
    this.fix = opts.fix;
    this.evidence = opts.evidence;
  }

  /** The text printed for the user: problem, fix, evidence. */
  describe(): string {
    const parts = [`error [${this.kind}]: ${this.message}`];
    if (this.fix) parts.push(`fix: ${this.fix}`);
    if (this.evidence) parts.push(`evidence:\n${indent(this.evidence)}`);
    return parts.join('\n');
  }
}

export function isRigError(e: unknown): e is RigError {
  return e instanceof RigError;
}

export function indent(text: string, prefix = '  '): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}

/** Message of any thrown value. */
export function messageOf(e: unknown): string {
  if (e instanceof RigError) return e.describe();
  if (e instanceof Error) return e.message;
  return String(e);
}

/** ENOSPC or EDQUOT as an error that says where and what to do; undefined for any other error. */
export function diskFull(e: unknown, what: string): RigError | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  return new RigError('disk-full', `no space left on the disk ${what}`, {
    fix: 'free space there (dmemfs-rig cache prune for the cache), or write to a bigger disk (--out, DMEMFS_RIG_CACHE)',
  });
}
