/** Paths of the shared read-only fixtures (../shared/fixtures), and damaged copies of them. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDir } from '../../core/paths.js';

export const ORIGINAL_MBOX = () => join(sharedDir(), 'fixtures', 'dmemfs-rfc-v2.mbox');
export const REBASED_MBOX = () => join(sharedDir(), 'fixtures', 'dmemfs-rfc-v2-on-debian-5.10.223.mbox');
export const VERBATIM_MBOX = () => join(sharedDir(), 'fixtures', 'dmemfs-rfc-v2.verbatim-only.mbox');

/** Split an mbox into its raw messages (each starting with its "From " line). */
export function rawMessages(text: string): string[] {
  const parts = text.split(/\n(?=From \S+ +\S.*\n)/);
  return parts.map((p, i) => (i === 0 ? p : p)).filter((p) => p.trim());
}

export function writeTemp(name: string, text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), 'rig-fixture-')), name);
  writeFileSync(p, text);
  return p;
}

export function readFixture(path: string): string {
  return readFileSync(path, 'utf8');
}
