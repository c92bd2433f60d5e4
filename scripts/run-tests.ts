#!/usr/bin/env node
/**
 * `npm test`: runs the tap suite over the compiled tests (unit first, then integration) and
 * streams TAP to stdout. At the end it prints one closing line,
 * "N passed, N failed, N skipped", counted per assertion, and the reasons of the skipped ones
 * (a skipped measurement, a known failure of the series), so a skip is never mistaken for a
 * pass; known failures that no longer reproduce are listed too.
 *
 * Arguments select files by substring: `npm test -- unit`, `npm test -- panic`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from 'tap-parser';
import { tally } from './tap-tally.js';
import { projectRoot } from '../core/paths.js';

const root = projectRoot();
const filters = process.argv.slice(2);

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

const files = [...testFiles('unit'), ...testFiles('integration'), ...testFiles('faults')];
if (files.length === 0) {
  process.stderr.write(`no test files match ${filters.join(' ')}\n`);
  process.exit(1);
}

const parser = new Parser();
const counts = tally(parser);

// The fault suite records each fault it tried (tests/helpers/faults.ts): counted at the end.
const faultLog = join(mkdtempSync(join(tmpdir(), 'rig-faults-')), 'faults.jsonl');

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
tap.stdout.on('data', (d: Buffer) => {
  process.stdout.write(d);
  parser.write(d);
});
tap.on('exit', (code, signal) => {
  parser.end();
  const lines = ['', '# summary'];
  for (const s of counts.skips) lines.push(`# ${s}`);
  for (const f of counts.failures) lines.push(`# failed: ${f}`);
  for (const f of counts.fixed) lines.push(`# no longer reproduces: ${f}`);
  if (existsSync(faultLog)) {
    const byKind = new Map<string, { tried: number; survived: number }>();
    for (const l of readFileSync(faultLog, 'utf8').split('\n').filter(Boolean)) {
      const f = JSON.parse(l) as { kind: string; survived: boolean };
      const c = byKind.get(f.kind) ?? { tried: 0, survived: 0 };
      c.tried++;
      if (f.survived) c.survived++;
      byKind.set(f.kind, c);
    }
    lines.push('# faults tried / survived:');
    for (const [k, c] of byKind) lines.push(`#   ${k.padEnd(13)} ${c.tried} tried, ${c.survived} survived`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  process.stdout.write(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  const ok = code === 0 && counts.failed === 0 && counts.passed > 0;
  process.exit(ok ? 0 : signal ? 1 : code || 1);
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => tap.kill(sig));
