/**
 * The layering lint (eslint.config.js LAYERS): a back arrow between the folders fails
 * `npm run check`, and the forward ones pass. Linted with eslint's own API on code written here.
 */
import t from 'tap';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { projectRoot } from '../../core/paths.js';

const eslint = new ESLint({ cwd: projectRoot() });
const errorsOf = async (file: string, code: string) =>
  (await eslint.lintText(code, { filePath: join(projectRoot(), file) }))[0]!.messages
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);

const back: Array<[string, string]> = [
  ['scenarios/x.ts', "import type { X } from '../runner/scenario-context.js';"],
  ['scenarios/defs/x.ts', "import type { X } from '../../runner/judge.js';"],
  ['report/x.ts', "import type { X } from '../runner/mutants.js';"],
  ['core/x.ts', "import type { X } from '../vm/guest.js';"],
  ['kernel/x.ts', "import type { X } from '../scenarios/types.js';"],
  ['runner/x.ts', "import type { X } from '../scripts/options.js';"],
];
for (const [file, code] of back)
  t.test(`a back arrow: ${file} ${code.slice(code.indexOf("'"))}`, async (t) => {
    const errors = await errorsOf(file, `${code}\nexport type Y = X;\n`);
    t.equal(errors.length, 1, 'one error');
    t.match(errors[0], /may not import .*the layers import one way/);
  });

const forward: Array<[string, string]> = [
  ['runner/x.ts', "import type { X } from '../report/bundle.js';"],
  ['scenarios/x.ts', "import type { X } from '../vm/guest-handle.js';"],
  ['report/x.ts', "import type { X } from '../scenarios/types.js';"],
  ['scripts/x.ts', "import type { X } from '../runner/judge.js';"],
];
for (const [file, code] of forward)
  t.test(`forward: ${file} ${code.slice(code.indexOf("'"))}`, async (t) => {
    t.same(await errorsOf(file, `${code}\nexport type Y = X;\n`), []);
  });

// Host processes start in core/exec.ts only: anywhere else node:child_process and execa are refused.
const spawners: Array<[string, string]> = [
  ['runner/x.ts', "import { spawn } from 'node:child_process';"],
  ['vm/x.ts', "import { execa } from 'execa';"],
  ['scripts/x.ts', "import { execFileSync } from 'child_process';"],
  ['core/x.ts', "import { spawn } from 'node:child_process';"],
];
for (const [file, code] of spawners)
  t.test(`a direct spawn: ${file} ${code.slice(code.indexOf("'"))}`, async (t) => {
    const errors = await errorsOf(file, `${code}\nexport const y = String(${code.split(/[{}]/)[1]!.trim()});\n`);
    t.equal(errors.length, 1, 'one error');
    t.match(errors[0], /through core\/exec\.ts/);
  });

t.test('core/exec.ts itself may start processes, and is still held to its layer', async (t) => {
  t.same(await errorsOf('core/exec.ts', "import { spawn } from 'node:child_process';\nexport const y = spawn;\n"), []);
  const back = await errorsOf('core/exec.ts', "import type { X } from '../vm/guest.js';\nexport type Y = X;\n");
  t.equal(back.length, 1, 'a back arrow from it still fails');
});

t.test('scenarios see a guest through its handle, not the Guest class', async (t) => {
  const errors = await errorsOf(
    'scenarios/defs/x.ts',
    "import type { Guest } from '../../vm/guest.js';\nexport type Y = Guest;\n",
  );
  t.equal(errors.length, 1);
  t.match(errors[0], /GuestHandle/);
  t.same(
    await errorsOf(
      'scenarios/defs/x.ts',
      "import type { GuestHandle } from '../../vm/guest-handle.js';\nexport type Y = GuestHandle;\n",
    ),
    [],
  );
});
