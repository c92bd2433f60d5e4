/**
 * The rig carried into its own L1 on a second disk: its built JavaScript, its production
 * node_modules, the files it reads at run time, and a cache pre-filled with the entries a
 * first-guest boot needs (Debian's kernel and its PVH vmlinux), so that the rig inside L1
 * runs offline and unmodified. Node.js itself comes from the L1 image (Debian's package).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { run } from '../../core/exec.js';
import { projectRoot } from '../../core/paths.js';

/** Where the disk is mounted inside L1, and how the inner rig is run there. */
export const INNER = {
  mount: '/mnt/rig-disk',
  cli: '/mnt/rig-disk/rig/dist/scripts/cli.js',
  env: ['DMEMFS_RIG_CACHE=/mnt/rig-disk/cache', 'DMEMFS_RIG_OFFLINE=1', 'DMEMFS_RIG_RUNDIR=/tmp/inner-runs'],
};

/** The production dependency directories (what `npm ci --omit=dev` would install). */
function productionModules(root: string): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.startsWith(join(root, 'node_modules') + '/'))
    .map((l) => relative(root, l));
}

/**
 * An ext4 image holding rig/ and cache/ (cache entries copied whole, marker included).
 * Returns its path and a cleanup; the image is the caller's to attach writable.
 */
export async function buildRigDisk(cacheEntryDirs: string[]): Promise<{ path: string; remove: () => void }> {
  const root = projectRoot();
  const work = mkdtempSync(join(tmpdir(), 'rig-disk-'));
  const tree = join(work, 'tree');
  const rig = join(tree, 'rig');
  mkdirSync(rig, { recursive: true });
  for (const p of ['package.json', 'dist', 'images/guest-init', 'kernel/config', 'kernel/profiles', 'kernel/series'])
    cpSync(join(root, p), join(rig, p), { recursive: true });
  for (const m of productionModules(root)) cpSync(join(root, m), join(rig, m), { recursive: true });
  for (const dir of cacheEntryDirs) {
    const kind = basename(dirname(dir));
    cpSync(dir, join(tree, 'cache', kind, basename(dir)), { recursive: true });
  }
  const path = join(work, 'rig.ext4');
  const mib = Number(execFileSync('du', ['-sm', tree], { encoding: 'utf8' }).split(/\s+/)[0]);
  await run('mke2fs', ['-q', '-t', 'ext4', '-O', '^has_journal', '-d', tree, path, `${mib + 512}M`], {
    what: 'mke2fs -d (rig disk)',
  });
  rmSync(tree, { recursive: true, force: true });
  return { path, remove: () => rmSync(work, { recursive: true, force: true }) };
}
