/**
 * A series the user brought, stated against the nearest pinned series (kernel/series/) patch by
 * patch: identical (same patch id), context-only (same changed lines, other context),
 * content-changed, new, or missing, with both patch ids. Also the shape a series must have to
 * be applied at all: one version, patches 1..N, each once.
 */
import { existsSync } from 'node:fs';
import { RigError } from '../core/errors.js';
import { diffFiles } from './mbox.js';
import { expandPath, listProfiles, loadProfile } from './profile.js';
import {
  changedLineDistance,
  loadSeriesDefinitions,
  parseSeries,
  readMbox,
  type ParsedPatch,
  type ParsedSeries,
  type SeriesDefinition,
} from './series.js';
import type { PatchKind, ProvenanceRow, SeriesProvenance } from '../core/series-record.js';

export type { PatchKind, ProvenanceRow, SeriesProvenance };

const norm = (t: string) => t.toLowerCase().replace(/\s+/g, ' ').trim();

/** The pinned series sharing most patch ids (then titles) with `parsed`; undefined when none shares any. */
export function nearestPinned(parsed: ParsedSeries, defs = loadSeriesDefinitions()): SeriesDefinition | undefined {
  const ids = new Set(parsed.patches.map((p) => p.patchId));
  const titles = new Set(parsed.patches.map((p) => norm(p.title)));
  const scored = defs
    .map((d) => ({
      d,
      ids: d.patches.filter((p) => ids.has(p.patchId)).length,
      titles: d.patches.filter((p) => titles.has(norm(p.title))).length,
    }))
    .filter((s) => s.ids + s.titles > 0)
    .sort((a, b) => b.ids - a.ids || b.titles - a.titles);
  return scored[0]?.d;
}

const sameLines = (a: string, b: string) => {
  const d = changedLineDistance(a, b);
  return d.onlyA === 0 && d.onlyB === 0;
};

type Pin = SeriesDefinition['patches'][number];

/**
 * The pinned patch that `p` is a version of: the same patch id, else the same title, else the same
 * number when that pinned patch's title is not in the series and (where its diff is known) it
 * touches some of the same files.
 */
function matchPin(p: ParsedPatch, pins: Pin[], taken: Set<number>, titles: Set<string>, pinned?: ParsedSeries) {
  const free = pins.filter((x) => !taken.has(x.number));
  const files = new Set(diffFiles(p.diff).map((f) => f.file));
  const overlaps = (x: Pin) => {
    const d = pinned?.patches.find((q) => q.patchId === x.patchId)?.diff;
    return d === undefined || diffFiles(d).some((f) => files.has(f.file));
  };
  return (
    free.find((x) => x.patchId === p.patchId) ??
    free.find((x) => norm(x.title) === norm(p.title)) ??
    free.find((x) => x.number === p.number && !titles.has(norm(x.title)) && overlaps(x))
  );
}

/** Classify every patch of `parsed` against `def`; `pinnedParsed` (its mbox) tells context-only from content. */
export function classifyAgainst(
  parsed: ParsedSeries,
  def: SeriesDefinition,
  pinnedParsed?: ParsedSeries,
): ProvenanceRow[] {
  const taken = new Set<number>();
  const titles = new Set(parsed.patches.map((p) => norm(p.title)));
  const rows: ProvenanceRow[] = [];
  for (const p of parsed.patches) {
    const pin = matchPin(p, def.patches, taken, titles, pinnedParsed);
    const base = { number: p.number, title: p.title, patchId: p.patchId };
    if (!pin) {
      rows.push({ ...base, kind: 'new' });
      continue;
    }
    taken.add(pin.number);
    const pinnedDiff = pinnedParsed?.patches.find((x) => x.patchId === pin.patchId)?.diff;
    const kind: PatchKind =
      pin.patchId === p.patchId
        ? 'identical'
        : pinnedDiff !== undefined && sameLines(pinnedDiff, p.diff)
          ? 'context-only'
          : 'content-changed';
    rows.push({ ...base, kind, pinnedNumber: pin.number, pinnedPatchId: pin.patchId });
  }
  for (const pin of def.patches)
    if (!taken.has(pin.number))
      rows.push({
        number: pin.number,
        title: pin.title,
        kind: 'missing',
        pinnedNumber: pin.number,
        pinnedPatchId: pin.patchId,
      });
  return rows;
}

export function countKinds(rows: ProvenanceRow[]): Record<PatchKind, number> {
  const c: Record<PatchKind, number> = { identical: 0, 'context-only': 0, 'content-changed': 0, new: 0, missing: 0 };
  for (const r of rows) c[r.kind]++;
  return c;
}

/** The mbox a profile gives for a pinned series, parsed, when one is on this machine. */
export async function pinnedMbox(name: string): Promise<ParsedSeries | undefined> {
  for (const n of listProfiles()) {
    const s = loadProfile(n).series;
    if (s?.name !== name || !s.mbox) continue;
    const path = expandPath(s.mbox);
    if (existsSync(path)) return parseSeries(readMbox(path));
  }
  return undefined;
}

/** A series the rig can apply: one version, each patch 1..N once, as many as the subjects announce. */
export function checkShape(parsed: ParsedSeries, where: string): void {
  if (!parsed.patches.length)
    throw new RigError('bad-mbox', `${where} holds no numbered patches ([PATCH n/N] subjects)`, {
      fix: 'pass the mbox of a patch series (git format-patch, or the thread from a mail archive)',
    });
  const prefixes = [...new Set(parsed.patches.map((p) => p.prefix))];
  if (prefixes.length > 1)
    throw new RigError('series-mixed', `${where} mixes ${prefixes.map((p) => `[${p}]`).join(' and ')} patches`, {
      fix: 'keep one version of the series in the mbox (for example `b4 am -v N`, or cut the other out)',
    });
  const totals = [...new Set(parsed.patches.map((p) => p.total))];
  const numbers = parsed.patches.map((p) => p.number).sort((a, b) => a - b);
  const dup = numbers.find((n, i) => numbers[i + 1] === n);
  if (dup !== undefined)
    throw new RigError('series-mixed', `${where} holds patch ${dup} more than once`, {
      fix: 'keep one copy of each patch (a resent patch replaces the first: drop the old one)',
    });
  const total = totals.length === 1 ? totals[0]! : -1;
  const missing = Array.from({ length: Math.max(total, 0) }, (_, i) => i + 1).filter((n) => !numbers.includes(n));
  if (total < 0 || missing.length || numbers.length !== total) {
    const announced = `subjects announce ${totals.join('/')} patches`;
    const what = total < 0 ? announced : `patches ${missing.join(', ')} of ${total} are missing`;
    throw new RigError('series-incomplete', `${where}: ${what}`, {
      fix: 'fetch the whole thread (every patch of the version), or pass a git range',
    });
  }
}
