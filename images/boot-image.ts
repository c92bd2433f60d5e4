/**
 * Faster boots under TCG: a kernel with CONFIG_PVH=y can be started by QEMU as an ELF
 * vmlinux through its PVH entry point, skipping the bzImage decompressor (which takes about
 * 3 s of emulated time for an XZ-compressed kernel). The vmlinux is extracted from the
 * bzImage's payload and cached by the bzImage's hash.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { startProcess } from '../core/exec.js';
import { join } from 'node:path';
import { cached, fileSha256 } from '../core/cache.js';
import { RigError } from '../core/errors.js';

const PAYLOADS: Array<{ name: string; magic: Buffer; tool: string; args: string[] }> = [
  {
    name: 'xz',
    magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    tool: 'xz',
    args: ['-dc', '--single-stream'],
  },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), tool: 'zstd', args: ['-dc'] },
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), tool: 'gzip', args: ['-dc'] },
];

/**
 * True if the kernel config says the kernel has a PVH entry point that works. Not with KASAN:
 * seen here, a KASAN kernel started through PVH resets at once without a line on the console
 * (its early C code runs before the shadow memory exists); its bzImage boots.
 */
export function configHasPvh(configText: string): boolean {
  return /^CONFIG_PVH=y$/m.test(configText) && !/^CONFIG_KASAN=y$/m.test(configText);
}

/** Whether to boot this vmlinux through PVH: allowed (DMEMFS_RIG_PVH), its config says so, its ELF has the note. */
export function pvhBootable(configText: string, vmlinux: string): boolean {
  return process.env.DMEMFS_RIG_PVH !== '0' && configHasPvh(configText) && elfHasPvhNote(vmlinux);
}

function isElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    return b.toString('latin1') === '\x7fELF';
  } finally {
    closeSync(fd);
  }
}

/** True if an ELF file carries the Xen PHYS32_ENTRY note that QEMU's PVH boot needs. */
export function elfHasPvhNote(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const hdr = Buffer.alloc(64);
    readSync(fd, hdr, 0, 64, 0);
    if (hdr.toString('latin1', 0, 4) !== '\x7fELF' || hdr[4] !== 2) return false;
    const phoff = Number(hdr.readBigUInt64LE(32));
    const phentsize = hdr.readUInt16LE(54);
    const phnum = hdr.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const p = ph.subarray(i * phentsize);
      if (p.readUInt32LE(0) !== 4) continue; // PT_NOTE
      const off = Number(p.readBigUInt64LE(8));
      const size = Number(p.readBigUInt64LE(32));
      const notes = Buffer.alloc(size);
      readSync(fd, notes, 0, size, off);
      let o = 0;
      while (o + 12 <= size) {
        const namesz = notes.readUInt32LE(o);
        const descsz = notes.readUInt32LE(o + 4);
        const type = notes.readUInt32LE(o + 8);
        const name = notes.toString('latin1', o + 12, o + 12 + namesz).replace(/\0+$/, '');
        if (name === 'Xen' && type === 18) return true;
        o += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
      }
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Extract the ELF vmlinux from a bzImage (first payload whose decompression is an ELF). */
export async function extractVmlinux(bzImage: string): Promise<string> {
  const sha = await fileSha256(bzImage);
  const entry = await cached('vmlinux', sha, async (staging) => {
    const data = readFileSync(bzImage);
    for (const p of PAYLOADS) {
      let at = data.indexOf(p.magic);
      while (at >= 0) {
        const out = join(staging, 'vmlinux');
        const tmpIn = join(staging, `payload.${p.name}`);
        writeFileSync(tmpIn, data.subarray(at));
        // Trailing bytes after the stream make the tools exit non-zero: judge by the output.
        await startProcess(p.tool, [...p.args, tmpIn], { stdout: { file: out }, reject: false });
        rmSync(tmpIn, { force: true });
        if (existsSync(out) && statSync(out).size > 1024 && isElf(out)) return;
        rmSync(out, { force: true });
        at = data.indexOf(p.magic, at + 1);
      }
    }
    throw new RigError('no-vmlinux', `could not find an ELF payload in ${bzImage}`, {
      fix: 'boot the bzImage instead (no PVH)',
    });
  });
  return join(entry.dir, 'vmlinux');
}

/**
 * The image QEMU should boot: the extracted vmlinux when the kernel supports PVH (unless
 * DMEMFS_RIG_PVH=0), else the bzImage itself.
 */
export async function fastBootImage(
  bzImage: string,
  configPath: string | undefined,
): Promise<{ path: string; pvh: boolean }> {
  if (process.env.DMEMFS_RIG_PVH === '0' || !configPath) return { path: bzImage, pvh: false };
  let cfg: string;
  try {
    cfg = readFileSync(configPath, 'utf8');
  } catch {
    return { path: bzImage, pvh: false };
  }
  if (!configHasPvh(cfg)) return { path: bzImage, pvh: false };
  const vmlinux = await extractVmlinux(bzImage);
  return elfHasPvhNote(vmlinux) ? { path: vmlinux, pvh: true } : { path: bzImage, pvh: false };
}
