/**
 * Host setup: the Debian packages the rig needs, checked with dpkg-query and installed with
 * apt-get when missing. Idempotent (a second run installs nothing). Without root it prints
 * the exact apt-get line and fails.
 */
import { run, tryRun } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';

/** Package -> why the rig needs it. Data; keep the reasons true. */
export const HOST_PACKAGES: Record<string, string> = {
  'qemu-system-x86': 'boots every guest',
  'qemu-utils': 'disk images for guests',
  ovmf: 'UEFI firmware for the EFI boot path (soft-reserved memory through efi_fake_mem=)',
  'busybox-static': 'userland of the small guests',
  'dropbear-bin': 'SSH server inside the small guests',
  cpio: "inspecting initramfs archives, and the reproducers' mkinitramfs.sh",
  kmod: 'depmod for guest kernel modules',
  'util-linux': 'setpriv --pdeathsig keeps no QEMU alive after the rig',
  'debian-archive-keyring': 'verifies Debian archive downloads',
  'xz-utils': 'unpacks the kernel source archive',
  git: 'kernel source repository, git am, patch ids',
  patch: 'applying a patch with fuzz where git am refuses',
  make: 'kernel build',
  gcc: 'kernel build and the in-guest C helpers',
  binutils: "strip, and objdump decoding an oops's Code: bytes for report --mail",
  'libc6-dev': 'static in-guest C helpers',
  flex: 'kernel build',
  bison: 'kernel build',
  bc: 'kernel build',
  'libelf-dev': 'kernel build (objtool)',
  'libssl-dev': 'kernel build (certificates)',
  dwarves: 'kernel build (pahole)',
  ccache: 'cached kernel compilation',
  rsync: 'kernel headers install',
  ndctl: 'device-dax namespaces (guest images)',
  e2fsprogs: 'mke2fs -d packs the L1 image',
  'libc-bin': 'ldconfig -r for the L1 image',
  daxctl: 'device-dax subdivision (guest images)',
  chromium: 'renders report.html headless for the report screenshot test',
};

export async function missingPackages(pkgs: string[]): Promise<string[]> {
  const r = await tryRun('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Abbrev}\n', ...pkgs]);
  const installed = new Set(
    r.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 2 && f[1]!.startsWith('ii'))
      .map((f) => f[0]!),
  );
  return pkgs.filter((p) => !installed.has(p));
}

export function aptInstallLine(pkgs: string[]): string[] {
  return ['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs];
}

export async function setupHost(
  opts: { extra?: string[]; dryRun?: boolean } = {},
): Promise<{ installed: string[]; alreadyPresent: number }> {
  const wanted = [...Object.keys(HOST_PACKAGES), ...(opts.extra ?? [])];
  const missing = await missingPackages(wanted);
  if (missing.length === 0) {
    info(`setup: all ${wanted.length} host packages present`);
    return { installed: [], alreadyPresent: wanted.length };
  }
  const line = aptInstallLine(missing);
  if (opts.dryRun) {
    info(`setup: would run: ${line.join(' ')}`);
    return { installed: [], alreadyPresent: wanted.length - missing.length };
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new RigError('setup-needs-root', `missing host packages: ${missing.join(' ')}`, {
      fix: `run as root: sudo apt-get update && sudo ${line.join(' ')}`,
    });
  }
  info(`setup: installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['-q', 'update'], { env, what: 'apt-get update' });
  await run('apt-get', ['-q', ...line.slice(1)], {
    env,
    what: 'apt-get install',
    fix: `run by hand: ${line.join(' ')}`,
  });
  const still = await missingPackages(missing);
  if (still.length)
    throw new RigError('setup-failed', `apt-get did not install: ${still.join(' ')}`, {
      fix: `run by hand: ${line.join(' ')}`,
    });
  return { installed: missing, alreadyPresent: wanted.length - missing.length };
}
