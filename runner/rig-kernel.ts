/**
 * Guests running the kernel the pipeline built: the kernel artifacts of a profile turned
 * into boot files (PVH vmlinux when possible, the rig's initramfs without modules).
 */
import { readFileSync } from 'node:fs';
import { pvhBootable } from '../images/boot-image.js';
import type { KernelArtifacts } from '../images/debian-kernel.js';
import { FIRST_GUEST } from '../images/definitions.js';
import { buildInitramfs, type BuiltImage } from '../images/initramfs.js';
import { runKernelPipeline, type PipelineOptions, type PipelineResult } from '../kernel/pipeline.js';

export interface RigKernelFiles {
  pipeline: PipelineResult;
  kernel: KernelArtifacts;
  initramfs: BuiltImage;
  bootImage: { path: string; pvh: boolean };
}

export function artifactsOf(p: PipelineResult): KernelArtifacts {
  const m = p.build.manifest;
  return {
    image: p.build.bzImage,
    release: m.release,
    modulesDir: undefined,
    config: p.build.config,
    provenance: {
      source: 'rig-build',
      profile: m.profile,
      release: m.release,
      key: m.key,
      configSha256: m.configSha256,
      // The series as this run named it (a cached build keeps the name it was first built under).
      ...(p.series ? { series: p.series.name } : {}),
      ...(p.series?.provenance.edits ? { edits: p.series.provenance.edits.join('; ') } : {}),
    },
  };
}

export async function prepareRigKernel(opts: PipelineOptions): Promise<RigKernelFiles> {
  const pipeline = await runKernelPipeline(opts);
  const kernel = artifactsOf(pipeline);
  const initramfs = await buildInitramfs(FIRST_GUEST, kernel);
  const pvh = pvhBootable(readFileSync(pipeline.build.config, 'utf8'), pipeline.build.vmlinux);
  return {
    pipeline,
    kernel,
    initramfs,
    bootImage: pvh ? { path: pipeline.build.vmlinux, pvh } : { path: pipeline.build.bzImage, pvh },
  };
}
