/**
 * The nightly, executed: ci/nightly.yml run the way GitHub runs it (tests/helpers/workflow.ts:
 * jobs by their needs, each matrix leg in its own workspace, `if:` evaluated with `needs` and
 * `steps`, `${{ }}` substituted, each script under the job's shell, artifacts uploaded and
 * downloaded by pattern, the accepted base kept in a cache), with `npm` and `apt-get` replaced by
 * stubs on PATH. The stub answers each leg with its shard: the bundles `run --shard K/4` would have
 * written of a real full run (or with one scenario regressed in its shard), and the mutants' shard
 * results; it runs the rig's real `nightly merge`, `compare`, `mutants-merge` and `accept` on them.
 * From the jobs' and steps' outcomes: a clean night merges, accepts and saves its base and bisects
 * nothing; a shard that regressed fails its leg and the night, bisects, and keeps the old base; a
 * shard missing fails the merge and the night, keeps the base and bisects nothing; a mutant not
 * caught, or a mutants leg missing, fails the night; a failing debug leg is reported and does not.
 * .ci/run runs exactly the README's test command.
 */
import t from 'tap';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import type { RunResults } from '../../core/results.js';
import { loadProfile } from '../../kernel/profile.js';
import type { MutantsResult } from '../../runner/mutants.js';
import { costsFrom, shardUnits } from '../../runner/workers.js';
import { MUTANTS } from '../../scenarios/mutants.js';
import { loadWorkflow, newStores, runWorkflow, shellArgv, type WorkflowRun } from '../helpers/workflow.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';
import { cutShards } from '../helpers/shards.js';

