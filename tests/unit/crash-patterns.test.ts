/** Kernel report recognition against real console logs (tests/fixtures/consoles/). */
import t from 'tap';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findReports, matchTrigger, panicTitle, splitTimestamp } from '../../vm/crash-patterns.js';
import { ConsoleWatcher } from '../../vm/console-watch.js';
import { projectRoot } from '../../core/paths.js';

// Real console logs captured from the rig's own guests (Debian 6.1 kernel under QEMU TCG).
const fixture = (name: string) =>
  readFileSync(join(projectRoot(), 'tests', 'fixtures', 'consoles', name), 'utf8').split('\n');

t.test('a clean boot has no reports', async (t) => {
  t.same(findReports(fixture('debian-6.1-clean-boot.log')), []);
});

t.test('sysrq panic is found, with its trace in the excerpt', async (t) => {
  const r = findReports(fixture('debian-6.1-sysrq-panic.log'));
  t.equal(r.length, 1);
  t.equal(r[0]!.kind, 'panic');
  t.match(r[0]!.title, /Kernel panic - not syncing: sysrq triggered crash/);
  t.ok(
    r[0]!.excerpt.some((l) => /Call Trace:/.test(l)),
    'call trace is part of the panic report',
  );
  t.ok(r[0]!.excerpt.some((l) => /sysrq_handle_crash/.test(l)));
});

t.test('topology WARNING is one report closed by its end marker', async (t) => {
  const r = findReports(fixture('debian-6.1-topology-warning.log'));
  t.equal(r.length, 1);
  t.equal(r[0]!.kind, 'warning');
  t.match(r[0]!.title, /topology_sane/);
  t.match(r[0]!.excerpt.at(-1)!, /end trace/);
});

t.test('trigger lines of each kind', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['[   12.3] BUG: kernel NULL pointer dereference, address: 0000000000000008', 'bug'],
    ['[ 1.0] kernel BUG at mm/dmem.c:123!', 'bug'],
    ['[ 1.0] Oops: 0002 [#1] PREEMPT SMP NOPTI', 'oops'],
    ['[ 1.0] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP', 'gpf'],
    ['[ 1.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:', 'rcu-stall'],
    ['[ 1.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.', 'hung-task'],
    ['[ 1.0] Call Trace:', 'call-trace'],
    ['[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [qemu:123]', 'lockup'],
    ['[ 1.0] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1', 'lockup'],
    ['[ 1.0] divide error: 0000 [#1] SMP NOPTI', 'exception'],
    ['[ 1.0] kernel stack overflow (double-fault): 0000 [#1] SMP', 'exception'],
    ['[ 1.0] stack guard page: 0000 [#1] PREEMPT SMP NOPTI', 'exception'],
    ['[ 1.0] UBSAN: shift-out-of-bounds in mm/dmem.c:10:3', 'sanitizer'],
    ['[ 1.0] NMI backtrace for cpu 0', 'nmi-backtrace'],
    ['[ 1.0] map-and-touch[212]: segfault at 0 ip 0000000000401136 sp 00007ffd2b3c7e50 error 6', 'segfault'],
    // Near misses: a userspace trap is one line of the kernel's, not a kernel report.
    ['[ 1.0] traps: rig-segv[99] trap divide error ip:401136 sp:7ffd2b3c7e50 error:0 in rig-segv', undefined],
    ['[ 1.0] traps: rig-segv[99] trap invalid opcode ip:401136 sp:7ffd2b3c7e50 error:0 in rig-segv', undefined],
    ['[ 1.0] NMI watchdog: Perf NMI watchdog permanently disabled', undefined],
    ['[ 1.0] dmem: register region [0x1b8000000 - 0x1f8000000] on node 1.', undefined],
    ['[ 1.0] Memory failure: 0x1b8000: recovery action for dmem page: Recovered', undefined],
    ['[ 1.0] debug: unmapping init [mem 0xffffffff82a00000-0xffffffff82bfffff]', undefined],
  ];
  for (const [line, kind] of cases) t.equal(matchTrigger(line)?.kind, kind, line);
  t.same(splitTimestamp('[    2.776390] Kernel panic'), { ts: 2.77639, text: 'Kernel panic' });
  t.same(splitTimestamp('rig-init: ready'), { ts: undefined, text: 'rig-init: ready' });
});

