/**
 * Names a newcomer can follow: every scenario of the catalog lives in scenarios/defs/<id>.ts
 * and is exported there under its id in camel case (mce-dmemfs: mceDmemfs).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import { SCENARIOS } from '../../scenarios/catalog.js';

const camel = (id: string) => id.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

t.test('each scenario: its own file, its id as its export', async (t) => {
  for (const s of SCENARIOS) {
    const file = join(projectRoot(), 'dist', 'scenarios', 'defs', `${s.id}.js`);
    t.ok(existsSync(join(projectRoot(), 'scenarios', 'defs', `${s.id}.ts`)), `scenarios/defs/${s.id}.ts`);
    const mod = (await import(file)) as Record<string, unknown>;
    t.equal(mod[camel(s.id)], s, `exported as ${camel(s.id)}`);
  }
});

t.test(
  "each claim names a measurement of its scenario (per-size claims are built, so the compiler can't see them all)",
  async (t) => {
    for (const s of SCENARIOS)
      for (const name of Object.keys(s.claims ?? {})) t.ok(s.measurements.includes(name), `${s.id}: claim ${name}`);
  },
);
