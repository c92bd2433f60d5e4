/**
 * cache prune: entries unused for a while go, the newest of each kind and recent ones stay, a
 * locked one is never removed.
 */
import t from 'tap';
import { existsSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cached, listCache, lockKey, pruneCache } from '../../core/cache.js';
import { dropLeases } from '../../core/lock-holder.js';

t.test('prune by last use', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'rig-prune-'));
  const make = (kind: string, key: string, ageDays: number) =>
    cached(kind, key, async (dir) => writeFileSync(join(dir, 'data'), 'x'.repeat(1000)), { root }).then((e) => {
      const when = new Date(Date.now() - ageDays * 86_400_000);
      utimesSync(join(e.dir, '.complete'), when, when);
      return e;
    });
  await make('kernel', 'old1', 40);
  await make('kernel', 'old2', 30);
  await make('kernel', 'recent', 2);
  await make('tree', 'only', 100);
  await make('l1-image', 'locked', 50);
  await make('l1-image', 'newer', 45);
  // Made by "earlier runs": this process lets go of the leases it took while building them.
  dropLeases();
  t.equal(listCache(root).length, 6);
  const dry = await pruneCache({ olderThanDays: 14, dryRun: true, root });
  t.same(dry.removed.map((i) => `${i.kind}/${i.key}`).sort(), ['kernel/old1', 'kernel/old2', 'l1-image/locked']);
  t.ok(existsSync(join(root, 'kernel', 'old1')), 'a dry run removes nothing');
  const release = await lockKey('l1-image', 'locked', root);
  const real = await pruneCache({ olderThanDays: 14, root });
  release();
  t.same(
    real.removed.map((i) => `${i.kind}/${i.key}`).sort(),
    ['kernel/old1', 'kernel/old2'],
    'the entry in use (locked) stays',
  );
  t.ok(existsSync(join(root, 'kernel', 'recent')));
  t.ok(existsSync(join(root, 'tree', 'only')), 'the only (newest) entry of a kind stays, however old');
  t.ok(real.freedBytes >= 2000);
  // A cache hit counts as a use.
  await cached('l1-image', 'locked', async () => undefined, { root });
  dropLeases(); // the last use, not the lease, is what this part is about
  const after = await pruneCache({ olderThanDays: 14, root });
  t.same(
    after.removed.map((i) => i.key),
    ['newer'],
    'the entry used just now stays; the other goes',
  );
});
