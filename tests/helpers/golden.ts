/**
 * Golden files (tests/golden/): a text the rig writes, compared byte for byte with the one kept
 * in the repository. DMEMFS_RIG_UPDATE_GOLDEN=1 rewrites them (review the diff before committing);
 * a mismatch fails with the lines that differ.
 */
import type { Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { projectRoot } from '../../core/paths.js';

export const UPDATE_GOLDEN = process.env.DMEMFS_RIG_UPDATE_GOLDEN === '1';

export function goldenPath(name: string): string {
  return join(projectRoot(), 'tests', 'golden', name);
}

/** `actual` against tests/golden/<name>: one assertion, the diff in its message when they differ. */
export function matchGolden(t: Test, name: string, actual: string): void {
  const file = goldenPath(name);
  if (UPDATE_GOLDEN) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    t.pass(`${name}: written (DMEMFS_RIG_UPDATE_GOLDEN=1)`);
    return;
  }
  if (!existsSync(file)) {
    t.fail(`${name}: no golden file yet; DMEMFS_RIG_UPDATE_GOLDEN=1 npm run test:unit writes it`);
    return;
  }
  const want = readFileSync(file, 'utf8');
  if (want === actual) t.pass(`${name}: as its golden file`);
  else
    t.fail(`${name} differs from tests/golden/${name} (DMEMFS_RIG_UPDATE_GOLDEN=1 rewrites it)`, {
      diff: lineDiff(want, actual),
    });
}

/** The lines that differ, `-` kept / `+` written, numbered by the golden file's lines, 3 of context. */
export function lineDiff(a: string, b: string, context = 3): string {
  const x = a.split('\n');
  const y = b.split('\n');
  // Longest common subsequence table, from the end.
  const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--)
    for (let j = y.length - 1; j >= 0; j--)
      lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: Array<{ op: ' ' | '-' | '+'; line: string; at: number }> = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      ops.push({ op: ' ', line: x[i]!, at: i + 1 });
      i++;
      j++;
    } else if (j < y.length && (i >= x.length || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      ops.push({ op: '+', line: y[j]!, at: i });
      j++;
    } else {
      ops.push({ op: '-', line: x[i]!, at: i + 1 });
      i++;
    }
  }
  const near = (k: number) => ops.slice(Math.max(0, k - context), k + context + 1).some((o) => o.op !== ' ');
  const out: string[] = [];
  let gap = false;
  ops.forEach((o, k) => {
    if (!near(k)) {
      gap = true;
      return;
    }
    if (gap && out.length) out.push('...');
    gap = false;
    out.push(`${String(o.at).padStart(5)} ${o.op} ${o.line}`);
  });
  return out.join('\n');
}
