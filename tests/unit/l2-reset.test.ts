/** An L2 that reset before its kernel printed anything is booted once more; anything else is judged as it is. */
import t from 'tap';
import { resetBeforeItsKernel } from '../../scenarios/l2-steps.js';

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
