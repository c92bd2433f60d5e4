#!/usr/bin/env node
/**
 * `npm test`: runs the tap suite over the compiled tests and streams TAP to stdout: the files that
 * boot guests (integration, then faults) in one or two streams, and beside them the unit tests. At the
 * end it prints one closing line, "N passed, N failed, N skipped", counted per assertion, and
 * the reasons of the skipped ones
 * (a skipped measurement, a known failure of the series), so a skip is never mistaken for a
 * pass; known failures that no longer reproduce are listed too.
 *
 * Arguments select files by substring: `npm test -- unit`, `npm test -- panic`.
 */
import { spawnStreaming as spawn, type ChildProcess } from '../core/exec.js';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { Parser } from 'tap-parser';
import { tally, type Tally } from './tap-tally.js';
import { projectRoot } from '../core/paths.js';
import { shardUnits } from '../runner/workers.js';

const root = projectRoot();
const filters = process.argv.slice(2);

/**
 * Seconds each booting file took in the warm two-stream `.ci/run` of 2026-12-04 22:04 (31d0dec),
 * as npm test printed them ("seconds per test file"), and files added since as said beside them; a
 * file not listed: 30 s.
 */
const BOOTING_COST: Record<string, number> = {
  'interruptions.test.js': 278,
  'scenarios-1.test.js': 235,
  'scenarios-2.test.js': 224,
  'guest-faults.test.js': 148,
  'kvm-path.test.js': 131,
  'bad-input.test.js': 103,
  'mutants.test.js': 92,
  'images.test.js': 82,
  'parallel.test.js': 71,
  'series-apply.test.js': 70,
  'shell.test.js': 54,
  'bundle.test.js': 51,
  'changed-series.test.js': 49,
  'concurrency.test.js': 41,
  'bisect.test.js': 29,
  'data-safety.test.js': 23,
  'ccache.test.js': 22,
  'security.test.js': 13,
  'hygiene.test.js': 13,
  'panic.test.js': 12,
  // Measured alone, 2026-12-05 (its kernels cached): six boots of a busybox initramfs.
  'repro.test.js': 13,
  'silent-peers.test.js': 8,
  'first-guest.test.js': 7,
  'kernel-pipeline.test.js': 6,
  'source-kinds.test.js': 1,
};

function bootingStreams(): number {
  const given = Number(process.env.DMEMFS_RIG_TEST_STREAMS);
  if (Number.isInteger(given) && given >= 1) return given;
  return cpus().length >= 2 && totalmem() >= 16 * 2 ** 30 ? 2 : 1;
}

function testFiles(kind: string): string[] {
  const dir = join(root, 'dist', 'tests', kind);
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((f) => f.endsWith('.test.js'))
      .sort();
  } catch {
    return [];
  }
  return names
    .map((f) => join('dist', 'tests', kind, f))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
}

/**
 * The files that boot guests, in `streams` streams side by side, dealt longest first to the
 * least-loaded stream by their measured times (BOOTING_COST), each stream one file at a time; and
 * beside them the files that boot nothing (the unit tests), which use the CPU while guests wait.
 * Two booting streams on a host of two cores and 16 GiB (a guest each: the scenario runner's
 * `bench run --jobs 2` ran in 0.60 of the serial time with the same statuses), one on less;
 * DMEMFS_RIG_TEST_STREAMS says otherwise.
 */
const booting = [...testFiles('integration'), ...testFiles('faults')];
const streams = bootingStreams();
const groups = [
  ...Array.from({ length: streams }, (_, k) =>
    shardUnits(booting, (f) => BOOTING_COST[basename(f)] ?? 30, { index: k + 1, count: streams }),
  ).map((files, i) => ({
    name: `boot guests (integration, faults)${streams > 1 ? `, stream ${i + 1} of ${streams}` : ''}`,
    files,
  })),
  { name: 'boot nothing (unit)', files: testFiles('unit') },
].filter((g) => g.files.length > 0);
if (groups.length === 0) {
  process.stderr.write(`no test files match ${filters.join(' ')}\n`);
  process.exit(1);
}

// The fault suite records each fault it tried (tests/helpers/faults.ts): counted at the end.
const faultLog = join(mkdtempSync(join(tmpdir(), 'rig-faults-')), 'faults.jsonl');

interface Stream {
  name: string;
  counts: Tally;
  /** Seconds each test file took, from tap's own "# time=" of its line. */
  times: Array<{ file: string; seconds: number }>;
  code: number | null;
  signal: NodeJS.Signals | null;
}

const children: ChildProcess[] = [];
const indent = (text: string) => text.replace(/^(?=.)/gm, '    ');

