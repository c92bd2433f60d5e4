/**
 * A patch series as mailed: completeness (cover letter, patches 1..N of one version, no
 * duplicates) and integrity by content (`git patch-id --stable`, pinned per patch in
 * kernel/series/<name>.json), not by mail headers. Also the patch-by-patch distance of a
 * rebased series from the original.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { projectRoot } from '../core/paths.js';
import { changedLines, commitMessageOf, diffFiles, diffOf, parseMbox, parseSubject, type MailMessage } from './mbox.js';

/** Pinned identity of a series (data, in kernel/series/). */
export interface SeriesDefinition {
  name: string;
  description: string;
  coverMessageId?: string;
  /** Bracket prefix of every subject, e.g. "RFC V2". */
  subjectPrefix: string;
  total: number;
  /** The series this one was rebased from, if any. */
  rebasedFrom?: string;
  patches: Array<{ number: number; title: string; patchId: string }>;
}

export interface ParsedPatch {
  number: number;
  total: number;
  prefix: string;
  title: string;
  message: MailMessage;
  diff: string;
  patchId: string;
}

export interface ParsedSeries {
  cover: MailMessage | undefined;
  patches: ParsedPatch[];
  /** Messages that are not part of a numbered series. */
  strays: MailMessage[];
}

export function loadSeriesDefinitions(): SeriesDefinition[] {
  const dir = join(projectRoot(), 'kernel', 'series');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as SeriesDefinition);
}

export function seriesDefinition(name: string): SeriesDefinition {
  const d = loadSeriesDefinitions().find((s) => s.name === name);
  if (!d)
    throw new RigError('unknown-series', `no series definition "${name}" in kernel/series/`, {
      fix: `known: ${loadSeriesDefinitions()
        .map((s) => s.name)
        .join(', ')}`,
    });
  return d;
}

/** `git patch-id --stable` of one diff (whitespace- and order-insensitive content hash). */
export async function patchId(diff: string): Promise<string> {
  if (!diff.trim()) return '';
  const { stdout } = await run('git', ['patch-id', '--stable'], { input: diff });
  const id = stdout.trim().split(/\s+/)[0] ?? '';
  return id;
}

export function readMbox(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new RigError(
      'missing-series',
      `cannot read the series mbox ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`,
      {
        fix: 'pass --series <path to the mbox> (for example ../shared/fixtures/dmemfs-rfc-v2.mbox)',
      },
    );
  }
}

export async function parseSeries(mboxText: string): Promise<ParsedSeries> {
  const messages = parseMbox(mboxText);
  if (messages.length === 0)
    throw new RigError('bad-mbox', 'the file holds no mail messages (no "From " separator lines)', {
      fix: 'pass an mbox as produced by git format-patch or a mail archive',
    });
  const patches: ParsedPatch[] = [];
  const strays: MailMessage[] = [];
  let cover: MailMessage | undefined;
  for (const m of messages) {
    const s = /^\s*(?:re|fwd?|aw):/i.test(m.subject) ? undefined : parseSubject(m.subject);
    if (!s) {
      strays.push(m);
      continue;
    }
    if (s.number === 0) {
      cover = m;
      continue;
    }
    const diff = diffOf(m.body);
    patches.push({ number: s.number, total: s.total, prefix: s.prefix, title: s.title, message: m, diff, patchId: '' });
  }
  await Promise.all(patches.map(async (p) => (p.patchId = await patchId(p.diff))));
  return { cover, patches, strays };
}

export type PatchVerdict = 'ok' | 'missing' | 'altered' | 'duplicate' | 'extra' | 'empty';

export interface VerifyReport {
  series: string;
  complete: boolean;
  intact: boolean;
  ok: boolean;
  cover: boolean;
  prefixes: string[];
  problems: string[];
  patches: Array<{ number: number; title: string; verdict: PatchVerdict; expected?: string; got?: string }>;
}

type PatchRow = VerifyReport['patches'][number];
type Pin = SeriesDefinition['patches'][number];

/** One pinned patch against what the mbox holds under its number: a row and, if not ok, a problem. */
function verifyPatch(pin: Pin, got: ParsedPatch[]): { row: PatchRow; problem?: string } {
  const { number, title } = pin;
  if (got.length === 0)
    return {
      row: { number, title, verdict: 'missing', expected: pin.patchId },
      problem: `patch ${number} (${title}) is missing`,
    };
  if (got.length > 1)
    return { row: { number, title, verdict: 'duplicate' }, problem: `patch ${number} appears ${got.length} times` };
  const id = got[0]!.patchId;
  if (!id)
    return {
      row: { number, title, verdict: 'empty', expected: pin.patchId },
      problem: `patch ${number} (${title}) has no diff`,
    };
  if (id !== pin.patchId)
    return {
      row: { number, title, verdict: 'altered', expected: pin.patchId, got: id },
      problem:
        `patch ${number} (${title}) is altered: ` + `patch-id ${id.slice(0, 12)}, expected ${pin.patchId.slice(0, 12)}`,
    };
  return { row: { number, title, verdict: 'ok' } };
}

