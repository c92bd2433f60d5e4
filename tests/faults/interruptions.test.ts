/**
 * SIGINT/SIGTERM during download, extract, patch, build and image build, each followed by a
 * rerun, in a fresh cache of its own: the rerun never trusts what the interrupted run left
 * half-written, and does not redo what it finished.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../../core/paths.js';
import { fault } from '../helpers/faults.js';
import { rigCli } from '../helpers/cli.js';

// The fresh cache sits beside the real one (same disk); its ccache is separate, so the build
// below compiles for real.
const cache = mkdtempSync(join(cacheRoot(), '..', 'dmemfs-rig-interrupt-'));
t.teardown(() => rmSync(cache, { recursive: true, force: true }));
const env = { DMEMFS_RIG_CACHE: cache, CCACHE_DIR: join(cache, 'ccache') };

/** Complete entries of a cache kind (directories with the .complete marker). */
const complete = (kind: string) =>
  existsSync(join(cache, kind))
    ? readdirSync(join(cache, kind)).filter((n) => !n.startsWith('.') && existsSync(join(cache, kind, n, '.complete')))
    : [];
const staging = (kind: string) =>
  existsSync(join(cache, kind, '.staging')) ? readdirSync(join(cache, kind, '.staging')) : [];
const archives = () => {
  const d = join(cache, 'apt', 'bullseye', 'cache', 'archives');
  return existsSync(d) ? readdirSync(d).filter((n) => n.endsWith('.deb')) : [];
};
/** Processes still working in the fresh cache (make, tar, dpkg-deb ...) after the rig is gone. */
async function leftovers(): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 1000));
  try {
    return execFileSync('pgrep', ['-af', cache], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l && !l.includes('pgrep'));
  } catch {
    return [];
  }
}
const interrupted = (r: { interrupted: boolean; code: number | null; signal: string | null }) =>
  r.interrupted && (r.code !== 0 || r.signal !== null);

await fault(
  t,
  'interruption',
  'SIGINT during the source download; rerun downloads again (nothing half-written is kept)',
  async (st) => {
    const r = await rigCli(['kernel', 'tree'], {
      env,
      interrupt: { at: /downloading linux-source-5\.10/, signal: 'SIGINT', delayMs: 100 },
    });
    st.ok(interrupted(r), `interrupted (exit ${r.code}, signal ${r.signal})`);
    st.notMatch(r.stderr, /unpacking linux-source/, 'the signal came while the package was downloading');
    st.same(await leftovers(), [], 'no worker of the interrupted run is left');
    st.same(complete('source'), [], 'no source entry');
    st.same(archives(), [], 'no .deb under its final name: a partial download is never taken for the package');
  },
);

await fault(
  t,
  'interruption',
  'SIGTERM during extraction; the rerun keeps the verified download and extracts again',
  async (st) => {
    const r = await rigCli(['kernel', 'tree'], {
      env,
      interrupt: { at: /extract linux-source-5\.10: [1-9]/, signal: 'SIGTERM' },
    });
    st.ok(interrupted(r), `interrupted (exit ${r.code}, signal ${r.signal})`);
    st.same(await leftovers(), [], 'no worker of the interrupted run is left');
    st.match(r.stderr, /downloading linux-source-5\.10/, 'this run downloaded it');
    st.same(complete('source'), [], 'no source entry from a half extraction');
    st.equal(archives().length, 1, 'the verified package stays (finished work)');
    const leftover = readdirSync(join(cache, 'apt', 'bullseye', 'cache', 'archives')).filter((n) =>
      n.startsWith('.download-'),
    );
    st.same(leftover, [], "the interrupted download's temporary directory was swept");
  },
);

await fault(
  t,
  'interruption',
  'SIGINT while the series is applied; the rerun reuses source, redoes the tree, and finishes',
  async (st) => {
    const r = await rigCli(['kernel', 'tree'], {
      env,
      interrupt: { at: /tree: checking out/, signal: 'SIGINT', delayMs: 3000 },
    });
    st.ok(interrupted(r), `interrupted (exit ${r.code}, signal ${r.signal})`);
    st.same(await leftovers(), [], 'no worker of the interrupted run is left');
    st.match(r.stderr, /already downloaded \(sha256 verified\)/, 'the download was not redone');
    st.notMatch(r.stderr, /downloading linux-source/);
    st.equal(complete('source').length, 1, 'the source stage finished and was published');
    st.same(complete('tree'), [], 'no tree entry from a half-applied series');
    const again = await rigCli(['kernel', 'tree'], { env });
    st.equal(again.code, 0, again.stderr.slice(-1500));
    st.notMatch(again.stderr, /extract linux-source/, 'the source was not extracted again');
    st.match(again.stdout, /37 clean|clean: 37|37\/37/, 'all 37 patches applied');
    st.equal(complete('tree').length, 1);
    st.same(staging('tree'), [], 'no staging left behind');
  },
);

await fault(
  t,
  'interruption',
  'SIGTERM during the kernel build; the rerun resumes the work directory and trusts no half-built kernel',
  async (st) => {
    const r = await rigCli(['kernel', 'build'], {
      env,
      interrupt: { at: /kernel build: .*\d+\/\d+ objects|kernel build: [1-9]\d* /, signal: 'SIGTERM', delayMs: 15_000 },
    });
    st.ok(interrupted(r), `interrupted (exit ${r.code}, signal ${r.signal})`);
    st.same(await leftovers(), [], 'no worker of the interrupted run is left');
    st.same(complete('kernel'), [], 'no kernel entry');
    const work = join(cache, 'build-work');
    st.ok(
      existsSync(work) && readdirSync(work).filter((n) => !n.startsWith('.')).length === 1,
      'the work directory is kept for the rerun',
    );
    const again = await rigCli(['kernel', 'build'], {
      env,
      interrupt: { at: /resuming an interrupted build|objects/, signal: 'SIGTERM', delayMs: 2000 },
    });
    st.match(again.stderr, /resuming an interrupted build in .*: [1-9]\d* objects already built/, 'the rerun resumes');
    st.notMatch(again.stderr, /kernel: .* from cache/, 'and does not take a half-built kernel for a finished one');
    st.same(complete('kernel'), []);
  },
);

await fault(
  t,
  'interruption',
  'SIGINT during the L1 image build; the rerun reuses the downloaded packages and builds a whole image',
  async (st) => {
    const r = await rigCli(['image', 'l1'], {
      env,
      interrupt: { at: /L1 image: unpacking \d+ packages: [1-9]/, signal: 'SIGINT' },
    });
    st.ok(interrupted(r), `interrupted (exit ${r.code}, signal ${r.signal})`);
    st.same(await leftovers(), [], 'no worker of the interrupted run is left');
    st.same(complete('l1-image'), [], 'no image entry');
    const again = await rigCli(['image', 'l1'], { env });
    st.equal(again.code, 0, again.stderr.slice(-1500));
    st.notMatch(again.stderr, /downloading \d+ packages/, 'the packages were not downloaded again');
    st.equal(complete('l1-image').length, 1);
    st.same(staging('l1-image'), [], 'the interrupted staging was swept');
  },
);
