/**
 * What changed between two bundles (the nightly question "what regressed?"): scenario status
 * changes, expectations that stopped (or started) holding, known failures that no longer
 * reproduce, and numeric values that moved by more than a relative tolerance.
 *
 * A regression: a scenario that got worse (pass -> fail, known failure -> fail, ...), an
 * expectation that stopped holding, a value held to an expectation that moved by more than the
 * tolerance, a scenario or measurement of A that B lacks, a held measurement that B only records,
 * a known failure that B could not re-check (its measurement skipped: a pass or a "not
 * re-checked" that rests on a skip), and a known failure explained by another signature than in A
 * (the old defect gone, a new one claimed in its place). A signature that no longer reproduces is
 * a change of its own kind, never a regression: the series was fixed (or the signature is stale);
 * an intermittent one that did not fire is listed apart, neither fixed nor regressed.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import {
  outcomeOf,
  type Measurement,
  type RunResults,
  type ScenarioResult,
  type SignatureCheck,
} from '../core/results.js';
import { RESULTS_SCHEMA, validate } from './schema.js';
import { findingsOf } from './mail.js';

export interface RunDiff {
  a: string;
  b: string;
  statusChanges: Array<{ scenario: string; from: string; to: string; regression: boolean }>;
  expectationChanges: Array<{
    scenario: string;
    measurement: string;
    from: boolean | undefined;
    to: boolean | undefined;
    regression: boolean;
  }>;
  moved: Array<{
    scenario: string;
    measurement: string;
    from: number;
    to: number;
    change: number;
    regression: boolean;
  }>;
  /** Known failures reproduced in A that no longer reproduce in B (whole, or some of their measurements). */
  fixed: Array<{ scenario: string; signature: string; title: string; detail: string; measurements?: string[] }>;
  /** Scenarios and measurements of A that B does not have: always a regression. */
  missing: Array<{ scenario: string; measurement?: string; regression: true }>;
  /** Measurements A held to an expectation that B only records. */
  unheld: Array<{ scenario: string; measurement: string; regression: true }>;
  /** Known failures of A that B could not re-check: a measurement they need was skipped in B. */
  unchecked: Array<{ scenario: string; signature: string; to: string; reasons: string[]; regression: true }>;
  /** Scenarios still a known failure whose signatures changed: one claimed in B that A did not have. */
  swapped: Array<{ scenario: string; from: string[]; to: string[]; regression: true }>;
  /** Intermittent known failures of A that did not fire in B (neither fixed nor regressed). */
  notSeen: Array<{ scenario: string; signature: string; detail: string }>;
  changedText: Array<{ scenario: string; measurement: string; from: string; to: string }>;
  onlyIn: { a: string[]; b: string[] };
  regressions: number;
}

const RANK: Record<string, number> = { pass: 3, 'known-failure': 2, skip: 1, fail: 0 };

/** Load results.json from a bundle directory (or the file itself), checked against the schema. */
export function loadBundle(path: string): RunResults {
  const file = statSync(path, { throwIfNoEntry: false })?.isDirectory() ? join(path, 'results.json') : path;
  let run: unknown;
  try {
    run = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new RigError('bad-bundle', `cannot read ${file}: ${(e as Error).message}`, {
      fix: 'give a bundle directory written by `dmemfs-rig run --out DIR` (it holds results.json)',
    });
  }
  const errors = validate(RESULTS_SCHEMA, run);
  if (errors.length)
    throw new RigError('bad-bundle', `${file} does not match the results schema: ${errors.slice(0, 5).join('; ')}`, {
      fix: 'compare bundles written by this version of the rig',
    });
  return run as RunResults;
}

export function compareRuns(
  a: RunResults,
  b: RunResults,
  opts: { tolerance: number; names?: [string, string] },
): RunDiff {
  const diff: RunDiff = {
    a: opts.names?.[0] ?? 'A',
    b: opts.names?.[1] ?? 'B',
    statusChanges: [],
    expectationChanges: [],
    moved: [],
    fixed: [],
    missing: [],
    unheld: [],
    unchecked: [],
    swapped: [],
    notSeen: [],
    changedText: [],
    onlyIn: { a: [], b: [] },
    regressions: 0,
  };
  const bById = new Map(b.scenarios.map((s) => [s.id, s]));
  diff.onlyIn.a = a.scenarios.filter((s) => !bById.has(s.id)).map((s) => s.id);
  diff.onlyIn.b = b.scenarios.filter((s) => !a.scenarios.some((x) => x.id === s.id)).map((s) => s.id);
  for (const id of diff.onlyIn.a) diff.missing.push({ scenario: id, regression: true });
  for (const sa of a.scenarios) {
    const sb = bById.get(sa.id);
    if (!sb) continue;
    if (sa.status !== sb.status)
      diff.statusChanges.push({
        scenario: sa.id,
        from: sa.status,
        to: sb.status,
        regression: (RANK[sb.status] ?? 0) < (RANK[sa.status] ?? 0),
      });
    compareSignatures(diff, sa, sb);
    for (const [name, ma] of Object.entries(sa.measurements)) {
      const mb = sb.measurements[name];
      if (!mb) diff.missing.push({ scenario: sa.id, measurement: name, regression: true });
      else compareMeasurement(diff, sa.id, name, ma, mb, opts.tolerance);
    }
  }
  diff.regressions = [
    diff.statusChanges,
    diff.expectationChanges,
    diff.moved,
    diff.missing,
    diff.unheld,
    diff.unchecked,
    diff.swapped,
  ].reduce((n, list: Array<{ regression: boolean }>) => n + list.filter((c) => c.regression).length, 0);
  return diff;
}

