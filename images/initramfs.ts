/**
 * Builds a small initramfs from a definition: busybox-static, host binaries with their
 * libraries, the kernel's modules (with dependencies, in load order), the rig's /init.
 * Cached by the hash of its content; written atomically.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cached, hashParts } from '../core/cache.js';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { projectRoot } from '../core/paths.js';
import { gzipInitramfs, writeNewc, type CpioEntry } from './cpio.js';
import type { InitramfsDefinition } from './definitions.js';
import type { KernelArtifacts } from './debian-kernel.js';

export interface BuiltImage {
  path: string;
  key: string;
  hit: boolean;
  manifest: Record<string, unknown>;
}

/** Parse modules.dep into name -> {path, deps}. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const map = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const path = m[1]!;
    const name = moduleName(path);
    map.set(name, { path, deps: m[2]!.split(/\s+/).filter(Boolean).map(moduleName) });
  }
  return map;
}

export function moduleName(path: string): string {
  return path
    .replace(/^.*\//, '')
    .replace(/\.ko(\.(xz|gz|zst))?$/, '')
    .replace(/-/g, '_');
}

/** Load order: each module after everything it depends on; builtins are skipped. */
export function moduleLoadOrder(
  wanted: string[],
  dep: Map<string, { path: string; deps: string[] }>,
  builtin: Set<string>,
): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    const n = name.replace(/-/g, '_');
    if (seen.has(n) || builtin.has(n)) return;
    const e = dep.get(n);
    if (!e)
      throw new RigError(
        'missing-module',
        `kernel module ${n} (needed by ${chain.join(' <- ') || 'the image'}) is neither built in nor in modules.dep`,
        { fix: 'build it into the kernel or add it to the kernel config' },
      );
    seen.add(n);
    for (const d of e.deps) visit(d, [n, ...chain]);
    order.push(e.path);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

/** The x86-64 dynamic loader: `--list` is what ldd runs (ldd itself is a bash script, not everywhere). */
export const DYNAMIC_LOADER = '/lib64/ld-linux-x86-64.so.2';

/** True if a 64-bit ELF file names a program interpreter (PT_INTERP): it is dynamically linked. */
export function hasInterpreter(path: string): boolean {
  const b = readFileSync(path);
  if (b.length < 64 || b.toString('latin1', 0, 4) !== '\x7fELF' || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 <= b.length && b.readUInt32LE(at) === 3) return true;
  }
  return false;
}

/** Shared libraries of a dynamically linked host binary (from the loader's --list; none for a static one). */
export async function sharedLibraries(binary: string, loader = DYNAMIC_LOADER): Promise<string[]> {
  if (!existsSync(loader))
    throw new RigError('missing-tool', `${loader} is missing: cannot list the libraries of ${binary}`, {
      fix: 'run the rig on an x86-64 glibc system (Debian)',
    });
  if (!hasInterpreter(binary)) return []; // static: the loader would crash on it
  const r = await run(loader, ['--list', binary]);
  const libs: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** Symlinks for every busybox applet (made at build time: saves `busybox --install` at boot). */
export async function busyboxApplets(busybox: string): Promise<CpioEntry[]> {
  const { stdout } = await run(busybox, ['--list-full']);
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'bin/busybox' && l !== 'bin/sh')
    .map((l) => ({ type: 'symlink' as const, path: l, target: '/bin/busybox' }));
}

async function packageVersions(pkgs: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of pkgs) {
    const r = await run('dpkg-query', ['-W', '-f', '${Version}', p]).catch(() => undefined);
    if (!r) throw new RigError('missing-package', `host package ${p} is not installed`, { fix: 'run `npm run setup`' });
    out[p] = r.stdout.trim();
  }
  return out;
}

