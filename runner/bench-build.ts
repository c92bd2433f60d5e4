/**
 * Build benchmark: the cached pipeline's time, the cold build (from the manifest of the
 * build in the cache, or a fresh one with --cold: empty cache, no ccache), the rebuild after
 * one patch of the series changed (a one-line edit, as data), and the objects a plain
 * `make defconfig` of the same tree compiles (with --defconfig; a real build).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { info } from '../core/log.js';
import { RigError } from '../core/errors.js';
import { detectToolchain, makeArgs, makeWithProgress } from '../kernel/build.js';
import { diffFiles } from '../kernel/mbox.js';
import { EDITS } from '../kernel/edits.js';
import type { PatchEdit } from '../kernel/patch-edit.js';
import type { ParsedPatch } from '../kernel/series.js';
import { runKernelPipeline, runTreeStages } from '../kernel/pipeline.js';
import { run } from '../core/exec.js';

export interface BuildBench {
  profile: string;
  /** The pipeline with everything cached (series check, source, tree and kernel from cache). */
  cachedSeconds: number;
  /** The build in the cache: its config and compile time and objects. */
  profileBuild: { configSeconds: number; buildSeconds: number; objects: number; ccache: boolean; coldRun: boolean };
  /** With --cold: the whole pipeline from an empty cache with ccache off (download, extract, apply, build). */
  cold?: { totalSeconds: number; buildSeconds: number; objects: number };
  /**
   * With --defconfig: plain x86_64 defconfig, no ccache, of the unpatched base of the same
   * source. (The patched tree does not build with defconfig: with TRANSPARENT_HUGEPAGE off,
   * mm/gup.c calls pmd_special()/pud_special(), which only exist with THP.)
   */
  defconfig?: { buildSeconds: number; objects: number; tree: string };
  /**
   * The series with one patch changed (BENCH_EDIT), built after the profile's own build: the
   * objects make recompiled and the time, tree stage included. From the cache on a later run
   * (the figures of its first build).
   */
  onePatchRebuild: { edit: string; patch: number; treeSeconds: number; buildSeconds: number; objects: number };
}

/** The one-line change the benchmark makes: the reviewer's fix of the NULL pdnode (kernel/edits.ts). */
export const BENCH_EDIT: PatchEdit = EDITS['get_dmem_pfn-pdnode'];

/** The edited line is in the tree (a tree built from the original patch would measure nothing). */
function assertEditLanded(dir: string, patch: ParsedPatch, edit: PatchEdit): void {
  const files = diffFiles(patch.diff).map((f) => join(dir, f.file));
  if (!files.some((f) => existsSync(f) && readFileSync(f, 'utf8').includes(edit.replace)))
    throw new RigError('edit-lost', `edit "${edit.name}" is not in the patched tree ${dir}`, {
      fix: 'the tree was built from the original patch: remove that tree entry from the cache and run again',
    });
}

/** Build the profile's series with `edit` applied, after the profile's own build. */
export async function onePatchRebuild(profile: string, edit: PatchEdit): Promise<BuildBench['onePatchRebuild']> {
  const t0 = Date.now();
  const stages = await runTreeStages({ profile, edits: [edit] });
  const treeSeconds = (Date.now() - t0) / 1000;
  assertEditLanded(
    stages.tree.dir,
    stages.series!.parsed.patches.find((p) => p.number === edit.patch)!,
    edit,
  );
  const r = await runKernelPipeline({ profile, edits: [edit] });
  const m = r.build.manifest;
  return {
    edit: edit.name,
    patch: edit.patch,
    treeSeconds: Math.round(treeSeconds),
    buildSeconds: m.seconds.config + m.seconds.build,
    objects: m.objectsCompiled,
  };
}

export async function benchBuild(opts: { profile: string; cold?: boolean; defconfig?: boolean }): Promise<BuildBench> {
  const out: Partial<BuildBench> = { profile: opts.profile };
  if (opts.cold) {
    const saved = { cache: process.env.DMEMFS_RIG_CACHE, ccache: process.env.DMEMFS_RIG_CCACHE };
    const tmp = mkdtempSync(join(tmpdir(), 'rig-cold-'));
    process.env.DMEMFS_RIG_CACHE = tmp;
    process.env.DMEMFS_RIG_CCACHE = '0';
    try {
      const t0 = Date.now();
      const r = await runKernelPipeline({ profile: opts.profile });
      out.cold = {
        totalSeconds: (Date.now() - t0) / 1000,
        buildSeconds: r.build.manifest.seconds.build,
        objects: r.build.manifest.objectsCompiled,
      };
    } finally {
      if (saved.cache === undefined) delete process.env.DMEMFS_RIG_CACHE;
      else process.env.DMEMFS_RIG_CACHE = saved.cache;
      if (saved.ccache === undefined) delete process.env.DMEMFS_RIG_CCACHE;
      else process.env.DMEMFS_RIG_CCACHE = saved.ccache;
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const first = await runKernelPipeline({ profile: opts.profile });
  const t1 = Date.now();
  const warm = await runKernelPipeline({ profile: opts.profile });
  out.cachedSeconds = (Date.now() - t1) / 1000;
  const m = warm.build.manifest;
  out.profileBuild = {
    configSeconds: m.seconds.config,
    buildSeconds: m.seconds.build,
    objects: m.objectsCompiled,
    ccache: m.toolchain.ccache,
    coldRun: !first.build.hit,
  };
  out.onePatchRebuild = await onePatchRebuild(opts.profile, BENCH_EDIT);
  if (opts.defconfig) {
    const work = mkdtempSync(join(tmpdir(), 'rig-defconfig-'));
    try {
      const tc = { ...(await detectToolchain(first.profile.toolchain.cc)), ccache: false };
      const args = makeArgs(tc, availableParallelism());
      info('bench: plain defconfig of the unpatched base tree (no ccache)');
      await run('make', ['-C', first.source.repo, `O=${work}`, ...args, 'defconfig']);
      const t2 = Date.now();
      const objects = await makeWithProgress(first.source.repo, work, args, ['bzImage'], undefined, {
        ...process.env,
        LC_ALL: 'C',
      });
      out.defconfig = {
        buildSeconds: (Date.now() - t2) / 1000,
        objects,
        tree: `unpatched ${first.source.kernelVersion} base`,
      };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return out as BuildBench;
}
