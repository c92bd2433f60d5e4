/**
 * The CLI finds its command word wherever it stands among the options: `--accel tcg accel
 * --json` is `accel --accel tcg --json` (the command `accel` says what it would choose; it boots
 * nothing). The real CLI as a child process.
 */
import t from 'tap';
import { rigCli } from '../helpers/cli.js';

const lines: string[][] = [
  ['accel', '--accel', 'tcg', '--json'],
  ['--accel', 'tcg', 'accel', '--json'],
  ['--json', '--accel', 'tcg', 'accel'],
];
for (const args of lines)
  t.test(args.join(' '), async (t) => {
    const r = await rigCli(args);
    t.equal(r.code, 0, r.stderr);
    t.equal((JSON.parse(r.stdout) as { accel: string }).accel, 'tcg', 'the forced accelerator, as asked');
  });

t.test('two-word commands too, and an unknown word is still unknown', async (t) => {
  const r = await rigCli(['--help', 'kernel', 'build']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /dmemfs-rig kernel build/, "kernel build's own help, not the command list");
  const u = await rigCli(['--json', 'nosuch']);
  t.equal(u.code, 2);
  t.match(u.stderr, /unknown command "nosuch"/);
});
