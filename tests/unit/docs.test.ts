/**
 * The docs (README.md and docs/*.md): every generated page and table is what its generator
 * writes now (scripts/docs.ts: docs/cli.md from the commands, the known-failures and selftests
 * tables from the data), every relative link leads to a file, and every repository path a page
 * names in backticks exists.
 */
import t from 'tap';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import { COMMANDS } from '../../scripts/commands.js';
import { cliMarkdown, docPages, writeDocs } from '../../scripts/docs.js';

const root = projectRoot();
/** Paths the pages name that are not this repository's: in a bundle, or in the kernel tree. */
const ELSEWHERE: Readonly<Record<string, string>> = {
  'kernel/series-provenance.json': "a bundle's",
  'images/l1-manifest.json': "a bundle's",
  'scripts/decodecode': "the kernel tree's",
};
const TOP = [
  'core',
  'vm',
  'images',
  'kernel',
  'scenarios',
  'runner',
  'report',
  'scripts',
  'tests',
  'ci',
  'docs',
  '.ci',
];

t.test('every generated page and table is as its generator writes it', async (t) => {
  t.same(writeDocs(COMMANDS, true), [], 'nothing stale (npm run rig -- docs writes them)');
  t.equal(readFileSync(join(root, 'docs', 'cli.md'), 'utf8'), cliMarkdown(COMMANDS));
  for (const c of COMMANDS) t.match(cliMarkdown(COMMANDS), `\n## ${c.name}\n`, `docs/cli.md has ${c.name}`);
});

t.test('a stale table is found, and written back', async (t) => {
  const copy = mkdtempSync(join(tmpdir(), 'rig-docs-'));
  cpSync(join(root, 'docs'), join(copy, 'docs'), { recursive: true });
  cpSync(join(root, 'README.md'), join(copy, 'README.md'));
  const page = join(copy, 'docs', 'scenarios.md');
  writeFileSync(page, readFileSync(page, 'utf8').replace('| `kvm-dmem-4k` |', '| `kvm-dmem-2M` |'));
  writeFileSync(join(copy, 'docs', 'cli.md'), 'hand-edited\n');
  t.same(writeDocs(COMMANDS, true, copy), ['docs/cli.md', 'docs/scenarios.md'], 'both named');
  t.same(writeDocs(COMMANDS, false, copy), ['docs/cli.md', 'docs/scenarios.md'], 'and written');
  t.same(writeDocs(COMMANDS, true, copy), [], 'then as generated');
});

/** The repository paths a page names in backticks: `scenarios/repros.ts`, `images/repro/`. */
function namedPaths(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/`([^`\s]+)`/g)) {
    const p = m[1]!.replace(/[.,:;)]+$/, '').replace(/:\d+$/, '');
    if (!TOP.some((d) => p.startsWith(`${d}/`))) continue;
    if (/[<>*{}$|]|\.\.\./.test(p) || p in ELSEWHERE) continue; // a pattern, a placeholder, not ours
    out.add(p);
  }
  return [...out];
}

t.test('every file a page names exists, and every relative link leads somewhere', async (t) => {
  for (const page of docPages()) {
    const text = readFileSync(join(root, page), 'utf8');
    const missing = namedPaths(text).filter((p) => !existsSync(join(root, p)));
    t.same(missing, [], `${page}: the files it names exist`);
    const links = [...text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    const broken = links.filter((l) => !existsSync(normalize(join(root, dirname(page), l))));
    t.same(broken, [], `${page}: its links lead to files`);
  }
});

t.test('the front page stays a front page', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8').split('\n');
  t.ok(readme.length <= 160, `README.md is ${readme.length} lines (at most 160; the rest is in docs/)`);
  for (const page of docPages().filter((p) => p.startsWith('docs/')))
    t.ok(readme.join('\n').includes(`](${page})`), `README links ${page}`);
});
