/**
 * The nightly, executed: every step of ci/nightly.yml run the way GitHub's runner runs it
 * (tests/helpers/workflow.ts: `if:` evaluated, `${{ }}` substituted, each script under the job's
 * shell), with `npm` and `apt-get` replaced by stubs on PATH. The stub answers `npm start` with a
 * night's bundle (a real full run's results, or the same with one scenario regressed), runs the
 * rig's real `nightly compare` and `nightly accept` on it, and answers the slow steps (mutants,
 * bisect, the debug variant) as the case says. From the steps' outcomes: a regressed night fails at
 * its compare step, bisects, and neither accepts nor saves its base; a clean night accepts and
 * saves it; a mutant not caught fails the night and keeps the old base. .ci/run runs exactly the
 * README's test command.
 */
import t from 'tap';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import type { RunResults } from '../../core/results.js';
import { loadWorkflow, runJob, shellArgv, type JobRun } from '../helpers/workflow.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';

const root = projectRoot();
const wf = loadWorkflow(join(root, 'ci', 'nightly.yml'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const command = (what: RegExp) => {
  const row = readme.split('\n').find((l) => l.startsWith('|') && what.test(l));
  return /`([^`]+)`\s*\|\s*$/.exec(row ?? '')?.[1];
};

/** The stub `npm`: the night's answers, logged one line per call. */
const NPM_STUB = `#!/usr/bin/env node
const { appendFileSync, cpSync, mkdirSync, writeFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const args = process.argv.slice(2);
appendFileSync(process.env.STUB_LOG, JSON.stringify(args) + '\\n');
if (args[0] === 'ci') process.exit(0);
if (args[0] === 'start') {
  const out = 'out/run-2026-12-03T02-17-00-000Z';
  mkdirSync(out, { recursive: true });
  cpSync(process.env.STUB_NIGHT, out + '/results.json');
  process.exit(0);
}
if (args[0] === 'run' && (args[1] === 'build' || args[1] === 'setup')) process.exit(0);
const i = args.indexOf('--');
const rig = i < 0 ? [] : args.slice(i + 1);
if (rig[0] === 'nightly' && (rig[1] === 'compare' || rig[1] === 'accept')) {
  const r = spawnSync(process.execPath, [process.env.RIG_CLI, ...rig], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}
if (rig[0] === 'nightly' && rig[1] === 'mutants') {
  writeFileSync('mutants.md', process.env.STUB_MUTANTS === 'caught' ? 'all caught\\n' : 'one NOT caught\\n');
  process.exit(process.env.STUB_MUTANTS === 'caught' ? 0 : 1);
}
if (rig[0] === 'nightly' && rig[1] === 'bisect-regressions') process.exit(0);
if (rig[0] === 'run') process.exit(0);
process.stderr.write('npm stub: no answer for ' + args.join(' ') + '\\n');
process.exit(97);
`;

interface Night {
  run: JobRun;
  calls: string[][];
  dir: string;
}

/** One night in a fresh workspace: the base (if any), the bundle npm start writes, the mutants' answer. */
function night(opts: { base?: string; night: string; mutants: 'caught' | 'missed' }): Night {
  const dir = mkdtempSync(join(tmpdir(), 'rig-night-'));
  const bin = join(dir, 'stub-bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'npm'), NPM_STUB);
  writeFileSync(join(bin, 'apt-get'), '#!/bin/sh\nexit 0\n');
  for (const f of ['npm', 'apt-get']) chmodSync(join(bin, f), 0o755);
  const ws = join(dir, 'ws');
  mkdirSync(ws);
  if (opts.base) cpSync(opts.base, join(ws, 'base'), { recursive: true });
  const log = join(dir, 'calls.jsonl');
  writeFileSync(log, '');
  const run = runJob(wf, 'rig', {
    cwd: ws,
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
      STUB_LOG: log,
      STUB_NIGHT: opts.night,
      STUB_MUTANTS: opts.mutants,
      RIG_CLI: join(root, 'dist', 'scripts', 'cli.js'),
    },
  });
  const calls = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as string[]);
  return { run, calls, dir: ws };
}

const step = (n: Night, re: RegExp) => {
  const s = n.run.steps.find((x) => re.test(x.name));
  if (!s) throw new Error(`no step ${re}`);
  return s;
};

// The accepted base: the real full run, accepted by the rig itself.
const scratch = mkdtempSync(join(tmpdir(), 'rig-nightly-fixtures-'));
const baseDir = join(scratch, 'base');
const bundle = join(scratch, 'bundle');
mkdirSync(bundle);
cpSync(FULL_RUN_BUNDLE(), join(bundle, 'results.json'));
const accept = spawnSync(
  process.execPath,
  [join(root, 'dist', 'scripts', 'cli.js'), 'nightly', 'accept', '--bundle', bundle, '--into', baseDir],
  { encoding: 'utf8' },
);
// The regressed night: one passing scenario now fails one of its held measurements.
const regressed = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
const files = regressed.scenarios.find((s) => s.id === 'dmemfs-files')!;
files.status = 'fail';
files.reason = 'not met: free_dpages_restored_1G';
Object.assign(files.measurements.free_dpages_restored_1G!, { value: 1, ok: false });
const regressedFile = join(scratch, 'regressed.json');
writeFileSync(regressedFile, JSON.stringify(regressed));

t.test('the base fixture is accepted by the rig', async (t) => {
  t.equal(accept.status, 0, accept.stderr);
  t.ok(existsSync(join(baseDir, 'accepted.json')));
});

t.test('a regressed night goes red at its compare step, bisects, and keeps the old base', async (t) => {
  const n = night({ base: baseDir, night: regressedFile, mutants: 'caught' });
  t.equal(n.run.status, 'failure', 'the night fails');
  const compare = step(n, /^Compare/);
  t.equal(compare.outcome, 'failure', 'the compare step fails');
  t.match(compare.output, /REGRESSED dmemfs-files: pass -> fail/);
  t.equal(step(n, /^Which patch/).outcome, 'success', 'the bisect step runs');
  t.ok(
    n.calls.some((c) => c.includes('bisect-regressions')),
    'and calls the rig to bisect',
  );
  t.equal(step(n, /^Accept/).outcome, 'skipped', 'no accept');
  t.equal(step(n, /^Keep the accepted base/).outcome, 'skipped', 'no save of the base');
  t.equal(step(n, /^Upload/).outcome, 'success', 'the bundle is uploaded all the same');
  t.equal(step(n, /^Mutants/).outcome, 'success', 'the mutants still run');
  t.ok(existsSync(join(n.dir, 'out', 'run-2026-12-03T02-17-00-000Z', 'compare.md')), 'compare.md in the bundle');
  const base = JSON.parse(readFileSync(join(n.dir, 'base', 'accepted.json'), 'utf8')) as { bundle: string };
  t.equal(base.bundle, bundle, 'the base is still the old one');
});

t.test('a clean night accepts its bundle as the base and saves it', async (t) => {
  const n = night({ base: baseDir, night: FULL_RUN_BUNDLE(), mutants: 'caught' });
  t.equal(n.run.status, 'success');
  t.equal(step(n, /^Compare/).outcome, 'success');
  t.equal(step(n, /^Which patch/).outcome, 'skipped', 'nothing to bisect');
  t.equal(step(n, /^Accept/).outcome, 'success', 'accepted');
  t.equal(step(n, /^Keep the accepted base/).outcome, 'success', 'saved');
  const base = JSON.parse(readFileSync(join(n.dir, 'base', 'accepted.json'), 'utf8')) as { bundle: string };
  t.equal(base.bundle, join('out', 'run-2026-12-03T02-17-00-000Z'), 'the new bundle is the base');
});

t.test('a mutant the checks did not catch fails the night and keeps the old base', async (t) => {
  const n = night({ base: baseDir, night: FULL_RUN_BUNDLE(), mutants: 'missed' });
  t.equal(n.run.status, 'failure');
  t.equal(step(n, /^Compare/).outcome, 'success');
  t.equal(step(n, /^Mutants/).outcome, 'failure');
  t.equal(step(n, /^Accept/).outcome, 'skipped');
  t.equal(step(n, /^Keep the accepted base/).outcome, 'skipped');
});

t.test('the first night, without a base, becomes the base', async (t) => {
  const n = night({ night: FULL_RUN_BUNDLE(), mutants: 'caught' });
  t.equal(n.run.status, 'success');
  t.match(step(n, /^Compare/).output, /no accepted base/);
  t.equal(step(n, /^Accept/).outcome, 'success');
  t.ok(existsSync(join(n.dir, 'base', 'accepted.json')));
});

t.test("a pipe fails under the workflow's shell (and would not under a container's default sh -e)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rig-shell-'));
  const file = join(dir, 's.sh');
  writeFileSync(file, 'false | cat\n');
  const shell = wf.defaults?.run?.shell;
  t.equal(shell, 'bash', 'defaults.run.shell: bash');
  const as = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1)).status;
  t.not(as(shellArgv(shell, true, file)), 0, 'bash -eo pipefail: the pipe fails');
  t.equal(as(shellArgv(undefined, true, file)), 0, "sh -e (GitHub's default in a container job): it does not");
  for (const s of wf.jobs.rig!.steps.filter((x) => x.run))
    t.notMatch(s.run, /\|(?!\|)/, `${s.name}: no pipe in its script`);
});

t.test('the job: KVM runner, the README main command, the cache of the rig', async (t) => {
  const job = wf.jobs.rig!;
  t.match(JSON.stringify(job['runs-on']), /kvm/, 'runs on a KVM-capable runner');
  t.ok((job['timeout-minutes'] ?? 0) <= 90);
  t.equal(job.env?.DMEMFS_RIG_ACCEL, 'kvm', 'KVM forced: a runner without it fails loudly instead of falling back');
  const main = command(/main job/);
  t.ok(main, 'the README names the main job command');
  t.ok(
    job.steps.some((s) => s.run === main),
    `a step runs exactly "${main}"`,
  );
  const cache = job.steps.find((s) => s.uses?.startsWith('actions/cache@'));
  t.equal(cache?.with?.path, job.env?.DMEMFS_RIG_CACHE, 'the restored cache is the rig cache');
});

t.test('.ci/run runs exactly the README test command', async (t) => {
  const test = command(/the tests/);
  t.equal(test, 'npm ci && npm test');
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !/^set |^cd /.test(l));
  t.same(ci, [test]);
});
