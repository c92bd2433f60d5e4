/**
 * A stock kernel from Debian's packages (bookworm's linux-image), fetched through the
 * private apt configuration, verified, unpacked into the cache with depmod run on its
 * modules. Used until the rig's own kernel pipeline has built the kernel under test, and
 * as the kernel of small L2 guests.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cached, listCache } from '../core/cache.js';
import { PrivateApt, debianDistro } from '../core/apt.js';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';

export interface KernelArtifacts {
  /** bzImage / vmlinuz path. */
  image: string;
  /** Kernel release (uname -r). */
  release: string;
  /** <dir>/lib/modules/<release>, when the kernel has modules. */
  modulesDir: string | undefined;
  config: string | undefined;
  /** Where it came from, for results. */
  provenance: Record<string, string>;
}

/**
 * With DMEMFS_RIG_OFFLINE=1 (no Debian archive reachable: an air-gapped runner, or the rig
 * running inside its own L1), the most recently used complete entry of the cache stands in
 * for the archive's newest kernel, and the run says which.
 */
function offlineStockKernel(): { dir: string; package: string; version: string; sha256: string } {
  const entries = listCache()
    .filter((e) => e.kind === 'debian-kernel' && e.complete)
    .sort((a, b) => (b.lastUsed?.getTime() ?? 0) - (a.lastUsed?.getTime() ?? 0));
  const e = entries[0];
  if (!e)
    throw new RigError('offline', 'DMEMFS_RIG_OFFLINE=1 and the cache holds no Debian kernel', {
      fix: 'run once where the Debian archive is reachable (any `dmemfs-rig boot`), or unset DMEMFS_RIG_OFFLINE',
    });
  const m = JSON.parse(readFileSync(join(e.dir, 'manifest.json'), 'utf8')) as {
    package: string;
    version: string;
    sha256: string;
  };
  info(`offline: Debian's kernel from the cache (${m.package} ${m.version})`);
  return { dir: e.dir, ...m };
}

function stockArtifacts(dir: string, pkg: { name: string; version: string; sha256: string }): KernelArtifacts {
  const release = readdirSync(join(dir, 'root', 'lib', 'modules'))[0]!;
  const modulesDir = join(dir, 'root', 'lib', 'modules', release);
  return {
    image: join(dir, 'vmlinuz'),
    release,
    modulesDir: existsSync(modulesDir) ? modulesDir : undefined,
    config: join(dir, 'config'),
    provenance: { source: 'debian-package', package: pkg.name, version: pkg.version, sha256: pkg.sha256 },
  };
}

export async function debianStockKernel(metapackage = 'linux-image-amd64'): Promise<KernelArtifacts> {
  if (process.env.DMEMFS_RIG_OFFLINE === '1') {
    const o = offlineStockKernel();
    return stockArtifacts(o.dir, { name: o.package, version: o.version, sha256: o.sha256 });
  }
  const apt = new PrivateApt(debianDistro('bookworm'));
  await apt.update();
  const pkgName = await apt.resolveDepends(metapackage);
  const pkg = await apt.show(pkgName);
  const entry = await cached(
    'debian-kernel',
    pkg.sha256,
    async (staging) => {
      const debDir = join(staging, '.deb');
      const deb = await apt.download(pkg, debDir);
      info(`extracting ${pkg.name}`);
      const root = join(staging, 'root');
      mkdirSync(root);
      await run('dpkg-deb', ['-x', deb, root], { what: `dpkg-deb -x ${pkg.name}` });
      rmSync(debDir, { recursive: true, force: true });
      const release = readdirSync(join(root, 'lib', 'modules'))[0];
      if (!release) throw new RigError('bad-package', `${pkg.name} has no lib/modules/<release>`);
      await run('depmod', ['-b', root, release], { what: 'depmod' });
      for (const f of readdirSync(join(root, 'boot')))
        renameSync(join(root, 'boot', f), join(staging, f.replace(`-${release}`, '')));
      writeFileSync(
        join(staging, 'manifest.json'),
        JSON.stringify({ package: pkg.name, version: pkg.version, sha256: pkg.sha256, release }, null, 2),
      );
    },
    { meta: { package: pkg.name, version: pkg.version } },
  );
  return stockArtifacts(entry.dir, pkg);
}
