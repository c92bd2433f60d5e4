/**
 * Where a series comes from when the user names one (`--series`): an mbox file, a Message-Id
 * fetched from the public mail archive, or a range of commits in a local git tree
 * (PATH:BASE..HEAD, one patch per commit; the user's tree is read, never modified). Each becomes
 * an mbox in a private directory, with a record of where it came from.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { run, tryRun } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import type { SeriesOrigin } from '../core/series-record.js';

export type { SeriesOrigin };

export type SeriesArg =
  | { kind: 'mbox'; path: string }
  | { kind: 'message-id'; messageId: string }
  | { kind: 'git-range'; repo: string; base: string; head: string };

const MESSAGE_ID = /^<?([^\s<>@/]+@[^\s<>@/]+?)>?$/;
const LORE_URL = /^https?:\/\/[^/]+\/(?:[^/]+\/)?([^\s/]+@[^\s/]+?)\/?(?:t\.mbox\.gz|raw)?$/;
const RANGE = /^(.+):([^:]+?)(\.{2,3})([^:.][^:]*)$/;

const HOW = 'pass an mbox file, a Message-Id (<id@host>), or a range of commits in a local git tree as PATH:BASE..HEAD';

/** Which kind of series argument this is. Files win over the other readings. */
export function parseSeriesArg(arg: string, exists: (p: string) => boolean = existsSync): SeriesArg {
  if (exists(arg)) return { kind: 'mbox', path: resolve(arg) };
  const range = RANGE.exec(arg);
  if (range && exists(range[1]!)) {
    if (range[3] !== '..')
      throw new RigError('bad-range', `${arg}: "${range[3]}" is not a range of commits the rig can apply in order`, {
        fix: 'write the range as PATH:BASE..HEAD (two dots: the commits after BASE up to HEAD)',
      });
    return { kind: 'git-range', repo: resolve(range[1]!), base: range[2]!, head: range[4]! };
  }
  const id = MESSAGE_ID.exec(arg)?.[1] ?? LORE_URL.exec(arg)?.[1];
  if (id && !arg.includes(':')) return { kind: 'message-id', messageId: id };
  if (id && /^https?:/.test(arg)) return { kind: 'message-id', messageId: decodeURIComponent(id) };
  throw new RigError('missing-series', `--series ${arg}: no such file, git range or Message-Id`, { fix: HOW });
}

/** The archive URL of a thread's mbox; DMEMFS_RIG_ARCHIVE_URL overrides the public one. */
export function archiveUrl(messageId: string, template = process.env.DMEMFS_RIG_ARCHIVE_URL): string {
  const t = template ?? 'https://lore.kernel.org/all/{messageId}/t.mbox.gz';
  return t.replace('{messageId}', encodeURIComponent(messageId).replace(/%40/g, '@'));
}

function privateMbox(name: string, text: string | Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'rig-series-'));
  const p = join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
}

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

async function fromArchive(messageId: string): Promise<SeriesOrigin> {
  const url = archiveUrl(messageId);
  const offline = () =>
    new RigError('network', `cannot fetch the series ${messageId}: the mail archive is not reachable here`, {
      fix:
        `where there is network, save ${archiveUrl(messageId, 'https://lore.kernel.org/all/{messageId}/t.mbox.gz')} ` +
        '(or `b4 am` its thread) and pass --series FILE; or pass a git range PATH:BASE..HEAD',
    });
  if (process.env.DMEMFS_RIG_OFFLINE === '1') throw offline();
  info(`series: fetching ${url}`);
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) }).catch(() => undefined);
  if (!res) throw offline();
  if (!res.ok)
    throw new RigError('missing-series', `the archive has no thread ${messageId} (HTTP ${res.status} from ${url})`, {
      fix: 'check the Message-Id (the cover letter\'s, without "<>"), or pass --series FILE',
    });
  let body = Buffer.from(await res.arrayBuffer());
  if (body[0] === 0x1f && body[1] === 0x8b) body = gunzipSync(body);
  return { kind: 'message-id', path: privateMbox('thread.mbox', body), sha256: sha256(body), messageId, url };
}

async function gitOut(repo: string, args: string[]): Promise<string> {
  return (await run('git', ['-C', repo, ...args])).stdout.trim();
}

/** The commits BASE..HEAD as an mbox (git format-patch), after checking the range is usable. */
async function fromRange(arg: Extract<SeriesArg, { kind: 'git-range' }>): Promise<SeriesOrigin> {
  const { repo } = arg;
  if (!statSync(repo).isDirectory() || !(await tryRun('git', ['-C', repo, 'rev-parse', '--git-dir'])).ok)
    throw new RigError('bad-range', `${repo} is not a git tree`, { fix: HOW });
  const dirty = await gitOut(repo, ['status', '--porcelain', '--untracked-files=no']);
  if (dirty)
    throw new RigError('dirty-tree', `${repo} has uncommitted changes (${dirty.split('\n').length} files)`, {
      fix: 'commit or stash them first: the rig builds the commits of the range, never a working tree',
    });
  const commit = async (ref: string) => {
    const r = await tryRun('git', ['-C', repo, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
    if (!r.ok) throw new RigError('bad-range', `${ref} is not a commit in ${repo}`, { fix: HOW });
    return r.stdout.trim();
  };
  const base = await commit(arg.base);
  const head = await commit(arg.head);
  if (!(await tryRun('git', ['-C', repo, 'merge-base', '--is-ancestor', base, head])).ok)
    throw new RigError('nonlinear-range', `${arg.base} is not an ancestor of ${arg.head} in ${repo}`, {
      fix: 'give a BASE that HEAD was built on (git merge-base BASE HEAD)',
    });
  const merges = await gitOut(repo, ['rev-list', '--merges', `${base}..${head}`]);
  if (merges)
    throw new RigError(
      'nonlinear-range',
      `${arg.base}..${arg.head} is not linear: it holds merge ${merges.slice(0, 12)}`,
      {
        fix: 'rebase the range onto BASE (git rebase BASE) so that each commit is one patch, then pass it again',
      },
    );
  const commits = Number(await gitOut(repo, ['rev-list', '--count', `${base}..${head}`]));
  if (!commits) throw new RigError('bad-range', `${arg.base}..${arg.head} holds no commits`, { fix: HOW });
  const mbox = await gitOut(repo, ['format-patch', '--stdout', '--numbered', '--no-signature', `${base}..${head}`]);
  info(`series: ${commits} commits ${base.slice(0, 12)}..${head.slice(0, 12)} of ${repo}`);
  return {
    kind: 'git-range',
    path: privateMbox('range.mbox', mbox + '\n'),
    sha256: sha256(mbox),
    repo,
    base,
    head,
    commits,
  };
}

/** The mbox of a series argument, and where it came from. */
export async function materializeSeries(arg: string): Promise<SeriesOrigin> {
  const a = parseSeriesArg(arg);
  if (a.kind === 'message-id') return fromArchive(a.messageId);
  if (a.kind === 'git-range') return fromRange(a);
  if (statSync(a.path).isDirectory())
    throw new RigError('missing-series', `--series ${arg} is a directory`, { fix: HOW });
  return { kind: 'mbox', path: a.path, sha256: sha256(readFileSync(a.path)) };
}
