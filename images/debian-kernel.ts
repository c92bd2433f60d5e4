/**
 * A stock kernel from Debian's packages (bookworm's linux-image), fetched through the
 * private apt configuration, verified, unpacked into the cache with depmod run on its
 * modules. Used until the rig's own kernel pipeline has built the kernel under test, and
 * as the kernel of small L2 guests.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cached } from '../core/cache.js';
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

export async function debianStockKernel(metapackage = 'linux-image-amd64'): Promise<KernelArtifacts> {
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
  const release = readdirSync(join(entry.dir, 'root', 'lib', 'modules'))[0]!;
  const modulesDir = join(entry.dir, 'root', 'lib', 'modules', release);
  return {
    image: join(entry.dir, 'vmlinuz'),
    release,
    modulesDir: existsSync(modulesDir) ? modulesDir : undefined,
    config: join(entry.dir, 'config'),
    provenance: { source: 'debian-package', package: pkg.name, version: pkg.version, sha256: pkg.sha256 },
  };
}
