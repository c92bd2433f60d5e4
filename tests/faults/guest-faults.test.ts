/**
 * Faults in the guest or its QEMU, through the real scenario runner and real QEMU: QEMU killed
 * mid-boot and mid-scenario, QEMU crashing (SIGSEGV, SIGABRT), a kernel panic, SSH dropped
 * mid-command, a guest that stops answering, a command and console that go silent. Each is
 * detected within a bounded time with evidence, the scenarios after it still run, and no QEMU
 * is left.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chooseAccel } from '../../vm/accel.js';
import { runScenarios } from '../../runner/scenario-runner.js';
import { bootL1, prepareL1 } from '../../runner/l1-guest.js';
import { bootFirstGuest, prepareFirstGuest } from '../../runner/first-guest.js';
import { BOOTS } from '../../scenarios/boots.js';
import type { ScenarioDefinition } from '../../scenarios/types.js';
import type { Guest } from '../../vm/guest.js';
import { is } from '../../core/results.js';
import { RigError } from '../../core/errors.js';
import { fault } from '../helpers/faults.js';
import { gone } from '../helpers/process.js';

const accel = chooseAccel();
const scale = accel.timeoutScale;
/** The silence bound of the guest-silent faults. */
const SILENCE_MS = 8000;

function qemuPids(match: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', match], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A scenario on the plain boot whose body injects one fault; the time from injection to the error is recorded. */
const timings = new Map<string, number>();
function faulty(
  id: string,
  // The pool's guests are QEMU's (vm/guest.ts Guest): a fault needs its pid, beyond the scenarios' handle.
  inject: (g: Guest) => Promise<void>,
): ScenarioDefinition {
  return {
    id,
    title: `fault: ${id}`,
    proves: `the runner reports ${id} as a failure with evidence and goes on`,
    needs: [],
    boots: ['plain'],
    measurements: ['booted'],
    async run(ctx) {
      const g = await ctx.boot('plain');
      ctx.measure('booted', true, { expect: is(true) });
      const t0 = Date.now();
      try {
        await inject(g as Guest);
      } finally {
        timings.set(id, (Date.now() - t0) / 1000);
      }
    },
  };
}

const healthy: ScenarioDefinition = {
  id: 'after-the-faults',
  title: 'a healthy scenario after every fault',
  proves: 'the scenarios after a fault still run',
  needs: [],
  boots: ['plain'],
  measurements: ['uname'],
  async run(ctx) {
    const g = await ctx.boot('plain');
    const r = await g.exec(['uname', '-r'], { check: true });
    ctx.measure('uname', r.stdout.trim(), { expect: is(r.stdout.trim()) });
  },
};

const defs = [
  faulty('qemu-killed', async (g) => {
    process.kill(g.pid!, 'SIGKILL');
    await g.exec(['sleep', '30']);
  }),
  healthy,
  // QEMU dying of its own fault (QEMU 7.2's edu device aborts on some accesses): a crash of the
  // emulator, said as such, not a kernel report and not "exited".
  faulty('qemu-segv', async (g) => {
    process.kill(g.pid!, 'SIGSEGV');
    await g.exec(['sleep', '30']);
  }),
  faulty('qemu-abort', async (g) => {
    process.kill(g.pid!, 'SIGABRT');
    await g.exec(['sleep', '30']);
  }),
  // A guest that reboots in the middle of a scenario: with -no-reboot QEMU exits 0.
  faulty('guest-reboot', async (g) => {
    await g.exec(['sh', '-c', '(sleep 1; reboot -f) > /dev/null 2>&1 &']);
    await g.exec(['sleep', '30']);
  }),
  faulty('kernel-panic', async (g) => {
    await g.exec(['sh', '-c', 'echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger']);
  }),
  faulty('ssh-dropped', async (g) => {
    // Kill the SSH server's session processes (children of the listening dropbear), this
    // command's own among them: the connection goes mid-command; the listener stays.
    await g.exec([
      'sh',
      '-c',
      'l=$(pgrep -o dropbear); for p in $(pgrep -P "$l" dropbear); do kill -9 "$p"; done; sleep 30',
    ]);
  }),
  faulty('guest-hang', async (g) => {
    await g.qmp!.execute('stop'); // every vCPU stops: the guest answers nothing
    await g.exec(['true'], { timeoutMs: 10_000 });
  }),
  // A command that stops in the middle with the guest alive (a task stuck in the kernel looks
  // the same from outside): console and command quiet past the bound, then the stacks, a task
  // dump and a bounded failure. The bound is the test's (the default is 30 s x the scale).
  faulty('guest-silent', async (g) => {
    await g.exec(['sh', '-c', 'echo started; exec sleep 600'], { silenceMs: SILENCE_MS });
  }),
  // The whole guest frozen (QMP stop) while a command runs: the dump gets no answer either.
  faulty('guest-silent-frozen', async (g) => {
    setTimeout(() => void g.qmp!.execute('stop').catch(() => undefined), 1000);
    await g.exec(['sh', '-c', 'echo started; exec sleep 601'], { silenceMs: SILENCE_MS });
  }),
  { ...healthy, id: 'after-the-faults-2' },
  consoleFlood(),
  traceMidScenario(),
];

/**
 * A guest that floods its serial console (1.5 MB, part of it with no newline at all) past the
 * bound this test sets (1 MiB): the guest still answers, the scenario passes, the log stops at
 * the bound, and the boot record says what was dropped.
 */
function consoleFlood(): ScenarioDefinition {
  return {
    id: 'console-flood',
    title: 'fault: a guest that floods its console',
    proves: 'a flood is bounded and said, and the guest is still used',
    needs: [],
    boots: ['plain'],
    measurements: ['answers'],
    async run(ctx) {
      const g = await ctx.boot('plain');
      const t0 = Date.now();
      await g.exec(
        [
          'sh',
          '-c',
          'i=0; while [ $i -lt 10000 ]; do echo "flood line $i of the console fault test"; i=$((i+1)); ' +
            'done > /dev/ttyS0; head -c 1000000 /dev/zero | tr "\\000" f > /dev/ttyS0',
        ],
        { check: true, timeoutMs: 600_000 },
      );
      timings.set('console-flood', (Date.now() - t0) / 1000);
      const r = await g.exec(['uname', '-r'], { check: true });
      ctx.measure('answers', r.code === 0, { expect: is(true) });
    },
  };
}

/**
 * A kernel report that is not a crash (sysrq t prints every task's Call Trace) in the middle of
 * a scenario: the scenario goes on measuring, and the judge fails it with the report's title.
 */
function traceMidScenario(): ScenarioDefinition {
  return {
    id: 'trace-mid-scenario',
    title: 'fault: a kernel trace in the middle of a scenario',
    proves: 'a report that is not a crash fails the scenario without hiding the measurements after it',
    needs: [],
    boots: ['plain'],
    measurements: ['before', 'after'],
    async run(ctx) {
      const g = await ctx.boot('plain');
      ctx.measure('before', true, { expect: is(true) });
      await g.exec(['sh', '-c', 'echo 1 > /proc/sys/kernel/sysrq; echo t > /proc/sysrq-trigger'], { check: true });
      await new Promise((r) => setTimeout(r, 3000)); // the report closes 1.5 s after its last line
      const r = await g.exec(['uname', '-r'], { check: true });
      ctx.measure('after', r.code === 0, { expect: is(true) });
    },
  };
}

const out = mkdtempSync(join(tmpdir(), 'rig-faults-'));
// The console's bound, small enough for the flood below to pass it (the default is 64 MiB).
process.env.DMEMFS_RIG_CONSOLE_MAX_MIB = '1';
const run = await runScenarios({ profile: 'rfc-v2-debian', accel, scenarios: defs, out });
const byId = new Map(run.scenarios.map((s) => [s.id, s]));

const expectFault = (id: string, reason: RegExp, boundS: number) =>
  fault(t, 'fault', id, async (st) => {
    const s = byId.get(id)!;
    st.equal(s.status, 'fail', `${id} is a failure of the scenario, not of the run`);
    st.match(s.reason ?? '', reason);
    st.ok(
      s.evidence.some((e) => e.label === 'error' || e.label === 'console tail'),
      'with evidence',
    );
    const secs = timings.get(id) ?? Infinity;
    st.ok(secs <= boundS, `detected ${secs.toFixed(1)} s after the fault (bound ${boundS} s)`);
  });

await expectFault('qemu-killed', /QEMU exited unexpectedly|qemu-exit/, 10);
await expectFault('qemu-segv', /QEMU crashed \(SIGSEGV\): a fault of the emulator/, 10);
await expectFault('qemu-abort', /QEMU crashed \(SIGABRT\): a fault of the emulator/, 10);
await expectFault('guest-reboot', /the guest rebooted or powered off \(QEMU exited 0\) without a kernel report/, 15);
await expectFault('kernel-panic', /panic|sysrq/i, 10);
await expectFault('ssh-dropped', /ssh-dropped|SSH connection/, 10);
await expectFault('guest-hang', /ssh-exec-timeout|did not finish/, 20);
// The bound, then the stacks over a second channel and the console's task dump; a frozen guest gets no dump.
await expectFault(
  'guest-silent',
  /^error \[guest-silent\]: \S+: no console output and no output from `sh -c 'echo started; exec sleep 600'` for \d+ s \(bound 8 s\); QEMU says the guest is running$/,
  8 + 10 + 12,
);
await expectFault(
  'guest-silent-frozen',
  /^error \[guest-silent\]: \S+: no console output and no output from `sh -c 'echo started; exec sleep 601'` for \d+ s \(bound 8 s\); QEMU says the guest is paused$/,
  1 + 8 + 5,
);

await fault(
  t,
  'fault',
  "a silent guest's evidence: the command's stack, and the task dump on the console",
  async (st) => {
    const s = byId.get('guest-silent')!;
    const err = s.evidence.find((e) => e.label === 'error')?.text ?? '';
    st.match(
      err,
      /== pid \d+ \(sleep, command\) State:\s+S \(sleeping\)\n\s*wchan \S+ syscall \d+/,
      'its process, found',
    );
    const stack =
      /the command's stack \(from the task dump\):\n([\s\S]*?)\n\s*its processes, and tasks/.exec(err)?.[1] ?? '';
    st.match(stack, /task:sleep\s+state:S\b[^\n]*\bpid:\s*\d+/, "the command's entry of the task dump");
    st.match(stack, /\bdo_nanosleep\b|\bhrtimer_nanosleep\b/, 'with its stack');
    st.match(err, /console since:[\s\S]*sysrq: Show State/, 'the task dump (sysrq t) on the console');
    const frozen = byId.get('guest-silent-frozen')!.evidence.find((e) => e.label === 'error')?.text ?? '';
    st.match(frozen, /no stacks: QEMU says the guest is paused/, 'stopped vCPUs: no dump waited for');
    const rec = run.boots.find((b) => b.scenario === 'guest-silent');
    st.ok((rec?.quietest?.seconds ?? 0) >= 8, `the boot record keeps the quiet span (${rec?.quietest?.seconds} s)`);
  },
);

await fault(
  t,
  'fault',
  'a kernel trace mid-scenario: measuring goes on, the verdict is a fail naming it',
  async (st) => {
    const s = byId.get('trace-mid-scenario')!;
    st.equal(s.measurements.after?.ok, true, 'the measurement after the trace was taken');
    st.equal(s.status, 'fail');
    st.match(s.reason ?? '', /^not met: kernel call-trace on \S+-plain: Call Trace:( \(x\d+\))?$/);
  },
);

await fault(t, 'fault', 'a console flood: bounded on disk and said, the guest still answers', async (st) => {
  const s = byId.get('console-flood')!;
  st.equal(s.status, 'pass', s.reason ?? '');
  // The scenario may reuse the plain boot of the one before it: the flooded boot is the one that says so.
  const flooded = run.boots.filter((b) => b.consoleFlood);
  st.equal(flooded.length, 1, 'one boot, the flooding one, says it');
  const rec = flooded[0]!;
  st.equal(rec.name, 'plain');
  st.match(rec.consoleFlood ?? '', /^console flooded: \d+ bytes dropped from the log \(after 1048576 bytes\)/);
  const log = join(out, rec.console ?? 'missing');
  st.ok(statSync(log).size < 1048576 + 4096, `${statSync(log).size} bytes kept of the flood`);
  st.comment(`flood written in ${timings.get('console-flood')?.toFixed(1)} s`);
});

await fault(t, 'fault', 'the scenarios after each fault still run', async (st) => {
  st.equal(byId.get('after-the-faults')?.status, 'pass');
  st.equal(byId.get('after-the-faults-2')?.status, 'pass');
  st.ok(run.boots.length >= 5, `${run.boots.length} boots: a fresh one after each failed scenario`);
});

await fault(t, 'fault', 'no QEMU left after the run', async (st) => {
  st.same(
    qemuPids(
      'faults-|qemu-killed-plain|qemu-segv-plain|qemu-abort-plain|guest-reboot-plain|kernel-panic-plain|' +
        'ssh-dropped-plain|' +
        'guest-hang-plain|guest-silent-plain|guest-silent-frozen-plain|after-the-faults',
    ),
    [],
  );
});

await fault(t, 'fault', 'QEMU killed mid-boot: the boot fails at once with the console, nothing left', async (st) => {
  const files = await prepareL1({ profile: 'rfc-v2-debian' });
  const name = `midboot-${process.pid}`;
  const started = Date.now();
  let killedAt = 0;
  const killer = setInterval(() => {
    const pids = qemuPids(name);
    if (pids.length && Date.now() - started > 1000) {
      for (const p of pids) process.kill(p, 'SIGKILL');
      killedAt = Date.now();
      clearInterval(killer);
    }
  }, 100);
  const req = BOOTS.plain;
  const err = await bootL1(files, accel, { nodeMiB: req.nodeMiB, role: req.role, append: req.append, name }).then(
    async (g) => {
      await g.stop();
      return undefined;
    },
    (e: unknown) => e,
  );
  clearInterval(killer);
  st.ok(err instanceof RigError, 'the boot failed');
  st.match((err as RigError).kind, /qemu-exit/);
  st.ok(
    killedAt > 0 && Date.now() - killedAt < 5000 * Math.min(scale, 2),
    `reported ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`,
  );
  st.ok(await gone(Number(qemuPids(name)[0] ?? 0) || 0x7fffffff, 1000));
  st.same(qemuPids(name), []);
});

await fault(
  t,
  'fault',
  'a boot that stalls (QEMU frozen mid-boot): found by console silence, booted once more, said',
  async (st) => {
    const files = await prepareFirstGuest();
    const frozen: number[] = [];
    const started = Date.now();
    // The first QEMU is frozen (SIGSTOP) two seconds in, as the rare TCG stall freezes a boot.
    const g = await bootFirstGuest(files, accel, {
      name: `stall-${process.pid}`,
      bootQuietMs: 5000,
      onSpawn: (pid) => {
        if (frozen.length === 0) {
          frozen.push(pid);
          setTimeout(() => process.kill(pid, 'SIGSTOP'), 2000);
        }
      },
    });
    try {
      const r = await g.exec(['uname', '-r'], { check: true });
      st.ok(r.stdout.trim(), 'the second boot answers');
      st.equal(g.restarts.length, 1, 'one restart, recorded');
      st.match(g.restarts[0], /^boot-stalled: \S+: the console has been silent for \d+ s before the SSH server/);
      st.match(g.restarts[0], /console: \S+\/console\.log\)$/, 'names the stalled console');
      st.ok(g.pid !== frozen[0], 'a new QEMU');
      st.ok(
        Date.now() - started < (5 + 2 + 3 + 2 * 20 * scale) * 1000,
        `within the quiet time, the kill and one boot (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    } finally {
      await g.stop();
    }
    st.ok(await gone(frozen[0]!, 5000), 'the frozen QEMU is gone');
  },
);

await fault(t, 'fault', 'a guest that resets mid-boot (QMP system_reset): booted once more, said', async (st) => {
  const files = await prepareFirstGuest();
  const reset: number[] = [];
  const g = await bootFirstGuest(files, accel, {
    name: `reset-${process.pid}`,
    onSpawn: (pid) => {
      if (!reset.length) reset.push(pid);
    },
    // The first boot is reset while its kernel boots (1 s after QMP is up under TCG, 0.15 s on
    // KVM), as nested SVM on TCG reset an inner guest; QEMU runs with -no-reboot, so it exits 0.
    onQmp: (qmp) => {
      if (reset.length !== 1) return;
      reset.push(0);
      setTimeout(() => void qmp.execute('system_reset').catch(() => undefined), scale > 1 ? 1000 : 150);
    },
  });
  try {
    const r = await g.exec(['uname', '-r'], { check: true });
    st.ok(r.stdout.trim(), 'the second boot answers');
    st.equal(g.restarts.length, 1, 'one restart, recorded');
    st.match(g.restarts[0], /^boot-reset: the guest reset during its boot, without a kernel report/);
    st.ok(g.pid !== reset[0], 'a new QEMU');
  } finally {
    await g.stop();
  }
  st.ok(await gone(reset[0]!, 5000), 'the reset QEMU is gone');
});
