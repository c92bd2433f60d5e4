/**
 * Applying a series to a source tree, patch by patch, with a report per patch: clean,
 * offset, fuzz or failed, with files and hunks. A patch that GNU patch accepts without fuzz
 * is applied with `git am` (keeps author, date, message); one that needs fuzz is applied with
 * `patch -F3` and committed with the mail's metadata; one that fails even with fuzz stops
 * the pipeline (or, in report mode, is applied partially so the rest can be judged).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../core/exec.js';
import { info } from '../core/log.js';
import { commitMessageOf, diffFiles } from './mbox.js';
import type { ParsedPatch } from './series.js';
import { GIT_ID } from './source.js';

export type HunkStatus = 'clean' | 'offset' | 'fuzz' | 'failed';

export interface HunkResult {
  file: string;
  hunk: number;
  status: HunkStatus;
  offset?: number;
  fuzz?: number;
}

export interface PatchResult {
  number: number;
  title: string;
  patchId: string;
  result: HunkStatus;
  method: 'git-am' | 'patch -F3' | 'patch -F3 (partial)' | 'none';
  files: string[];
  hunks: HunkResult[];
  /** Applied on a tree where an earlier patch failed (report mode only). */
  afterFailure: boolean;
  commit?: string;
  detail?: string;
}

export interface ApplyReport {
  series: string;
  baseCommit: string;
  ok: boolean;
  firstFailure: number | undefined;
  counts: Record<HunkStatus, number>;
  patches: PatchResult[];
}

/** One "Hunk #N succeeded|FAILED at L [with fuzz F] [(offset O lines)]" line of GNU patch. */
function hunkLine(file: string, line: string): HunkResult | undefined {
  const h = /^Hunk #(\d+) (succeeded|FAILED) at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?/.exec(line);
  if (!h) return undefined;
  const fuzz = h[4] ? Number(h[4]) : undefined;
  const offset = h[5] ? Number(h[5]) : undefined;
  const status: HunkStatus = h[2] === 'FAILED' ? 'failed' : fuzz ? 'fuzz' : offset ? 'offset' : 'clean';
  return {
    file,
    hunk: Number(h[1]),
    status,
    ...(offset !== undefined ? { offset } : {}),
    ...(fuzz !== undefined ? { fuzz } : {}),
  };
}

/** Parse GNU patch's messages; hunks it does not mention applied cleanly. */
export function parsePatchOutput(output: string, diff: string): HunkResult[] {
  const files = diffFiles(diff);
  const results: HunkResult[] = [];
  const mentioned = new Map<string, Map<number, HunkResult>>();
  let current: string | undefined;
  for (const line of output.split('\n')) {
    const f = /^(?:patching|checking) file '?([^']+?)'?$/.exec(line.trim());
    if (f) {
      current = f[1]!;
      if (!mentioned.has(current)) mentioned.set(current, new Map());
      continue;
    }
    const h = current ? hunkLine(current, line.trim()) : undefined;
    if (h) mentioned.get(current!)!.set(h.hunk, h);
  }
  for (const { file, hunks } of files) {
    const m = mentioned.get(file);
    for (let i = 1; i <= hunks; i++) results.push(m?.get(i) ?? { file, hunk: i, status: 'clean' });
  }
  return results;
}

export function worstStatus(hunks: HunkResult[]): HunkStatus {
  const order: HunkStatus[] = ['clean', 'offset', 'fuzz', 'failed'];
  return hunks.reduce<HunkStatus>((w, h) => (order.indexOf(h.status) > order.indexOf(w) ? h.status : w), 'clean');
}

/** Author, date and message of a patch mail (a "From:" first body line overrides the header). */
export function mailMetadata(p: ParsedPatch): { author: string; date: string; message: string } {
  let body = commitMessageOf(p.message.body);
  let author = p.message.from ?? 'unknown <unknown@invalid>';
  const m = /^From: (.+)\n+/.exec(body);
  if (m) {
    author = m[1]!;
    body = body.slice(m[0].length);
  }
  return { author, date: p.message.date ?? '', message: `${p.title}\n\n${body}` };
}

