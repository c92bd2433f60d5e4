/**
 * Kernel configuration: allnoconfig with the profile's fragments as KCONFIG_ALLCONFIG (nothing
 * the fragments do not name), or a base (defconfig, tinyconfig) merged with them by the kernel's
 * own scripts/kconfig/merge_config.sh, then olddefconfig. Afterwards every
 * option a fragment asked for must have the asked value; one that did not survive is an
 * error naming it and the dependency that is not met.
 */
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { fragmentPath } from './profile.js';

export type ConfigValue = string; // "y", "m", "n" (not set), a number or a quoted string

/** Parse a .config or a fragment: CONFIG_X=v and "# CONFIG_X is not set" (= "n"). */
export function parseConfig(text: string): Map<string, ConfigValue> {
  const m = new Map<string, ConfigValue>();
  for (const line of text.split('\n')) {
    const set = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (set) {
      m.set(set[1]!, set[2]!);
      continue;
    }
    const unset = /^# CONFIG_([A-Za-z0-9_]+) is not set$/.exec(line.trim());
    if (unset) m.set(unset[1]!, 'n');
  }
  return m;
}

export interface ConfigMismatch {
  option: string;
  wanted: ConfigValue;
  got: ConfigValue;
  fragment: string;
  /** Dependencies (from Kconfig) that are not met in the final config. */
  unmet: string[];
  dependsOn: string[];
  /** Whether the tree's Kconfig defines the option at all. */
  defined?: boolean;
}

/** The symbols a Kconfig "depends on" expression names. */
export function symbolsOf(expr: string): string[] {
  return [...new Set((expr.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []).filter((s) => !['y', 'm', 'n', 'if'].includes(s)))];
}

/** The "depends on" expressions right after line i (a `config` line), until the next entry. */
function dependsAfter(lines: string[], i: number): string[] {
  const deps: string[] = [];
  for (let j = i + 1; j < lines.length; j++) {
    const l = lines[j]!;
    if (/^\s*(?:menu)?config\s|^\s*(?:endmenu|menu|choice|endchoice|if|endif|source|comment)\b/.test(l)) break;
    const d = /^\s*depends on\s+(.*)$/.exec(l);
    if (d) deps.push(d[1]!.trim());
  }
  return deps;
}

/** The dependencies of the wanted configs one Kconfig file defines, enclosing "if EXPR" blocks included. */
function kconfigFileDepends(text: string, wanted: Set<string>, out: Map<string, string[]>): void {
  const lines = text.split('\n');
  const ifs: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const ifm = /^if\s+(.+?)\s*$/.exec(lines[i]!);
    if (ifm) ifs.push(ifm[1]!);
    else if (/^endif\b/.test(lines[i]!)) ifs.pop();
    const m = ifm ? null : /^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$/.exec(lines[i]!);
    if (m && wanted.has(m[1]!)) out.set(m[1]!, [...(out.get(m[1]!) ?? [...ifs]), ...dependsAfter(lines, i)]);
  }
}

/** Collect "depends on" lines of `config NAME` from every Kconfig file under the tree. */
export function kconfigDepends(srcDir: string, names: string[]): Map<string, string[]> {
  const wanted = new Set(names);
  const out = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      if (e === '.git' || e === 'Documentation' || e === 'tools') continue;
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e.startsWith('Kconfig')) kconfigFileDepends(readFileSync(p, 'utf8'), wanted, out);
    }
  };
  walk(srcDir);
  return out;
}

/** Compare the final config with every fragment's requests. */
export function checkFragments(
  finalConfig: Map<string, ConfigValue>,
  fragments: Array<{ name: string; text: string }>,
): ConfigMismatch[] {
  const out: ConfigMismatch[] = [];
  for (const f of fragments) {
    for (const [opt, wanted] of parseConfig(f.text)) {
      const got = finalConfig.get(opt) ?? 'n';
      if (got !== wanted) out.push({ option: opt, wanted, got, fragment: f.name, unmet: [], dependsOn: [] });
    }
  }
  return out;
}

/** Explain mismatches with the Kconfig dependencies that are not met. */
export function explainMismatches(
  srcDir: string,
  mismatches: ConfigMismatch[],
  finalConfig: Map<string, ConfigValue>,
): ConfigMismatch[] {
  const deps = kconfigDepends(
    srcDir,
    mismatches.map((m) => m.option),
  );
  return mismatches.map((m) => {
    const exprs = deps.get(m.option) ?? [];
    const unmet = exprs.flatMap(symbolsOf).filter((s) => (finalConfig.get(s) ?? 'n') === 'n');
    return { ...m, dependsOn: exprs, unmet: [...new Set(unmet)], defined: deps.has(m.option) };
  });
}