/**
 * One tap run over `files`. The first group streams to stdout as it goes (indented as a subtest
 * of this run's TAP document); the others are held and written whole when they end, after it.
 */
function runGroup(files: string[], live: boolean, name: string): Promise<Stream & { held: string }> {
  const parser = new Parser();
  const counts = tally(parser);
  const tap = spawn(
    process.execPath,
    [
      join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'),
      '--disable-coverage',
      '--allow-empty-coverage',
      '--jobs=1',
      '--timeout=3000',
      '--reporter=tap',
      ...files,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DMEMFS_RIG_FAULT_LOG: faultLog } },
  );
  children.push(tap);
  let held = '';
  let partial = '';
  const times: Stream['times'] = [];
  tap.stdout!.on('data', (d: Buffer) => {
    parser.write(d);
    const text = partial + d.toString();
    const cut = text.lastIndexOf('\n') + 1;
    partial = text.slice(cut);
    for (const m of text
      .slice(0, cut)
      .matchAll(/^(?:not )?ok \d+ - dist\/(\S+)\.js(?: # [^\n]*?)? # time=([\d.]+)ms$/gm))
      times.push({ file: `${m[1]!}.ts`, seconds: Number(m[2]) / 1000 });
    if (live) process.stdout.write(indent(text.slice(0, cut)));
    else held += text.slice(0, cut);
  });
  return new Promise((resolve) => {
    tap.on('exit', (code, signal) => {
      parser.end();
      const rest = partial + (partial && !partial.endsWith('\n') ? '\n' : '');
      if (live) process.stdout.write(indent(rest));
      resolve({ name, counts, code, signal, held: held + rest, times });
    });
  });
}

function faultLines(): string[] {
  if (!existsSync(faultLog)) return [];
  const byKind = new Map<string, { tried: number; survived: number }>();
  for (const l of readFileSync(faultLog, 'utf8').split('\n').filter(Boolean)) {
    const f = JSON.parse(l) as { kind: string; survived: boolean };
    const c = byKind.get(f.kind) ?? { tried: 0, survived: 0 };
    c.tried++;
    if (f.survived) c.survived++;
    byKind.set(f.kind, c);
  }
  const lines = ['# faults tried / survived:'];
  for (const [k, c] of byKind) lines.push(`#   ${k.padEnd(13)} ${c.tried} tried, ${c.survived} survived`);
  return lines;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => children.forEach((c) => c.kill(sig)));

process.stdout.write('TAP version 14\n');
process.stdout.write(`# Subtest: ${groups[0]!.name}\n`);
const started = Date.now();
const runs = groups.map((g, i) => runGroup(g.files, i === 0, g.name));
const done: Array<Stream & { held: string }> = [];
for (const [i, r] of runs.entries()) {
  const s = await r;
  if (i > 0) process.stdout.write(`# Subtest: ${s.name}\n${indent(s.held)}`);
  const ok = s.code === 0 && s.counts.failed === 0;
  process.stdout.write(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${s.name}\n`);
  done.push(s);
}
process.stdout.write(`1..${done.length}\n`);

const total = done.reduce(
  (a, s) => ({
    passed: a.passed + s.counts.passed,
    failed: a.failed + s.counts.failed,
    skipped: a.skipped + s.counts.skipped,
    skips: [...a.skips, ...s.counts.skips],
    failures: [...a.failures, ...s.counts.failures],
    fixed: [...a.fixed, ...s.counts.fixed.filter((f) => !a.fixed.includes(f))],
  }),
  { passed: 0, failed: 0, skipped: 0, skips: [] as string[], failures: [] as string[], fixed: [] as string[] },
);
const lines = ['', '# summary'];
for (const s of total.skips) lines.push(`# ${s}`);
for (const f of total.failures) lines.push(`# failed: ${f}`);
for (const f of total.fixed) lines.push(`# no longer reproduces: ${f}`);
lines.push(...faultLines());
lines.push('# seconds per test file, each stream (what BOOTING_COST deals by):');
for (const [i, s] of done.entries())
  for (const x of [...s.times].sort((a, b) => b.seconds - a.seconds))
    lines.push(`#   ${x.seconds.toFixed(0).padStart(4)}  ${i + 1}  ${x.file}`);
lines.push(
  `# ${done.length} stream${done.length > 1 ? 's' : ''} side by side, ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
process.stdout.write(lines.join('\n') + '\n');
process.stdout.write(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
const bad = done.find((s) => s.code !== 0 || s.signal);
const ok = !bad && total.failed === 0 && total.passed > 0;
process.exit(ok ? 0 : bad?.signal ? 1 : bad?.code || 1);