t.test('live watcher: fires once per report, at the end marker, with allowances', async (t) => {
  const lines = fixture('debian-6.1-topology-warning.log');
  const w = new ConsoleWatcher({ settleMs: 50 });
  const crashes: string[] = [];
  w.on('crash', (r) => crashes.push(r.kind));
  // Feed in odd-sized chunks, as a pipe would.
  const text = lines.join('\n') + '\n';
  for (let i = 0; i < text.length; i += 333) w.feed(text.slice(i, i + 333));
  t.same(crashes, ['warning'], 'announced as soon as the end marker arrived');
  w.end();
  t.equal(w.reports.length, 1);

  const allowed = new ConsoleWatcher({ settleMs: 50, allow: [/topology_sane/] });
  let fired = 0;
  allowed.on('crash', () => fired++);
  allowed.feed(text);
  allowed.end();
  t.equal(fired, 0, 'an allowed report is recorded, not fatal');
  t.equal(allowed.reports[0]!.fatal, false);
});

t.test('live watcher: panic without end marker is announced after the settle time', async (t) => {
  const w = new ConsoleWatcher({ settleMs: 100 });
  const got = new Promise<number>((resolve) => {
    const start = Date.now();
    w.on('crash', () => resolve(Date.now() - start));
  });
  w.feed(fixture('debian-6.1-sysrq-panic.log').join('\n') + '\n');
  const ms = await got;
  t.ok(ms < 1000, `announced after ${ms} ms`);
  t.equal(w.firstCrash()!.kind, 'panic');
  const line = await w.waitForLine(/Run \/init as init process/, 10);
  t.equal(line.ts, 2.007608, 'printk timestamp is parsed');
  w.end();
});

t.test('live watcher: a report that follows another at once is its own, as offline', async (t) => {
  // Seen on the debug kernel: a lockdep WARNING 1.3 s after a sleeping-in-atomic BUG, inside
  // its settle time; read as one, its Call Trace became a bare report after the 80-line cap.
  const body = (f: string) =>
    readFileSync(join(projectRoot(), 'tests', 'fixtures', 'reports', f), 'utf8')
      .split('\n\n')
      .slice(1)
      .join('\n\n');
  const text = `${body('debug-dmemfs-alloc-inode-sleeping.log')}\n${body('debug-dmemfs-xa-store-irq-unsafe.log')}\n`;
  const w = new ConsoleWatcher({ settleMs: 60_000 });
  w.feed(text);
  w.end();
  const live = w.reports.map((r) => [r.kind, r.title]);
  t.same(live, [
    ['sanitizer', 'BUG: sleeping function called from invalid context at ../src/mm/slab.h:513'],
    ['warning', 'WARNING: inconsistent lock state'],
  ]);
  t.same(
    findReports(text.split('\n')).map((r) => [r.kind, r.title]),
    live,
    'the offline parser agrees',
  );
  t.notMatch(
    w.reports[0]!.excerpt.join('\n'),
    /inconsistent lock state/,
    "the first excerpt ends before the second's header",
  );
  t.match(
    w.reports[1]!.excerpt.join('\n'),
    /xa_store\+[\s\S]*radix_get_create_entry\+/,
    'the second has its own trace',
  );
});

t.test('live watcher: a WARNING whose console stalls mid-trace waits for its end marker', async (t) => {
  // A busy TCG guest can pause its console for longer than the settle time in the middle of a
  // report; a WARNING (after "[ cut here ]") must still keep its Call Trace, up to its end marker.
  // The lines are the 1G racing-fault WARNING of a real run (2026-12-03).
  const head = [
    '[   20.653390] ------------[ cut here ]------------',
    '[   20.653989] WARNING: CPU: 1 PID: 451 at ../src/mm/huge_memory.c:887 vmf_insert_pfn_pud_prot+0x1ad/0x220',
    '[   20.656111] RIP: 0010:vmf_insert_pfn_pud_prot+0x1ad/0x220',
  ];
  const tail = [
    '[   20.661312] Call Trace:',
    '[   20.664808]  dmemfs_huge_fault+0x236/0x2e0',
    '[   20.669407] ---[ end trace b1ce3a324fa083dc ]---',
  ];
  const w = new ConsoleWatcher({ settleMs: 100 });
  w.feed(head.join('\n') + '\n');
  await new Promise((r) => setTimeout(r, 300)); // three settle times: a report without its marker would close
  t.equal(w.reports.length, 0, 'still open while its end marker has not come');
  t.equal(w.reading, true);
  w.feed(tail.join('\n') + '\n');
  await w.settled();
  t.equal(w.reports.length, 1);
  t.match(w.reports[0]!.excerpt.join('\n'), /dmemfs_huge_fault/, 'the Call Trace is in the excerpt');

  // Without "[ cut here ]" (a lockdep or sleeping-in-atomic report has no end marker) the settle time closes it.
  const plain = new ConsoleWatcher({ settleMs: 100 });
  plain.feed('[    5.0] BUG: sleeping function called from invalid context at mm/slab.h:497\n');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(plain.reports.length, 1, 'closed after its settle time');
  plain.end();
  w.end();
});

