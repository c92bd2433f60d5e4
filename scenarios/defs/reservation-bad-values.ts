/**
 * reservation-bad-values: bad dmem= values are refused by the rig before booting, and forced
 * past the rig, by the kernel with its message, reserving nothing.
 */
import { RigError } from '../../core/errors.js';
import { eq } from '../../core/results.js';
import { BAD_DMEM_VALUES } from '../boots.js';
import { parseDmemParam } from '../dmem-param.js';
import { dmemRegions, logMatches } from '../probes.js';
import { defineScenario } from '../types.js';

/** A line the kernel prints about dmem itself: never its command line's echo or its banner. */
export const KERNEL_DMEM_LINE = /^(dmem: |dmemfs |Malformed early option 'dmem')/;

export const reservationBadValues = defineScenario({
  id: 'reservation-bad-values',
  title: 'bad dmem= values are rejected by the rig before booting and by the kernel with its message',
  proves: `misaligned size, "!" with @addr, addr 0 and garbage never reserve memory: the rig refuses
    them up front; forced past the rig, the kernel prints its dmem:/early-option warning and
    reserves nothing.`,
  needs: ['patched-kernel'],
  boots: ['bad-values'],
  measurements: ['rig_rejected', 'kernel_rejected_with_message', 'regions_registered', 'dmem_lines_in_log'],
  async run(ctx) {
    let rigRejected = 0;
    for (const b of BAD_DMEM_VALUES) {
      try {
        parseDmemParam(b.value);
      } catch (e) {
        if (!(e instanceof RigError && e.kind === 'bad-dmem')) throw e;
        rigRejected++;
        ctx.evidence(`rig: dmem=${b.value}`, e.describe());
      }
    }
    const n = BAD_DMEM_VALUES.length;
    ctx.measure('rig_rejected', rigRejected, { unit: `of ${n}`, expect: eq(n) });
    // Forced past the rig's check: all four on one command line (the kernel parses each).
    const g = await ctx.boot('bad-values');
    let kernelRejected = 0;
    for (const b of BAD_DMEM_VALUES) {
      const lines = await logMatches(g, b.kernelSays);
      if (lines.length) kernelRejected++;
      ctx.evidence(`kernel: dmem=${b.value}`, lines.join('\n') || '(no message)');
    }
    ctx.measure('kernel_rejected_with_message', kernelRejected, { unit: `of ${n}`, expect: eq(n) });
    // Zero regions is the finding only if the log was read at all and the kernel spoke about dmem:
    // its own dmem lines prove that, not its echo of the command line (which holds the dmem= values)
    // nor its banner (the build host's name).
    const dmemLines = await logMatches(g, KERNEL_DMEM_LINE);
    ctx.evidence("kernel log: the kernel's own dmem lines", dmemLines.join('\n'));
    ctx.measure('dmem_lines_in_log', dmemLines.length, {
      unit: 'lines',
      expect: eq(2 * n + 2),
      why:
        'per bad value its refusal and "Malformed early option \'dmem\'", then "dmem: pre-defined region" and ' +
        '"dmemfs initialized"',
    });
    ctx.measure('regions_registered', (await dmemRegions(g)).length, { unit: 'regions', expect: eq(0) });
  },
});
