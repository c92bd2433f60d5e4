/**
 * The human report of a run, as a static HTML page (inline SVG charts, no scripts, no
 * external resources) and as a Markdown summary. Both are built from results.json alone, so
 * `dmemfs-rig report BUNDLE` can render them again.
 */
import { provenanceLine } from '../core/series-record.js';
import {
  describeExpectation,
  fixedSignatures,
  outcomeOf,
  type Measurement,
  type SignatureCheck,
  type RunResults,
  type ScenarioResult,
} from '../core/results.js';
import { reportCharts, reservationPoints, faultBars } from './charts.js';
import { comparisonMarkdown, comparisonTable } from './comparison-table.js';
import { selftestRows, selftestsMarkdown } from './selftests-table.js';
import { QUESTIONS, reviewersMarkdown, valuesOf } from './reviewers.js';

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

const CSS = [
  'body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}',
  'td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}th{background:#f3f3f3}',
  '.st-pass{background:#d5f5e3}.st-fail{background:#f5b7b1}.st-skip{background:#eaeded}',
  '.st-known-failure{background:#fdebd0}.c-na,.c-skipped{color:#777;font-size:12px}.c-not-met{background:#f5b7b1}',
  '.c-known-failure{background:#fdebd0}.fixed{background:#d6eaf8;padding:6px 10px}',
  '.charts{display:flex;flex-wrap:wrap;gap:16px}.charts svg{border:1px solid #ddd;background:#fff}',
  'code{background:#f6f6f6}details{margin:4px 0}',
].join('\n');

/** Where the run's time went: building or fetching the kernel and images, then the scenarios. */
export function timeSplit(run: Pick<RunResults, 'seconds' | 'prepareSeconds' | 'scenarios'>): string {
  if (run.prepareSeconds === undefined) return '';
  const scen = run.scenarios.reduce((a, s) => a + s.seconds, 0);
  return (
    `Kernel and images (build, or the cache): ${run.prepareSeconds.toFixed(0)} s; the scenarios: ` +
    `${scen.toFixed(0)} s (their times below do not include it). `
  );
}

/** One sentence: the counts, the accelerator, QEMU and the kernel. */
function summaryText(run: RunResults): string {
  return (
    `${count(run, 'pass')} pass, ${count(run, 'fail')} fail, ${count(run, 'skip')} skipped, ` +
    `${count(run, 'known-failure')} known failures of the series, in ${run.seconds.toFixed(0)} s. ` +
    timeSplit(run) +
    `Accelerator ${run.accel.accel} (${run.accel.reason}); ${run.qemu.version}; ` +
    `kernel ${String(run.kernel.release ?? '?')} (build ${String(run.kernel.key ?? '?').slice(0, 16)}); ` +
    `started ${run.startedAt}.`
  );
}

/** How a standing known failure was (not) confirmed in this run. */
export const outcomeMark = (c: SignatureCheck): string =>
  outcomeOf(c) === 'not-rechecked' ? ' [not re-checked]' : outcomeOf(c) === 'not-seen' ? ' [not seen this run]' : '';

/** The top of the report: the known failures that no longer reproduce, and those that do. */
function signaturesHtml(run: RunResults): string[] {
  const fixed = fixedSignatures(run);
  const known = run.scenarios.flatMap((s) =>
    s.signatures
      .filter((c) => ['reproduced', 'not-rechecked', 'not-seen'].includes(outcomeOf(c)))
      .map((c) => ({ s, c })),
  );
  return [
    ...(fixed.length
      ? [
          '<div id="no-longer-reproduces" class="fixed">',
          '<b>No longer reproduces</b> (update or drop the signature):<ul>',
          ...fixed.map(
            (f) =>
              `<li>${h(f.scenario)}/${h(f.id)}${f.partial ? ` (in ${h(f.cured!.join(', '))} only)` : ''}: ` +
              `${h(f.title)} — ${h(f.detail)}</li>`,
          ),
          '</ul></div>',
        ]
      : []),
    ...(known.length
      ? [
          '<div id="known-failures"><b>Known failures of the series</b> (evidence matched, unless marked):<ul>',
          ...known.map(({ s, c }) => `<li>${h(s.id)}/${h(c.id)}${outcomeMark(c)}: ${h(c.title)} — ${h(c.detail)}</li>`),
          '</ul></div>',
        ]
      : []),
  ];
}

