/**
 * The closing counts of `npm test`, read from the TAP stream: every leaf assertion at any depth
 * is counted once (a subtest's own summary line is not, unless it failed with no failing
 * assertion inside, as a crash or a timeout does). A TODO (a known failure of the series) or a
 * SKIP (a measurement or test this machine cannot take) counts as skipped and is listed with its
 * reason; "no longer reproduces" comments are collected.
 */
import { Parser } from 'tap-parser';

export interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  skips: string[];
  failures: string[];
  fixed: string[];
}

interface Assert {
  ok: boolean;
  name: string;
  skip?: string | boolean;
  todo?: string | boolean;
}

/** Per parser: its leaf asserts (and failed leaves), so a parent knows what its summary line stands for. */
interface Leaves {
  count: number;
  failed: number;
}

const reasonOf = (a: Assert) => (typeof a.skip === 'string' ? a.skip : typeof a.todo === 'string' ? a.todo : '');

export function tally(root: Parser): Tally {
  const t: Tally = { passed: 0, failed: 0, skipped: 0, skips: [], failures: [], fixed: [] };
  const count = (a: Assert, where: string) => {
    if (a.skip || a.todo) {
      t.skipped++;
      t.skips.push(`${a.todo ? 'known failure' : 'skipped'}: ${where}${a.name}: ${reasonOf(a)}`);
    } else if (a.ok) t.passed++;
    else {
      t.failed++;
      t.failures.push(`${where}${a.name}`);
    }
  };
  const watch = (p: Parser, where: string, mine: Leaves) => {
    const children: Array<{ name: string; leaves: Leaves }> = [];
    p.on('child', (c: Parser) => {
      const leaves = { count: 0, failed: 0 };
      children.push({ name: c.name, leaves });
      watch(c, p === root ? `${c.name}: ` : where, leaves);
    });
    p.on('comment', (c: string) => {
      const m = /no longer reproduces: (.*)$/.exec(c.trim());
      if (m && !t.fixed.includes(m[1]!)) t.fixed.push(m[1]!);
    });
    p.on('assert', (a: Assert) => {
      const i = children.findIndex((c) => c.name === a.name);
      const child = i >= 0 ? children.splice(i, 1)[0] : undefined;
      mine.count += child ? child.leaves.count : 1;
      if (child && child.leaves.count > 0) {
        mine.failed += child.leaves.failed;
        // A subtest that failed with every assertion inside passing: it crashed or timed out.
        if (!a.ok && !a.todo && child.leaves.failed === 0) {
          mine.failed++;
          count(a, where);
        }
        return;
      }
      if (!a.ok && !a.skip && !a.todo) mine.failed++;
      count(a, where);
    });
  };
  watch(root, '', { count: 0, failed: 0 });
  return t;
}
