/** The subcommands of dmemfs-rig. Each body is small: the work lives in the stage modules. */
import { chooseAccel } from '../vm/accel.js';
import { info } from '../core/log.js';
import { setupHost, HOST_PACKAGES } from './setup-host.js';
import { benchBootOnce, bootFirstGuest, prepareFirstGuest } from '../runner/first-guest.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  help: string;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  details?: string;
  options?: Record<string, OptionSpec>;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

const accelOpt: OptionSpec = { type: 'string', help: 'kvm | tcg | auto (default auto; also DMEMFS_RIG_ACCEL)' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const COMMANDS: Command[] = [
  {
    name: 'setup',
    summary: 'install the Debian host packages the rig needs (idempotent)',
    usage: '[--dry-run] [--list]',
    options: {
      'dry-run': { type: 'boolean', help: 'only print what would be installed' },
      list: { type: 'boolean', help: 'list the packages and why each is needed' },
    },
    async run(v) {
      if (v.list) {
        for (const [p, why] of Object.entries(HOST_PACKAGES)) process.stdout.write(`${p.padEnd(24)} ${why}\n`);
        return 0;
      }
      const r = await setupHost({ dryRun: Boolean(v['dry-run']) });
      if (r.installed.length) info(`setup: installed ${r.installed.join(' ')}`);
      return 0;
    },
  },
  {
    name: 'accel',
    summary: 'show which accelerator the rig would use here, and why',
    usage: '[--accel kvm|tcg|auto] [--json]',
    options: { accel: accelOpt, json: { type: 'boolean', help: 'print JSON' } },
    async run(v) {
      const a = chooseAccel(v.accel as string | undefined);
      process.stdout.write(v.json ? JSON.stringify(a) + '\n' : `${a.accel}: ${a.reason}\n`);
      return 0;
    },
  },
  {
    name: 'boot',
    summary: 'boot the first guest (Debian kernel, two NUMA nodes), run a command over SSH, stop',
    usage: '[--accel X] [--node-mib N] [-- command args...]',
    details: 'Without a command it prints /proc/meminfo and the NUMA nodes the guest sees.',
    options: { accel: accelOpt, 'node-mib': { type: 'string', help: 'memory per NUMA node in MiB (default 512)' } },
    async run(v, pos) {
      const accel = chooseAccel(v.accel as string | undefined);
      info(`accelerator: ${accel.accel} (${accel.reason})`);
      const files = await prepareFirstGuest();
      const g = await bootFirstGuest(files, accel, { nodeMiB: v['node-mib'] ? Number(v['node-mib']) : 512 });
      try {
        const argv = pos.length ? pos : ['sh', '-c', 'grep MemTotal /proc/meminfo; ls /sys/devices/system/node'];
        const r = await g.exec(argv);
        process.stdout.write(r.stdout);
        process.stderr.write(r.stderr);
        return r.code ?? 1;
      } finally {
        await g.stop();
      }
    },
  },
  {
    name: 'bench boot',
    summary: 'time QEMU start -> first SSH command, and the kernel\'s own time to init',
    usage: '[--accel X] [--runs N] [--json]',
    details: 'bootToSshSeconds: host clock from QEMU spawn to the first successful SSH command.\nkernelInitSeconds: printk timestamp of "Run /init as init process".\nratio = bootToSsh / kernelInit shows the rig\'s own overhead (goal <= 1.5 under TCG).',
    options: { accel: accelOpt, runs: { type: 'string', help: 'number of boots (default 3); medians are reported' }, json: { type: 'boolean', help: 'one JSON object on stdout' } },
    async run(v) {
      const accel = chooseAccel(v.accel as string | undefined);
      info(`accelerator: ${accel.accel} (${accel.reason})`);
      const files = await prepareFirstGuest();
      const runs = Math.max(1, Number(v.runs ?? 3));
      const each = [];
      for (let i = 0; i < runs; i++) each.push(await benchBootOnce(files, accel));
      const result = {
        accel: accel.accel,
        runs,
        bootToSshSeconds: median(each.map((e) => e.bootToSshSeconds)),
        kernelInitSeconds: median(each.map((e) => e.kernelInitSeconds)),
        ratio: median(each.map((e) => e.ratio)),
        each,
      };
      if (v.json) process.stdout.write(JSON.stringify(result) + '\n');
      else process.stdout.write(`accel ${result.accel}, ${runs} boots (medians): bootToSsh ${result.bootToSshSeconds.toFixed(2)}s, kernelInit ${result.kernelInitSeconds.toFixed(2)}s, ratio ${result.ratio.toFixed(2)}\n`);
      return 0;
    },
  },
];
