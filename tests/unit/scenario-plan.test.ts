/**
 * Boots are data and every scenario declares the ones it uses; the plan puts sharers side by
 * side; the comparison table has a value or a reason in every cell.
 */
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BOOTS } from '../../scenarios/boots.js';
import { SCENARIOS, planOrder } from '../../scenarios/catalog.js';
import { CELLS, COLUMNS, comparisonMarkdown, comparisonTable } from '../../report/comparison-table.js';
import { checkDmemTokens } from '../../scenarios/dmem-param.js';
import type { ScenarioResult } from '../../core/results.js';
import type { ScenarioDefinition } from '../../scenarios/types.js';
import { projectRoot } from '../../core/paths.js';

t.test(
  'every boot name a scenario body asks for is declared and exists; every boot passes the rig checks',
  async (t) => {
    const dir = join(projectRoot(), 'scenarios', 'defs');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = readFileSync(join(dir, f), 'utf8');
      const asked = [...src.matchAll(/ctx\.boot\('([^']+)'\)/g)].map((m) => m[1]!);
      for (const name of asked) {
        t.ok(name in BOOTS, `${f}: boot ${name} exists in scenarios/boots.ts`);
        t.ok(
          SCENARIOS.some((s) => src.includes(`id: '${s.id}'`) && s.boots.includes(name as never)),
          `${f}: boot ${name} is declared in its scenario's boots`,
        );
      }
    }
    for (const s of SCENARIOS) for (const b of s.boots) t.ok(b in BOOTS, `${s.id}: ${b} exists`);
    for (const [name, req] of Object.entries(BOOTS))
      t.doesNotThrow(() => checkDmemTokens(req.append), `${name}: dmem= tokens valid`);
  },
);

t.test('plan: a scenario that can reuse the running boot comes next, otherwise catalog order', async (t) => {
  const def = (id: string, boots: string[]): ScenarioDefinition => ({
    id,
    title: id,
    proves: id,
    needs: [],
    boots: boots as never,
    measurements: [],
    run: async () => undefined,
  });
  const order = planOrder([
    def('a', ['plain']),
    def('b', ['dmem-1G-aligned']),
    def('c', ['mem-4G']),
    def('d', ['plain', 'alternatives']),
    def('e', ['alternatives']),
    def('f', ['dmem-1G-aligned']),
  ]);
  t.same(
    order.map((d) => d.id),
    ['a', 'd', 'e', 'b', 'f', 'c'],
  );
  // iommu-edu differs from dmem-1G-aligned: no reuse across different requests.
  t.same(
    planOrder([def('x', ['dmem-1G-aligned']), def('y', ['mem-4G']), def('z', ['iommu-edu'])]).map((d) => d.id),
    ['x', 'y', 'z'],
  );
  const planned = planOrder(SCENARIOS);
  t.equal(planned.length, SCENARIOS.length, 'the real catalog keeps every scenario');
  const i = planned.findIndex((s) => s.id === 'alternatives');
  t.equal(planned[i + 1]?.id, 'alternatives-devdax', 'alternatives-devdax runs in the alternatives boot');
});

t.test('comparison table: 9 columns, every cell a value, "skipped: reason" or "n/a: reason"', async (t) => {
  t.equal(COLUMNS.length, 9);
  for (const r of CELLS)
    for (const [col, c] of Object.entries(r.cells))
      if ('na' in c) t.notMatch(c.na, /not measured/i, `${r.row} / ${col}: n/a names why it cannot apply`);
  const sources = new Set(
    CELLS.flatMap((r) => Object.values(r.cells))
      .filter((c): c is { scenario: string; measurement: string } => 'scenario' in c)
      .map((c) => c.scenario),
  );
  for (const id of sources)
    t.ok(
      SCENARIOS.some((s) => s.id === id),
      `cells name a real scenario: ${id}`,
    );
  const results: ScenarioResult[] = [
    {
      id: 'dmemfs-files',
      title: '',
      status: 'pass',
      measurements: {
        faults_2M: { value: 128, unit: 'faults for 256 MiB', expected: { op: 'eq', value: 128 }, ok: true },
      },
      signatures: [],
      evidence: [],
      seconds: 1,
      boots: [],
    },
    {
      id: 'alternatives-devdax',
      title: '',
      status: 'skip',
      reason: 'no CONFIG_FS_DAX',
      measurements: {},
      signatures: [],
      evidence: [],
      seconds: 0,
      boots: [],
    },
    {
      id: 'nested-guest',
      title: '',
      status: 'known-failure',
      reason: 'x',
      measurements: {
        kvm_largepages: { value: 4, unit: 'mappings', expected: { op: 'ge', value: 32 }, ok: false },
        l2_memtotal_kb: { value: null, unit: 'kB', skipped: 'L2 did not start' },
      },
      signatures: [
        { id: 'kvm-dmem-4k', title: 'KVM at 4K', measurements: ['kvm_largepages'], reproduced: true, detail: '4' },
      ],
      evidence: [],
      seconds: 1,
      boots: [],
    },
  ];
  const table = comparisonTable(results);
  const cell = (row: RegExp, col: string) =>
    table.rows.find((r) => row.test(r.row))!.cells[COLUMNS.indexOf(col as never)]!;
  t.equal(cell(/minor faults/, 'dmemfs 2M').text, '128 (for 256 MiB)');
  t.equal(cell(/minor faults/, 'device-dax (memmap=)').text, 'skipped: no CONFIG_FS_DAX');
  t.match(cell(/minor faults/, 'dmemfs 4K').text, /^skipped: dmemfs-files ended before measuring faults_4K/);
  t.match(cell(/minor faults/, 'hugetlbfs 2M').text, /^skipped: scenario alternatives not run/);
  t.equal(cell(/KVM large pages/, 'dmemfs 2M').kind, 'known-failure');
  t.equal(cell(/L2 guest/, 'dmemfs 2M').text, 'skipped: L2 did not start');
  for (const r of table.rows)
    for (const c of r.cells) t.match(c.text, /^(skipped: |n\/a: )?\S/, `${r.row}: "${c.text}" is never empty`);
  const md = comparisonMarkdown(table);
  t.equal(md.split('\n').length, CELLS.length + 2);
  t.match(
    md.split('\n')[0],
    new RegExp(
      '^\\| measurement \\| dmemfs 4K \\| dmemfs 2M \\| dmemfs 1G \\| device-dax \\(memmap=\\) \\| ' +
        'device-dax \\(soft-reserved, per VM\\) \\| hugetlbfs 2M \\| hugetlbfs 1G \\| anonymous \\| ' +
        'mem= \\+ /dev/mem \\|$',
    ),
  );
});
