/**
 * `dmemfs-rig shell`: any first-level boot of the catalog, with the run's kernel, and the user's
 * terminal on it: an interactive shell, or one command whose exit status is passed through.
 * With --keep the guest stays up until Ctrl-C. Nothing outlives the command: the guest is
 * stopped through QMP and its key removed on every way out.
 */
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { onInterrupt } from '../core/processes.js';
import { loadProfile } from '../kernel/profile.js';
import { BootPool } from '../runner/boot-pool.js';
import { BOOTS, type BootName } from '../scenarios/boots.js';
import { chooseAccel, withKernelSlowdown } from '../vm/accel.js';
import type { Guest } from '../vm/guest.js';
import { defineCommand, accelOpt, kernelInput, kernelOpts, type Command } from './options.js';

/** The boot names of the catalog, for the error that refuses another. */
export function bootNames(): string[] {
  return Object.keys(BOOTS).sort();
}

/** --boot, checked against the catalog before anything is built or booted. */
export function checkBootName(given: unknown): BootName {
  const name = typeof given === 'string' ? given : '';
  if (!(name in BOOTS))
    throw new RigError('unknown-boot', name ? `no boot named "${name}" in the catalog` : '--boot NAME is required', {
      fix: `one of: ${bootNames().join(', ')} (scenarios/boots.ts)`,
    });
  return name as BootName;
}

/** How to reach a running guest besides the shell: SSH by hand, QMP, the console log. */
export function accessText(g: Guest, boot: string): string {
  const port = g.ssh?.port;
  return [
    `guest ${g.opts.spec.name} (boot ${boot}) is up, ${g.opts.accel.accel}:`,
    `  ssh:     ssh -i ${g.key.privateKeyPath} -p ${port} -o StrictHostKeyChecking=no root@127.0.0.1`,
    `  qmp:     socat - UNIX-CONNECT:${g.runDir}/qmp.sock   (then {"execute":"qmp_capabilities"})`,
    `  console: tail -f ${g.runDir}/console.log`,
    '',
  ].join('\n');
}

export function shellCommand(): Command {
  return defineCommand({
    name: 'shell',
    summary: "boot one of the catalog's boots with the run's kernel: a shell on it, or one command",
    usage: '--boot NAME [--profile P] [--series S] [--base B] [--edit E ...] [--keep] [--accel X] [-- command...]',
    words: '-- cmd ...',
    details:
      'Boots NAME (see scenarios/boots.ts; a bad name lists them) and prints how to reach its SSH, QMP and ' +
      'console log. Without a command: an interactive shell; the guest stops when it ends. With `-- command`: ' +
      'the command runs there and its exit status is the exit status. --keep leaves the guest up afterwards ' +
      '(or instead of a shell) until Ctrl-C. A guest that crashes meanwhile is reported with its console excerpt.',
    options: {
      ...kernelOpts,
      boot: { type: 'string', help: 'the boot to start (a name in scenarios/boots.ts)' },
      keep: { type: 'boolean', help: 'keep the guest up until Ctrl-C' },
      accel: accelOpt,
    },
    async run(v, pos) {
      const boot = checkBootName(v.boot);
      if (!pos.length && !v.keep && !process.stdin.isTTY)
        throw new RigError('no-terminal', 'an interactive shell needs a terminal, and stdin is not one', {
          fix: 'give a command after --, or use --keep and reach the guest by the printed ssh line',
        });
      const profile = loadProfile(v.profile ?? 'rfc-v2-debian');
      const accel = withKernelSlowdown(chooseAccel(v.accel), profile.timeoutScale, `profile ${profile.name}`);
      info(`accelerator: ${accel.accel} (${accel.reason})`);
      const pool = new BootPool({ profile: profile.name, accel, input: kernelInput(v) });
      onInterrupt(() => pool.stop());
      try {
        const { guest } = await pool.boot('shell', boot);
        process.stderr.write(accessText(guest, boot));
        const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
        let code = 0;
        if (pos.length || !v.keep) code = await Promise.race([guest.ssh!.attach(pos, io), guest.failed()]);
        if (!v.keep) return code;
        info('--keep: the guest stays up; Ctrl-C stops it');
        await guest.failed(); // only a crash (or a signal, handled by onInterrupt) ends the wait
        return code;
      } finally {
        onInterrupt(undefined);
        await pool.stop();
      }
    },
  });
}
