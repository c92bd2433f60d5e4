/**
 * The device-dax comparison column, measured the way dmemfs-files measures dmemfs:
 * `memmap=1G!4G` as a devdax namespace, mapped through /dev/dax0.0.
 */
import { COLUMN_MEASURES, DEVICE_HAS_NO_POOL, measureColumns, modeChecks } from '../steps.js';
import { defineScenario, family } from '../types.js';
import { MODES } from './alternatives.js';
import { DEVDAX_PREPARE } from './l2-alternatives.js';

export const alternativesDevdax = defineScenario({
  id: 'alternatives-devdax',
  title: 'the same mapping on device-dax (memmap=1G!4G as a devdax namespace)',
  proves: `the device-dax column: faults for 256 MiB, the page size in smaps and intact data through
    /dev/dax0.0 at its 2 MiB alignment, and the device node's mode deciding whether an
    unprivileged user may map it.`,
  needs: ['fs-dax'],
  boots: ['alternatives'],
  measurements: [...family(['devdax'], COLUMN_MEASURES), ...family(['devdax'], MODES)],
  async run(ctx) {
    const g = await ctx.boot('alternatives');
    await measureColumns(ctx, g, [
      {
        col: 'devdax',
        argv: ['--file', '/dev/dax0.0', '--align', '2M'],
        size: 256 << 20,
        page: 2 << 20,
        prepare: DEVDAX_PREPARE,
        noFreeCounter: DEVICE_HAS_NO_POOL,
      },
    ]);
    // The device node's mode decides who maps it (one device: 0600 first, then 0666, back to 0600).
    const files = { private: '/dev/dax0.0', shared: '/dev/dax0.0', restoreMode: '600' };
    await modeChecks(ctx, g, 'devdax', files, ['--size', '2M', '--align', '2M']);
  },
});
