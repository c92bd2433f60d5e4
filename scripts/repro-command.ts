/** `dmemfs-rig repro`: a standalone reproducer of a known failure, written and (with --prove) run as written. */
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { loadBundle } from '../report/bundle-diff.js';
import { proofTable, reproduce } from '../runner/repro.js';
import { REPRODUCERS } from '../scenarios/repros.js';
import { chooseAccel } from '../vm/accel.js';
import { defineCommand, accelOpt, jsonOpt, kernelInput, kernelOpts, type Command } from './options.js';

export function reproCommand(): Command {
  return defineCommand({
    name: 'repro',
    summary: 'write a reproducer of a known failure that needs nothing of the rig, and prove it',
    usage: '<ID ...|--all> --out DIR [--prove] [--bundle B] [--profile P] [--series …] [--accel A] [--json]',
    words: 'ID ...',
    details:
      'Writes DIR/<ID>/: qemu.sh (the machine of the boot the scenario saw it on), cmdline, repro.sh (the ' +
      "steps, the guest's only program), init and mkinitramfs.sh (a busybox initramfs), build.sh and the " +
      "helpers' C sources, expected.txt (the console with the bug and without it), kernel.config and README.\n" +
      '--prove runs the directory as written on the series (must show the bug), the baseline kernel and the ' +
      'fixing mutant (must not); the consoles and the table go to DIR/<ID>/proof/. Exit 1 when a proof fails.\n' +
      '--bundle B refuses a signature that run did not reproduce.',
    options: {
      ...kernelOpts,
      out: { type: 'string', help: 'the directory to write into (one subdirectory per signature)' },
      all: { type: 'boolean', help: `every signature with a reproducer (${REPRODUCERS.length})` },
      prove: { type: 'boolean', help: 'run each on the series, the baseline and the fixing mutant' },
      bundle: { type: 'string', help: 'a run bundle that must have reproduced each signature' },
      accel: accelOpt,
      json: jsonOpt,
    },
    async run(v, pos) {
      const ids = v.all ? REPRODUCERS.map((r) => r.signature) : pos;
      if (!ids.length || typeof v.out !== 'string')
        throw new RigError('usage', 'repro needs a signature id (or --all) and --out DIR', {
          fix: 'dmemfs-rig repro vfio-get-dmem-pfn-null --out out/repro --prove',
        });
      const bundle = typeof v.bundle === 'string' ? { path: v.bundle, run: loadBundle(v.bundle) } : undefined;
      const accel = chooseAccel(v.accel);
      if (v.prove) info(`accelerator: ${accel.accel} (${accel.reason})`);
      const done = await reproduce({
        ids,
        out: v.out,
        kernels: { profile: v.profile ?? 'rfc-v2-debian', input: kernelInput(v), baseline: 'baseline-debian' },
        accel,
        prove: Boolean(v.prove),
        ...(bundle ? { bundle } : {}),
      });
      if (v.json) process.stdout.write(JSON.stringify(done, null, 2) + '\n');
      else
        for (const d of done)
          process.stdout.write(
            `${d.dir}: ${d.files.join(' ')}\n${d.proof ? proofTable(d.id, d.proof) + '\n' : ''}` +
              (d.proof ? `consoles: ${join(d.dir, 'proof')}\n` : ''),
          );
      return done.every((d) => !d.proof || d.proof.every((r) => r.ok)) ? 0 : 1;
    },
  });
}
