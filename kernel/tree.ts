/**
 * The patched tree: a clone of the source's base commit with the series applied, cached by
 * (source, patch ids). The apply report is stored beside it. A failed series is never
 * published: the pipeline stops with the report.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cached, hashParts } from '../core/cache.js';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { applySeries, formatApplyReport, type ApplyReport } from './apply.js';
import type { ParsedSeries } from './series.js';
import type { KernelSource } from './source.js';

export interface PatchedTree {
  dir: string;
  /** Identity of the tree: source id + patch ids (part of the build key). */
  id: string;
  report: ApplyReport | undefined;
  headCommit: string;
  hit: boolean;
}

export class ApplyFailed extends RigError {
  constructor(readonly report: ApplyReport) {
    const p = report.patches.find((x) => x.number === report.firstFailure)!;
    const failed = p.hunks.filter((h) => h.status === 'failed').map((h) => `${h.file} hunk ${h.hunk}`);
    super(
      'patch-failed',
      `patch ${p.number}/${report.patches.length} (${p.title}) does not apply to ` +
        `${report.baseCommit.slice(0, 12)}: ${failed.join(', ')}`,
      {
        fix: 'use a series made for this base (e.g. profile rfc-v2-debian), or rebase the patch',
        evidence: formatApplyReport(report),
      },
    );
  }
}

/** Clone the base commit of `source` into `dir` (objects shared with the source repo). */
export async function checkoutBase(source: KernelSource, dir: string): Promise<void> {
  info(`tree: checking out ${source.kernelVersion} (${source.baseCommit.slice(0, 12)})`);
  await run('git', ['clone', '-q', '--shared', '--no-checkout', source.repo, dir]);
  await run('git', ['-C', dir, 'checkout', '-q', '-f', source.baseCommit], { what: 'git checkout of the base tree' });
}

export function treeKey(source: KernelSource, series: ParsedSeries | undefined): string {
  return hashParts([
    'tree-v1',
    source.id,
    ...(series ? series.patches.map((p) => `${p.number}:${p.patchId}`) : ['no-series']),
  ]);
}

export async function patchedTree(
  source: KernelSource,
  seriesName: string | undefined,
  series: ParsedSeries | undefined,
): Promise<PatchedTree> {
  const key = treeKey(source, series);
  let report: ApplyReport | undefined;
  const entry = await cached(
    'tree',
    key,
    async (staging) => {
      const dir = join(staging, 'src');
      await checkoutBase(source, dir);
      if (series) {
        report = await applySeries(dir, seriesName ?? 'series', source.baseCommit, series.patches);
        writeFileSync(join(staging, 'apply-report.json'), JSON.stringify(report, null, 2));
        if (!report.ok) throw new ApplyFailed(report);
      }
    },
    { needMiB: 1500 },
  );
  const reportPath = join(entry.dir, 'apply-report.json');
  if (!report && existsSync(reportPath)) report = JSON.parse(readFileSync(reportPath, 'utf8')) as ApplyReport;
  const headCommit = (await run('git', ['-C', join(entry.dir, 'src'), 'rev-parse', 'HEAD'])).stdout.trim();
  return { dir: join(entry.dir, 'src'), id: key, report, headCommit, hit: entry.hit };
}