/** A known failure in A whose measurements B skipped, and that B therefore did not reproduce. */
function uncheckedIn(sa: ScenarioResult, sb: ScenarioResult, before: SignatureCheck, c: SignatureCheck | undefined) {
  const skippedNow = before.measurements.filter((n) => sb.measurements[n]?.skipped !== undefined);
  const wasTaken = skippedNow.filter((n) => sa.measurements[n] && sa.measurements[n]!.skipped === undefined);
  const outcome = c ? outcomeOf(c) : undefined;
  if (!wasTaken.length || outcome === 'reproduced') return undefined;
  return {
    scenario: sb.id,
    signature: before.id,
    to: sb.status === 'pass' ? 'pass' : (outcome ?? 'not judged'),
    reasons: wasTaken.map((n) => `${n}: ${sb.measurements[n]!.skipped}`),
    regression: true as const,
  };
}

/** Signature outcomes from A to B: fixed, not re-checked because of a skip, intermittent, replaced. */
function compareSignatures(diff: RunDiff, sa: ScenarioResult, sb: ScenarioResult): void {
  const reproducedIn = (s: ScenarioResult) =>
    (s.signatures ?? []).filter((c) => outcomeOf(c) === 'reproduced').map((c) => c.id);
  for (const before of (sa.signatures ?? []).filter((c) => outcomeOf(c) === 'reproduced')) {
    const c = (sb.signatures ?? []).find((x) => x.id === before.id);
    const unchecked = uncheckedIn(sa, sb, before, c);
    if (unchecked) diff.unchecked.push(unchecked);
    if (!c) continue;
    const outcome = outcomeOf(c);
    if (outcome === 'fixed' || (c.cured?.length ?? 0) > 0)
      diff.fixed.push({
        scenario: sb.id,
        signature: c.id,
        title: c.title,
        detail: c.detail,
        ...(outcome === 'fixed' ? {} : { measurements: c.cured }),
      });
    if (outcome === 'not-seen') diff.notSeen.push({ scenario: sb.id, signature: c.id, detail: c.detail });
  }
  const from = reproducedIn(sa);
  const to = reproducedIn(sb);
  if (sa.status === 'known-failure' && sb.status === 'known-failure' && to.some((id) => !from.includes(id)))
    diff.swapped.push({ scenario: sb.id, from, to, regression: true });
}

function compareMeasurement(
  diff: RunDiff,
  scenario: string,
  name: string,
  ma: Measurement,
  mb: Measurement,
  tolerance: number,
): void {
  if (ma.expected && !mb.expected && mb.skipped === undefined)
    diff.unheld.push({ scenario, measurement: name, regression: true });
  if (ma.ok !== mb.ok && (ma.ok !== undefined || mb.ok !== undefined))
    diff.expectationChanges.push({
      scenario,
      measurement: name,
      from: ma.ok,
      to: mb.ok,
      regression: ma.ok === true && mb.ok !== true,
    });
  if (typeof ma.value === 'number' && typeof mb.value === 'number') {
    const base = Math.max(Math.abs(ma.value), 1e-9);
    const change = (mb.value - ma.value) / base;
    // A held value moving far is a regression even inside a loose expectation; timings are not held.
    if (Math.abs(change) > tolerance)
      diff.moved.push({ scenario, measurement: name, from: ma.value, to: mb.value, change, regression: !!mb.expected });
  } else if (String(ma.value) !== String(mb.value)) {
    diff.changedText.push({ scenario, measurement: name, from: String(ma.value), to: String(mb.value) });
  }
}

