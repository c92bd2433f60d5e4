/**
 * The first-level host image (L1): Debian bookworm packages (the definition's list and their
 * dependency closure) unpacked into a merged-/usr root without a chroot or maintainer
 * scripts, plus the rig's init, the in-guest helpers and the L2 guest's files, packed into an
 * ext4 image with mke2fs -d. Cached by the hash of everything that goes in; the manifest
 * records every package's version and SHA256.
 */
import { trackGroup } from '../core/processes.js';
import { spawnStreaming as spawn } from '../core/exec.js';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PrivateApt, debianDistro, type ClosureEntry } from '../core/apt.js';
import { cached, fileSha256, hashParts } from '../core/cache.js';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info, Progress } from '../core/log.js';
import { projectRoot } from '../core/paths.js';
import type { RootfsDefinition } from './definitions.js';
import type { BuiltHelpers } from './guest-tools.js';

export interface L1Image {
  path: string;
  key: string;
  hit: boolean;
  manifest: L1Manifest;
}

export interface L1Manifest {
  name: string;
  distro: string;
  packages: Array<{ name: string; version: string; sha256: string }>;
  requested: string[];
  helpersKey: string;
  l2: { kernelSha256: string; initramfsKey: string };
  imageMiB: number;
  contentMiB: number;
  buildSeconds: number;
}

/** dpkg-deb --fsys-tarfile DEB | tar -x --keep-directory-symlink -C root (no shell). */
function unpackDeb(deb: string, root: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const src = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const tar = spawn('tar', ['-x', '--keep-directory-symlink', '--no-same-owner', '-C', root], {
      stdio: ['pipe', 'ignore', 'pipe'],
      detached: true,
    });
    trackGroup(src);
    trackGroup(tar);
    let err = '';
    src.stderr.on('data', (d: Buffer) => (err += d.toString()));
    tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
    src.stdout.pipe(tar.stdin);
    let done = 0;
    let failed = false;
    const finish = (code: number | null, what: string) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(
          new RigError('unpack-failed', `${what} failed on ${deb} (exit ${code})`, { evidence: err.slice(-1500) }),
        );
      }
      if (++done === 2 && !failed) resolve();
    };
    src.on('exit', (c) => finish(c, 'dpkg-deb --fsys-tarfile'));
    tar.on('exit', (c) => finish(c, 'tar -x'));
    src.on('error', (e) => reject(new RigError('missing-tool', `dpkg-deb: ${e.message}`)));
  });
}

export function l1ImageKey(def: RootfsDefinition, closure: ClosureEntry[], parts: Array<string | Buffer>): string {
  return hashParts([
    'l1-image-v3',
    def.name,
    ...closure.map((e) => `${e.name}=${e.version}:${e.sha256}`).sort(),
    ...parts,
  ]);
}

