/**
 * Two rig runs at once on one cache: a lock or atomic publish keeps the cache whole (one
 * entry, built once), and the guests of two runs never share a port.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hostname, tmpdir } from 'node:os';
import { cacheRoot } from '../../core/paths.js';
import { fault } from '../helpers/faults.js';
import { rigCli } from '../helpers/cli.js';

await fault(
  t,
  'concurrency',
  'two runs build the same cache entry at once: built once, both get it whole',
  async (st) => {
    const cache = mkdtempSync(join(cacheRoot(), '..', 'dmemfs-rig-concurrent-'));
    try {
      const env = { DMEMFS_RIG_CACHE: cache };
      const [a, b] = await Promise.all([rigCli(['image', 'helpers'], { env }), rigCli(['image', 'helpers'], { env })]);
      st.equal(a.code, 0, a.stderr.slice(-1000));
      st.equal(b.code, 0, b.stderr.slice(-1000));
      st.equal(a.stdout, b.stdout, 'both print the same helper paths');
      const entries = readdirSync(join(cache, 'helpers')).filter((n) => !n.startsWith('.'));
      st.equal(entries.length, 1, 'one entry');
      st.ok(existsSync(join(cache, 'helpers', entries[0]!, '.complete')), 'published whole');
      const staging = join(cache, 'helpers', '.staging');
      st.same(existsSync(staging) ? readdirSync(staging) : [], [], 'no staging left');
      const builds = [a, b].filter((r) => /helpers: compiling/.test(r.stderr)).length;
      st.equal(builds, 1, 'compiled by exactly one run; the other waited for it');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  },
);

// Two containers on one host sharing the cache directory, with the host's hostname (docker's
// --uts=host, a common CI runner setup) and pid namespaces of their own: the first builds as pid
// 62 of its namespace, the second is pid 1 of its own, where no pid 62 exists. A lock that named
// only host and pid would look dead to the second, which would build beside the first (tried by
// hand with the namespace left out of holderState: the second took the lock, removed the first's
// staging, and the first failed); the holder's pid namespace makes it wait.
const unshare = spawnSync('unshare', ['--pid', '--fork', '--mount', '--mount-proc', 'true']);
await fault(
  t,
  'concurrency',
  'two containers (own pid namespaces, one hostname) share one cache: built once, the second waits',
  async (st) => {
    const cache = mkdtempSync(join(cacheRoot(), '..', 'dmemfs-rig-containers-'));
    try {
      const env = { DMEMFS_RIG_CACHE: cache };
      let compiling!: () => void;
      const started = new Promise<void>((r) => (compiling = r));
      const a = rigCli(['image', 'helpers'], {
        env,
        container: { skipPids: 60 },
        onStderr: (e) => /helpers: compiling/.test(e) && compiling(),
      });
      await started;
      const b = await rigCli(['image', 'helpers'], { env, container: {} });
      const first = await a;
      st.equal(first.code, 0, first.stderr.slice(-1000));
      st.equal(b.code, 0, b.stderr.slice(-1000));
      st.equal(first.stdout, b.stdout, 'both print the same helper paths');
      st.notMatch(b.stderr, /helpers: compiling/, 'the second did not compile');
      st.match(
        b.stderr,
        new RegExp(`is being built by pid [1-9]\\d+ on ${hostname().replace(/\./g, '\\.')}; waiting`),
        "it waited for the first, named by its pid in the first's namespace",
      );
      const entries = readdirSync(join(cache, 'helpers')).filter((n) => !n.startsWith('.'));
      st.equal(entries.length, 1, 'one entry, published whole');
      st.ok(existsSync(join(cache, 'helpers', entries[0]!, '.complete')));
      const staging = join(cache, 'helpers', '.staging');
      st.same(existsSync(staging) ? readdirSync(staging) : [], [], 'no staging left');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  },
  { skip: unshare.status === 0 ? false : `unshare cannot make a pid namespace here: ${String(unshare.stderr)}` },
);

await fault(t, 'concurrency', 'two scenario runs at once on the shared cache: both pass, no port clash', async (st) => {
  const out = mkdtempSync(join(tmpdir(), 'rig-concurrent-'));
  const args = (d: string) => [
    'run',
    '--scenario',
    'reservation-bad-values',
    '--scenario',
    'mem-devmem',
    '--out',
    join(out, d),
  ];
  const [a, b] = await Promise.all([rigCli(args('a')), rigCli(args('b'))]);
  st.equal(a.code, 0, a.stderr.slice(-1500));
  st.equal(b.code, 0, b.stderr.slice(-1500));
  const ports = (d: string) =>
    (
      JSON.parse(readFileSync(join(out, d, 'results.json'), 'utf8')) as { boots: Array<{ qemu: { args: string[] } }> }
    ).boots.flatMap((x) =>
      [...x.qemu.args.join(' ').matchAll(/hostfwd=tcp:127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])),
    );
  const pa = ports('a');
  const pb = ports('b');
  st.ok(pa.length === 2 && pb.length === 2, 'two boots each');
  // Boots that ran at the same time used different ports (a port may be reused later, after the first guest stopped).
  st.notOk(pa[0] === pb[0], `first boots: ${pa[0]} vs ${pb[0]}`);
  rmSync(out, { recursive: true, force: true });
});
