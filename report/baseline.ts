/**
 * The accepted base of the nightly comparison: the last bundle someone (or a clean night)
 * accepted. A night that regressed never becomes the base, so a regression stays red until the
 * series is fixed or the new result is accepted on purpose (`report --accept`).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { info } from '../core/log.js';
import type { RunResults } from '../core/results.js';
import { loadBundle, type RunDiff } from './bundle-diff.js';

/** The files of a bundle the base keeps: enough to compare against and to read. */
const KEPT = ['results.json', 'results.tap', 'comparison.md', 'report.md'];

export interface Acceptance {
  bundle: string;
  acceptedAt: string;
  reason: string;
  profile: string;
  rigCommit: string | undefined;
  statuses: Record<string, string>;
}

/**
 * Make `bundle` the accepted base in `dir`, replaced whole: the new base is written beside it
 * (`dir.partial-PID`), the old one renamed aside (`dir.previous-PID`), the new one renamed in,
 * and only then the old one removed. A crash at any point leaves one whole base, which
 * `recoverBase` (run first by every reader and writer of the base) puts back in place.
 * `betweenRenames` is for the fault test: it runs where the directory briefly has no base.
 */
export function acceptBundle(
  bundle: string,
  dir: string,
  reason: string,
  hooks: { betweenRenames?: () => void } = {},
): Acceptance {
  recoverBase(dir);
  const run: RunResults = loadBundle(bundle);
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const f of KEPT) if (existsSync(join(bundle, f))) copyFileSync(join(bundle, f), join(staging, f));
  const acceptance: Acceptance = {
    bundle,
    acceptedAt: new Date().toISOString(),
    reason,
    profile: run.profile,
    rigCommit: run.rig.commit,
    statuses: Object.fromEntries(run.scenarios.map((s) => [s.id, s.status])),
  };
  writeFileSync(join(staging, 'accepted.json'), JSON.stringify(acceptance, null, 2));
  const previous = `${dir}.previous-${process.pid}`;
  const had = existsSync(dir);
  if (had) renameSync(dir, previous);
  hooks.betweenRenames?.();
  renameSync(staging, dir);
  if (had) rmSync(previous, { recursive: true, force: true });
  return acceptance;
}

/**
 * After a crash of `acceptBundle`: with no base in `dir` and an old one set aside, the old one
 * goes back; an old one beside a base in place (the crash came after the second rename) and a
 * half-written new one (before it) are removed. Returns what it did, or undefined.
 */
export function recoverBase(dir: string): string | undefined {
  const parent = dirname(dir);
  if (!existsSync(parent)) return undefined;
  const name = basename(dir);
  const beside = readdirSync(parent);
  // Another process's, and only once it is dead: a live one is still accepting.
  const own = (kind: string) =>
    beside.filter((f) => f.startsWith(`${name}.${kind}-`) && !alive(Number(f.slice(name.length + kind.length + 2))));
  for (const p of own('partial')) rmSync(join(parent, p), { recursive: true, force: true });
  const previous = own('previous').filter((p) => existsSync(join(parent, p, 'accepted.json')));
  let did: string | undefined;
  if (!existsSync(dir) && previous[0]) {
    renameSync(join(parent, previous[0]), dir);
    did = `${dir}: restored the accepted base from ${previous[0]} (an acceptance was interrupted)`;
    info(did);
  }
  for (const p of own('previous')) rmSync(join(parent, p), { recursive: true, force: true });
  return did;
}

/**
 * The changes as GitHub Actions annotations: an error per regression, a notice per known
 * failure that no longer reproduces (a change of its own kind: it does not fail the night).
 */
export function githubAnnotations(d: RunDiff): string[] {
  const esc = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  return [
    ...d.statusChanges.filter((c) => c.regression).map((c) => `${c.scenario}: ${c.from} -> ${c.to}`),
    ...d.expectationChanges
      .filter((c) => c.regression)
      .map((c) => `${c.scenario}.${c.measurement}: expectation met -> not met`),
    ...d.moved.filter((m) => m.regression).map((m) => `${m.scenario}.${m.measurement}: ${m.from} -> ${m.to}`),
    ...d.missing.map((m) => `${m.scenario}${m.measurement ? `.${m.measurement}` : ''}: missing from the new run`),
    ...d.unheld.map((u) => `${u.scenario}.${u.measurement}: held -> only recorded`),
    ...d.unchecked.map((u) => `${u.scenario}/${u.signature}: not re-checked (${u.reasons.join('; ')})`),
    ...d.swapped.map(
      (w) => `${w.scenario}: known failure now claimed by ${w.to.join(', ')} (was ${w.from.join(', ')})`,
    ),
  ]
    .map((t) => `::error title=regression::${esc(t)}`)
    .concat(
      d.fixed.map(
        (f) => `::notice title=no longer reproduces::${esc(`${f.scenario}/${f.signature}: ${f.title} (${f.detail})`)}`,
      ),
    );
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