const ROOT_DIRS = [
  ...['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'run', 'mnt'],
  ...['opt/rig/l2', 'usr/local/bin', 'usr/lib/rig/busybox'],
];

/** A merged-/usr root with every package of the closure unpacked (no maintainer scripts). */
async function unpackRoot(root: string, closure: ClosureEntry[], debs: Map<string, string>): Promise<void> {
  for (const d of ROOT_DIRS) mkdirSync(join(root, d), { recursive: true });
  for (const l of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${l}`, join(root, l));
  const progress = new Progress(`L1 image: unpacking ${closure.length} packages`, closure.length, ' packages', 5000);
  let n = 0;
  for (const e of closure) {
    await unpackDeb(debs.get(e.name)!, root);
    progress.update(++n);
  }
  progress.done();
}

/** The rig's accounts and system files: root, nobody, the unprivileged user rig (1000), kvm. */
function writeAccounts(root: string): void {
  writeFileSync(
    join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' +
      'rig:x:1000:1000:rig unprivileged user:/tmp:/bin/sh\n',
  );
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nkvm:x:100:\nnogroup:x:65534:\nrig:x:1000:\n');
  writeFileSync(join(root, 'etc/shells'), '/bin/sh\n');
  writeFileSync(join(root, 'etc/hostname'), 'rig-l1\n');
  writeFileSync(join(root, 'etc/ld.so.conf'), '/usr/local/lib\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n');
  // /bin/sh is dash: busybox's sh prefers its own applets to the real tools on PATH.
  rmSync(join(root, 'usr/bin/sh'), { force: true });
  symlinkSync('dash', join(root, 'usr/bin/sh'));
  mkdirSync(join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
  chmodSync(join(root, 'root'), 0o700);
  mkdirSync(join(root, 'etc/dropbear'), { recursive: true, mode: 0o700 });
}

/**
 * dpkg's status file for the unpacked closure, so that dpkg-query inside L1 answers as on a
 * Debian host (the rig, run inside L1, records its packages' versions that way).
 */
export function dpkgStatus(closure: Array<{ name: string; version: string }>): string {
  return closure
    .map(
      (e) =>
        `Package: ${e.name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${e.version}\n` +
        'Maintainer: unknown\nDescription: unpacked from the Debian archive by dmemfs-rig (no maintainer scripts)\n',
    )
    .join('\n');
}

/** Busybox fills the gaps: a link in /usr/bin only where no package provides the tool. */
async function linkBusyboxApplets(root: string): Promise<void> {
  const applets = (await run(join(root, 'usr/bin/busybox'), ['--list'])).stdout.split('\n').filter(Boolean);
  for (const a of applets) {
    symlinkSync('/usr/bin/busybox', join(root, 'usr/lib/rig/busybox', a));
    if (!existsSync(join(root, 'usr/bin', a)) && !existsSync(join(root, 'usr/sbin', a)))
      symlinkSync('busybox', join(root, 'usr/bin', a));
  }
}

/** The root as an ext4 image (mke2fs -d, fixed time, no journal): its size in MiB and its content's. */
async function makeExt4(root: string, out: string, freeMiB: number) {
  const contentMiB = Number((await run('du', ['-sm', root])).stdout.split(/\s+/)[0]);
  const imageMiB = Math.ceil((contentMiB * 1.15 + freeMiB) / 16) * 16;
  info(`L1 image: ${contentMiB} MiB of content, making a ${imageMiB} MiB ext4 image`);
  await run(
    'mke2fs',
    [
      ...['-q', '-t', 'ext4', '-O', '^has_journal', '-L', 'rig-l1', '-d', root, '-E', 'root_owner=0:0'],
      out,
      `${imageMiB}M`,
    ],
    { what: 'mke2fs -d', env: { ...process.env, E2FSPROGS_FAKE_TIME: '1607299200' } },
  );
  return { contentMiB, imageMiB };
}

interface L2Payload {
  kernel: string;
  initramfs: string;
  initramfsKey: string;
}

export async function buildL1Image(def: RootfsDefinition, helpers: BuiltHelpers, l2: L2Payload): Promise<L1Image> {
  const apt = new PrivateApt(debianDistro(def.distro));
  const closure = await apt.closure(def.packages);
  const init = readFileSync(join(projectRoot(), 'images', 'guest-init', 'init.sh'));
  const l2KernelSha = await fileSha256(l2.kernel);
  const key = l1ImageKey(def, closure, [init, helpers.key, l2KernelSha, l2.initramfsKey]);
  const entry = await cached(
    'l1-image',
    key,
    async (staging) => {
      const started = Date.now();
      const root = join(staging, 'root');
      await unpackRoot(root, closure, await apt.downloadClosure(closure));
      // The rig's parts: init, accounts, busybox applets, helpers, the L2 guest (host keys come per boot).
      writeFileSync(join(root, 'usr/sbin/rig-init'), init, { mode: 0o755 });
      writeAccounts(root);
      mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
      writeFileSync(join(root, 'var/lib/dpkg/status'), dpkgStatus(closure));
      await linkBusyboxApplets(root);
      for (const [name, path] of Object.entries(helpers.paths)) {
        copyFileSync(path, join(root, 'usr/local/bin', name));
        chmodSync(join(root, 'usr/local/bin', name), 0o755);
      }
      copyFileSync(l2.kernel, join(root, 'opt/rig/l2/kernel'));
      copyFileSync(l2.initramfs, join(root, 'opt/rig/l2/initramfs.cpio.gz'));
      await run('ldconfig', ['-r', root], { what: 'ldconfig -r' });
      const sizes = await makeExt4(root, join(staging, 'l1.ext4'), def.freeMiB);
      rmSync(root, { recursive: true, force: true });
      const manifest: L1Manifest = {
        name: def.name,
        distro: def.distro,
        packages: closure.map((e) => ({ name: e.name, version: e.version, sha256: e.sha256 })),
        requested: def.packages,
        helpersKey: helpers.key,
        l2: { kernelSha256: l2KernelSha, initramfsKey: l2.initramfsKey },
        ...sizes,
        buildSeconds: (Date.now() - started) / 1000,
      };
      writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2));
    },
    { needMiB: 1500 },
  );
  const manifest = JSON.parse(readFileSync(join(entry.dir, 'manifest.json'), 'utf8')) as L1Manifest;
  return { path: join(entry.dir, 'l1.ext4'), key, hit: entry.hit, manifest };
}
