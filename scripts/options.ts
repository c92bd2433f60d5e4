/** The command-line vocabulary every command shares: option specs, and the kernel a command consumes. */
import { namedEdits } from '../kernel/edits.js';
import type { KernelInput } from '../kernel/pipeline.js';
import { defaultJobs, loadCosts, parseJobs, parseShard, type Costs, type Shard } from '../runner/workers.js';
import type { ScenarioDefinition } from '../scenarios/types.js';

export type Values = Record<string, unknown>;

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  help: string;
}

/** The value an option gives a command: a flag, a text, or (repeatable) a list of texts; absent when not given. */
export type OptionValue<O extends OptionSpec> = O extends { type: 'boolean' }
  ? boolean | undefined
  : O extends { multiple: true }
    ? string[] | undefined
    : string | undefined;

/** A command's option values, typed from its own option table (and the global flags). */
export type ValuesOf<Opts extends Record<string, OptionSpec>> = { [K in keyof Opts]: OptionValue<Opts[K]> } & {
  help?: boolean;
  quiet?: boolean;
  verbose?: boolean;
};

/** A command as written: its run() sees its option values typed from its option table. */
export interface CommandDef<Opts extends Record<string, OptionSpec>> extends Omit<Command, 'options' | 'run'> {
  options?: Opts;
  run(values: ValuesOf<Opts>, words: string[]): Promise<number>;
}

/** Declare a command: `--name` values typed from its table (no casts), then one list of them all. */
export function defineCommand<const Opts extends Record<string, OptionSpec>>(c: CommandDef<Opts>): Command {
  return c as unknown as Command;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /**
   * The words the command takes beside its options (`<mbox>`, `ID ...`), as its usage names them.
   * A command without them refuses a stray word, except after a repeatable option, whose value it
   * is (`--scenario a b` is `--scenario a --scenario b`).
   */
  words?: string;
  details?: string;
  options?: Record<string, OptionSpec>;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

export const profileOpt = {
  type: 'string',
  help: `kernel profile (${'one of kernel/profiles/*.json'}; default rfc-v2-debian)`,
} satisfies OptionSpec;
const kernelSrcOpt = { type: 'string', help: 'the same as --base' } satisfies OptionSpec;
const baseOpt = {
  type: 'string',
  help:
    "the kernel source instead of the profile's: a local tree (git or plain), a tarball, or PATH:REF " +
    '(a commit of a local git tree)',
} satisfies OptionSpec;
const seriesOpt = {
  type: 'string',
  help:
    "the series instead of the profile's: an mbox, a Message-Id (fetched from the mail archive), or " +
    'PATH:BASE..HEAD (the commits of a local git tree, one patch each)',
} satisfies OptionSpec;
const editOpt = {
  type: 'string',
  multiple: true,
  help: 'a named change to the series (kernel/edits.ts; repeatable)',
} satisfies OptionSpec;
/** The options of every command that consumes a kernel. */
export const kernelOpts = {
  profile: profileOpt,
  series: seriesOpt,
  base: baseOpt,
  'kernel-src': kernelSrcOpt,
  edit: editOpt,
} satisfies Record<string, OptionSpec>;
export const jsonOpt = { type: 'boolean', help: 'print JSON on stdout' } satisfies OptionSpec;

export const accelOpt = {
  type: 'string',
  help: 'kvm | tcg | auto (default auto; also DMEMFS_RIG_ACCEL)',
} satisfies OptionSpec;

/** What a kernel-consuming command asks beyond its profile: --base (--kernel-src), --series, --edit. */
export function kernelInput(v: Partial<ValuesOf<typeof kernelOpts>>): KernelInput {
  const base = v.base ?? v['kernel-src'];
  return {
    ...(base ? { base: String(base) } : {}),
    ...(v.series ? { series: v.series } : {}),
    ...(v.edit ? { edits: namedEdits(v.edit) } : {}),
  };
}

/** How a command spreads its work: workers on this host, and a shard of a runner matrix. */
export const parallelOpts = {
  jobs: {
    type: 'string',
    help: 'workers, each with its own guest (default: what the cores and free RAM hold; also DMEMFS_RIG_JOBS)',
  },
  shard: { type: 'string', help: 'K/N: run only shard K of N (balanced by cost; merge with report --merge)' },
  costs: {
    type: 'string',
    help: 'a bundle or accepted base whose scenario times balance the work (default: scenarios/costs.ts)',
  },
} satisfies Record<string, OptionSpec>;

/** --jobs, --shard and --costs, checked before any work starts. */
export function parallelism(
  v: Partial<ValuesOf<typeof parallelOpts>>,
  defs: ScenarioDefinition[],
): { jobs: number; shard?: Shard; costs: Costs } {
  const shard = parseShard(v.shard);
  const given = parseJobs(v.jobs ?? process.env.DMEMFS_RIG_JOBS);
  return {
    jobs: given ?? defaultJobs(defs),
    ...(shard ? { shard } : {}),
    costs: loadCosts(v.costs),
  };
}

/** What parseArgs' tokens give: options with their values, positionals, and the `--` terminator. */
export type ArgToken =
  | { kind: 'option'; name: string; value?: string | undefined }
  | { kind: 'positional'; value: string }
  | { kind: 'option-terminator' };

/**
 * The words that follow a repeatable option (up to the next option or `--`) as its further values,
 * for a command that takes no words of its own; any other word is refused (a usage error naming it).
 * Returns the values to add, by option name.
 */
export function trailingValues(
  tokens: readonly ArgToken[],
  options: Readonly<Record<string, OptionSpec>>,
  takesWords: boolean,
): { add: Record<string, string[]>; stray: string[] } {
  const add: Record<string, string[]> = {};
  const stray: string[] = [];
  let open: string | undefined;
  let terminated = false;
  for (const tk of tokens) {
    if (tk.kind === 'option-terminator') {
      terminated = true;
      open = undefined;
    } else if (tk.kind === 'option') open = options[tk.name]?.multiple && tk.value !== undefined ? tk.name : undefined;
    else if (!takesWords && open && !terminated) (add[open] ??= []).push(tk.value);
    else if (!takesWords) stray.push(tk.value);
  }
  return { add, stray };
}