t.test('a panic right after a report keeps that report as its title; an unrelated panic does not', async (t) => {
  const warn = { title: 'WARNING: CPU: 0 PID: 1 at mm/dmem.c:10 dmem_alloc+0x1/0x2', endLine: 100 };
  t.equal(
    panicTitle('Kernel panic - not syncing: panic_on_warn set ...', warn, 101),
    `${warn.title} (then: Kernel panic - not syncing: panic_on_warn set ...)`,
  );
  t.equal(
    panicTitle('Kernel panic - not syncing: Fatal exception', warn, 100 + 41),
    'Kernel panic - not syncing: Fatal exception',
    'more than 40 lines later: its own',
  );
  t.equal(
    panicTitle('Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)', warn, 101),
    'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
    'a panic with a cause of its own keeps its own title',
  );
  t.equal(
    panicTitle('Kernel panic - not syncing: Fatal exception', undefined, 3),
    'Kernel panic - not syncing: Fatal exception',
  );
  const lines = [
    '[ 1.0] ------------[ cut here ]------------',
    '[ 1.0] WARNING: CPU: 0 PID: 1 at mm/dmem.c:10 dmem_alloc+0x1/0x2',
    '[ 1.0] Call Trace:',
    '[ 1.0] ---[ end trace 0123456789abcdef ]---',
    '[ 1.0] Kernel panic - not syncing: panic_on_warn set ...',
  ];
  const r = findReports(lines);
  t.same(
    r.map((x) => [x.kind, x.title.replace(/^\[ 1\.0\] /, '')]),
    [
      ['warning', 'WARNING: CPU: 0 PID: 1 at mm/dmem.c:10 dmem_alloc+0x1/0x2'],
      [
        'panic',
        'WARNING: CPU: 0 PID: 1 at mm/dmem.c:10 dmem_alloc+0x1/0x2 ' +
          '(then: Kernel panic - not syncing: panic_on_warn set ...)',
      ],
    ],
  );
  const w = new ConsoleWatcher({ settleMs: 10 });
  w.feed(lines.join('\n') + '\n');
  w.end();
  t.same(
    w.reports.map((x) => x.title),
    r.map((x) => x.title),
    'the live watcher names it the same',
  );
});

t.test('a console flood is bounded: lines in memory, bytes on disk, reports kept whole, said', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rig-flood-'));
  const log = join(dir, 'console.log');
  const w = new ConsoleWatcher({ settleMs: 10, maxLines: 1000, maxLogBytes: 200_000, logPath: log });
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = Date.now();
  const line = (i: number) => `[ ${i}.000000] flood ${'x'.repeat(60)} ${i}\n`;
  let text = '';
  for (let i = 0; i < 60_000; i++) {
    text += line(i);
    if (i === 30_000)
      text +=
        '[ 1.0] ------------[ cut here ]------------\n[ 1.0] WARNING: CPU: 0 PID: 1 at mm/dmem.c:10 x+0x1/0x2\n' +
        '[ 1.0] Call Trace:\n[ 1.0]  dmem_alloc_init+0x10/0x20\n[ 1.0] ---[ end trace 0123456789abcdef ]---\n';
    if (text.length > 65536) {
      w.feed(text);
      text = '';
    }
  }
  w.feed(text);
  w.end();
  await new Promise((r) => setTimeout(r, 100));
  t.ok(w.lines.length <= 1000 + 100, `${w.lines.length} lines kept in memory`);
  t.equal(w.lineCount, 60_005, 'every line counted, with its whole-boot index');
  t.equal(w.lines.at(-1)!.index, 60_004);
  t.equal(w.reports.length, 1, 'the report in the middle of the flood found');
  t.match(w.reports[0]!.excerpt.join('\n'), /cut here[\s\S]*WARNING[\s\S]*dmem_alloc_init[\s\S]*end trace/, 'whole');
  const size = statSync(log).size;
  t.ok(size < 200_000 + 300, `${size} bytes on disk (the bound, and the note)`);
  t.match(readFileSync(log, 'utf8').slice(-300), /\[dmemfs-rig\] console flooded: \d+ bytes dropped from the log/);
  t.match(w.floodNote() ?? '', /^console flooded: \d+ bytes dropped from the log \(after 200000 bytes\)/);
  t.ok(process.memoryUsage().heapUsed - heap0 < 64 << 20, 'memory stays bounded');
  t.ok(Date.now() - t0 < 10_000, `${Date.now() - t0} ms for 4 MiB of console`);
  const quiet = new ConsoleWatcher({ settleMs: 10 });
  quiet.feed('[ 1.0] a line\n');
  quiet.end();
  t.equal(quiet.floodNote(), undefined, 'no note for a console within its bounds');
});
