/**
 * What changed between two bundles (the nightly question "what regressed?"): scenario status
 * changes, expectations that stopped (or started) holding, and numeric values that moved by
 * more than a relative tolerance.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import type { RunResults } from '../runner/scenario-runner.js';
import { RESULTS_SCHEMA, validate } from './schema.js';

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
  moved: Array<{ scenario: string; measurement: string; from: number; to: number; change: number }>;
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
    changedText: [],
    onlyIn: { a: [], b: [] },
    regressions: 0,
  };
  const bById = new Map(b.scenarios.map((s) => [s.id, s]));
  diff.onlyIn.a = a.scenarios.filter((s) => !bById.has(s.id)).map((s) => s.id);
  diff.onlyIn.b = b.scenarios.filter((s) => !a.scenarios.some((x) => x.id === s.id)).map((s) => s.id);
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
    for (const [name, ma] of Object.entries(sa.measurements)) {
      const mb = sb.measurements[name];
      if (!mb) continue;
      if (ma.ok !== mb.ok && (ma.ok !== undefined || mb.ok !== undefined))
        diff.expectationChanges.push({
          scenario: sa.id,
          measurement: name,
          from: ma.ok,
          to: mb.ok,
          regression: ma.ok === true && mb.ok !== true,
        });
      if (typeof ma.value === 'number' && typeof mb.value === 'number') {
        const base = Math.max(Math.abs(ma.value), 1e-9);
        const change = (mb.value - ma.value) / base;
        if (Math.abs(change) > opts.tolerance)
          diff.moved.push({ scenario: sa.id, measurement: name, from: ma.value, to: mb.value, change });
      } else if (String(ma.value) !== String(mb.value)) {
        diff.changedText.push({ scenario: sa.id, measurement: name, from: String(ma.value), to: String(mb.value) });
      }
    }
  }
  diff.regressions =
    diff.statusChanges.filter((c) => c.regression).length + diff.expectationChanges.filter((c) => c.regression).length;
  return diff;
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
      (c) =>
        `${c.regression ? 'REGRESSED ' : ''}${c.scenario}.${c.measurement}: ${c.from === undefined ? 'recorded' : c.from ? 'met' : 'not met'} -> ${c.to === undefined ? 'recorded' : c.to ? 'met' : 'not met'}`,
    ),
  );
  section(
    `values moved more than ${(tolerance * 100).toFixed(0)}%`,
    d.moved.map(
      (m) =>
        `${m.scenario}.${m.measurement}: ${m.from} -> ${m.to} (${m.change > 0 ? '+' : ''}${(m.change * 100).toFixed(1)}%)`,
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
