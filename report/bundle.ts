/**
 * A run's bundle: everything about one run under one directory.
 *
 *   results.json          the run (schema: results.schema.json, beside it)
 *   results.tap           TAP 13, one point per scenario, measurements as diagnostics
 *   junit.xml             for CI systems
 *   comparison.md         the comparison table
 *   selftests.md          the kernel's mm selftests, baseline, series and dmemfs (when mm-selftests ran)
 *   report.html           the human report: tables and inline SVG charts
 *   report.md             the same, short, in Markdown
 *   consoles/<guest>.log  each first-level guest's serial console
 *   kernel/               apply report, series verification, build manifest, .config
 *   images/l1-manifest.json  every package of the L1 image with version and SHA256
 *
 * Keys never enter it: the per-run public key on kernel command lines (QEMU arguments and
 * console echoes) is replaced, and private keys stay in the 0700 run directories.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { RigError, diskFull } from '../core/errors.js';
import { dirname, join } from 'node:path';
import { projectRoot } from '../core/paths.js';
import { runSync } from '../core/exec.js';
import type { RunResults } from '../core/results.js';
import { comparisonMarkdown, comparisonTable } from './comparison-table.js';
import { selftestsMarkdown } from './selftests-table.js';
import { toJunit } from './junit.js';
import { renderHtml, renderMarkdown, type PatchRow } from './render.js';
import { RESULTS_SCHEMA } from './schema.js';
import { toTap } from './tap.js';

const KEY_TOKEN = /rig\.key=[A-Za-z0-9+/=_-]+/g;
/**
 * An ed25519 public key blob wherever it stands: a serial console under load has been seen to
 * lose bytes ("rig.keAAAAC3Nza..."), so the token's name is not enough to find it.
 */
const KEY_BLOB = /AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]*/g;
const PRIVATE_BLOCK = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;

/** Text (or argument arrays) with key material replaced. */
export function redactKeys(text: string): string;
export function redactKeys(args: string[]): string[];
export function redactKeys(v: string | string[]): string | string[] {
  if (Array.isArray(v)) return v.map((a) => redactKeys(a));
  return v
    .replace(KEY_TOKEN, 'rig.key=<per-run public key, not kept>')
    .replace(KEY_BLOB, '<per-run public key, not kept>')
    .replace(PRIVATE_BLOCK, '<private key removed>');
}

export function rigVersion(): { version: string; commit: string | undefined } {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };
  let commit: string | undefined;
  try {
    commit = runSync('git', ['-C', projectRoot(), 'rev-parse', 'HEAD']).trim();
  } catch {
    commit = undefined;
  }
  return { version: pkg.version, commit };
}

/** Write a file whole or not at all (a reader never sees half a results.json). */
function writeAtomic(path: string, text: string): void {
  try {
    writeFileSync(`${path}.partial`, text);
  } catch (e) {
    rmSync(`${path}.partial`, { force: true });
    throw diskFull(e, `writing ${path}`) ?? e;
  }
  renameSync(`${path}.partial`, path);
}

/** Copy a stopped guest's console into the bundle (keys redacted); returns its relative path. */
export function saveConsole(out: string, runDir: string, name: string): string | undefined {
  const src = join(runDir, 'console.log');
  if (!existsSync(src)) return undefined;
  mkdirSync(join(out, 'consoles'), { recursive: true });
  let rel = join('consoles', `${name}.log`);
  for (let i = 2; existsSync(join(out, rel)); i++) rel = join('consoles', `${name}-${i}.log`);
  try {
    writeFileSync(join(out, rel), redactKeys(readFileSync(src, 'utf8')));
  } catch (e) {
    rmSync(join(out, rel), { force: true });
    throw diskFull(e, `copying a console into ${out}`) ?? e;
  }
  return rel;
}

/** What the earlier stages hand the bundle: per-patch rows, JSON documents, files to copy. */
export interface BundleArtifacts {
  patches: PatchRow[];
  /** Relative path in the bundle -> a JSON document (apply report, build manifest, ...). */
  json: Record<string, unknown>;
  /** Relative path in the bundle -> a file to copy (the kernel .config). */
  copies: Record<string, string>;
}

/**
 * A run writes a new bundle: into a directory that holds anything already (an earlier bundle),
 * its results.json would be overwritten and its consoles mixed with the earlier run's.
 */
export function refuseExistingOut(out: string): void {
  const held = existsSync(out) ? readdirSync(out) : [];
  if (held.length)
    throw new RigError('out-exists', `${out} already holds ${held.includes('results.json') ? 'a bundle' : 'files'}`, {
      fix: `give --out a new (or empty) directory, or remove ${out} first`,
    });
}

export function writeBundle(out: string, run: RunResults, artifacts: BundleArtifacts): void {
  mkdirSync(out, { recursive: true });
  if (artifacts.patches.length) run.kernel.patches = artifacts.patches;
  for (const [rel, doc] of Object.entries(artifacts.json)) {
    mkdirSync(dirname(join(out, rel)), { recursive: true });
    writeAtomic(join(out, rel), JSON.stringify(doc, null, 2));
  }
  for (const [rel, src] of Object.entries(artifacts.copies)) {
    mkdirSync(dirname(join(out, rel)), { recursive: true });
    if (existsSync(src)) copyFileSync(src, join(out, rel));
  }
  writeAtomic(join(out, 'results.schema.json'), JSON.stringify(RESULTS_SCHEMA, null, 2));
  writeAtomic(join(out, 'results.json'), JSON.stringify(run, null, 2));
  writeAtomic(join(out, 'results.tap'), toTap(run));
  writeAtomic(join(out, 'junit.xml'), toJunit(run));
  writeAtomic(join(out, 'comparison.md'), `${comparisonMarkdown(comparisonTable(run.scenarios))}\n`);
  const selftests = run.scenarios.find((s) => s.id === 'mm-selftests');
  if (selftests) writeAtomic(join(out, 'selftests.md'), `${selftestsMarkdown(selftests)}\n`);
  writeAtomic(join(out, 'report.html'), renderHtml(run));
  writeAtomic(join(out, 'report.md'), renderMarkdown(run));
}

/** Render report.html / report.md again from a bundle's results.json. */
export function rerender(out: string): RunResults {
  const run = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
  writeAtomic(join(out, 'report.html'), renderHtml(run));
  writeAtomic(join(out, 'report.md'), renderMarkdown(run));
  return run;
}
