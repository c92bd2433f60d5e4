/**
 * The report's charts as inline SVG, built from a run's measurements: the struct-page saving
 * and MemTotal against the reserved size (measured points beside the theoretical line), and
 * minor faults per GiB mapped for every comparison column (log scale).
 */
import { KB_PER_GIB, STRUCT_PAGE_KB_PER_GIB, type ScenarioResult } from '../core/results.js';

const W = 560;
const H = 320;
const M = { left: 70, right: 20, top: 36, bottom: 48 };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) =>
  (Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)).replace(/\.0+$/, '');

export interface Point {
  x: number;
  y: number;
  label?: string;
}

/** Measured points and a theoretical line on linear axes. */
export function scatterChart(o: {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  points: Point[];
  line: (x: number) => number;
  lineLabel: string;
  xMax: number;
}): string {
  const xs = [0, o.xMax];
  const ys = [...o.points.map((p) => p.y), ...xs.map(o.line)];
  const yMin = Math.min(0, ...ys);
  const yMax = Math.max(...ys) * 1.1 || 1;
  const px = (x: number) => M.left + (x / o.xMax) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);
  const parts = [
    `<svg id="${o.id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
    `<title>${esc(o.title)}</title>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-weight="bold" font-size="14">${esc(o.title)}</text>`,
  ];
  parts.push(...axes(o.xLabel, o.yLabel));
  for (let i = 0; i <= 4; i++) {
    const xv = (o.xMax * i) / 4;
    const yv = yMin + ((yMax - yMin) * i) / 4;
    parts.push(`<text x="${px(xv)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${fmt(xv)}</text>`);
    parts.push(`<text x="${M.left - 6}" y="${py(yv) + 4}" text-anchor="end" font-size="11">${fmt(yv)}</text>`);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(yv)}" y2="${py(yv)}" stroke="#ddd"/>`);
  }
  parts.push(
    `<line class="theory" x1="${px(0)}" y1="${py(o.line(0))}" x2="${px(o.xMax)}" y2="${py(o.line(o.xMax))}" ` +
      `stroke="#888" stroke-dasharray="6 4" stroke-width="2"/>`,
  );
  for (const p of o.points) {
    parts.push(
      `<circle class="measured" cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="5" ` +
        `fill="#c0392b"><title>${esc(p.label ?? `${fmt(p.x)}, ${fmt(p.y)}`)}</title></circle>`,
    );
  }
  parts.push(
    legend([
      ['#c0392b', 'measured'],
      ['#888', o.lineLabel],
    ]),
  );
  parts.push('</svg>');
  return parts.join('\n');
}