function scenariosHtml(run: RunResults): string[] {
  return [
    '<h2>Scenarios</h2>',
    '<table id="scenarios"><tr><th>scenario</th><th>status</th><th>reason</th><th>s</th></tr>',
    ...run.scenarios.map(
      (s) =>
        `<tr><td><a href="#s-${h(s.id)}">${h(s.id)}</a></td>${statusCell(s)}` +
        `<td>${h(s.reason ?? '')}</td><td>${s.seconds.toFixed(0)}</td></tr>`,
    ),
    '</table>',
  ];
}

function comparisonHtml(run: RunResults): string[] {
  const table = comparisonTable(run.scenarios);
  return [
    '<h2>Comparison</h2>',
    '<table id="comparison"><tr><th>measurement</th>' + table.columns.map((c) => `<th>${h(c)}</th>`).join('') + '</tr>',
    ...table.rows.map(
      (r) => `<tr><th>${h(r.row)}</th>${r.cells.map((c) => `<td class="c-${c.kind}">${h(c.text)}</td>`).join('')}</tr>`,
    ),
    '</table>',
    "<h2>The reviewers' questions</h2>",
    '<ul id="reviewers">',
    ...QUESTIONS.map((q) => {
      const v = valuesOf(run.scenarios);
      const refs = q.answeredBy.map((r) => `<code>${h(r.scenario)}</code> ${h(r.measurement)}`).join(', ');
      return `<li><b>${h(q.question)}</b> ${h(q.answer(v))} <small>(${refs})</small></li>`;
    }),
    '</ul>',
  ];
}

/** The patches of an unpinned series that differ from the nearest pinned one, with both patch ids. */
function changedRows(run: RunResults) {
  return run.series && !run.series.pinned ? run.series.patches.filter((r) => r.kind !== 'identical') : [];
}

