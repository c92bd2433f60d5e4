/**
 * dmem-test-module: the series' own unit test (RFC V2 34/37, tools/testing/dmem/dmem-test.c),
 * built as a module against the run's kernel and loaded in a guest with a dmem pool on both
 * nodes. Its module init allocates 2^0..2^6 4K dpages on the local node (order_test), then one
 * 1 GiB dpage on node 0, exhausts node 0, and expects the next allocation there to fail
 * (node_test). What it prints is recorded line by line.
 */
import { eq, is } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { dmemStats } from '../probes.js';
import { crashReport, mountDmemfs } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';

const MEASUREMENTS = [
  'module_built',
  'insmod',
  'order_test_allocations_okay',
  'node_test_exhausted_node0',
  'verdict',
  'pool_free_after_test',
] as const;
type M = (typeof MEASUREMENTS)[number];

/** order_test allocates at orders 0..6 and prints one "... okay." line for each. */
const ORDERS = 7;
/** dmem=1G:1G on two nodes, counted in 4K dpages. */
const POOL_4K_DPAGES = (2 * 2 ** 30) / 4096;

export const dmemTestModule = defineScenario({
  id: 'dmem-test-module',
  title: "the series' own unit test (tools/testing/dmem, patch 34/37) loaded as a module",
  proves: `the series' dmem-test module builds against the patched kernel, loads in a guest with
    dmem=1G:1G on two nodes, allocates 4K dpages at orders 0 to 6 and 1 GiB dpages until node 0 is
    exhausted, prints "dmem test success", and leaves the whole pool free.`,
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned'],
  measurements: MEASUREMENTS,
  async run(ctx) {
    const mod = await ctx.testModule('dmem-test');
    if (!mod) return ctx.skip('this series has no tools/testing/dmem (RFC V2 34/37 adds it)');
    ctx.measure('module_built', mod.path !== undefined, {
      expect: is(true),
      ...(mod.error ? { evidence: mod.error, note: 'the build said why' } : {}),
    });
    if (!mod.path) return;
    const g = await ctx.boot('dmem-1G-aligned');
    await g.ssh!.upload('/tmp/dmem-test.ko', { localPath: mod.path });
    const lines = await load(ctx, g);
    if (!lines) return;
    ctx.evidence('dmem-test output (dmesg)', lines.join('\n'));
    ctx.measure(
      'order_test_allocations_okay',
      lines.filter((l) => /^order_test: alloc order \d.*okay/.test(l)).length,
      {
        unit: 'allocations',
        expect: eq(ORDERS),
        why: 'orders 0 to 6, one line each',
      },
    );
    ctx.measure(
      'node_test_exhausted_node0',
      lines.some((l) => /OK, Dmem on node 0 exhausted/.test(l)),
      { expect: is(true), note: lines.find((l) => /success times/.test(l)) ?? '' },
    );
    const verdict = lines.find((l) => /dmem test (success|fail)/.test(l)) ?? 'no verdict printed';
    ctx.measure('verdict', verdict.replace(/^.*?(dmem test)/, '$1'), { expect: is('dmem test success') });
    await g.exec(['rmmod', 'dmem_test']);
    // The pool has no page size until a mount gives it one: mount at 4K and count what is free.
    const m = await mountDmemfs(g, '4K');
    const after = m.ok ? (await dmemStats(g)).free_dpages : null;
    ctx.measure('pool_free_after_test', after, {
      unit: '4K dpages',
      expect: eq(POOL_4K_DPAGES),
      why: 'the test frees every dpage it allocated: the whole pool (2 x 1 GiB) is free after it',
      ...(m.ok ? {} : { note: m.err }),
    });
    if (m.ok) await g.exec(['umount', '/mnt/dmem']);
  },
});

/** insmod the module; its dmesg lines from "dmem: test init", or undefined after a crash (recorded). */
async function load(ctx: ScenarioContext<M>, g: Guest): Promise<string[] | undefined> {
  try {
    await g.exec(['dmesg', '-C']);
    const r = await g.exec(['insmod', '/tmp/dmem-test.ko']);
    ctx.measure('insmod', r.code === 0 ? 'loaded' : r.stderr.trim() || `exit ${r.code}`, {
      expect: is('loaded'),
      why: 'module_init returns what the test returns: 0 when it passed',
    });
    const d = await g.exec(['dmesg'], { check: true });
    const text = d.stdout.split('\n').map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ''));
    const from = text.findIndex((l) => /dmem: test init/.test(l));
    return from < 0 ? [] : text.slice(from).filter(Boolean);
  } catch (e) {
    const report = crashReport(e, g);
    if (!report) throw e;
    ctx.measure('insmod', `${report.kind}: ${report.title}`, { expect: is('loaded'), reports: [report] });
    return undefined;
  }
}
