/** Series arguments: which kind each is, and a range of a real (small) git tree turned into an mbox. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { git, gitTree } from '../helpers/git-tree.js';
import { archiveUrl, materializeSeries, parseSeriesArg } from '../../kernel/series-input.js';
import { parseSeries, readMbox } from '../../kernel/series.js';

const exists =
  (...paths: string[]) =>
  (p: string) =>
    paths.includes(p);

t.test('an existing file is an mbox, whatever it looks like', async (t) => {
  t.same(parseSeriesArg('/x/a@b.mbox', exists('/x/a@b.mbox')), { kind: 'mbox', path: '/x/a@b.mbox' });
});

t.test('ranges of a local git tree', async (t) => {
  t.same(parseSeriesArg('/src/linux:v5.10-rc3..HEAD', exists('/src/linux')), {
    kind: 'git-range',
    repo: '/src/linux',
    base: 'v5.10-rc3',
    head: 'HEAD',
  });
  t.same(parseSeriesArg('/src/linux:HEAD~37..dmemfs-v3', exists('/src/linux')), {
    kind: 'git-range',
    repo: '/src/linux',
    base: 'HEAD~37',
    head: 'dmemfs-v3',
  });
  t.throws(() => parseSeriesArg('/src/linux:a...b', exists('/src/linux')), {
    kind: 'bad-range',
    message: /"\.\.\." is not a range/,
  });
  t.throws(() => parseSeriesArg('/nowhere:a..b', exists()), { kind: 'missing-series', message: /no such file/ });
});

t.test('Message-Ids, bare, in angle brackets, or as an archive link', async (t) => {
  const id = 'cover.1607332046.git.yuleixzhang@tencent.com';
  for (const arg of [
    id,
    `<${id}>`,
    `https://lore.kernel.org/all/${id}/`,
    `https://lore.kernel.org/kvm/${id}/t.mbox.gz`,
  ])
    t.same(parseSeriesArg(arg, exists()), { kind: 'message-id', messageId: id }, arg);
  t.throws(() => parseSeriesArg('no-such-thing', exists()), {
    kind: 'missing-series',
    message: /no such file, git range or Message-Id/,
  });
  t.equal(archiveUrl(id, undefined), `https://lore.kernel.org/all/${id}/t.mbox.gz`);
  t.equal(archiveUrl('a+b@c', 'http://127.0.0.1:8/{messageId}/t.mbox.gz'), 'http://127.0.0.1:8/a%2Bb@c/t.mbox.gz');
});

t.test('a range becomes one patch per commit, and the tree is not touched', async (t) => {
  const dir = gitTree(['one', 'two', 'three']);
  const head = git(dir, 'rev-parse', 'HEAD');
  const o = await materializeSeries(`${dir}:HEAD~3..HEAD`);
  t.equal(o.kind, 'git-range');
  t.equal(o.commits, 3);
  t.equal(o.head, head);
  t.match(o.sha256, /^[0-9a-f]{64}$/);
  const parsed = await parseSeries(readMbox(o.path));
  t.same(
    parsed.patches.map((p) => [p.number, p.total, p.title]),
    [
      [1, 3, 'add one'],
      [2, 3, 'add two'],
      [3, 3, 'add three'],
    ],
  );
  t.ok(
    parsed.patches.every((p) => /^[0-9a-f]{40}$/.test(p.patchId)),
    'each patch has a patch id',
  );
  t.equal(git(dir, 'rev-parse', 'HEAD'), head, 'HEAD unchanged');
  t.equal(git(dir, 'status', '--porcelain'), '', 'working tree unchanged');
  t.match(readFileSync(o.path, 'utf8'), /Subject: \[PATCH 1\/3\] add one/);
});

t.test('replies in a thread are not patches', async (t) => {
  const mail = (subject: string, body: string) =>
    `From x Mon Sep 17 00:00:00 2001\nSubject: ${subject}\nMessage-Id: <${subject.length}@x>\n\n${body}\n`;
  const diff = 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n';
  const text = [mail('[PATCH 1/1] fix x', diff), mail('Re: [PATCH 1/1] fix x', `> ${diff}`)].join('\n');
  const parsed = await parseSeries(text);
  t.equal(parsed.patches.length, 1);
  t.equal(parsed.strays.length, 1);
});
