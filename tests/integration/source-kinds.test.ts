/**
 * Every kind of kernel source a profile can name, and a series by Message-Id, each against a
 * stand-in the test makes itself: a git repository reached by URL (its pinned commit checked), a
 * tarball served over HTTP on 127.0.0.1 (its SHA256 checked), a local tree (plain and git), the
 * Debian source package (the rig's own profile), and a mail archive serving a thread's mbox.
 * A pin that does not match is refused and leaves no cache entry.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { resolveSeries } from '../../kernel/pipeline.js';
import { loadProfile } from '../../kernel/profile.js';
import { acquireSource } from '../../kernel/source.js';
import { readFixture, REBASED_MBOX } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'rig-sources-'));
const realCache = process.env.DMEMFS_RIG_CACHE;
const standInCache = join(tmp, 'cache');

/** A tree that looks enough like a kernel for the source stage: a Makefile with its version. */
function standInTree(dir: string): string {
  mkdirSync(join(dir, 'mm'), { recursive: true });
  writeFileSync(join(dir, 'Makefile'), 'VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\n');
  writeFileSync(join(dir, 'mm', 'memory.c'), 'int memory;\n');
  return dir;
}
const git = (dir: string, ...a: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a], { encoding: 'utf8' }).trim();
const sourceEntries = () =>
  existsSync(join(standInCache, 'source'))
    ? readdirSync(join(standInCache, 'source')).filter((n) => !n.startsWith('.'))
    : [];

/** An HTTP server on 127.0.0.1 serving fixed bodies by path. */
async function serve(files: Record<string, Buffer>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const body = files[decodeURIComponent(req.url ?? '')];
    res.writeHead(body ? 200 : 404).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

t.before(() => {
  process.env.DMEMFS_RIG_CACHE = standInCache;
});
t.teardown(() => {
  if (realCache === undefined) delete process.env.DMEMFS_RIG_CACHE;
  else process.env.DMEMFS_RIG_CACHE = realCache;
});

t.test('git by URL and ref, the pinned commit checked', async (t) => {
  const repo = standInTree(join(tmp, 'upstream'));
  git(repo, 'init', '-q', '-b', 'master');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'Linux 5.10-rc3');
  git(repo, 'tag', 'v5.10-rc3');
  const commit = git(repo, 'rev-parse', 'HEAD');
  const url = `file://${repo}`;
  const s = await acquireSource({ kind: 'git', url, ref: 'v5.10-rc3', commit });
  t.equal(s.kernelVersion, '5.10.0-rc3');
  t.match(s.provenance, { source: 'git', url, ref: 'v5.10-rc3', commit });
  const before = sourceEntries();
  await t.rejects(acquireSource({ kind: 'git', url, ref: 'v5.10-rc3', commit: '0'.repeat(40) }), {
    kind: 'checksum-mismatch',
    message: /resolved to [0-9a-f]{40}, the profile pins 0{40}/,
  });
  await t.rejects(acquireSource({ kind: 'git', url: `file://${tmp}/nowhere`, ref: 'v1', commit: '1'.repeat(40) }), {
    kind: 'source-unreachable',
    message: /cannot fetch v1/,
  });
  t.same(sourceEntries(), before, 'no cache entry for a refused source');
});

t.test('a tarball by URL and SHA256, over HTTP on 127.0.0.1', async (t) => {
  const tree = standInTree(join(tmp, 'tarball-src', 'linux-5.10-rc3'));
  const tarball = join(tmp, 'linux.tar.xz');
  execFileSync('tar', ['-cJf', tarball, '-C', join(tree, '..'), 'linux-5.10-rc3']);
  const bytes = readFileSync(tarball);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const { url, server } = await serve({ '/linux-5.10-rc3.tar.xz': bytes });
  t.teardown(() => server.close());
  const s = await acquireSource({ kind: 'tarball', url: `${url}/linux-5.10-rc3.tar.xz`, sha256 });
  t.equal(s.kernelVersion, '5.10.0-rc3');
  t.match(s.provenance, { source: 'tarball', sha256 });
  const before = sourceEntries();
  await t.rejects(acquireSource({ kind: 'tarball', url: `${url}/linux-5.10-rc3.tar.xz`, sha256: 'a'.repeat(64) }), {
    message: /sha256|SHA256|checksum/,
  });
  t.same(sourceEntries(), before, 'no cache entry for a tarball whose hash does not match');
});

