/**
 * Kernel profiles: data files under kernel/profiles/, one per profile, naming a kernel
 * source, a patch series, config fragments and the boot-parameter sets scenarios use.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { RigError } from '../core/errors.js';
import { projectRoot, sharedDir } from '../core/paths.js';

export type SourceSpec =
  | {
      kind: 'debian-source-package';
      distro: 'bullseye' | 'bookworm';
      package: string;
      version: string;
      /** SHA256 of the .deb, pinned here and checked against the signed index. */
      sha256: string;
      /** Path of the source tarball inside the package. */
      tarball: string;
      /** Top directory inside the tarball. */
      topDir: string;
      /** Files in the tarball (for extraction progress). */
      expectedFiles?: number;
    }
  | {
      kind: 'git';
      url: string;
      ref: string;
      /** The commit the ref must resolve to. */
      commit: string;
    }
  | { kind: 'tarball'; url: string; sha256: string }
  | { kind: 'local'; path: string };

export interface SeriesSpec {
  /** Name of the pinned definition in kernel/series/. */
  name: string;
  /** Where to get the mbox: a path (with {shared} for ../shared) ... */
  mbox?: string;
  /** ... or a public archive by Message-Id (used where the network allows). */
  archive?: { messageId: string; url: string };
}

export interface KernelProfile {
  name: string;
  description: string;
  source: SourceSpec;
  series: SeriesSpec | null;
  /** Apply the series with git am --skip of the cover letter; 'git-am-then-patch' falls back to patch -F3. */
  config: { base: 'defconfig' | 'tinyconfig' | 'allnoconfig'; fragments: string[] };
  toolchain: { cc: string };
  /** Objects a build of this profile compiles (for progress); refreshed from manifests. */
  expectedObjects?: number;
  /** Named sets of extra kernel command-line parameters used by scenarios. */
  bootParams: Record<string, string[]>;
  /**
   * Guest timeouts are multiplied by this on top of the accelerator's scale (a debug kernel
   * boots and runs slower). Absent: 1.
   */
  timeoutScale?: number;
  /** 'debug': the debug variant (debugVariant); scenarios/waivers.ts says which expectations it cannot hold. */
  variant?: 'debug';
}

/** The fragment the debug variant adds: KASAN, lockdep, DEBUG_VM and the rest. */
export const DEBUG_FRAGMENT = 'debug-checks.config';

/**
 * Timeout scale of the debug variant. Measured under TCG (docs/figures.md, debug-variant figures): boot to
 * SSH 15.3 s against 2.4 s, still far inside the unscaled boot timeout; what needed the stretch
 * was the report settle time (a report split at 1.5 s) and the stuck-helper bound.
 */
export const DEBUG_TIMEOUT_SCALE = 3;

/** The debug variant of a profile: NAME-debug, its fragments plus DEBUG_FRAGMENT, slower timeouts. */
export function debugVariant(p: KernelProfile): KernelProfile {
  const { expectedObjects, ...rest } = p;
  void expectedObjects; // the plain build's count says nothing of the debug build's
  return {
    ...rest,
    name: `${p.name}-debug`,
    description: `${p.description} Debug variant: KASAN, lockdep, DEBUG_VM, DEBUG_LIST, sleeping-in-atomic checks.`,
    config: { ...p.config, fragments: [...p.config.fragments.filter((f) => f !== DEBUG_FRAGMENT), DEBUG_FRAGMENT] },
    timeoutScale: (p.timeoutScale ?? 1) * DEBUG_TIMEOUT_SCALE,
    variant: 'debug',
  };
}

export function profilesDir(): string {
  return join(projectRoot(), 'kernel', 'profiles');
}

export function listProfiles(): string[] {
  return readdirSync(profilesDir())
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
}

/** Expand {shared} and {root}; relative paths are relative to the project root. */
export function expandPath(p: string): string {
  const e = p.replace(/\{shared\}/g, sharedDir()).replace(/\{root\}/g, projectRoot());
  return isAbsolute(e) ? e : resolve(projectRoot(), e);
}

function profileFix(): string {
  const names = listProfiles().join(', ');
  return `use one of: ${names} (NAME-debug for the debug variant of any), or a profile file (*.json)`;
}

export function loadProfile(nameOrPath: string): KernelProfile {
  // NAME-debug without a file of its own: the debug variant of NAME.
  const variant = /^(.+)-debug$/.exec(nameOrPath);
  if (variant && !existsSync(join(profilesDir(), `${nameOrPath}.json`))) return debugVariant(loadProfile(variant[1]!));
  // A path to a profile file of one's own (./my-profile.json), or a name under kernel/profiles.
  const isPath = nameOrPath.endsWith('.json') && (nameOrPath.includes('/') || existsSync(nameOrPath));
  const name = isPath ? basename(nameOrPath, '.json') : nameOrPath;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RigError('unknown-profile', `profile name ${JSON.stringify(name)} is not valid`, {
      fix: profileFix(),
    });
  }
  const path = isPath ? resolve(nameOrPath) : join(profilesDir(), `${name}.json`);
  if (!existsSync(path))
    throw new RigError('unknown-profile', isPath ? `no profile file at ${path}` : `unknown profile "${name}"`, {
      fix: profileFix(),
    });
  let p: KernelProfile;
  try {
    p = JSON.parse(readFileSync(path, 'utf8')) as KernelProfile;
  } catch (e) {
    throw new RigError('bad-profile', `profile ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (p.name !== name) throw new RigError('bad-profile', `profile file ${name}.json names itself "${p.name}"`);
  for (const f of p.config.fragments) {
    if (!existsSync(fragmentPath(f)))
      throw new RigError('bad-profile', `profile ${name}: config fragment ${f} does not exist in kernel/config/`);
  }
  return p;
}

export function fragmentPath(name: string): string {
  return join(projectRoot(), 'kernel', 'config', name);
}
