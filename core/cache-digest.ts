/**
 * What a cache entry held when it was published, so that a hit can tell a whole entry from one
 * damaged since (a disk error, a crashed copy, a hand edit): every file's size and SHA256, and
 * for large files also a digest of their first and last MiB (a `.git` directory is left out: git
 * checks its own objects, and repacks them). A hit checks every size and the
 * sampled digests of the largest files (for an entry of many files, a source tree, an even spread
 * of 2000 of them); `cache verify` checks every byte.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';

export const DIGEST = '.digest.json';
/** Files above this get a sampled digest as well; checked on every hit for the largest few. */
const SAMPLE = 1 << 20;
const SAMPLED_ON_HIT = 4;
/** Files whose size and kind a hit checks, at most (every file of a smaller entry). */
const ON_HIT = 2000;

export interface FileDigest {
  size: number;
  sha256: string;
  /** sha256 of the first and last MiB, for files larger than 2 MiB. */
  sample?: string;
  link?: string;
}

export interface EntryDigest {
  files: Record<string, FileDigest>;
}

function walk(dir: string, skip: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const go = (p: string) => {
    for (const name of readdirSync(p)) {
      const full = join(p, name);
      const rel = relative(dir, full);
      if (skip.has(rel)) continue;
      const st = lstatSync(full);
      // A git repository checks its own objects, and is written after publish on purpose (trees
      // cloned with --shared, gc packing loose objects): not part of the digest.
      if (st.isDirectory() && name === '.git') continue;
      if (st.isDirectory()) go(full);
      else out.push(rel);
    }
  };
  go(dir);
  return out.sort();
}

function fullSha(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(8 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function sampleSha(path: string, size: number): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(SAMPLE);
    h.update(buf.subarray(0, readSync(fd, buf, 0, SAMPLE, 0)));
    h.update(buf.subarray(0, readSync(fd, buf, 0, SAMPLE, size - SAMPLE)));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** The digest of everything in `dir` but the files named in `skip` (the markers). */
export function digestEntry(dir: string, skip: ReadonlySet<string>): EntryDigest {
  const files: Record<string, FileDigest> = {};
  for (const rel of walk(dir, skip)) {
    const p = join(dir, rel);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) files[rel] = { size: 0, sha256: '', link: readlinkSync(p) };
    else
      files[rel] = {
        size: st.size,
        sha256: fullSha(p),
        ...(st.size > 2 * SAMPLE ? { sample: sampleSha(p, st.size) } : {}),
      };
  }
  return { files };
}

export function writeDigest(dir: string, skip: ReadonlySet<string>): void {
  writeFileSync(join(dir, DIGEST), JSON.stringify(digestEntry(dir, skip)));
}

/**
 * What is wrong with the entry in `dir`, or undefined when it is whole (or was published by a rig
 * that recorded no digest). `full`: every file's SHA256; else sizes, links and the samples of the
 * largest files.
 */
export function entryDamage(dir: string, full = false): string | undefined {
  const path = join(dir, DIGEST);
  if (!existsSync(path)) return undefined;
  let d: EntryDigest;
  try {
    d = JSON.parse(readFileSync(path, 'utf8')) as EntryDigest;
  } catch {
    return `its digest ${DIGEST} is unreadable`;
  }
  const entries = Object.entries(d.files);
  // On a hit, an entry of many files (a source tree) has an even spread of ON_HIT of them stat'ed.
  const step = full ? 1 : Math.max(1, Math.ceil(entries.length / ON_HIT));
  for (const [rel, f] of entries.filter((_, i) => i % step === 0)) {
    const why = shapeDamage(dir, rel, f);
    if (why) return why;
  }
  const largest = entries
    .filter(([, f]) => f.sample)
    .sort((a, b) => b[1].size - a[1].size)
    .slice(0, SAMPLED_ON_HIT);
  for (const [rel, f] of full ? entries.filter(([, x]) => x.link === undefined) : largest) {
    const p = join(dir, rel);
    if (!full && sampleSha(p, f.size) !== f.sample) return `${rel}'s content changed (its first or last MiB)`;
    if (full && fullSha(p) !== f.sha256) return `${rel}'s content changed (sha256)`;
  }
  return undefined;
}

/** A file gone, of another size, or a link that points elsewhere. */
function shapeDamage(dir: string, rel: string, f: FileDigest): string | undefined {
  const st = lstatSync(join(dir, rel), { throwIfNoEntry: false });
  if (!st) return `${rel} is missing`;
  if (f.link !== undefined)
    return st.isSymbolicLink() && readlinkSync(join(dir, rel)) === f.link ? undefined : `${rel} is not the link it was`;
  return st.size === f.size ? undefined : `${rel} is ${st.size} bytes, was ${f.size}`;
}