/** Problems of the series as a whole: versions mixed, the announced count, the cover letter. */
function seriesProblems(parsed: ParsedSeries, def: SeriesDefinition, prefixes: string[]): string[] {
  const problems: string[] = [];
  if (prefixes.length > 1)
    problems.push(`patches of more than one version: ${prefixes.map((p) => `[${p}]`).join(', ')}`);
  const totals = [...new Set(parsed.patches.map((p) => p.total))];
  if (totals.length > 1 || (totals[0] !== undefined && totals[0] !== def.total))
    problems.push(`subjects announce ${totals.join('/')} patches, the series has ${def.total}`);
  if (!parsed.cover) problems.push('no cover letter (00/NN)');
  return problems;
}

/** Check a parsed series against its pinned definition. */
export function verifySeries(parsed: ParsedSeries, def: SeriesDefinition): VerifyReport {
  const byNumber = new Map<number, ParsedPatch[]>();
  for (const p of parsed.patches) byNumber.set(p.number, [...(byNumber.get(p.number) ?? []), p]);
  const prefixes = [...new Set(parsed.patches.map((p) => p.prefix))];
  const problems = seriesProblems(parsed, def, prefixes);
  const patches: PatchRow[] = [];
  for (const pin of def.patches) {
    const v = verifyPatch(pin, byNumber.get(pin.number) ?? []);
    patches.push(v.row);
    if (v.problem) problems.push(v.problem);
  }
  for (const [n, ps] of byNumber) {
    if (def.patches.some((p) => p.number === n)) continue;
    patches.push({ number: n, title: ps[0]!.title, verdict: 'extra' });
    problems.push(`patch ${n} (${ps[0]!.title}) is not part of ${def.name}`);
  }
  patches.sort((a, b) => a.number - b.number);
  const complete =
    patches.every((p) => p.verdict !== 'missing' && p.verdict !== 'duplicate' && p.verdict !== 'extra') &&
    Boolean(parsed.cover);
  const intact = patches.every((p) => p.verdict === 'ok' || p.verdict === 'missing');
  return {
    series: def.name,
    complete,
    intact,
    ok: problems.length === 0,
    cover: Boolean(parsed.cover),
    prefixes,
    problems,
    patches,
  };
}

/** Which pinned series matches best (most identical patch ids). */
export function identifySeries(parsed: ParsedSeries, defs = loadSeriesDefinitions()): SeriesDefinition {
  const ids = new Set(parsed.patches.map((p) => p.patchId));
  const scored = defs.map((d) => ({
    d,
    score:
      d.patches.filter((p) => ids.has(p.patchId)).length +
      (parsed.patches.some((p) => p.prefix === d.subjectPrefix) ? 0.5 : 0),
  }));
  scored.sort((a, b) => b.score - a.score);
  if (!scored[0] || scored[0].score < 1) {
    throw new RigError('unknown-series', 'the mbox matches no known series (no patch id in common)', {
      fix: 'pass --series-name to say which series it should be',
    });
  }
  return scored[0].d;
}

export interface DistanceRow {
  number: number;
  title: string;
  identical: boolean;
  /** identical: same patch id; context-only: same changed lines, other context; content: changed lines differ. */
  kind: 'identical' | 'context-only' | 'content';
  /** Changed lines present only in the original / only in the rebased patch. */
  onlyInOriginal: number;
  onlyInRebased: number;
  files: string[];
  note: string | undefined;
}

function multisetMinus(a: string[], b: string[]): number {
  const counts = new Map<string, number>();
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) + 1);
  let n = 0;
  for (const x of a) {
    const c = counts.get(x) ?? 0;
    if (c > 0) counts.set(x, c - 1);
    else n++;
  }
  return n;
}

/** Changed lines only in `a` and only in `b` (multisets of the +/- lines, context ignored). */
export function changedLineDistance(a: string, b: string): { onlyA: number; onlyB: number } {
  const x = changedLines(a);
  const y = changedLines(b);
  return {
    onlyA: multisetMinus(x.added, y.added) + multisetMinus(x.removed, y.removed),
    onlyB: multisetMinus(y.added, x.added) + multisetMinus(y.removed, x.removed),
  };
}

/** Patch-by-patch distance of a rebased series from the original. */
export function seriesDistance(original: ParsedSeries, rebased: ParsedSeries): DistanceRow[] {
  const rows: DistanceRow[] = [];
  for (const r of rebased.patches) {
    const o = original.patches.find((p) => p.number === r.number);
    const note = /\[rebased onto [^\]]*\]/.exec(commitMessageOf(r.message.body))?.[0];
    if (!o) {
      rows.push({
        number: r.number,
        title: r.title,
        identical: false,
        kind: 'content',
        onlyInOriginal: 0,
        onlyInRebased: changedLines(r.diff).added.length,
        files: diffFiles(r.diff).map((f) => f.file),
        note,
      });
      continue;
    }
    const { onlyA: onlyO, onlyB: onlyR } = changedLineDistance(o.diff, r.diff);
    const files = [...new Set([...diffFiles(o.diff), ...diffFiles(r.diff)].map((f) => f.file))];
    const identical = o.patchId === r.patchId;
    const kind = identical ? 'identical' : onlyO === 0 && onlyR === 0 ? 'context-only' : 'content';
    rows.push({
      number: r.number,
      title: r.title,
      identical,
      kind,
      onlyInOriginal: onlyO,
      onlyInRebased: onlyR,
      files,
      note,
    });
  }
  return rows.sort((x, y) => x.number - y.number);
}