function seriesChangesMd(run: RunResults): string[] {
  const rows = changedRows(run);
  if (!rows.length) return [];
  const id = (x: string | undefined) => (x ? x.slice(0, 12) : '-');
  return [
    `| # | patch | against ${run.series!.nearest ?? 'no pinned series'} | patch id | pinned patch id |`,
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.number} | ${r.title} | ${r.kind} | ${id(r.patchId)} | ${id(r.pinnedPatchId)} |`),
    '',
  ];
}

function patchesHtml(run: RunResults): string[] {
  const patches = patchesOf(run);
  if (!patches.length)
    return ['<h2>The series</h2>', '<p id="patches">No series in this profile (unpatched kernel).</p>'];
  const row = (p: PatchRow) =>
    `<tr>${[p.number, p.title, p.verdict, p.apply, p.method].map((x) => `<td>${h(x)}</td>`).join('')}</tr>`;
  const origin = run.series ? [`<p id="series">Series ${h(provenanceLine(run.series))}.</p>`] : [];
  return [
    '<h2>The series</h2>',
    ...origin,
    '<table id="patches"><tr><th>#</th><th>patch</th><th>patch id</th><th>applied</th><th>how</th></tr>',
    ...patches.map(row),
    '</table>',
  ];
}

function bootsHtml(run: RunResults): string[] {
  const link = (c: string | undefined) => (c ? `<a href="${h(c)}">${h(c)}</a>` : '-');
  return [
    '<h2>Boots</h2>',
    '<table id="boots"><tr><th>guest</th><th>scenario</th><th>to SSH (s)</th><th>console</th></tr>',
    ...run.boots.map(
      (b) =>
        `<tr><td>${h(b.guest)}</td><td>${h(b.scenario)}</td>` +
        `<td>${b.bootSeconds?.toFixed(1) ?? '-'}</td><td>${link(b.console)}</td></tr>` +
        (b.restarts ?? []).map((r) => `<tr><td></td><td colspan="3">booted again after: ${h(r)}</td></tr>`).join(''),
    ),
    '</table>',
  ];
}

function measurementRow(n: string, m: Measurement): string {
  const value = m.skipped ? `skipped: ${m.skipped}` : `${String(m.value)} ${m.unit}`;
  const held = m.expected ? `${describeExpectation(m.expected)}: ${m.ok ? 'ok' : 'NOT MET'}` : 'recorded';
  const note = [m.note, m.why ? `why: ${m.why}` : undefined].filter(Boolean).join('; ');
  return (
    `<tr><td>${h(n)}</td><td${m.ok === false ? ' class="c-not-met"' : ''}>${h(value)}</td>` +
    `<td>${h(held)}</td><td>${h(note)}</td></tr>`
  );
}

function measurementsHtml(run: RunResults): string[] {
  const out = ['<h2>Measurements</h2>'];
  for (const s of run.scenarios) {
    out.push(`<h3 id="s-${h(s.id)}">${h(s.id)}: ${h(s.title)}</h3>`);
    if (s.reason) out.push(`<p><b>${h(s.status)}</b>: ${h(s.reason)}</p>`);
    const ms = Object.entries(s.measurements);
    if (ms.length) {
      out.push('<table><tr><th>measurement</th><th>value</th><th>expected</th><th>note</th></tr>');
      out.push(...ms.map(([n, m]) => measurementRow(n, m)), '</table>');
    }
    for (const e of s.evidence) out.push(`<details><summary>${h(e.label)}</summary><pre>${h(e.text)}</pre></details>`);
  }
  return out;
}

/** The mm selftests table, when the run took mm-selftests. */
function selftestsHtml(run: RunResults): string[] {
  const s = run.scenarios.find((x) => x.id === 'mm-selftests');
  if (!s) return [];
  return [
    "<h2>The kernel's mm selftests</h2>",
    '<table id="selftests"><tr><th>test</th><th>command</th><th>baseline</th><th>series</th><th>on dmemfs</th></tr>',
    ...selftestRows(s).map(
      (r) =>
        `<tr><th>${h(r.test)}</th><td><code>${h(r.command)}</code></td><td>${h(r.baseline)}</td>` +
        `<td>${h(r.series)}</td><td>${h(r.dmemfs)}</td></tr>`,
    ),
    '</table>',
  ];
}

export function renderHtml(run: RunResults): string {
  const charts = reportCharts(run.scenarios);
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><title>dmemfs-rig report</title>',
    `<style>${CSS}</style></head><body>`,
    `<h1>dmemfs-rig: ${h(run.profile)}</h1>`,
    `<p id="summary">${h(summaryText(run))}</p>`,
    ...signaturesHtml(run),
    ...scenariosHtml(run),
    ...comparisonHtml(run),
    ...selftestsHtml(run),
    '<h2>Charts</h2>',
    `<div class="charts">${charts.map((c) => c.svg).join('\n')}</div>`,
    ...patchesHtml(run),
    ...bootsHtml(run),
    ...measurementsHtml(run),
    '</body></html>',
    '',
  ].join('\n');
}

function selftestsSection(run: RunResults): string[] {
  const s = run.scenarios.find((x) => x.id === 'mm-selftests');
  return s ? ["## The kernel's mm selftests", '', selftestsMarkdown(s), ''] : [];
}

export function renderMarkdown(run: RunResults): string {
  const lines = [
    `# dmemfs-rig: ${run.profile}`,
    '',
    summaryText(run),
    '',
    ...fixedSignatures(run).map(
      (f) =>
        `**No longer reproduces**: ${f.scenario}/${f.id}${f.partial ? ` (in ${f.cured!.join(', ')} only)` : ''}: ` +
        `${f.title} (${f.detail})`,
    ),
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
    ...selftestsSection(run),
    "## The reviewers' questions",
    '',
    reviewersMarkdown(run.scenarios),
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
      ...(run.series ? [`Series ${provenanceLine(run.series)}.`, ''] : []),
      ...seriesChangesMd(run),
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
