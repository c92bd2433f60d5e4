/**
 * Every build of a profile shares one source copy and one object directory: syncing a new tree
 * in leaves unchanged files (and their time stamps) alone, so make rebuilds only what changed.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDirs, syncTree } from '../../kernel/build.js';

t.test('a profile builds in the same two places every time', async (t) => {
  t.same(buildDirs('rfc-v2-debian', '/c'), {
    src: '/c/build-work/rfc-v2-debian/src',
    obj: '/c/build-work/rfc-v2-debian/obj',
  });
});

t.test('syncTree: unchanged files keep their time, changed ones are rewritten, removed ones go', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'rig-sync-'));
  const [a, b, dst] = ['tree-a', 'tree-b', 'stable'].map((n) => join(root, n));
  for (const tree of [a, b]) {
    mkdirSync(join(tree, 'mm'), { recursive: true });
    mkdirSync(join(tree, '.git'), { recursive: true });
    writeFileSync(join(tree, 'mm', 'same.c'), 'int same;\n');
    writeFileSync(join(tree, '.git', 'HEAD'), 'ref\n');
  }
  writeFileSync(join(a, 'mm', 'dmem.c'), 'int x = 1;\n');
  writeFileSync(join(a, 'mm', 'gone.c'), 'int gone;\n');
  writeFileSync(join(b, 'mm', 'dmem.c'), 'int x = 2;\n');
  await syncTree(a, dst);
  const old = new Date('2020-12-07T00:00:00Z');
  for (const f of ['same.c', 'dmem.c']) utimesSync(join(dst, 'mm', f), old, old);
  await syncTree(b, dst);
  t.equal(statSync(join(dst, 'mm', 'same.c')).mtimeMs, old.getTime(), 'unchanged: time stamp kept');
  t.ok(statSync(join(dst, 'mm', 'dmem.c')).mtimeMs > old.getTime(), 'changed: newer, so make rebuilds it');
  t.equal(readFileSync(join(dst, 'mm', 'dmem.c'), 'utf8'), 'int x = 2;\n');
  t.notOk(existsSync(join(dst, 'mm', 'gone.c')), 'removed from the tree: removed');
  t.notOk(existsSync(join(dst, '.git')), 'the git metadata is not copied');
});
