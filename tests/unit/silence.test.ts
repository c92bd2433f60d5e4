/**
 * The silence watchdog's parts (vm/guest.ts): the bound for each accelerator and from
 * DMEMFS_RIG_SILENCE_S, and the watch that fires when a command and the console are both quiet.
 * The real watchdog, on a real guest, is in tests/faults/guest-faults.test.ts.
 */
import t from 'tap';
import { commandStacks, SILENCE_BASE_MS, SilenceWatch, silenceMsFor } from '../../vm/guest.js';
import { TCG_TIMEOUT_SCALE } from '../../vm/accel.js';

t.test('the bound: 30 s scaled like the other timeouts, below the command timeout', async (t) => {
  t.equal(SILENCE_BASE_MS, 30_000);
  t.equal(silenceMsFor({ timeoutScale: 1 }, undefined), 30_000, 'KVM');
  t.equal(silenceMsFor({ timeoutScale: TCG_TIMEOUT_SCALE }, undefined), 30_000 * TCG_TIMEOUT_SCALE, 'TCG');
  t.equal(silenceMsFor({ timeoutScale: 3 }, ''), 90_000, 'nested KVM on TCG; an empty variable is unset');
  // The default command timeout is 60 s x the scale: the watchdog fires at half of it.
  for (const scale of [1, 3, TCG_TIMEOUT_SCALE])
    t.ok(silenceMsFor({ timeoutScale: scale }, undefined)! < 60_000 * scale);
  t.equal(silenceMsFor({ timeoutScale: 6 }, '12'), 12_000, 'DMEMFS_RIG_SILENCE_S is taken as is, not scaled');
  t.equal(silenceMsFor({ timeoutScale: 6 }, '0'), undefined, '0 turns it off');
  for (const bad of ['-1', 'soon', 'NaN'])
    t.throws(
      () => silenceMsFor({ timeoutScale: 1 }, bad),
      { kind: 'usage', message: `DMEMFS_RIG_SILENCE_S=${bad} is not a number of seconds` },
      bad,
    );
});

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('fires once when the command and the console are both quiet for the bound', async (t) => {
  const console = { lastOutputAt: 0 };
  const w = new SilenceWatch(300, console);
  let fired = 0;
  const t0 = Date.now();
  w.onSilent = () => fired++;
  await wait(700);
  t.equal(fired, 1, 'fired, and only once');
  const at = w.longest;
  t.ok(at >= 300 && at < 600, `after about the bound (${at} ms quiet)`);
  t.ok(Date.now() - t0 >= 300);
  w.stop();
});

t.test('output of the command keeps it from firing', async (t) => {
  const w = new SilenceWatch(300, { lastOutputAt: 0 });
  let fired = 0;
  w.onSilent = () => fired++;
  const timer = setInterval(() => w.output(), 100);
  await wait(900);
  clearInterval(timer);
  t.equal(fired, 0);
  t.ok(w.longest < 300, `longest quiet span ${w.longest} ms`);
  w.stop();
});

t.test('console output keeps it from firing; a quiet console then lets it fire', async (t) => {
  const console = { lastOutputAt: Date.now() };
  const w = new SilenceWatch(300, console);
  let fired = 0;
  w.onSilent = () => fired++;
  const timer = setInterval(() => (console.lastOutputAt = Date.now()), 100);
  await wait(900);
  t.equal(fired, 0, 'the console spoke every 100 ms');
  clearInterval(timer);
  await wait(600);
  t.equal(fired, 1, 'then it fired');
  w.stop();
});

t.test('without a bound it only measures; stop ends it', async (t) => {
  const w = new SilenceWatch(undefined, { lastOutputAt: 0 });
  let fired = 0;
  w.onSilent = () => fired++;
  await wait(1200);
  t.equal(fired, 0);
  t.ok(w.longest >= 900, `measured ${w.longest} ms`);
  w.stop();
  const w2 = new SilenceWatch(200, { lastOutputAt: 0 });
  w2.onSilent = () => fired++;
  w2.stop();
  await wait(500);
  t.equal(fired, 0, 'a stopped watch never fires');
});

t.test("the command's stack is taken from the task dump for the pids the dump script named", async (t) => {
  const dump = [
    '== pid 83 (sh, command) State:\tS (sleeping)',
    'wchan do_wait syscall 61',
    '== pid 84 (sleep, command) State:\tS (sleeping)',
    'wchan hrtimer_nanosleep syscall 230',
    '== pid 12 (kworker, D-state) State:\tD (disk sleep)',
  ].join('\n');
  const console = [
    '[   11.37] sysrq: Show State',
    '[   11.40] task:sh              state:S stack:    0 pid:   83 ppid:    80 flags:0x00000000',
    '[   11.41] Call Trace:',
    '[   11.42]  do_wait+0x1c0/0x230',
    '[   11.43] task:sleep           state:S stack:    0 pid:   84 ppid:    83 flags:0x00000000',
    '[   11.44] Call Trace:',
    '[   11.45]  do_nanosleep+0x71/0x140',
    '[   11.46] task:kworker/0:1     state:D stack:    0 pid:   12 ppid:     2 flags:0x00004000',
    '[   11.47]  io_schedule+0x12/0x40',
    '[   11.48] task:init            state:S stack:    0 pid:  184 ppid:     1 flags:0x00000000',
  ];
  const got = commandStacks(dump, console).split('\n');
  t.same(got, console.slice(1, 7), "the command's two processes, each to the next task, nothing else");
  t.equal(commandStacks('== pid 999 (x, command) State: S', console), '', 'a pid not in the dump: nothing');
  t.equal(commandStacks(dump, []), '', 'no task dump: nothing');
  // pid 8 must not take pid 84's entry.
  t.equal(commandStacks('== pid 8 (x, command) State: S', console), '');
});
