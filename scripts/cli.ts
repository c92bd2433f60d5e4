#!/usr/bin/env node
/**
 * dmemfs-rig: the one command-line entry point. Each subcommand has --help.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isRigError, messageOf } from '../core/errors.js';
import { info, setLogLevel } from '../core/log.js';
import { installHygiene } from '../core/processes.js';
import { COMMANDS, type Command } from './commands.js';

function usage(): string {
  const lines = ['usage: dmemfs-rig <command> [options]   (each command: --help)', '', 'commands:'];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(16)} ${c.summary}`);
  lines.push('', 'global options: --quiet, --verbose (stream guest consoles), DMEMFS_RIG_CACHE=<dir> (cache location)');
  return lines.join('\n');
}

function commandHelp(c: Command): string {
  const lines = [`usage: dmemfs-rig ${c.name} ${c.usage}`, '', c.summary];
  if (c.details) lines.push('', c.details);
  const opts = Object.entries(c.options ?? {});
  if (opts.length) {
    lines.push('', 'options:');
    for (const [name, o] of opts)
      lines.push(`  --${name}${o.type === 'string' ? ' <value>' : ''}${o.short ? ` (-${o.short})` : ''}  ${o.help}`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  installHygiene();
  const words = argv.filter((a) => !a.startsWith('-'));
  const cmd = COMMANDS.filter((c) => c.name.split(' ').every((w, i) => words[i] === w)).sort(
    (a, b) => b.name.length - a.name.length,
  )[0];
  if (!cmd) {
    if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
      process.stdout.write(usage() + '\n');
      return argv.length === 0 ? 2 : 0;
    }
    process.stderr.write(`dmemfs-rig: unknown command "${words.join(' ')}"\n\n${usage()}\n`);
    return 2;
  }
  const rest = [...argv];
  for (const w of cmd.name.split(' ')) rest.splice(rest.indexOf(w), 1);
  const options: ParseArgsConfig['options'] = {
    help: { type: 'boolean', short: 'h' },
    quiet: { type: 'boolean' },
    verbose: { type: 'boolean' },
  };
  for (const [n, o] of Object.entries(cmd.options ?? {}))
    options[n] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    process.stderr.write(`dmemfs-rig ${cmd.name}: ${(e as Error).message}\n\n${commandHelp(cmd)}\n`);
    return 2;
  }
  const v = parsed.values as Record<string, unknown>;
  if (v.help) {
    process.stdout.write(commandHelp(cmd) + '\n');
    return 0;
  }
  if (v.quiet) setLogLevel('quiet');
  if (v.verbose) setLogLevel('verbose');
  return cmd.run(v, parsed.positionals);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(
      (isRigError(e) ? e.describe() : `internal error: ${messageOf(e)}\n${(e as Error).stack ?? ''}`) + '\n',
    );
    info('failed');
    process.exit(1);
  },
);
