#!/usr/bin/env node
/**
 * dmemfs-rig: the one command-line entry point. Each subcommand has --help.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isRigError, messageOf } from '../core/errors.js';
import { info, setLogLevel } from '../core/log.js';
import { installHygiene } from '../core/processes.js';
import { COMMANDS, type Command } from './commands.js';
import { trailingValues, type ArgToken } from './options.js';

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

/**
 * The command the line names, wherever its words stand among the options (`--profile P run` is
 * `run --profile P`): the earliest run of words that is a command's name, the longest name there.
 * `at` is where its words are in argv.
 */
export function findCommand(argv: readonly string[]): { cmd: (typeof COMMANDS)[number]; at: number[] } | undefined {
  const words = argv.map((a, i) => ({ a, i })).filter((w) => !w.a.startsWith('-'));
  for (let j = 0; j < words.length; j++) {
    const here = COMMANDS.filter((c) => c.name.split(' ').every((w, k) => words[j + k]?.a === w)).sort(
      (a, b) => b.name.length - a.name.length,
    )[0];
    if (here) return { cmd: here, at: here.name.split(' ').map((_, k) => words[j + k]!.i) };
  }
  return undefined;
}

/** No command on the line: the list of commands (asked for, or no words at all), else unknown. */
function noCommand(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    process.stdout.write(usage() + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  const words = argv.filter((a) => !a.startsWith('-'));
  process.stderr.write(`dmemfs-rig: unknown command "${words.join(' ')}"\n\n${usage()}\n`);
  return 2;
}

/** The words after a repeatable option added to its values; false (said why) on a stray word. */
function withTrailingValues(cmd: Command, v: Record<string, unknown>, tokens: ArgToken[]): boolean {
  const { add, stray } = trailingValues(tokens, cmd.options ?? {}, cmd.words !== undefined);
  if (stray.length) {
    const words = stray.map((w) => `"${w}"`).join(' ');
    process.stderr.write(`dmemfs-rig ${cmd.name}: unexpected word(s) ${words}\n\n${commandHelp(cmd)}\n`);
    return false;
  }
  for (const [n, vals] of Object.entries(add)) v[n] = [...((v[n] as string[] | undefined) ?? []), ...vals];
  return true;
}

async function main(argv: string[]): Promise<number> {
  installHygiene();
  const found = findCommand(argv);
  if (!found) return noCommand(argv);
  const { cmd } = found;
  const rest = argv.filter((_, i) => !found.at.includes(i));
  const options: ParseArgsConfig['options'] = {
    help: { type: 'boolean', short: 'h' },
    quiet: { type: 'boolean' },
    verbose: { type: 'boolean' },
  };
  for (const [n, o] of Object.entries(cmd.options ?? {}))
    options[n] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true, tokens: true });
  } catch (e) {
    process.stderr.write(`dmemfs-rig ${cmd.name}: ${(e as Error).message}\n\n${commandHelp(cmd)}\n`);
    return 2;
  }
  const v = parsed.values as Record<string, unknown>;
  if (!v.help && !withTrailingValues(cmd, v, parsed.tokens as ArgToken[])) return 2;
  const words = cmd.words !== undefined ? parsed.positionals : [];
  if (v.help) {
    process.stdout.write(commandHelp(cmd) + '\n');
    return 0;
  }
  if (v.quiet) setLogLevel('quiet');
  if (v.verbose) setLogLevel('verbose');
  return cmd.run(v, words);
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