t.test('a local tree, plain or git; a git tree with uncommitted changes is refused', async (t) => {
  const plain = standInTree(join(tmp, 'plain'));
  t.match((await acquireSource({ kind: 'local', path: plain })).provenance, { source: 'local-dir', path: plain });
  const g = standInTree(join(tmp, 'local-git'));
  git(g, 'init', '-q');
  git(g, 'add', '.');
  git(g, 'commit', '-q', '-m', 'base');
  const s = await acquireSource({ kind: 'local', path: g });
  t.match(s.provenance, { source: 'local-git', commit: git(g, 'rev-parse', 'HEAD') });
  const first = git(g, 'rev-parse', 'HEAD');
  writeFileSync(join(g, 'Makefile'), 'VERSION = 6\nPATCHLEVEL = 0\n');
  await t.rejects(acquireSource({ kind: 'local', path: g }), { kind: 'dirty-source', message: /uncommitted/ });
  git(g, 'commit', '-q', '-am', 'next');
  const old = await acquireSource({ kind: 'local', path: `${g}:HEAD~1` });
  t.match(old.provenance, { source: 'local-git', ref: 'HEAD~1', commit: first }, 'PATH:REF: a commit of the tree');
  t.equal(old.kernelVersion, '5.10.0-rc3', 'the tree as it was at that commit');
  t.equal(git(g, 'rev-parse', 'HEAD~1'), first, "the user's tree is not moved");
});

t.test("the Debian source package: the rig's own profile, its SHA256 pinned", async (t) => {
  process.env.DMEMFS_RIG_CACHE = realCache ?? '';
  if (!realCache) delete process.env.DMEMFS_RIG_CACHE;
  try {
    const spec = loadProfile('rfc-v2-debian').source;
    const s = await acquireSource(spec);
    t.equal(s.kernelVersion, '5.10.223');
    t.match(s.provenance, { source: 'debian-source-package', package: 'linux-source-5.10', version: '5.10.223-1' });
    t.equal(s.provenance.sha256, (spec as { sha256: string }).sha256);
  } finally {
    process.env.DMEMFS_RIG_CACHE = standInCache;
  }
});

t.test('a series by Message-Id, from a stand-in mail archive', async (t) => {
  const id = 'cover.1607332046.git.yuleixzhang@tencent.com';
  const reply =
    '\nFrom reviewer Mon Sep 17 00:00:00 2001\nFrom: A Reviewer <r@example.org>\n' +
    'Subject: Re: [RFC V2 5.10.223 35/37] mm, dmem: introduce dregion->memmap for dmem\n\n> looks wrong\n';
  const thread = gzipSync(Buffer.from(readFixture(REBASED_MBOX()) + reply));
  const { url, server } = await serve({ [`/${id}/t.mbox.gz`]: thread });
  t.teardown(() => server.close());
  process.env.DMEMFS_RIG_ARCHIVE_URL = `${url}/{messageId}/t.mbox.gz`;
  try {
    const s = (await resolveSeries(loadProfile('rfc-v2-debian'), { series: `<${id}>` }))!;
    t.equal(s.provenance.pinned, true, 'the thread holds the pinned series (the reply is not a patch)');
    t.equal(s.name, 'rfc-v2-on-debian-5.10.223');
    t.match(s.provenance.origin, { kind: 'message-id', messageId: id, url: `${url}/${id}/t.mbox.gz` });
    t.equal(s.parsed.patches.length, 37);
    await t.rejects(resolveSeries(loadProfile('rfc-v2-debian'), { series: '<no-such@thread>' }), {
      kind: 'missing-series',
      message: /HTTP 404/,
    });
  } finally {
    delete process.env.DMEMFS_RIG_ARCHIVE_URL;
  }
});