const root = projectRoot();
const wf = loadWorkflow(join(root, 'ci', 'nightly.yml'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const command = (what: RegExp) => {
  const row = readme.split('\n').find((l) => l.startsWith('|') && what.test(l));
  return /`([^`]+)`\s*\|\s*$/.exec(row ?? '')?.[1];
};
const CLI = join(root, 'dist', 'scripts', 'cli.js');

/**
 * The stub `npm`: one line per call into STUB_LOG. A leg's work (main, debug, mutants) copies its
 * prepared shard STUB_DIR/<job>-<K> to its --out; STUB_FAIL lists legs ("main:2") that then exit 1,
 * STUB_DIE legs that exit 1 having written nothing. The rig's own nightly steps run for real.
 */
const NPM_STUB = `#!/usr/bin/env node
const { appendFileSync, cpSync, existsSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');
const args = process.argv.slice(2);
appendFileSync(process.env.STUB_LOG, JSON.stringify([process.env.WORKFLOW_JOB, ...args]) + '\\n');
const job = process.env.WORKFLOW_JOB;
const leg = JSON.parse(process.env.WORKFLOW_LEG || '{}');
const me = job + ':' + leg.shard;
const listed = (v) => (process.env[v] || '').split(',').includes(me);
const work = () => {
  if (listed('STUB_DIE')) process.exit(1);
  const out = args[args.indexOf('--out') + 1];
  cpSync(join(process.env.STUB_DIR, job + '-' + leg.shard), out, { recursive: true });
  process.exit(listed('STUB_FAIL') ? 1 : 0);
};
if (args[0] === 'ci') process.exit(0);
if (args[0] === 'start') work();
if (args[0] === 'run' && (args[1] === 'build' || args[1] === 'setup')) process.exit(0);
const i = args.indexOf('--');
const rig = i < 0 ? [] : args.slice(i + 1);
if (rig[0] === 'run' || (rig[0] === 'nightly' && rig[1] === 'mutants')) work();
if (rig[0] === 'nightly' && ['merge', 'compare', 'accept', 'mutants-merge', 'findings'].includes(rig[1])) {
  const r = spawnSync(process.execPath, [process.env.RIG_CLI, ...rig], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}
if (rig[0] === 'nightly' && rig[1] === 'bisect-regressions') {
  const bundle = rig[rig.indexOf('--bundle') + 1];
  if (!existsSync(join(bundle, 'compare.json'))) process.exit(2);
  writeFileSync(join(bundle, 'bisect.md'), 'bisected\\n');
  process.exit(0);
}
process.stderr.write('npm stub: no answer for ' + args.join(' ') + '\\n');
process.exit(97);
`;

const scratch = mkdtempSync(join(tmpdir(), 'rig-nightly-fixtures-'));
const full = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;

/** The mutants' shard results, planned as runMutants plans them; `missed` names one not caught. */
function mutantShards(count: number, missed?: string): MutantsResult[] {
  const variant = loadProfile('rfc-v2-debian').variant;
  const mine = MUTANTS.filter((m) => m.variant === variant);
  const cost = costsFrom();
  const of = (k: number) => shardUnits(mine, (m) => cost(m.scenario), { index: k, count });
  const plan = Array.from({ length: count }, (_, k) => of(k + 1).map((m) => m.edit));
  return plan.map((_edits, k) => ({
    outcomes: of(k + 1).map((m) => ({
      edit: m.edit,
      scenario: m.scenario,
      measurement: m.measurement,
      effect: m.effect,
      reference: '1 (ok)',
      mutated: '0 (not ok)',
      caught: m.edit !== missed,
      collateral: [],
      ok: m.edit !== missed,
      proves: 'a stand-in',
    })),
    coverage: [],
    seconds: 60,
    shard: { index: k + 1, count, plan },
  }));
}

/** A night's answers: every leg's shard, in STUB_DIR/<job>-<K>. */
function answers(opts: { regress?: boolean; missed?: string; moved?: boolean }): string {
  const dir = mkdtempSync(join(scratch, 'answers-'));
  const main = cutShards(full, 4, scratch, (r) => {
    const vfio = r.scenarios
      .find((s) => s.id === 'vfio-pin')
      ?.signatures.find((c) => c.id === 'vfio-get-dmem-pfn-null');
    if (vfio && opts.moved) Object.assign(vfio, { reproduced: false, outcome: 'fixed' });
    const files = r.scenarios.find((s) => s.id === 'dmemfs-files');
    if (!files || !opts.regress) return;
    files.status = 'fail';
    files.reason = 'not met: free_dpages_restored_1G';
    Object.assign(files.measurements.free_dpages_restored_1G!, { value: 1, ok: false });
  });
  main.forEach((d, k) => cpSync(d, join(dir, `main-${k + 1}`), { recursive: true }));
  const debug = cutShards({ ...full, profile: 'rfc-v2-debian-debug' }, 2, scratch);
  debug.forEach((d, k) => cpSync(d, join(dir, `debug-${k + 1}`), { recursive: true }));
  mutantShards(4, opts.missed).forEach((r, k) => {
    mkdirSync(join(dir, `mutants-${k + 1}`));
    writeFileSync(join(dir, `mutants-${k + 1}`, 'mutants.json'), JSON.stringify(r));
  });
  return dir;
}

/** The main shard that holds dmemfs-files (the one a regression there fails). */
const filesShard = () =>
  1 +
  cutShards(full, 4, scratch).findIndex((d) => /"dmemfs-files"/.test(readFileSync(join(d, 'results.json'), 'utf8')));

// The accepted base: the real full run, accepted by the rig itself, kept in the base cache.
const acceptedBundle = join(scratch, 'accepted-bundle');
mkdirSync(acceptedBundle);
cpSync(FULL_RUN_BUNDLE(), join(acceptedBundle, 'results.json'));
const baseAccept = spawnSync(
  process.execPath,
  [CLI, 'nightly', 'accept', '--bundle', acceptedBundle, '--into', join(scratch, 'base')],
  {
    encoding: 'utf8',
  },
);

interface Night {
  run: WorkflowRun;
  calls: string[][];
  /** The accepted base after the night: the newest base in the cache. */
  base?: { bundle: string };
  /** How many bases the cache holds after the night (1 before it, when there was one). */
  bases: number;
}

/** One night: a fresh set of runners and stores, the old base in the cache (if any). */
function night(o: { answers: string; base?: boolean; fail?: string[]; die?: string[] }): Night {
  const dir = mkdtempSync(join(tmpdir(), 'rig-night-'));
  const bin = join(dir, 'stub-bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'npm'), NPM_STUB);
  writeFileSync(join(bin, 'apt-get'), '#!/bin/sh\nexit 0\n');
  for (const f of ['npm', 'apt-get']) chmodSync(join(bin, f), 0o755);
  const stores = newStores(join(dir, 'stores'));
  if (o.base !== false)
    cpSync(join(scratch, 'base'), join(stores.caches, '0000-dmemfs-rig-base-0'), { recursive: true });
  const log = join(dir, 'calls.jsonl');
  writeFileSync(log, '');
  const run = runWorkflow(wf, {
    root: join(dir, 'runners'),
    stores,
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
      STUB_LOG: log,
      STUB_DIR: o.answers,
      STUB_FAIL: (o.fail ?? []).join(','),
      STUB_DIE: (o.die ?? []).join(','),
      RIG_CLI: CLI,
    },
  });
  const calls = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as string[]);
  const bases = readdirSync(stores.caches)
    .filter((k) => k.includes('dmemfs-rig-base-'))
    .sort();
  const newest = bases.at(-1);
  const base = newest
    ? (JSON.parse(readFileSync(join(stores.caches, newest, 'accepted.json'), 'utf8')) as { bundle: string })
    : undefined;
  return { run, calls, bases: bases.length, ...(base ? { base } : {}) };
}

const stepOf = (n: Night, job: string, re: RegExp) => {
  const s = n.run.jobs[job]?.legs[0]?.steps.find((x) => re.test(x.name));
  if (!s) throw new Error(`no step ${re} in ${job}`);
  return s;
};
const results = (n: Night) => Object.fromEntries(Object.entries(n.run.jobs).map(([k, j]) => [k, j.result]));

t.test('the base fixture is accepted by the rig', async (t) => {
  t.equal(baseAccept.status, 0, baseAccept.stderr);
  t.ok(existsSync(join(scratch, 'base', 'accepted.json')));
});

t.test('a clean night: every leg, one merged bundle, compared, accepted and saved; no bisect', async (t) => {
  const n = night({ answers: answers({}) });
  t.equal(n.run.status, 'success', 'the night is green');
  t.same(results(n), { main: 'success', debug: 'success', mutants: 'success', night: 'success', bisect: 'skipped' });
  t.equal(n.run.jobs.main!.legs.length, 4, 'four main legs');
  t.equal(n.run.jobs.mutants!.legs.length, 4, 'four mutants legs');
  t.equal(n.run.jobs.debug!.legs.length, 2, 'two debug legs');
  t.match(stepOf(n, 'night', /^Merge the main/).output, `merged 4 shards, ${full.scenarios.length} scenarios`);
  t.equal(stepOf(n, 'night', /^Compare/).outcome, 'success');
  const all = MUTANTS.filter((m) => m.variant === loadProfile('rfc-v2-debian').variant).length;
  t.match(stepOf(n, 'night', /^Mutants/).output, `${all} of ${all} mutants caught cleanly`, 'every leg joined');
  t.equal(stepOf(n, 'night', /^Merge the debug/).outcome, 'success', "the debug variant's shards merge too");
  const findings = stepOf(n, 'night', /^Findings/);
  t.equal(findings.outcome, 'success');
  t.match(findings.output, /findings: nothing moved against the accepted base in base\/ .*not written again/);
  t.notMatch(findings.output, /findings: mail:/, 'the same findings as the base: no mail again');
  t.equal(stepOf(n, 'night', /^Accept/).outcome, 'success');
  t.equal(stepOf(n, 'night', /^Keep the accepted base/).outcome, 'success');
  t.equal(n.bases, 2, 'a new base in the cache');
  t.equal(n.base?.bundle, join('out', 'run-night'), 'the merged bundle is the base');
  t.same(n.run.jobs.night!.outputs, { regressed: 'false' });
});

t.test('a shard that regressed: its leg and the night fail, the bisect runs, the old base stays', async (t) => {
  const k = filesShard();
  const n = night({ answers: answers({ regress: true }), fail: [`main:${k}`] });
  t.equal(n.run.status, 'failure', 'the night is red');
  t.equal(n.run.jobs.main!.result, 'failure', 'the main job failed (one leg)');
  t.equal(n.run.jobs.main!.legs.filter((l) => l.status === 'failure').length, 1);
  t.equal(stepOf(n, 'night', /^Merge the main/).outcome, 'success', 'the failed leg still uploaded its shard');
  const compare = stepOf(n, 'night', /^Compare/);
  t.equal(compare.outcome, 'failure', 'the compare step fails');
  t.match(compare.output, /REGRESSED dmemfs-files: pass -> fail/);
  t.equal(stepOf(n, 'night', /^Accept/).outcome, 'skipped', 'no accept');
  t.equal(stepOf(n, 'night', /^Keep the accepted base/).outcome, 'skipped', 'no save');
  t.equal(stepOf(n, 'night', /^Upload the night/).outcome, 'success', 'the bundle is uploaded all the same');
  t.same(n.run.jobs.night!.outputs, { regressed: 'true' });
  t.equal(n.run.jobs.bisect!.result, 'success', 'the bisect job runs');
  t.ok(
    n.calls.some((c) => c[0] === 'bisect' && c.includes('bisect-regressions') && c.join(' ').includes('--jobs 3')),
    'and calls the rig to bisect, three prefixes a round',
  );
  t.equal(stepOf(n, 'bisect', /^Upload the bisect/).outcome, 'success', 'its tables are uploaded');
  t.equal(n.bases, 1, 'no new base');
  t.equal(n.base?.bundle, acceptedBundle, 'the base is still the old one');
});

t.test('a shard missing: the merge refuses, the night fails, nothing is accepted or bisected', async (t) => {
  const n = night({ answers: answers({}), die: ['main:3'] });
  t.equal(n.run.status, 'failure');
  t.equal(
    n.run.jobs.main!.legs[2]!.steps.find((s) => /^Upload/.test(s.name))?.outcome,
    'failure',
    'no files to upload',
  );
  const merge = stepOf(n, 'night', /^Merge the main/);
  t.equal(merge.outcome, 'failure');
  t.match(merge.output, /error \[missing-shard\]: shard\(s\) 3\/4 missing/);
  t.equal(stepOf(n, 'night', /^Compare/).outcome, 'skipped', 'nothing to compare');
  t.equal(stepOf(n, 'night', /^Accept/).outcome, 'skipped');
  t.equal(n.run.jobs.bisect!.result, 'skipped', 'no bisect: nothing said what regressed');
  t.equal(n.bases, 1);
});

t.test('a mutant not caught fails the night and keeps the old base', async (t) => {
  const missed = mutantShards(4)[1]!.outcomes[0]!.edit;
  const n = night({ answers: answers({ missed }), fail: ['mutants:2'] });
  t.equal(n.run.status, 'failure');
  t.equal(stepOf(n, 'night', /^Compare/).outcome, 'success');
  const m = stepOf(n, 'night', /^Mutants/);
  t.equal(m.outcome, 'failure');
  t.match(m.output, new RegExp(`\\| ${missed} \\|[^\\n]*\\| NO \\|`), 'the table names it');
  t.equal(stepOf(n, 'night', /^Accept/).outcome, 'skipped');
  t.equal(n.bases, 1);
});

t.test('a mutants leg missing fails the night', async (t) => {
  const n = night({ answers: answers({}), die: ['mutants:4'] });
  t.equal(n.run.status, 'failure');
  t.match(stepOf(n, 'night', /^Mutants/).output, /error \[missing-shard\]: shard\(s\) 4\/4 missing/);
  t.equal(stepOf(n, 'night', /^Accept/).outcome, 'skipped');
});

t.test('a debug leg that fails is reported and does not fail the night', async (t) => {
  const n = night({ answers: answers({}), fail: ['debug:1'] });
  t.equal(n.run.jobs.debug!.result, 'failure', 'the debug job failed');
  t.equal(n.run.status, 'success', 'the night is green (continue-on-error)');
  t.equal(stepOf(n, 'night', /^Accept/).outcome, 'success');
});

const WRITTEN =
  /findings: mail: \d+ mail\(s\)[\s\S]*findings: checks: 37 check\(s\)[\s\S]*findings: kcidb: \d+ test\(s\)/;

t.test('a night where a signature moved writes the findings for the list again', async (t) => {
  const n = night({ answers: answers({ moved: true }) });
  const findings = stepOf(n, 'night', /^Findings/);
  t.equal(findings.outcome, 'success');
  t.match(findings.output, /findings: written: .*vfio-pin\/vfio-get-dmem-pfn-null: reproduced -> fixed/);
  t.match(findings.output, WRITTEN);
});

t.test('the first night, without a base, becomes the base', async (t) => {
  const n = night({ answers: answers({}), base: false });
  t.equal(n.run.status, 'success');
  t.match(stepOf(n, 'night', /^Findings/).output, /findings: written: no accepted base yet/);
  t.match(stepOf(n, 'night', /^Findings/).output, WRITTEN);
  t.match(stepOf(n, 'night', /^Compare/).output, /no accepted base/);
  t.equal(stepOf(n, 'night', /^Accept/).outcome, 'success');
  t.equal(n.bases, 1);
  t.equal(n.base?.bundle, join('out', 'run-night'));
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
  for (const [id, job] of Object.entries(wf.jobs))
    for (const s of job.steps.filter((x) => x.run))
      t.notMatch(s.run, /\|(?!\|)/, `${id}: ${s.name}: no pipe in its script`);
});

t.test('the jobs: guests on KVM runners only, the README main command per shard, the rig cache', async (t) => {
  const guests = ['main', 'debug', 'mutants', 'bisect'];
  for (const id of guests) {
    const job = wf.jobs[id]!;
    t.match(JSON.stringify(job['runs-on']), /kvm/, `${id} runs on a KVM-capable runner`);
    t.ok((job['timeout-minutes'] ?? 0) <= 90, `${id}: at most 90 minutes`);
    t.equal(job.env?.DMEMFS_RIG_ACCEL, 'kvm', `${id}: KVM forced (a runner without it fails loudly)`);
    const cache = job.steps.find((s) => s.uses?.startsWith('actions/cache@'));
    t.equal(cache?.with?.path, job.env?.DMEMFS_RIG_CACHE, `${id}: the restored cache is the rig cache`);
  }
  t.notMatch(JSON.stringify(wf.jobs.night!['runs-on']), /kvm/, 'merging and comparing boot nothing: no KVM runner');
  t.notOk(
    wf.jobs.night!.steps.some((s) => /\brig -- (run|bisect|mutants)\b|npm start/.test(s.run ?? '')),
    'and the night job starts no guest',
  );
  const main = command(/main job/);
  t.ok(main, 'the README names the main job command');
  t.ok(
    wf.jobs.main!.steps.some((s) => s.run?.startsWith(`${main} -- --shard \${{ matrix.shard }}/4 `)),
    `a main leg runs "${main}" on its shard`,
  );
});

t.test('.ci/run runs exactly the README test command', async (t) => {
  const test = command(/the tests/);
  t.equal(test, 'npm ci && npm test');
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !/^set |^cd /.test(l));
  t.same(ci, [test]);
});
