/**
 * The kernel pipeline: profile -> series (verified) -> source -> patched tree -> build.
 * Each stage is cached; a rerun after an interruption resumes at the first unfinished one.
 */
import { existsSync } from 'node:fs';
import { RigError } from '../core/errors.js';
import { info, warn } from '../core/log.js';
import { buildKernel, detectToolchain, type KernelBuild } from './build.js';
import { expandPath, loadProfile, type KernelProfile } from './profile.js';
import {
  parseSeries,
  readMbox,
  seriesDefinition,
  verifySeries,
  type ParsedSeries,
  type VerifyReport,
} from './series.js';
import { acquireSource, type KernelSource } from './source.js';
import { patchedTree, type PatchedTree } from './tree.js';
import { editedName } from './edits.js';
import { editSeries, type PatchEdit } from './patch-edit.js';

export interface PipelineOptions {
  profile: string;
  /** A local kernel tree or tarball instead of the profile's source. */
  kernelSrc?: string;
  /** A local mbox instead of the profile's series location. */
  series?: string;
  /** Changes to the verified series, as data (kernel/edits.ts): built as a series of their own. */
  edits?: PatchEdit[];
  cc?: string;
}

export interface SeriesInput {
  path: string;
  origin: 'user' | 'archive' | 'profile';
}

/** Where the series mbox comes from: --series, else the archive (where reachable), else the profile's path. */
export async function locateSeries(profile: KernelProfile, override?: string): Promise<SeriesInput | undefined> {
  if (!profile.series) return undefined;
  if (override) return { path: override, origin: 'user' };
  if (profile.series.archive && process.env.DMEMFS_RIG_OFFLINE !== '1') {
    // The public mail archive is reached only where the network allows; here it is not.
    const fetched = await fetchArchive(
      profile.series.archive.url.replace('{messageId}', profile.series.archive.messageId),
    ).catch(() => undefined);
    if (fetched) return { path: fetched, origin: 'archive' };
    info(`series: the mail archive is not reachable; using ${profile.series.mbox ?? '(no local path)'}`);
  }
  if (profile.series.mbox) return { path: expandPath(profile.series.mbox), origin: 'profile' };
  throw new RigError('missing-series', `profile ${profile.name} has no reachable series`, {
    fix: 'pass --series <mbox>',
  });
}

async function fetchArchive(url: string): Promise<string | undefined> {
  const { gunzipSync } = await import('node:zlib');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const res = await fetch(url, { signal: AbortSignal.timeout(8000) });
  if (!res.ok) return undefined;
  let body = Buffer.from(await res.arrayBuffer());
  if (url.endsWith('.gz')) body = gunzipSync(body);
  const p = join(mkdtempSync(join(tmpdir(), 'rig-series-')), 'series.mbox');
  writeFileSync(p, body);
  return p;
}

export interface VerifiedSeries {
  input: SeriesInput;
  parsed: ParsedSeries;
  report: VerifyReport;
}

export async function verifiedSeries(profile: KernelProfile, override?: string): Promise<VerifiedSeries | undefined> {
  const input = await locateSeries(profile, override);
  if (!input || !profile.series) return undefined;
  if (!existsSync(input.path))
    throw new RigError('missing-series', `series mbox ${input.path} does not exist`, { fix: 'pass --series <mbox>' });
  const parsed = await parseSeries(readMbox(input.path));
  const report = verifySeries(parsed, seriesDefinition(profile.series.name));
  if (!report.ok) {
    throw new RigError(
      'series-damaged',
      `series ${input.path} is not the intact ${profile.series.name}: ` +
        report.problems.slice(0, 3).join('; ') +
        (report.problems.length > 3 ? `; and ${report.problems.length - 3} more` : ''),
      {
        fix: 'fetch the series again, or point --series at an intact copy',
        evidence: report.problems.join('\n'),
      },
    );
  }
  info(
    `series: ${profile.series.name}, ${parsed.patches.length} patches, all patch ids match (${input.origin}: ` +
      `${input.path})`,
  );
  return { input, parsed, report };
}

export interface PipelineResult {
  profile: KernelProfile;
  /** The verified series as mailed; `parsed` is what was applied (the edits in it). */
  series: (VerifiedSeries & { name: string }) | undefined;
  edits: PatchEdit[];
  source: KernelSource;
  tree: PatchedTree;
  build: KernelBuild;
}

/** The stages up to the patched tree: series verified, source acquired, series applied. */
export async function runTreeStages(opts: PipelineOptions): Promise<Omit<PipelineResult, 'build'>> {
  const profile = loadProfile(opts.profile);
  const verified = await verifiedSeries(profile, opts.series);
  const edits = opts.edits ?? [];
  if (edits.length && !verified)
    throw new RigError('no-series', `profile ${profile.name} has no series to edit`, {
      fix: 'use a profile with a series',
    });
  const series = verified && {
    ...verified,
    name: editedName(profile.series!.name, edits),
    parsed: edits.length ? await editSeries(verified.parsed, edits) : verified.parsed,
  };
  if (edits.length) info(`series: with ${edits.map((e) => `${e.name} (patch ${e.patch})`).join(', ')}`);
  const source = await acquireSource(profile.source, opts.kernelSrc);
  info(`source: ${source.kernelVersion} at ${source.baseCommit.slice(0, 12)} (${source.provenance.source})`);
  const tree = await patchedTree(source, series?.name, series?.parsed);
  if (tree.report)
    info(
      `tree: ${tree.report.counts.clean} clean, ${tree.report.counts.offset} offset, ${tree.report.counts.fuzz} ` +
        `fuzz, ${tree.report.counts.failed} failed${tree.hit ? ' (cached)' : ''}`,
    );
  return { profile, series, edits, source, tree };
}

export async function runKernelPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { profile, series, edits, source, tree } = await runTreeStages(opts);
  const toolchain = await detectToolchain(opts.cc ?? profile.toolchain.cc);
  if (!toolchain.ccache) warn('ccache is not in use: rebuilds will be slow');
  const build = await buildKernel({
    profile,
    srcDir: tree.dir,
    treeId: tree.id,
    headCommit: tree.headCommit,
    kernelVersion: source.kernelVersion,
    source: source.provenance,
    series: series ? { name: series.name, patchIds: series.parsed.patches.map((p) => p.patchId) } : null,
    toolchain,
  });
  info(
    `kernel: ${build.manifest.release} ` +
      `${build.hit ? 'from cache' : `built in ${build.manifest.seconds.build.toFixed(0)} s`} (${build.dir})`,
  );
  return { profile, series, edits, source, tree, build };
}
