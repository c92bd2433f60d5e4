/**
 * The kernel pipeline: profile -> series (verified) -> source -> patched tree -> build.
 * Each stage is cached; a rerun after an interruption resumes at the first unfinished one.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { RigError } from '../core/errors.js';
import { info, warn } from '../core/log.js';
import { buildKernel, detectToolchain, type KernelBuild } from './build.js';
import { expandPath, loadProfile, type KernelProfile } from './profile.js';
import {
  loadSeriesDefinitions,
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
import { materializeSeries, type SeriesOrigin } from './series-input.js';
import {
  checkShape,
  classifyAgainst,
  countKinds,
  nearestPinned,
  pinnedMbox,
  type SeriesProvenance,
} from './provenance.js';
import { provenanceLine } from '../core/series-record.js';

export interface PipelineOptions {
  profile: string;
  /** A local kernel tree or tarball instead of the profile's source (--base; --kernel-src). */
  base?: string;
  /** The series to apply instead of the profile's (--series): an mbox, a Message-Id, or PATH:BASE..HEAD. */
  series?: string;
  /** Changes to the series, as data (kernel/edits.ts): built as a series of their own. */
  edits?: PatchEdit[];
  /** Apply only patches 1..k (bisect). */
  prefix?: number;
  /** Options a fragment asks for that this tree's Kconfig does not define yet are recorded, not fatal (bisect). */
  lenientConfig?: boolean;
  cc?: string;
}

/** What a run asks of its kernel beyond the profile: another base or series, edits, a prefix. */
export type KernelInput = Omit<PipelineOptions, 'profile' | 'cc'>;

export interface SeriesInput {
  path: string;
  origin: 'user' | 'archive' | 'profile';
}

/** Where the profile's series mbox comes from: the archive (where reachable), else the profile's path. */
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

/** The profile's series from `override` or its own location, which must be the intact pinned series. */
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

/** The series a pipeline applies: as given, as applied (edits, prefix), and where it came from. */
export interface ResolvedSeries {
  /** The name of the series as applied, e.g. rfc-v2-on-debian-5.10.223+get_dmem_pfn-pdnode or unpinned-…@1..12. */
  name: string;
  parsed: ParsedSeries;
  /** The series as given, before edits and prefix. */
  given: ParsedSeries;
  /** The check against the pinned definition, when the series is a pinned one. */
  report: VerifyReport | undefined;
  provenance: SeriesProvenance;
}

