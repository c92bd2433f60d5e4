/**
 * The accepted base of the nightly comparison: the last bundle someone (or a clean night)
 * accepted. A night that regressed never becomes the base, so a regression stays red until the
 * series is fixed or the new result is accepted on purpose (`report --accept`).
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResults } from '../core/results.js';
import { loadBundle, type RunDiff } from './compare.js';

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

/** Make `bundle` the accepted base in `dir` (replaced whole, never half-written). */
export function acceptBundle(bundle: string, dir: string, reason: string): Acceptance {
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
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  return acceptance;
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
