/** Paths of the shared read-only fixtures (../shared/fixtures), and damaged copies of them. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot, sharedDir } from '../../core/paths.js';

export const ORIGINAL_MBOX = () => join(sharedDir(), 'fixtures', 'dmemfs-rfc-v2.mbox');
export const REBASED_MBOX = () => join(sharedDir(), 'fixtures', 'dmemfs-rfc-v2-on-debian-5.10.223.mbox');
/**
 * results.json of a real full run (`npm start` on this machine, scenario-level evidence left out to
 * keep it small): the nightly test's night and base, and the perturbation test's held values.
 */
export const FULL_RUN_BUNDLE = () => join(projectRoot(), 'tests', 'fixtures', 'bundles', 'full-run', 'results.json');
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

/**
 * The mbox `text` with one patch changed as data (kernel/edits.ts): in the message of patch
 * `e.patch`, the one added line containing `e.find` gets `e.replace`. What a reviewer's local fix
 * of one line looks like when it is mailed as a series of its own.
 */
export function editedMbox(text: string, e: { patch: number; find: string; replace: string }): string {
  const msgs = rawMessages(text);
  const subject = new RegExp(`^Subject: \\[[^\\]]*?\\b0*${e.patch}/\\d+\\]`, 'm');
  const i = msgs.findIndex((m) => subject.test(m.replace(/\n[ \t]+/g, ' ')));
  if (i < 0) throw new Error(`no patch ${e.patch} in the mbox`);
  const lines = msgs[i]!.split('\n');
  const hits = lines.flatMap((l, j) => (l.startsWith('+') && !l.startsWith('+++') && l.includes(e.find) ? [j] : []));
  if (hits.length !== 1) throw new Error(`patch ${e.patch} adds ${hits.length} lines with ${e.find}`);
  lines[hits[0]!] = lines[hits[0]!]!.replace(e.find, e.replace);
  msgs[i] = lines.join('\n');
  return msgs.join('\n');
}