export function renderDiff(d: RunDiff, tolerance: number): string {
  const lines = [`# ${d.a} -> ${d.b}: ${d.regressions} regression(s)`];
  const section = (title: string, rows: string[]) => {
    lines.push('', `## ${title}`, ...(rows.length ? rows : ['(none)']));
  };
  section(
    'scenario status',
    d.statusChanges.map((c) => `${c.regression ? 'REGRESSED ' : ''}${c.scenario}: ${c.from} -> ${c.to}`),
  );
  section(
    'expectations',
    d.expectationChanges.map(
      (c) => `${c.regression ? 'REGRESSED ' : ''}${c.scenario}.${c.measurement}: ` + `${held(c.from)} -> ${held(c.to)}`,
    ),
  );
  signatureSections(d, section);
  section(
    `values moved more than ${(tolerance * 100).toFixed(0)}%`,
    d.moved.map(
      (m) =>
        `${m.regression ? 'REGRESSED ' : ''}${m.scenario}.${m.measurement}: ${m.from} -> ${m.to} ` +
        `(${m.change > 0 ? '+' : ''}${(m.change * 100).toFixed(1)}%)`,
    ),
  );
  section(
    'other values changed',
    d.changedText.map((m) => `${m.scenario}.${m.measurement}: ${m.from.slice(0, 80)} -> ${m.to.slice(0, 80)}`),
  );
  if (d.onlyIn.a.length || d.onlyIn.b.length)
    section('scenarios in one run only', [
      ...d.onlyIn.a.map((s) => `only in ${d.a}: ${s}`),
      ...d.onlyIn.b.map((s) => `only in ${d.b}: ${s}`),
    ]);
  return `${lines.join('\n')}\n`;
}

/** The sections about known failures and held values that left the run. */
function signatureSections(d: RunDiff, section: (title: string, rows: string[]) => void): void {
  section(
    'known failures that no longer reproduce',
    d.fixed.map(
      (f) =>
        `NO LONGER REPRODUCES ${f.scenario}/${f.signature}${onlyIn(f.measurements)}: ` + `${f.title} (${f.detail})`,
    ),
  );
  section(
    'known failures not re-checked (a measurement they need was skipped)',
    d.unchecked.map((u) => `REGRESSED ${u.scenario}/${u.signature}: now ${u.to}; ${u.reasons.join('; ')}`),
  );
  section(
    'known failures claimed by another signature',
    d.swapped.map((w) => `REGRESSED ${w.scenario}: ${w.from.join(', ') || 'none'} -> ${w.to.join(', ')}`),
  );
  section(
    'missing from the new run',
    d.missing.map((m) => `REGRESSED ${m.scenario}${m.measurement ? `.${m.measurement}` : ''}: only in ${d.a}`),
  );
  section(
    'held before, only recorded now',
    d.unheld.map((u) => `REGRESSED ${u.scenario}.${u.measurement}: held -> recorded`),
  );
  section(
    'intermittent known failures not seen this run',
    d.notSeen.map((n) => `${n.scenario}/${n.signature}: ${n.detail}`),
  );
}

const onlyIn = (ms: readonly string[] | undefined) => (ms ? ` (in ${ms.join(', ')} only)` : '');

const held = (ok: boolean | undefined) => (ok === undefined ? 'recorded' : ok ? 'met' : 'not met');

/**
 * Why the night's findings need writing again, against the accepted base: no base yet, the series
 * changed (its patches by patch id, its edits, its prefix), a finding came or went (a signature
 * or an unexpected failure) or changed its culprit, or a signature's outcome moved. Empty:
 * nothing for the list moved since the base was accepted.
 */
export function findingsMoved(base: RunResults | undefined, run: RunResults): string[] {
  if (!base) return ['no accepted base yet'];
  const why: string[] = [];
  const name = (r: RunResults) => r.series?.name ?? 'none';
  if (seriesKey(base) !== seriesKey(run)) why.push(`the series changed (${name(base)} -> ${name(run)})`);
  // Unexpected failures get mails too, and a culprit recorded since moves a mail's thread.
  const [had, has] = [findingKeys(base), findingKeys(run)];
  const culprit = (c: string | undefined) => (c ? c : 'none');
  for (const [id, c] of has)
    if (!had.has(id)) why.push(`a new finding: ${id}`);
    else if (had.get(id) !== c) why.push(`${id}: culprit ${culprit(had.get(id))} -> ${culprit(c)}`);
  for (const id of had.keys()) if (!has.has(id)) why.push(`a finding gone: ${id}`);
  const [was, now] = [outcomes(base), outcomes(run)];
  const said = (o: string | undefined) => o ?? 'not checked';
  for (const k of [...new Set([...was.keys(), ...now.keys()])].sort())
    if (was.get(k) !== now.get(k)) why.push(`${k}: ${said(was.get(k))} -> ${said(now.get(k))}`);
  return why;
}

const seriesKey = (r: RunResults) =>
  JSON.stringify([
    r.series?.name ?? null,
    (r.series?.patches ?? []).map((p) => p.patchId ?? p.title),
    r.series?.edits ?? [],
    r.series?.prefix ?? null,
  ]);

/** Each finding of the run (as report --mail makes them) and its culprit, "" when none. */
const findingKeys = (r: RunResults) =>
  new Map(findingsOf(r).map((f) => [f.id, f.culprit ? `${f.culprit.number}/${f.culprit.patches}` : ''] as const));

const outcomes = (r: RunResults) =>
  new Map(r.scenarios.flatMap((s) => s.signatures.map((c) => [`${s.id}/${c.id}`, outcomeOf(c)] as const)));
