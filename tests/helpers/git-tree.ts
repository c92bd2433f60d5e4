/** Small git trees the tests make for themselves (ranges, dirty trees, local sources). */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** git -C dir ..., with an identity of its own; the output, trimmed. */
export const git = (dir: string, ...a: string[]): string =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a], { encoding: 'utf8' }).trim();

/** A tree with a base commit (tagged "base") and one commit per name, each adding `<name>.c`. */
export function gitTree(names: string[], dir = mkdtempSync(join(tmpdir(), 'rig-git-'))): string {
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'README'), 'base\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'base');
  git(dir, 'tag', 'base');
  for (const n of names) {
    writeFileSync(join(dir, `${n}.c`), `int ${n};\n`);
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', `add ${n}`);
  }
  return dir;
}
