/**
 * `series pin`: a series the user brought becomes a pinned definition under kernel/series/ (its
 * patch ids), and optionally a profile that uses it, so that a new revision can be run by name.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RigError } from '../core/errors.js';
import { projectRoot } from '../core/paths.js';
import { checkShape, nearestPinned } from './provenance.js';
import { loadProfile, profilesDir, type KernelProfile } from './profile.js';
import { loadSeriesDefinitions, parseSeries, readMbox, type SeriesDefinition } from './series.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Write `text` to `path` through a temporary file, so that no half-written file is left. */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function checkName(what: string, name: string, path: string): void {
  if (!NAME.test(name))
    throw new RigError('bad-name', `${what} name ${JSON.stringify(name)} is not valid`, {
      fix: 'use letters, digits, ".", "_" and "-"',
    });
  if (existsSync(path))
    throw new RigError('exists', `${path} already exists`, { fix: `choose another name, or remove ${path} first` });
}

/** The pinned definition of the series in `mboxPath`, written as kernel/series/<name>.json. */
export async function pinSeries(
  mboxPath: string,
  name: string,
  dir = join(projectRoot(), 'kernel', 'series'),
): Promise<{ path: string; def: SeriesDefinition }> {
  const path = join(dir, `${name}.json`);
  checkName('series', name, path);
  const parsed = await parseSeries(readMbox(mboxPath));
  checkShape(parsed, mboxPath);
  const nearest = nearestPinned(parsed, loadSeriesDefinitions());
  const cover = parsed.cover;
  const def: SeriesDefinition = {
    name,
    description:
      `Pinned by \`series pin\` from ${resolve(mboxPath)} on ${new Date().toISOString().slice(0, 10)}` +
      (cover ? `: ${cover.subject}` : '') +
      (nearest ? `. Nearest pinned series then: ${nearest.name}.` : '.'),
    ...(cover?.messageId ? { coverMessageId: cover.messageId } : {}),
    subjectPrefix: parsed.patches[0]!.prefix,
    total: parsed.patches.length,
    patches: [...parsed.patches]
      .sort((a, b) => a.number - b.number)
      .map((p) => ({ number: p.number, title: p.title, patchId: p.patchId })),
  };
  writeAtomic(path, JSON.stringify(def, null, 2) + '\n');
  return { path, def };
}

/** A profile like `from` whose series is the pinned `series`, read from `mboxPath`. */
export function writeProfile(name: string, from: string, series: string, mboxPath: string): string {
  const path = join(profilesDir(), `${name}.json`);
  checkName('profile', name, path);
  const base = loadProfile(from);
  const p: KernelProfile = {
    ...base,
    name,
    description: `${base.description} With series ${series} (series pin).`,
    series: { name: series, mbox: resolve(mboxPath) },
  };
  writeAtomic(path, JSON.stringify(p, null, 2) + '\n');
  return path;
}
