/**
 * Errors shown to the user name the problem and the fix.
 * Every failure the rig knows how to describe is a RigError; anything else is a bug in the rig.
 */
export class RigError extends Error {
  /** What the user can do about it. */
  readonly fix: string | undefined;
  /** Supporting text (console excerpt, command output), shown after the message. */
  readonly evidence: string | undefined;
  /** A short machine-readable category, e.g. "kernel-panic", "port-in-use". */
  readonly kind: string;

  constructor(kind: string, message: string, opts: { fix?: string; evidence?: string; cause?: unknown } = {}) {
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
