/**
 * Changes to a series written as data, never as copied patches: in patch N, the one line the
 * patch adds that contains `find` has `find` replaced by `replace`. The bench's one-patch
 * rebuild uses this, and so can any deliberate change to a series (a local fix, a mutant).
 */
import { RigError } from '../core/errors.js';
import { patchId, type ParsedPatch, type ParsedSeries } from './series.js';

export interface PatchEdit {
  /** A name for the change, for reports. */
  name: string;
  patch: number;
  /** Text that occurs in exactly one line the patch adds. */
  find: string;
  replace: string;
}

/** The diff of `p` with the edit applied to its one matching added line. */
export function editDiff(p: ParsedPatch, e: PatchEdit): string {
  const lines = p.diff.split('\n');
  const hits = lines
    .map((l, i) => ({ l, i }))
    .filter(({ l }) => l.startsWith('+') && !l.startsWith('+++') && l.includes(e.find));
  if (hits.length !== 1)
    throw new RigError(
      'bad-edit',
      `edit "${e.name}": patch ${e.patch} adds ${hits.length} lines containing ${JSON.stringify(e.find)}, not one`,
      { fix: 'make `find` longer, so that it names exactly one line the patch adds' },
    );
  const { l, i } = hits[0]!;
  lines[i] = l.replace(e.find, e.replace);
  return lines.join('\n');
}

/** The series with every edit applied (patch ids recomputed); the input is not changed. */
export async function editSeries(series: ParsedSeries, edits: PatchEdit[]): Promise<ParsedSeries> {
  const patches = await Promise.all(
    series.patches.map(async (p) => {
      const mine = edits.filter((e) => e.patch === p.number);
      if (!mine.length) return p;
      const diff = mine.reduce((d, e) => editDiff({ ...p, diff: d }, e), p.diff);
      return { ...p, diff, patchId: await patchId(diff) };
    }),
  );
  for (const e of edits)
    if (!series.patches.some((p) => p.number === e.patch))
      throw new RigError('bad-edit', `edit "${e.name}": the series has no patch ${e.patch}`, {
        fix: `patches are numbered 1..${series.patches.length}`,
      });
  return { ...series, patches };
}