/** Bars on a log10 axis. */
export function logBarChart(o: {
  id: string;
  title: string;
  yLabel: string;
  bars: Array<{ label: string; value: number | undefined; note?: string }>;
}): string {
  const vals = o.bars.map((b) => b.value).filter((v): v is number => v !== undefined && v > 0);
  const top = Math.ceil(Math.log10(Math.max(10, ...vals)));
  const py = (v: number) => H - M.bottom - (Math.log10(Math.max(v, 1)) / top) * (H - M.top - M.bottom);
  const slot = (W - M.left - M.right) / o.bars.length;
  const parts = [
    `<svg id="${o.id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
    `<title>${esc(o.title)}</title>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-weight="bold" font-size="14">${esc(o.title)}</text>`,
  ];
  parts.push(...axes('', o.yLabel));
  for (let e = 0; e <= top; e++) {
    parts.push(`<text x="${M.left - 6}" y="${py(10 ** e) + 4}" text-anchor="end" font-size="11">1e${e}</text>`);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(10 ** e)}" y2="${py(10 ** e)}" stroke="#ddd"/>`);
  }
  o.bars.forEach((b, i) => {
    const x = M.left + i * slot + slot * 0.15;
    const w = slot * 0.7;
    parts.push(
      `<text x="${x + w / 2}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="10">${esc(b.label)}</text>`,
    );
    if (b.value === undefined) {
      parts.push(
        `<text class="missing" x="${x + w / 2}" y="${H - M.bottom - 8}" text-anchor="middle" font-size="10" ` +
          `fill="#888">${esc(b.note ?? 'skipped')}</text>`,
      );
      return;
    }
    const y = py(b.value);
    parts.push(
      `<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" ` +
        `height="${(H - M.bottom - y).toFixed(1)}" fill="${b.label.startsWith('dmemfs') ? '#2e86c1' : '#aab7b8'}">` +
        `<title>${esc(`${b.label}: ${b.value}`)}</title></rect>`,
    );
    parts.push(`<text x="${x + w / 2}" y="${y - 4}" text-anchor="middle" font-size="10">${b.value}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function axes(xLabel: string, yLabel: string): string[] {
  return [
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<text x="${(W + M.left) / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ` +
      `${H / 2})">${esc(yLabel)}</text>`,
  ];
}

function legend(items: Array<[string, string]>): string {
  return items
    .map(
      ([c, t], i) =>
        `<g transform="translate(${M.left + 12} ${M.top + 8 + i * 16})"><rect width="10" height="10" ` +
        `fill="${c}"/><text x="16" y="9" font-size="11">${esc(t)}</text></g>`,
    )
    .join('');
}

const num = (s: ScenarioResult | undefined, name: string): number | undefined => {
  const v = s?.measurements[name]?.value;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
};

/** The reservation points: reserved GiB against struct-page MiB saved and MemTotal GiB. */
export function reservationPoints(scenarios: ScenarioResult[]): {
  saved: Point[];
  memtotal: Point[];
  baseKb: number | undefined;
} {
  const s = scenarios.find((x) => x.id === 'reservation');
  const base = num(s, 'memtotal_plain_kb');
  const raw: Array<[number | undefined, number | undefined]> = [
    [num(s, 'sweep_512M_reserved_kb'), num(s, 'sweep_512M_memtotal_drop_kb')],
    [num(s, 'reserved_kb'), num(s, 'memtotal_drop_kb')],
    [num(s, 'sweep_1536M_reserved_kb'), num(s, 'sweep_1536M_memtotal_drop_kb')],
  ];
  const saved: Point[] = [];
  const memtotal: Point[] = [];
  if (base !== undefined) memtotal.push({ x: 0, y: base / KB_PER_GIB, label: `no dmem=: MemTotal ${base} kB` });
  for (const [r, d] of raw) {
    if (r === undefined || d === undefined) continue;
    saved.push({
      x: r / KB_PER_GIB,
      y: (r - d) / 1024,
      label: `${r / KB_PER_GIB} GiB reserved: ${((r - d) / 1024).toFixed(2)} MiB of struct pages saved`,
    });
    if (base !== undefined)
      memtotal.push({
        x: r / KB_PER_GIB,
        y: (base - d) / KB_PER_GIB,
        label: `${r / KB_PER_GIB} GiB reserved: MemTotal ${base - d} kB`,
      });
  }
  return { saved, memtotal, baseKb: base };
}

/** Minor faults per GiB mapped, per comparison column. */
export function faultBars(
  scenarios: ScenarioResult[],
): Array<{ label: string; value: number | undefined; note?: string }> {
  const cols: Array<[string, string, string]> = [
    ['dmemfs 4K', 'dmemfs-files', 'faults_4K'],
    ['dmemfs 2M', 'dmemfs-files', 'faults_2M'],
    ['dmemfs 1G', 'dmemfs-files', 'faults_1G'],
    ['device-dax', 'alternatives-devdax', 'devdax_faults'],
    ['hugetlbfs 2M', 'alternatives', 'hugetlbfs_2M_faults'],
    ['hugetlbfs 1G', 'alternatives', 'hugetlbfs_1G_faults'],
    ['anonymous', 'alternatives', 'anonymous_faults'],
  ];
  return cols.map(([label, id, name]) => {
    const s = scenarios.find((x) => x.id === id);
    const m = s?.measurements[name];
    const mib = Number(/for (\d+) MiB/.exec(m?.unit ?? '')?.[1]);
    if (!s || s.status === 'skip' || typeof m?.value !== 'number' || !mib)
      return { label, value: undefined, note: s?.status === 'skip' ? 'skipped' : 'not run' };
    return { label, value: Math.round((m.value * 1024) / mib) };
  });
}

export function reportCharts(scenarios: ScenarioResult[]): { id: string; svg: string }[] {
  const r = reservationPoints(scenarios);
  const xMax = Math.max(3, ...r.saved.map((p) => Math.ceil(p.x)));
  const perGibMiB = STRUCT_PAGE_KB_PER_GIB / 1024;
  const charts = [
    {
      id: 'chart-struct-page',
      svg: scatterChart({
        id: 'chart-struct-page',
        title: 'struct-page memory saved by dmem= against reserved size',
        xLabel: 'reserved (GiB, both nodes)',
        yLabel: 'saved (MiB)',
        points: r.saved,
        line: (x) => x * perGibMiB,
        lineLabel: 'theory: 16 MiB per GiB (64 B per 4 KiB page)',
        xMax,
      }),
    },
  ];
  if (r.baseKb !== undefined) {
    const base = r.baseKb / KB_PER_GIB;
    charts.push({
      id: 'chart-memtotal',
      svg: scatterChart({
        id: 'chart-memtotal',
        title: 'MemTotal against reserved size',
        xLabel: 'reserved (GiB, both nodes)',
        yLabel: 'MemTotal (GiB)',
        points: r.memtotal,
        line: (x) => base - x + (x * perGibMiB) / 1024,
        lineLabel: 'theory: base - reserved + 16 MiB per GiB',
        xMax,
      }),
    });
  }
  charts.push({
    id: 'chart-faults',
    svg: logBarChart({
      id: 'chart-faults',
      title: 'minor faults per GiB mapped (log scale)',
      yLabel: 'faults per GiB',
      bars: faultBars(scenarios),
    }),
  });
  return charts;
}
