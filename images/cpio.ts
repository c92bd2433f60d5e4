/**
 * A deterministic writer for the kernel's initramfs format (cpio "newc"): fixed inode
 * numbers, mtime 0, owner root. The same entries always give the same bytes, so an
 * initramfs can be cached by the hash of its content.
 */
import { gzipSync } from 'node:zlib';

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode?: number; data: Buffer }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; mode?: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  const r = (4 - (len % 4)) % 4;
  return Buffer.alloc(r);
}

function header(fields: {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rmaj: number;
  rmin: number;
  nameLen: number;
}): string {
  return (
    '070701' +
    [fields.ino, fields.mode, 0, 0, fields.nlink, 0, fields.size, 0, 0, fields.rmaj, fields.rmin, fields.nameLen, 0]
      .map(hex8)
      .join('')
  );
}

/** Normalise: strip leading "/" and "./"; the archive root is implicit. */
function normalise(p: string): string {
  const n = p.replace(/^\.?\/+/, '').replace(/\/+$/, '');
  if (!n || n.split('/').includes('..')) throw new Error(`bad cpio path: ${p}`);
  return n;
}

/** Serialise entries (parents are added automatically, order is made stable). */
export function writeNewc(entries: CpioEntry[]): Buffer {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = normalise(e.path);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { type: 'dir', path: dir, mode: 0o755 });
    }
    byPath.set(path, { ...e, path } as CpioEntry);
  }
  const sorted = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks: Buffer[] = [];
  let ino = 1;
  const emit = (name: string, mode: number, nlink: number, data: Buffer, rmaj = 0, rmin = 0) => {
    const nameBuf = Buffer.from(name + '\0');
    const h = Buffer.from(header({ ino: ino++, mode, nlink, size: data.length, rmaj, rmin, nameLen: nameBuf.length }));
    chunks.push(h, nameBuf, pad4(h.length + nameBuf.length), data, pad4(data.length));
  };
  for (const e of sorted) {
    switch (e.type) {
      case 'dir':
        emit(e.path, S_IFDIR | (e.mode ?? 0o755), 2, Buffer.alloc(0));
        break;
      case 'file':
        emit(e.path, S_IFREG | (e.mode ?? 0o644), 1, e.data);
        break;
      case 'symlink':
        emit(e.path, S_IFLNK | 0o777, 1, Buffer.from(e.target));
        break;
      case 'chardev':
        emit(e.path, S_IFCHR | (e.mode ?? 0o600), 1, Buffer.alloc(0), e.major, e.minor);
        break;
    }
  }
  emit('TRAILER!!!', 0, 1, Buffer.alloc(0));
  return Buffer.concat(chunks);
}

/** Parse a newc archive (used by tests and by the rig to inspect its own images). */
export function readNewc(buf: Buffer): Array<{ path: string; mode: number; data: Buffer }> {
  const out: Array<{ path: string; mode: number; data: Buffer }> = [];
  let off = 0;
  for (;;) {
    const magic = buf.toString('latin1', off, off + 6);
    if (magic !== '070701') throw new Error(`bad cpio magic at ${off}: ${magic}`);
    const f = (i: number) => parseInt(buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = f(1);
    const size = f(6);
    const nameLen = f(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + nameLen - 1);
    let dataStart = nameStart + nameLen;
    dataStart += (4 - (dataStart % 4)) % 4;
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + size;
    off += (4 - (off % 4)) % 4;
    if (name === 'TRAILER!!!') break;
    out.push({ path: name, mode, data });
  }
  return out;
}

export function gzipInitramfs(cpio: Buffer): Buffer {
  // Level 6 balances size against the time TCG spends unpacking it.
  return gzipSync(cpio, { level: 6 });
}
