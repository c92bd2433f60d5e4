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

t.test('words after a repeatable option are its values; a stray word is refused', async (t) => {
  const { trailingValues } = await import('../../scripts/options.js');
  const opts = { scenario: { type: 'string', multiple: true, help: '' }, json: { type: 'boolean', help: '' } } as const;
  const tk = (...xs: Array<[string, string?] | string>) =>
    xs.map((x) =>
      x === '--'
        ? ({ kind: 'option-terminator' } as const)
        : Array.isArray(x)
          ? ({ kind: 'option', name: x[0], value: x[1] } as const)
          : ({ kind: 'positional', value: x } as const),
    );
  t.same(trailingValues(tk(['scenario', 'a'], 'b', 'c'), opts, false), { add: { scenario: ['b', 'c'] }, stray: [] });
  t.same(
    trailingValues(tk(['scenario', 'a'], ['json'], 'b'), opts, false),
    { add: {}, stray: ['b'] },
    'after a flag: stray',
  );
  t.same(trailingValues(tk('x'), opts, false), { add: {}, stray: ['x'] });
  t.same(
    trailingValues(tk(['scenario', 'a'], 'b'), opts, true),
    { add: {}, stray: [] },
    'a command with words keeps them',
  );
  t.same(trailingValues(tk(['scenario', 'a'], '--', 'b'), opts, false), { add: {}, stray: ['b'] }, 'not past --');
  const r = await rigCli(['accel', '--json', 'extra']);
  t.equal(r.code, 2, 'the real CLI refuses it');
  t.match(r.stderr, /unexpected word\(s\) "extra"/);
});