async function patchDry(repo: string, diffFile: string, fuzz: number): Promise<{ ok: boolean; out: string }> {
  const r = await tryRun('patch', ['-p1', '--dry-run', '-f', `-F${fuzz}`, '--no-backup-if-mismatch', '-i', diffFile], {
    cwd: repo,
  });
  return { ok: r.exitCode === 0, out: r.stdout + r.stderr };
}

async function commitAll(
  repo: string,
  meta: { author: string; date: string; message: string },
  msgFile: string,
): Promise<string> {
  writeFileSync(msgFile, meta.message);
  await run('git', ['-C', repo, 'add', '-A', '-f']);
  await run('git', [
    '-C',
    repo,
    ...GIT_ID,
    'commit',
    '-q',
    '--no-verify',
    '--allow-empty',
    `--author=${meta.author}`,
    ...(meta.date ? [`--date=${meta.date}`] : []),
    '-F',
    msgFile,
  ]);
  return (await run('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
}

/** Remove patch's .rej/.orig leftovers (report mode). */
async function cleanRejects(repo: string): Promise<void> {
  await tryRun(
    'find',
    [
      '.',
      '-path',
      './.git',
      '-prune',
      '-o',
      '(',
      '-name',
      '*.rej',
      '-o',
      '-name',
      '*.orig',
      ')',
      '-type',
      'f',
      '-exec',
      'rm',
      '-f',
      '{}',
      '+',
    ],
    { cwd: repo },
  );
}

/** How one patch went in; failed: even fuzz 3 did not apply it (a hunk failed, or patch gave up). */
type Applied = { hunks: HunkResult[]; method: PatchResult['method']; commit?: string; failed?: boolean };
const PATCH = ['-p1', '-f', '--no-backup-if-mismatch'];

/** The patch's diff and its mail (for git am) in `tmp`, and where its commit message goes. */
function writePatchFiles(tmp: string, p: ParsedPatch) {
  const files = {
    diff: join(tmp, `${p.number}.diff`),
    mail: join(tmp, `${p.number}.mbox`),
    msg: join(tmp, `${p.number}.msg`),
  };
  writeFileSync(files.diff, p.diff);
  writeFileSync(
    files.mail,
    `From rig Mon Sep 17 00:00:00 2001\nFrom: ${p.message.from ?? ''}\nDate: ` +
      `${p.message.date ?? ''}\nSubject: [PATCH] ${p.title}\n\n${mailBodyWithDiff(p)}`,
  );
  return files;
}

/**
 * The mail body git am applies: the message as mailed, then `p.diff`. For a patch as mailed this
 * is the body itself; for an edited one (kernel/patch-edit.ts) it carries the edited diff, so what
 * goes into the tree is always what the patch id was computed from.
 */
export function mailBodyWithDiff(p: ParsedPatch): string {
  const lines = p.message.body.split('\n');
  const start = lines.findIndex((l) => l.startsWith('diff --git ') || l.startsWith('Index: '));
  return start < 0 ? p.message.body : `${lines.slice(0, start).join('\n')}\n${p.diff}`;
}

/**
 * One patch: without fuzz by git am (author, date, message kept), or patch -F0 and a commit of
 * the mail's metadata if am refuses; else with fuzz 3; else failed (with keepGoing: the hunks
 * that apply go in, marked partial).
 */
async function applyOne(repo: string, tmp: string, p: ParsedPatch, keepGoing: boolean): Promise<Applied> {
  const f = writePatchFiles(tmp, p);
  const meta = mailMetadata(p);
  const strict = await patchDry(repo, f.diff, 0);
  if (strict.ok) {
    const hunks = parsePatchOutput(strict.out, p.diff);
    const am = await tryRun('git', ['-C', repo, ...GIT_ID, 'am', '-q', '--keep-cr', f.mail]);
    if (am.ok)
      return { hunks, method: 'git-am', commit: (await run('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim() };
    await tryRun('git', ['-C', repo, 'am', '--abort']);
    await run('patch', [...PATCH, '-F0', '-i', f.diff], { cwd: repo });
    return { hunks, method: 'patch -F3', commit: await commitAll(repo, meta, f.msg) };
  }
  const fuzzy = await patchDry(repo, f.diff, 3);
  const hunks = parsePatchOutput(fuzzy.out, p.diff);
  if (fuzzy.ok) {
    await run('patch', [...PATCH, '-F3', '-i', f.diff], { cwd: repo });
    return { hunks, method: 'patch -F3', commit: await commitAll(repo, meta, f.msg) };
  }
  if (!keepGoing) return { hunks, method: 'none', failed: true };
  await tryRun('patch', [...PATCH, '-F3', '-i', f.diff], { cwd: repo });
  await cleanRejects(repo);
  const partial = { ...meta, message: `[partial: hunks failed] ${meta.message}` };
  return { hunks, method: 'patch -F3 (partial)', commit: await commitAll(repo, partial, f.msg), failed: true };
}

function logPatch(p: ParsedPatch, total: number, r: PatchResult): void {
  const notable = r.hunks
    .filter((h) => h.status !== 'clean')
    .map(
      (h) => `${h.file}#${h.hunk} ${h.status}${h.fuzz ? ` ${h.fuzz}` : ''}${h.offset ? ` ${signed(h.offset)}` : ''}`,
    );
  info(
    `patch ${String(p.number).padStart(2, '0')}/${total} ${r.result.padEnd(6)} ` +
      `${p.title}${notable.length ? `  [${notable.join(', ')}]` : ''}`,
  );
}

export async function applySeries(
  repo: string,
  series: string,
  baseCommit: string,
  patches: ParsedPatch[],
  opts: { keepGoing?: boolean } = {},
): Promise<ApplyReport> {
  const tmp = mkdtempSync(join(tmpdir(), 'rig-apply-'));
  const results: PatchResult[] = [];
  let firstFailure: number | undefined;
  try {
    for (const p of [...patches].sort((a, b) => a.number - b.number)) {
      const files = diffFiles(p.diff).map((f) => f.file);
      const base = {
        number: p.number,
        title: p.title,
        patchId: p.patchId,
        files,
        afterFailure: firstFailure !== undefined,
      };
      if (firstFailure !== undefined && !opts.keepGoing) {
        const detail = `not tried: patch ${firstFailure} failed`;
        results.push({ ...base, result: 'failed', method: 'none', hunks: [], detail });
        continue;
      }
      const a = await applyOne(repo, tmp, p, Boolean(opts.keepGoing));
      const result = a.failed ? 'failed' : worstStatus(a.hunks);
      if (a.failed) firstFailure ??= p.number;
      const r: PatchResult = {
        ...base,
        result,
        method: a.method,
        hunks: a.hunks,
        ...(a.commit ? { commit: a.commit } : {}),
      };
      results.push(r);
      logPatch(p, patches.length, r);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const counts: Record<HunkStatus, number> = { clean: 0, offset: 0, fuzz: 0, failed: 0 };
  for (const r of results) counts[r.result]++;
  return { series, baseCommit, ok: firstFailure === undefined, firstFailure, counts, patches: results };
}

/** The per-patch report as a text table. */
export function formatApplyReport(r: ApplyReport): string {
  const lines = [
    `series ${r.series} on ${r.baseCommit.slice(0, 12)}: ${r.counts.clean} clean, ${r.counts.offset} offset, ` +
      `${r.counts.fuzz} fuzz, ${r.counts.failed} failed`,
  ];
  lines.push('  #  result  method               hunks (not clean)                                   title');
  for (const p of r.patches) {
    const bad = p.hunks.filter((h) => h.status !== 'clean');
    const hunkText = bad.length
      ? bad
          .map(
            (h) => `${h.file}#${h.hunk}:${h.status}${h.fuzz ? h.fuzz : ''}${h.offset ? `(${signed(h.offset)})` : ''}`,
          )
          .join(' ')
      : `${p.hunks.length} hunks in ${p.files.length} files`;
    lines.push(
      `${String(p.number).padStart(3)}  ${p.result.padEnd(6)}  ${p.method.padEnd(19)}  ` +
        `${hunkText.padEnd(50).slice(0, Math.max(50, hunkText.length))}  ${p.title}` +
        `${p.afterFailure ? ' (after a failure)' : ''}${p.detail ? ` — ${p.detail}` : ''}`,
    );
  }
  return lines.join('\n');
}

/** An offset with its sign: +3, -2. */
const signed = (n: number) => `${n > 0 ? '+' : ''}${n}`;
