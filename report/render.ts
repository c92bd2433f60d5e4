/**
 * The human report of a run, as a static HTML page (inline SVG charts, no scripts, no
 * external resources) and as a Markdown summary. Both are built from results.json alone, so
 * `dmemfs-rig report BUNDLE` can render them again.
 */
import { describeComparison, type ScenarioResult } from '../scenarios/types.js';
import type { RunResults } from '../runner/scenario-runner.js';
import { reportCharts, reservationPoints, faultBars } from './charts.js';
import { comparisonMarkdown, comparisonTable } from './comparison.js';

export interface PatchRow {
  number: number;
  title: string;
  verdict: string;
  apply: string;
  method: string;
}

const h = (s: unknown) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const count = (run: RunResults, st: string) => run.scenarios.filter((s) => s.status === st).length;
const patchesOf = (run: RunResults): PatchRow[] =>
  Array.isArray(run.kernel.patches) ? (run.kernel.patches as PatchRow[]) : [];

function statusCell(s: ScenarioResult): string {
  return `<td class="st-${s.status}">${h(s.status)}</td>`;
}

export function renderHtml(run: RunResults): string {
  const table = comparisonTable(run.scenarios);
  const charts = reportCharts(run.scenarios);
  const patches = patchesOf(run);
  const css = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}th{background:#f3f3f3}
.st-pass{background:#d5f5e3}.st-fail{background:#f5b7b1}.st-skip{background:#eaeded}.st-known-failure{background:#fdebd0}.c-na,.c-skipped{color:#777;font-size:12px}.c-not-met{background:#f5b7b1}.c-known-failure{background:#fdebd0}
.charts{display:flex;flex-wrap:wrap;gap:16px}.charts svg{border:1px solid #ddd;background:#fff}code{background:#f6f6f6}details{margin:4px 0}`;
  const out: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><title>dmemfs-rig report</title>',
    `<style>${css}</style></head><body>`,
    `<h1>dmemfs-rig: ${h(run.profile)}</h1>`,
    `<p id="summary">${count(run, 'pass')} pass, ${count(run, 'fail')} fail, ${count(run, 'skip')} skipped, ${count(run, 'known-failure')} known failures of the series, in ${run.seconds.toFixed(0)} s. Accelerator <b>${h(run.accel.accel)}</b> (${h(run.accel.reason)}); ${h(run.qemu.version)}; kernel ${h(run.kernel.release ?? '?')} (build ${h(String(run.kernel.key ?? '?').slice(0, 16))}); started ${h(run.startedAt)}.</p>`,
    '<h2>Scenarios</h2>',
    '<table id="scenarios"><tr><th>scenario</th><th>status</th><th>reason</th><th>s</th></tr>',
    ...run.scenarios.map(
      (s) =>
        `<tr><td><a href="#s-${h(s.id)}">${h(s.id)}</a></td>${statusCell(s)}<td>${h(s.reason ?? '')}</td><td>${s.seconds.toFixed(0)}</td></tr>`,
    ),
    '</table>',
    '<h2>Comparison</h2>',
    '<table id="comparison"><tr><th>measurement</th>' + table.columns.map((c) => `<th>${h(c)}</th>`).join('') + '</tr>',
    ...table.rows.map(
      (r) => `<tr><th>${h(r.row)}</th>${r.cells.map((c) => `<td class="c-${c.kind}">${h(c.text)}</td>`).join('')}</tr>`,
    ),
    '</table>',
    '<h2>Charts</h2>',
    `<div class="charts">${charts.map((c) => c.svg).join('\n')}</div>`,
    '<h2>The series</h2>',
    patches.length
      ? `<table id="patches"><tr><th>#</th><th>patch</th><th>patch id</th><th>applied</th><th>how</th></tr>${patches.map((p) => `<tr><td>${p.number}</td><td>${h(p.title)}</td><td>${h(p.verdict)}</td><td>${h(p.apply)}</td><td>${h(p.method)}</td></tr>`).join('')}</table>`
      : '<p id="patches">No series in this profile (unpatched kernel).</p>',
    '<h2>Boots</h2>',
    '<table id="boots"><tr><th>guest</th><th>scenario</th><th>to SSH (s)</th><th>console</th></tr>',
    ...run.boots.map(
      (b) =>
        `<tr><td>${h(b.guest)}</td><td>${h(b.scenario)}</td><td>${b.bootSeconds?.toFixed(1) ?? '-'}</td><td>${b.console ? `<a href="${h(b.console)}">${h(b.console)}</a>` : '-'}</td></tr>`,
    ),
    '</table>',
    '<h2>Measurements</h2>',
  ];
  for (const s of run.scenarios) {
    out.push(`<h3 id="s-${h(s.id)}">${h(s.id)}: ${h(s.title)}</h3>`);
    if (s.reason) out.push(`<p><b>${h(s.status)}</b>: ${h(s.reason)}</p>`);
    const ms = Object.entries(s.measurements);
    if (ms.length) {
      out.push('<table><tr><th>measurement</th><th>value</th><th>expected</th><th>note</th></tr>');
      for (const [n, m] of ms)
        out.push(
          `<tr><td>${h(n)}</td><td${m.ok === false ? ' class="c-not-met"' : ''}>${h(`${String(m.value)} ${m.unit}`)}</td><td>${m.expected ? h(`${describeComparison(m.expected)}: ${m.ok ? 'ok' : 'NOT MET'}`) : 'recorded'}</td><td>${h(m.note ?? '')}</td></tr>`,
        );
      out.push('</table>');
    }
    for (const e of s.evidence) out.push(`<details><summary>${h(e.label)}</summary><pre>${h(e.text)}</pre></details>`);
  }
  out.push('</body></html>', '');
  return out.join('\n');
}

export function renderMarkdown(run: RunResults): string {
  const lines = [
    `# dmemfs-rig: ${run.profile}`,
    '',
    `${count(run, 'pass')} pass, ${count(run, 'fail')} fail, ${count(run, 'skip')} skipped, ${count(run, 'known-failure')} known failures of the series, in ${run.seconds.toFixed(0)} s; accelerator ${run.accel.accel} (${run.accel.reason}); ${run.qemu.version}; kernel ${String(run.kernel.release ?? '?')}.`,
    '',
    '## Scenarios',
    '',
    '| scenario | status | reason |',
    '|---|---|---|',
    ...run.scenarios.map((s) => `| ${s.id} | ${s.status} | ${(s.reason ?? '').replace(/\|/g, '\\|').slice(0, 300)} |`),
    '',
    '## Comparison',
    '',
    comparisonMarkdown(comparisonTable(run.scenarios)),
    '',
    '## Chart data (the charts are in report.html)',
    '',
    '| reserved (GiB) | struct pages saved (MiB) | theory (MiB) |',
    '|---|---|---|',
    ...reservationPoints(run.scenarios).saved.map((p) => `| ${p.x} | ${p.y.toFixed(2)} | ${(p.x * 16).toFixed(2)} |`),
    '',
    '| column | minor faults per GiB mapped |',
    '|---|---|',
    ...faultBars(run.scenarios).map((b) => `| ${b.label} | ${b.value ?? b.note ?? '-'} |`),
    '',
  ];
  const patches = patchesOf(run);
  if (patches.length) {
    const notClean = patches.filter((p) => p.apply !== 'clean' || p.verdict !== 'ok');
    lines.push(
      '## The series',
      '',
      `${patches.length} patches; ${patches.length - notClean.length} verified and applied clean.`,
      '',
    );
    if (notClean.length)
      lines.push(
        '| # | patch | patch id | applied |',
        '|---|---|---|---|',
        ...notClean.map((p) => `| ${p.number} | ${p.title} | ${p.verdict} | ${p.apply} |`),
        '',
      );
  }
  return lines.join('\n');
}
