/**
 * A small real run, twice (two scenarios, real QEMU, the rig's kernel): each bundle is checked
 * against the results schema and for key material; the report is opened in headless
 * Chromium (screenshot and rendered DOM: tables and charts present); `report --compare`
 * compares the two real bundles.
 */
import t from 'tap';
import type { RunDiff } from '../../report/bundle-diff.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { projectRoot } from '../../core/paths.js';
import { RESULTS_SCHEMA, validate } from '../../report/schema.js';
import { CHROMIUM, pngStats, renderedDom, screenshot } from '../helpers/chromium.js';

const pexec = promisify(execFile);
const cli = join(projectRoot(), 'dist', 'scripts', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'rig-bundle-'));
const SCENARIOS = ['--scenario', 'reservation-bad-values', '--scenario', 'mem-devmem'];

async function rig(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await pexec(process.execPath, [cli, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 64 << 20,
      timeout: 15 * 60_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) =>
    statSync(join(dir, n)).isDirectory() ? filesUnder(join(dir, n)) : [join(dir, n)],
  );
}

const a = join(root, 'a');
const b = join(root, 'b');
const runA = await rig(['run', ...SCENARIOS, '--out', a]);
// The second run in quiet mode (as CI runs it): no progress lines, the results still come out.
const runB = await rig(['run', ...SCENARIOS, '--out', b], { DMEMFS_RIG_LOG: 'quiet' });

t.test('both runs pass and print where the bundle is', async (t) => {
  t.equal(runA.code, 0, runA.stderr.slice(-2000));
  t.equal(runB.code, 0, runB.stderr.slice(-2000));
  t.match(runA.stdout, new RegExp(`# bundle: ${a}`));
  t.match(runA.stderr, /scenario mem-devmem/, 'normal mode shows progress');
  t.notMatch(runB.stderr, /\[rig [\d:]+\] scenario/, 'quiet mode shows no progress');
  t.match(runB.stdout, /^TAP version 13/m, 'quiet mode still prints the results');
});

t.test('the bundle holds every part and results.json matches the schema', async (t) => {
  for (const f of [
    'results.json',
    'results.schema.json',
    'results.tap',
    'junit.xml',
    'comparison.md',
    'report.html',
    'report.md',
    'kernel/apply-report.json',
    'kernel/series-verify.json',
    'kernel/build-manifest.json',
    'kernel/config',
    'images/l1-manifest.json',
  ])
    t.ok(existsSync(join(a, f)), f);
  const run = JSON.parse(readFileSync(join(a, 'results.json'), 'utf8'));
  t.same(validate(RESULTS_SCHEMA, run), [], 'no schema errors');
  t.same(
    validate(JSON.parse(readFileSync(join(a, 'results.schema.json'), 'utf8')), run),
    [],
    'the bundled schema says the same',
  );
  t.equal(run.scenarios.length, 2);
  t.equal(run.boots.length, 2, 'one boot per scenario (different requests)');
  for (const boot of run.boots) {
    t.ok(existsSync(join(a, boot.console)), `console of ${boot.guest} in the bundle`);
    t.ok(boot.qemu.args.includes('-qmp'), 'the full QEMU argument array');
    t.match(readFileSync(join(a, boot.console), 'utf8'), /Linux version 5\.10\.223/);
  }
  t.equal(run.kernel.patches.length, 37, 'per-patch table');
  t.match(run.qemu.version, /QEMU emulator version/);
  const junit = readFileSync(join(a, 'junit.xml'), 'utf8');
  t.match(junit, /<testsuites name="dmemfs-rig" tests="2" failures="0"/);
  t.equal((junit.match(/<testcase /g) ?? []).length, 2);
  t.same(
    validate(RESULTS_SCHEMA, { ...run, scenarios: [{ ...run.scenarios[0], status: 'great' }] }).length > 0,
    true,
    'a wrong status is caught',
  );
});

t.test('no key material in the bundle', async (t) => {
  for (const f of filesUnder(a)) {
    const text = readFileSync(f, 'utf8');
    t.notMatch(text, /PRIVATE KEY-----/, `${f}: no private key`);
    t.notMatch(text, /AAAAC3NzaC1lZDI1NTE5/, `${f}: no public key blob`);
  }
});

const skipChromium = CHROMIUM ? false : 'Debian chromium is not installed (dmemfs-rig setup installs it)';
t.test('the report renders in headless Chromium: tables and charts present', { skip: skipChromium }, async (t) => {
  const png = join(root, 'report.png');
  screenshot(join(a, 'report.html'), png);
  const s = pngStats(png);
  t.equal(s.width, 1400);
  t.equal(s.height, 2400);
  t.ok(s.inked > 0.02, `${(s.inked * 100).toFixed(1)}% of the screenshot is not white`);
  const dom = renderedDom(join(a, 'report.html'));
  for (const id of ['summary', 'scenarios', 'comparison', 'patches', 'boots', 'chart-struct-page', 'chart-faults'])
    t.match(dom, new RegExp(`id="${id}"`), `#${id} rendered`);
  t.equal((dom.match(/<tr>/g) ?? []).filter(Boolean).length > 37, true, 'table rows rendered');
  t.match(
    dom,
    /<td class="c-skipped">skipped: scenario dmemfs-files not run<\/td>/,
    'cells of scenarios not in this run say so',
  );
});

t.test('report --compare on the two real bundles', async (t) => {
  const r = await rig(['report', '--compare', a, b]);
  t.equal(r.code, 0, 'no regressions between two runs of the same build');
  t.match(r.stdout, /# .* -> .*: 0 regression\(s\)/);
  t.match(r.stdout, /## scenario status\n\(none\)/);
  const j = await rig(['report', '--compare', a, b, '--json', '--tolerance', '0']);
  const d = JSON.parse(j.stdout) as RunDiff;
  t.same(
    [d.statusChanges.filter((c) => c.regression), d.expectationChanges.filter((c) => c.regression)],
    [[], []],
    'no scenario and no expectation regressed',
  );
  t.equal(
    d.regressions,
    d.moved.filter((m) => m.regression).length,
    'with tolerance 0 every held value that moved at all counts (KASLR moves MemTotal)',
  );
  const base = join(root, 'accepted-base');
  const acc = await rig(['report', '--accept', a, '--into', base, '--reason', 'test']);
  t.equal(acc.code, 0);
  t.match(acc.stdout, /now the accepted base/);
  const vsBase = await rig(['report', '--compare', base, b, '--github']);
  t.equal(vsBase.code, 0, 'the second run against the accepted first: no regression');
  t.notMatch(vsBase.stdout, /::error/);
  const bad = await rig(['report', '--compare', a, join(root, 'nowhere')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad-bundle]: cannot read .*nowhere/);
  const v = await rig(['report', '--validate', b]);
  t.equal(v.code, 0);
  t.match(v.stdout, /matches the schema/);
});