/** The fixed skeleton: init, busybox, device nodes, users, the directories init expects. */
function skeleton(def: InitramfsDefinition, busybox: string): CpioEntry[] {
  const text = (path: string, data: string): CpioEntry => ({ type: 'file', path, data: Buffer.from(data) });
  return [
    {
      type: 'file',
      path: 'init',
      mode: 0o755,
      data: readFileSync(join(projectRoot(), 'images', 'guest-init', def.init)),
    },
    text('etc/rig/initramfs', `${def.name}\n`),
    { type: 'file', path: 'bin/busybox', mode: 0o755, data: readFileSync(busybox) },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', mode: 0o666, major: 1, minor: 3 },
    text('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n'),
    text('etc/group', 'root:x:0:\nnogroup:x:65534:\n'),
    text('etc/shells', '/bin/sh\n'),
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'root/.ssh', mode: 0o700 },
    { type: 'dir', path: 'etc/dropbear', mode: 0o700 },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
  ];
}

/** The host binaries the image needs, with their shared libraries. */
async function hostBinaryEntries(def: InitramfsDefinition): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [];
  const libs = new Set<string>();
  for (const bin of def.hostBinaries) {
    if (!existsSync(bin)) throw new RigError('missing-tool', `${bin} is not installed`, { fix: 'run `npm run setup`' });
    entries.push({ type: 'file', path: bin, mode: 0o755, data: readFileSync(bin) });
    for (const l of await sharedLibraries(bin)) libs.add(l);
  }
  for (const l of libs) entries.push({ type: 'file', path: l, mode: 0o755, data: readFileSync(l) });
  return entries;
}

/** The kernel modules the definition asks for, with their dependencies, in load order. */
function moduleEntries(def: InitramfsDefinition, kernel: KernelArtifacts): { order: string[]; entries: CpioEntry[] } {
  if (!kernel.modulesDir || !def.modules.length) return { order: [], entries: [] };
  const dir = kernel.modulesDir;
  const builtinPath = join(dir, 'modules.builtin');
  const builtin = new Set(
    existsSync(builtinPath) ? readFileSync(builtinPath, 'utf8').split('\n').filter(Boolean).map(moduleName) : [],
  );
  const order = moduleLoadOrder(def.modules, parseModulesDep(readFileSync(join(dir, 'modules.dep'), 'utf8')), builtin);
  const entries: CpioEntry[] = order.map((rel) => ({
    type: 'file',
    path: join('lib/modules', rel),
    data: readFileSync(join(dir, rel)),
  }));
  return { order, entries };
}

export async function buildInitramfs(
  def: InitramfsDefinition,
  kernel: KernelArtifacts,
  extra: CpioEntry[] = [],
): Promise<BuiltImage> {
  const busybox = '/bin/busybox';
  if (!existsSync(busybox))
    throw new RigError('missing-tool', 'busybox-static is not installed', { fix: 'run `npm run setup`' });
  const modules = moduleEntries(def, kernel);
  const entries: CpioEntry[] = [
    ...skeleton(def, busybox),
    ...(await hostBinaryEntries(def)),
    ...modules.entries,
    { type: 'file', path: 'etc/rig/modules.order', data: Buffer.from(modules.order.map((p) => p + '\n').join('')) },
    ...extra,
    ...(await busyboxApplets(busybox)),
  ];
  // No SSH host key in the image: the rig makes one per boot and hands it over through fw_cfg.
  const key = hashParts(['initramfs-v2', def.name, writeNewc(entries)]);
  const manifest = {
    name: def.name,
    kernelRelease: kernel.release,
    modules: modules.order.map((p) => relative('.', p)),
    hostPackages: await packageVersions(def.hostPackages),
    contentSha256: key,
  };
  const entry = await cached('initramfs', key, async (staging) => {
    writeFileSync(join(staging, 'initramfs.cpio.gz'), gzipInitramfs(writeNewc(entries)));
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2));
  });
  return { path: join(entry.dir, 'initramfs.cpio.gz'), key, hit: entry.hit, manifest };
}
