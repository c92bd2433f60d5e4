/**
 * Error kinds are a union (core/errors.ts ERROR_KINDS): a kind that is not one of them does not
 * compile (the @ts-expect-error below fails `npm run check` the day it compiles), and every listed
 * kind is raised somewhere in the rig's code.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_KINDS, RigError } from '../../core/errors.js';
import { projectRoot } from '../../core/paths.js';

t.test('a kind outside the union is a compile error', async (t) => {
  // @ts-expect-error: 'no-such-kind' is not an ErrorKind
  const e = new RigError('no-such-kind', 'x');
  t.equal(e.kind, 'no-such-kind', 'at run time it is only a string: the compiler is the check');
  t.equal(new RigError('kernel-panic', 'x').kind, 'kernel-panic', "a guest kernel's report kind");
});

t.test('every listed kind is raised by the rig', async (t) => {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  for (const d of ['core', 'vm', 'images', 'kernel', 'scenarios', 'runner', 'report', 'scripts'])
    walk(join(projectRoot(), d));
  const code = files
    .filter((f) => !f.endsWith(join('core', 'errors.ts')))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  t.same(
    ERROR_KINDS.filter((k) => !code.includes(`'${k}'`)),
    [],
    'no kind listed that nothing raises',
  );
});
