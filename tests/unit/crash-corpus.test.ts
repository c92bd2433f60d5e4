/**
 * The crash patterns against the corpus of tests/fixtures/crashes/: real consoles of a kernel
 * failing each named way (recorded by `dmemfs-rig record crashes`, runner/crash-corpus.ts), and
 * a few derived from a real one where this machine cannot make the failure (no PMU under TCG for
 * a hard lockup, no UBSAN in Debian's kernel), each saying what it was derived from. Each file is
 * headed by what the patterns must find: its TYPE and TITLE ("none" for a near miss) and whether
 * the kernel panicked. Offline parsing and the live watcher must agree.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import { findReports, SCENARIO_FATAL, type ReportKind } from '../../vm/crash-patterns.js';
import { ConsoleWatcher } from '../../vm/console-watch.js';
import { CRASH_CASES } from '../../runner/crash-corpus.js';

const dir = join(projectRoot(), 'tests', 'fixtures', 'crashes');
const corpus = readdirSync(dir)
  .filter((f) => f.endsWith('.log'))
  .map((file) => {
    const [head, ...rest] = readFileSync(join(dir, file), 'utf8').split('\n\n');
    const field = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(head!)?.[1];
    return {
      file,
      title: field('TITLE') ?? '',
      type: field('TYPE') ?? '',
      panicked: field('PANICKED') === 'yes',
      source: field('SOURCE'),
      derived: field('DERIVED'),
      lines: rest.join('\n\n').replace(/\n$/, '').split('\n'),
    };
  });
const strip = (title: string) => title.replace(/^\[\s*\d+\.\d+\]\s*/, '');

t.test('every file says where it came from; a derived one names the real file and what changed', async (t) => {
  t.ok(corpus.length >= 14, `${corpus.length} files`);
  for (const c of corpus) {
    t.ok(c.source, `${c.file}: SOURCE`);
    if (c.derived) {
      const from = /^from (\S+\.log): /.exec(c.derived)?.[1];
      t.ok(from && existsSync(join(dir, from)), `${c.file}: derived from ${from}, which is in the corpus`);
    }
  }
});

t.test('offline parsing finds what each header names, and nothing in a near miss', async (t) => {
  for (const c of corpus) {
    const r = findReports(c.lines);
    if (c.type === 'none') {
      t.same(r, [], `${c.file}: no report`);
      continue;
    }
    t.same([r[0]?.kind, strip(r[0]?.title ?? '')], [c.type, c.title], `${c.file}: ${c.type}`);
    t.equal(Boolean(r[0]?.panicked || r[0]?.kind === 'panic'), c.panicked, `${c.file}: panicked ${c.panicked}`);
  }
});

t.test('the live watcher, fed in odd chunks, agrees and is fatal where the kernel is dead', async (t) => {
  for (const c of corpus) {
    const w = new ConsoleWatcher({ settleMs: 20, fatal: SCENARIO_FATAL });
    const text = c.lines.join('\n') + '\n';
    for (let i = 0; i < text.length; i += 97) w.feed(text.slice(i, i + 97));
    w.end();
    if (c.type === 'none') {
      t.same(w.reports, [], `${c.file}: no report`);
      continue;
    }
    const r = w.reports[0]!;
    t.same([r.kind, strip(r.title)], [c.type, c.title], `${c.file}: live ${c.type}`);
    const dead = c.panicked || SCENARIO_FATAL.has(c.type as ReportKind);
    t.equal(r.fatal, dead, `${c.file}: ${dead ? 'stops the scenario' : 'recorded, the scenario goes on'}`);
  }
});

t.test('each kind the references catch has a file', async (t) => {
  const want: Array<[RegExp, ReportKind]> = [
    [/^divide error: /, 'exception'],
    [/^invalid opcode: /, 'exception'],
    [/^int3: /, 'exception'],
    [/^stack segment: /, 'exception'],
    [/stack guard page was hit/, 'bug'],
    [/soft lockup/, 'lockup'],
    [/hard LOCKUP/, 'lockup'],
    [/^UBSAN: /, 'sanitizer'],
    [/^NMI backtrace for cpu/, 'nmi-backtrace'],
    [/detected stall/, 'rcu-stall'],
    [/blocked for more than/, 'hung-task'],
    [/segfault at/, 'segfault'],
  ];
  for (const [title, kind] of want)
    t.ok(
      corpus.some((c) => c.type === kind && title.test(c.title)),
      `${kind} ${title}`,
    );
  t.ok(
    corpus.some((c) => c.panicked && c.type !== 'panic' && c.type !== 'exception'),
    'a report the kernel panicked inside keeps its own header as the title',
  );
  t.ok(
    corpus.some((c) => c.lines.some((l) => /\] stack guard page: 0000 \[#1\]/.test(l))),
    "the die() of a stack overflow (6.1; 5.10 says 'kernel stack overflow (double-fault)'), inside its report",
  );
  t.ok(
    corpus.some((c) => c.type === 'none' && c.lines.some((l) => /trap divide error/.test(l))),
    "a near miss: userspace traps are the kernel's notes, not reports",
  );
});

t.test('a panic after its report (oops=panic: after the end marker) is titled by that report', async (t) => {
  let seen = 0;
  for (const c of corpus.filter((x) => x.type !== 'none')) {
    const r = findReports(c.lines);
    const panic = r.find((x) => x.kind === 'panic' && /not syncing: Fatal exception/.test(x.title));
    if (!panic) continue;
    seen++;
    t.equal(
      strip(panic.title),
      `${strip(r[0]!.title)} (then: ${/Kernel panic - not syncing: Fatal exception( in interrupt)?/.exec(panic.title)?.[0]})`,
      `${c.file}: the panic names ${r[0]!.kind}`,
    );
  }
  t.ok(seen >= 4, `${seen} files where the kernel panicked after an Oops`);
});

t.test("a recorded file's kind is the one its case declares, apart from what the patterns found", async (t) => {
  for (const c of CRASH_CASES) {
    const f = corpus.find((x) => x.file === `${c.file}.log`);
    t.ok(f, `${c.file}.log is recorded`);
    t.equal(f?.type, c.nearMiss ? 'none' : c.kind, `${c.file}: ${c.kind ?? 'a near miss'}`);
  }
});
