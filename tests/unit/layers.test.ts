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
  ['scenarios/x.ts', "import type { X } from '../vm/guest.js';"],
  ['report/x.ts', "import type { X } from '../scenarios/types.js';"],
  ['scripts/x.ts', "import type { X } from '../runner/judge.js';"],
];
for (const [file, code] of forward)
  t.test(`forward: ${file} ${code.slice(code.indexOf("'"))}`, async (t) => {
    t.same(await errorsOf(file, `${code}\nexport type Y = X;\n`), []);
  });
