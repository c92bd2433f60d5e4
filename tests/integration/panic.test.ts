/**
 * A guest kernel panic is detected from the console at once (not by a timeout) and reported
 * with the console excerpt; QEMU is gone afterwards.
 */
import t from 'tap';
import { chooseAccel } from '../../vm/accel.js';
import { bootFirstGuest, prepareFirstGuest } from '../../runner/first-guest.js';
import { RigError } from '../../core/errors.js';
import { gone } from '../helpers/process.js';

t.test('panic through sysrq-trigger is reported within seconds, with the excerpt', async (t) => {
  const accel = chooseAccel();
  const files = await prepareFirstGuest();
  const g = await bootFirstGuest(files, accel, { name: 'it-panic' });
  t.teardown(() => g.stop());
  const pid = g.pid!;
  const started = Date.now();
  let err: unknown;
  try {
    // The command itself would wait 60 s x scale; the console must end it much sooner.
    await g.exec(['sh', '-c', 'echo c > /proc/sysrq-trigger; sleep 600']);
  } catch (e) {
    err = e;
  }
  const secs = (Date.now() - started) / 1000;
  t.ok(err instanceof RigError, 'the command failed with a RigError');
  const re = err as RigError;
  t.equal(re.kind, 'kernel-panic', `reported as a kernel panic (${re.kind})`);
  t.match(re.message, /sysrq triggered crash/);
  t.match(re.evidence ?? '', /Call Trace:/, 'the excerpt holds the call trace');
  t.match(re.evidence ?? '', /sysrq_handle_crash/);
  t.ok(secs < 10, `reported ${secs.toFixed(1)} s after the trigger (limit 10 s)`);
  t.comment(`panic reported after ${secs.toFixed(2)} s`);
  t.ok(await gone(pid, 5000), 'QEMU is gone');
});
