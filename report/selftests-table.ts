/**
 * The mm selftests table: each test of scenarios/selftests.ts with its outcome on the baseline
 * kernel, on the series, and pointed at dmemfs, from a run's mm-selftests result. A cell is the
 * outcome, marked where it is not the one the data holds it to; a test the run did not take
 * says so. Written into the bundle (selftests.md) and the reports.
 */
import type { Measurement, ScenarioResult } from '../core/results.js';
import { DMEMFS_CASES, SELFTESTS, caseArgv } from '../scenarios/selftests.js';

export interface SelftestRow {
  test: string;
  command: string;
  baseline: string;
  series: string;
  dmemfs: string;
}

function cell(m: Measurement | undefined, none: string): string {
  if (!m) return none;
  if (m.skipped) return `skipped: ${m.skipped}`;
  const v = String(m.value);
  return m.ok === false ? `**${v}** (held to ${m.expected && 'value' in m.expected ? m.expected.value : '?'})` : v;
}

/** The rows, in the data's order: every SELFTESTS case, then the dmemfs cases that have no usual twin. */
export function selftestRows(s: Pick<ScenarioResult, 'measurements'> | undefined): SelftestRow[] {
  const ms = s?.measurements ?? {};
  const notRun = s ? 'not run' : 'scenario not run';
  const rows: SelftestRow[] = SELFTESTS.map((c) => ({
    test: c.id,
    command: caseArgv(c, '.', 'MNT').join(' '),
    baseline: cell(ms[`${c.id}_baseline`], notRun),
    series: cell(ms[`${c.id}_series`], notRun),
    dmemfs: DMEMFS_CASES.some((d) => d.id === c.id)
      ? cell(ms[`${c.id}_dmemfs`], notRun)
      : c.args.some((a) => a.includes('{mnt}'))
        ? 'n/a: its private mapping is not for dmemfs (the shared variant is pointed there, below)'
        : 'n/a: takes no path',
  }));
  for (const d of DMEMFS_CASES.filter((d) => !SELFTESTS.some((c) => c.id === d.id)))
    rows.push({
      test: d.id,
      command: caseArgv(d, '.', 'MNT').join(' '),
      baseline: 'n/a: dmemfs only',
      series: 'n/a: dmemfs only',
      dmemfs: cell(ms[`${d.id}_dmemfs`], notRun),
    });
  return rows;
}

const esc = (t: string) => t.replace(/\|/g, '\\|');

export function selftestsMarkdown(s: Pick<ScenarioResult, 'measurements'> | undefined): string {
  return [
    '| test | command (MNT: hugetlbfs 2M, or dmemfs 2M) | baseline | series | on dmemfs |',
    '|---|---|---|---|---|',
    ...selftestRows(s).map(
      (r) => `| ${r.test} | \`${esc(r.command)}\` | ${esc(r.baseline)} | ${esc(r.series)} | ${esc(r.dmemfs)} |`,
    ),
  ].join('\n');
}

/** The table of the outcomes the data holds (scenarios/selftests.ts): what docs/scenarios.md states. */
export function statedSelftestsMarkdown(): string {
  const held: Record<string, { value: string; unit: string; ok: boolean }> = {};
  for (const c of SELFTESTS) {
    held[`${c.id}_baseline`] = { value: c.baseline, unit: '', ok: true };
    held[`${c.id}_series`] = { value: c.series?.outcome ?? c.baseline, unit: '', ok: true };
  }
  for (const c of DMEMFS_CASES) held[`${c.id}_dmemfs`] = { value: c.dmemfs, unit: '', ok: true };
  return selftestsMarkdown({ measurements: held as unknown as Record<string, Measurement> });
}