export function formatMismatches(ms: ConfigMismatch[]): string {
  return ms
    .map((m) => {
      const why = !m.defined
        ? "no such option in this tree's Kconfig"
        : m.unmet.length
          ? `depends on ${m.dependsOn.join(' && ')}; not met: ${m.unmet.map((u) => `CONFIG_${u}`).join(', ')}`
          : `depends on ${m.dependsOn.join(' && ')}`;
      return `CONFIG_${m.option}: ${m.fragment} asks ${m.wanted}, got ${m.got} (${why})`;
    })
    .join('\n');
}

export interface ConfigResult {
  configPath: string;
  config: Map<string, ConfigValue>;
  text: string;
  /** Requested options this tree does not define (yet): only with `lenient`. */
  absent: string[];
}

/** defconfig + merge_config.sh + olddefconfig in an out-of-tree build dir; verified. */
export async function configure(
  srcDir: string,
  buildDir: string,
  base: 'defconfig' | 'tinyconfig' | 'allnoconfig',
  fragmentNames: string[],
  makeArgs: string[],
  env: NodeJS.ProcessEnv = process.env,
  lenient = false,
): Promise<ConfigResult> {
  info(`config: ${base} + ${fragmentNames.join(' ')}`);
  const configPath = join(buildDir, '.config');
  const frags = fragmentNames.map((n) => fragmentPath(n));
  if (base === 'allnoconfig') {
    // Every option no fragment names stays off: allnoconfig with the fragments as KCONFIG_ALLCONFIG
    // (what merge_config.sh -n does), so a default-y option the guests do not need costs nothing.
    const all = join(buildDir, 'fragments.config');
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(all, frags.map((f) => readFileSync(f, 'utf8')).join('\n'));
    await run('make', ['-C', srcDir, `O=${buildDir}`, ...makeArgs, `KCONFIG_ALLCONFIG=${all}`, 'allnoconfig'], {
      what: 'make allnoconfig with the fragments',
      env,
    });
  } else {
    // On the other bases, options the fragments leave alone keep the base's values and their defaults.
    await run('make', ['-C', srcDir, `O=${buildDir}`, ...makeArgs, base], { what: `make ${base}`, env });
    await run(join(srcDir, 'scripts', 'kconfig', 'merge_config.sh'), ['-m', '-O', buildDir, configPath, ...frags], {
      cwd: srcDir,
      what: 'merge_config.sh',
      env,
    });
    await run('make', ['-C', srcDir, `O=${buildDir}`, ...makeArgs, 'olddefconfig'], {
      what: 'make olddefconfig',
      env,
    });
  }
  const text = readFileSync(configPath, 'utf8');
  const config = parseConfig(text);
  const fragments = fragmentNames.map((n) => ({ name: n, text: readFileSync(fragmentPath(n), 'utf8') }));
  const mismatches = checkFragments(config, fragments);
  const explained = mismatches.length ? explainMismatches(srcDir, mismatches, config) : [];
  const absent = lenient ? absentInTree(srcDir, explained) : [];
  const dropped = explained.filter((m) => !absent.includes(m));
  if (dropped.length) {
    throw new RigError(
      'config-dropped',
      `${dropped.length} config option(s) did not survive merging: ` +
        dropped.map((m) => `CONFIG_${m.option}`).join(', '),
      {
        fix: 'add the missing dependencies to a fragment in kernel/config/ (or drop the option from it)',
        evidence: formatMismatches(dropped),
      },
    );
  }
  if (absent.length)
    info(`config: requested but not in this tree yet: ${absent.map((m) => `CONFIG_${m.option}`).join(', ')}`);
  const asked = fragments.reduce((a, f) => a + parseConfig(f.text).size, 0);
  info(
    absent.length
      ? `config: the other ${asked - absent.length} requested options have their requested values`
      : `config: all ${asked} requested options have their requested values`,
  );
  return { configPath, config, text, absent: absent.map((m) => m.option) };
}

/** The mismatches explained by the tree itself: the option, or an unmet dependency of it, is not in its Kconfig. */
export function absentInTree(srcDir: string, ms: ConfigMismatch[]): ConfigMismatch[] {
  const unmet = [...new Set(ms.flatMap((m) => m.unmet))];
  const defined = kconfigDepends(srcDir, unmet);
  return ms.filter((m) => !m.defined || m.unmet.some((u) => !defined.has(u)));
}
