/**
 * The generated parts of the docs: docs/cli.md whole, from the commands' own tables, and the
 * blocks of the other pages between `<!-- generated: NAME -->` and `<!-- end generated -->`, each
 * from its generator. `dmemfs-rig docs` writes them; `docs --check` (and tests/unit/docs.test.ts)
 * fails on a page that differs from what its generator writes.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../core/paths.js';
import { claimsMarkdown } from '../report/claims-table.js';
import { knownFailuresMarkdown } from '../report/known-failures.js';
import { statedSelftestsMarkdown } from '../report/selftests-table.js';
import type { Command } from './options.js';

/** The generators of the blocks, by name. */
export const BLOCKS: Readonly<Record<string, () => string>> = {
  claims: claimsMarkdown,
  'known-failures': knownFailuresMarkdown,
  selftests: statedSelftestsMarkdown,
};

const BLOCK = /(<!-- generated: ([a-z-]+) -->\n)([\s\S]*?)(<!-- end generated -->)/g;

/** The markdown pages: README.md and docs/*.md, relative to the root. */
export function docPages(root = projectRoot()): string[] {
  const docs = existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')) : [];
  return ['README.md', ...docs.sort().map((f) => `docs/${f}`)];
}

/** docs/cli.md: every command, its usage, what it does and its options, from the commands themselves. */
export function cliMarkdown(commands: readonly Command[]): string {
  const out = [
    '# The CLI (generated: `npm run rig -- docs`)',
    '',
    '`npm run rig -- <command>` (or `node dist/scripts/cli.js <command>`). Options may stand anywhere on',
    'the line (`--profile P run` is `run --profile P`); every command has `--help`, which prints the same',
    'text as here. Global: `--quiet`, `--verbose` (streams guest consoles), `DMEMFS_RIG_CACHE=<dir>`.',
    '',
    '| command | does |',
    '| --- | --- |',
    ...commands.map((c) => `| [\`${c.name}\`](#${anchor(c.name)}) | ${cell(c.summary)} |`),
  ];
  for (const c of commands) {
    out.push(
      '',
      `## ${c.name}`,
      '',
      '```text',
      `dmemfs-rig ${c.name} ${c.usage}`.trimEnd(),
      '```',
      '',
      `${c.summary}.`,
    );
    // Each line of the details is a paragraph of --help: one bullet each here.
    if (c.details) out.push('', ...c.details.split('\n').map((l) => `- ${l.trim()}`));
    const opts = Object.entries(c.options ?? {});
    if (opts.length) {
      out.push('', '| option | value | |', '| --- | --- | --- |');
      for (const [n, o] of opts) {
        const kind = o.type === 'string' ? (o.multiple ? 'text, repeatable' : 'text') : 'flag';
        out.push(`| \`--${n}\`${o.short ? ` (\`-${o.short}\`)` : ''} | ${kind} | ${cell(o.help)} |`);
      }
    }
  }
  return out.join('\n') + '\n';
}

function anchor(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A page with each generated block as its generator writes it now. */
export function regenerated(text: string): string {
  return text.replace(BLOCK, (_m, open: string, name: string, _old: string, close: string) => {
    const gen = BLOCKS[name];
    if (!gen) throw new Error(`unknown generated block "${name}"`);
    return `${open}${gen().replace(/\n*$/, '\n')}${close}`;
  });
}

/** What each page should hold: path -> text (only the pages that have something generated). */
export function generatedPages(commands: readonly Command[], root = projectRoot()): Map<string, string> {
  const pages = new Map<string, string>([['docs/cli.md', cliMarkdown(commands)]]);
  for (const p of docPages(root)) {
    if (p === 'docs/cli.md') continue;
    const text = readFileSync(join(root, p), 'utf8');
    const next = regenerated(text);
    if (BLOCK.test(text)) pages.set(p, next);
    BLOCK.lastIndex = 0;
  }
  return pages;
}

/** Write them (or, with check, only list those that differ). The pages that differed. */
export function writeDocs(commands: readonly Command[], check: boolean, root = projectRoot()): string[] {
  const stale: string[] = [];
  for (const [p, text] of generatedPages(commands, root)) {
    const path = join(root, p);
    if (existsSync(path) && readFileSync(path, 'utf8') === text) continue;
    stale.push(p);
    if (!check) writeFileSync(path, text);
  }
  return stale;
}
