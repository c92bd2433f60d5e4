/**
 * Stalls worth one more attempt, and nothing else: an L1 boot whose console went silent before
 * SSH, an L2 that reset before its kernel printed, an L2 whose console went silent before its
 * report. Anything else is judged as it is.
 */
import t from 'tap';
import { l2RetryReason, resetBeforeItsKernel } from '../../scenarios/l2-steps.js';
import { BOOT_QUIET_MS, bootQuiet } from '../../vm/guest.js';

t.test('only a silent reset (QEMU -no-reboot exit 0, no console line) counts', async (t) => {
  // The real console of the reset seen in a full run: nothing but the exit line, after 2 s.
  t.ok(resetBeforeItsKernel({ done: false, seconds: 2, console: 'rig-l2-exit: 0\n' }));
  t.notOk(
    resetBeforeItsKernel({ done: false, seconds: 40, console: '[    0.000000] Linux version 6.1\nrig-l2-exit: 0\n' }),
    'a kernel that printed and then ended is a failure to judge, not a reset to retry',
  );
  t.notOk(resetBeforeItsKernel({ done: false, seconds: 1, console: 'qemu: cannot map\nrig-l2-exit: 1\n' }));
  t.notOk(resetBeforeItsKernel({ done: true, seconds: 25, console: 'rig-l2: done\nrig-l2-exit: 0\n' }));
});

t.test('an L2 is retried for a reset before its kernel or a silent console, never once it reported', async (t) => {
  t.equal(
    l2RetryReason({ done: false, seconds: 2, console: 'rig-l2-exit: 0\n' }),
    'the first L2 reset before its kernel printed anything',
  );
  t.equal(
    l2RetryReason({ done: false, seconds: 95, console: '[    1.1] pnp: PnP ACPI init\n', stalledS: 90 }),
    "the first L2's console was silent for 90 s before its report",
  );
  t.equal(
    l2RetryReason({ done: true, seconds: 100, console: 'rig-l2: done\n', stalledS: 90 }),
    undefined,
    'an L2 that reported and then hung on power-off is judged on its report',
  );
  t.equal(
    l2RetryReason({ done: false, seconds: 30, console: '[    2.0] Kernel panic\nrig-l2-exit: 0\n' }),
    undefined,
    'an L2 that printed and ended is judged',
  );
});

t.test('an L1 boot is stalled after BOOT_QUIET_MS of console silence before its SSH server', async (t) => {
  const at = 1_000_000;
  const line = (raw: string, ms: number) => ({ raw, at: at + ms });
  const lines = [line('[    1.0] VFS: Disk quotas dquot_6.6.0', 1000), line('[    1.1] VFS: Dquot-cache', 1100)];
  t.equal(bootQuiet(lines, at, at + 1100 + BOOT_QUIET_MS - 1), undefined, 'not yet');
  t.equal(bootQuiet(lines, at, at + 1100 + BOOT_QUIET_MS), BOOT_QUIET_MS, 'silent for the quiet time');
  t.equal(bootQuiet([], at, at + BOOT_QUIET_MS), BOOT_QUIET_MS, 'a console that never printed counts from the spawn');
  t.equal(bootQuiet([], at, at + 5000, 5000), 5000, "the quiet time is the caller's");
  t.equal(
    bootQuiet([...lines, line('rig-init: sshd started', 2000)], at, at + 10 * BOOT_QUIET_MS),
    undefined,
    'after the SSH server started, a login stall is judged by its own rule',
  );
  t.ok(BOOT_QUIET_MS >= 20 * 2200, 'far above the longest gap of a normal boot (2.2 s)');
});
