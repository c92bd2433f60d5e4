import { RigError } from '../../core/errors.js';
import { BAD_DMEM_VALUES } from '../boots.js';
import { parseDmemParam } from '../dmem-param.js';
import { dmemRegions, logMatches } from '../probes.js';
import type { ScenarioDefinition } from '../types.js';

export const badValues: ScenarioDefinition = {
  id: 'reservation-bad-values',
  title: 'bad dmem= values are rejected by the rig before booting and by the kernel with its message',
  proves:
    'misaligned size, "!" with @addr, addr 0 and garbage never reserve memory: the rig refuses them up front; forced past the rig, the kernel prints its dmem:/early-option warning and reserves nothing.',
  needs: ['patched-kernel'],
  boots: ['bad-values'],
  async run(ctx) {
    let rigRejected = 0;
    for (const b of BAD_DMEM_VALUES) {
      try {
        parseDmemParam(b.value);
      } catch (e) {
        if (e instanceof RigError && e.kind === 'bad-dmem') {
          rigRejected++;
          ctx.evidence(`rig: dmem=${b.value}`, e.describe());
        }
      }
    }
    ctx.measure('rig_rejected', rigRejected, `of ${BAD_DMEM_VALUES.length}`, {
      op: 'eq',
      value: BAD_DMEM_VALUES.length,
    });
    // Forced past the rig's check: all four on one command line (the kernel parses each).
    const g = await ctx.boot('bad-values');
    let kernelRejected = 0;
    for (const b of BAD_DMEM_VALUES) {
      const lines = await logMatches(g, b.kernelSays);
      if (lines.length) kernelRejected++;
      ctx.evidence(`kernel: dmem=${b.value}`, lines.join('\n') || '(no message)');
    }
    ctx.measure('kernel_rejected_with_message', kernelRejected, `of ${BAD_DMEM_VALUES.length}`, {
      op: 'eq',
      value: BAD_DMEM_VALUES.length,
    });
    ctx.measure('regions_registered', (await dmemRegions(g)).length, 'regions', { op: 'eq', value: 0 });
  },
};