const digest = (parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('hex');

/** A series named with --series: pinned when it matches a definition exactly, else unpinned with provenance. */
async function givenSeries(profile: KernelProfile, arg: string) {
  const origin = await materializeSeries(arg);
  const given = await parseSeries(readMbox(origin.path));
  checkShape(given, `--series ${arg}`);
  const defs = loadSeriesDefinitions().sort(
    (a, b) => Number(b.name === profile.series?.name) - Number(a.name === profile.series?.name),
  );
  const exact = defs.map((d) => ({ d, r: verifySeries(given, d) })).find((x) => x.r.intact && x.r.complete);
  const nearest = exact?.d ?? nearestPinned(given, defs);
  const rows = nearest ? classifyAgainst(given, nearest, exact ? undefined : await pinnedMbox(nearest.name)) : [];
  const name = exact?.d.name ?? `unpinned-${digest(given.patches.map((p) => p.patchId)).slice(0, 10)}`;
  const provenance: SeriesProvenance = {
    name,
    pinned: Boolean(exact),
    origin,
    nearest: nearest?.name,
    counts: countKinds(rows),
    patches: rows.length
      ? rows
      : given.patches.map((p) => ({ number: p.number, title: p.title, kind: 'new', patchId: p.patchId })),
  };
  if (!rows.length) provenance.counts.new = given.patches.length;
  info(`series: ${provenanceLine(provenance)} (${origin.kind}: ${origin.path})`);
  return { given, report: exact?.r, provenance };
}

/** The profile's own series, which must be the intact pinned one (the tamper check). */
async function profileSeries(profile: KernelProfile) {
  const v = await verifiedSeries(profile);
  if (!v) return undefined;
  const def = seriesDefinition(profile.series!.name);
  const rows = classifyAgainst(v.parsed, def);
  const origin: SeriesOrigin = {
    kind: 'profile',
    path: v.input.path,
    sha256: createHash('sha256').update(readFileSync(v.input.path)).digest('hex'),
  };
  const provenance: SeriesProvenance = {
    name: def.name,
    pinned: true,
    origin,
    nearest: def.name,
    counts: countKinds(rows),
    patches: rows,
  };
  return { given: v.parsed, report: v.report, provenance };
}

/** The series of a pipeline: the profile's, or the one given, with its edits and prefix applied. */
export async function resolveSeries(
  profile: KernelProfile,
  opts: Pick<PipelineOptions, 'series' | 'edits' | 'prefix'>,
): Promise<ResolvedSeries | undefined> {
  const got = opts.series ? await givenSeries(profile, opts.series) : await profileSeries(profile);
  const edits = opts.edits ?? [];
  if (!got) {
    if (edits.length || opts.prefix !== undefined)
      throw new RigError('no-series', `profile ${profile.name} has no series to edit or cut`, {
        fix: 'use a profile with a series, or pass --series',
      });
    return undefined;
  }
  let parsed = edits.length ? await editSeries(got.given, edits) : got.given;
  let name = editedName(got.provenance.name, edits);
  if (edits.length) info(`series: with ${edits.map((e) => `${e.name} (patch ${e.patch})`).join(', ')}`);
  if (opts.prefix !== undefined) {
    const n = parsed.patches.length;
    if (!Number.isInteger(opts.prefix) || opts.prefix < 0 || opts.prefix > n)
      throw new RigError('bad-prefix', `prefix ${opts.prefix} is not in 0..${n}`, { fix: `give k in 0..${n}` });
    parsed = { ...parsed, patches: parsed.patches.filter((p) => p.number <= opts.prefix!) };
    name = opts.prefix === 0 ? `${name}@base` : `${name}@1..${opts.prefix}`;
  }
  const provenance: SeriesProvenance = {
    ...got.provenance,
    ...(edits.length ? { edits: edits.map((e) => `${e.name}: patch ${e.patch}, "${e.find}" -> "${e.replace}"`) } : {}),
    ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
  };
  return { name, parsed, given: got.given, report: got.report, provenance };
}

export interface PipelineResult {
  profile: KernelProfile;
  series: ResolvedSeries | undefined;
  source: KernelSource;
  tree: PatchedTree;
  build: KernelBuild;
}

/** The stages up to the patched tree: series resolved, source acquired, series applied. */
export async function runTreeStages(opts: PipelineOptions): Promise<Omit<PipelineResult, 'build'>> {
  const profile = loadProfile(opts.profile);
  const series = await resolveSeries(profile, opts);
  const source = await acquireSource(profile.source, opts.base);
  info(`source: ${source.kernelVersion} at ${source.baseCommit.slice(0, 12)} (${source.provenance.source})`);
  const tree = await patchedTree(source, series?.name, series?.parsed);
  if (tree.report)
    info(
      `tree: ${tree.report.counts.clean} clean, ${tree.report.counts.offset} offset, ${tree.report.counts.fuzz} ` +
        `fuzz, ${tree.report.counts.failed} failed${tree.hit ? ' (cached)' : ''}`,
    );
  return { profile, series, source, tree };
}

export async function runKernelPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { profile, series, source, tree } = await runTreeStages(opts);
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
    ...(opts.lenientConfig ? { lenientConfig: true } : {}),
  });
  info(
    `kernel: ${build.manifest.release} ` +
      `${build.hit ? 'from cache' : `built in ${build.manifest.seconds.build.toFixed(0)} s`} (${build.dir})`,
  );
  return { profile, series, source, tree, build };
}
