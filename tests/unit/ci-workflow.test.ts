/**
 * The nightly workflow is valid YAML (parsed by PyYAML from Debian's python3-yaml), has the
 * shape GitHub Actions needs, and runs the same main-job command as the README; .ci/run runs
 * exactly the README's test command.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';

const PY = '/usr/bin/python3';
const readme = readFileSync(join(projectRoot(), 'README.md'), 'utf8');
const command = (what: RegExp) => {
  const row = readme.split('\n').find((l) => l.startsWith('|') && what.test(l));
  return /`([^`]+)`\s*\|\s*$/.exec(row ?? '')?.[1];
};

const haveYaml =
  existsSync(PY) &&
  (() => {
    try {
      execFileSync(PY, ['-c', 'import yaml']);
      return true;
    } catch {
      return false;
    }
  })();

t.test(
  'ci/nightly.yml',
  { skip: haveYaml ? false : 'python3-yaml is not installed (dmemfs-rig setup installs it)' },
  async (t) => {
    const json = execFileSync(
      PY,
      [
        '-c',
        'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))',
        join(projectRoot(), 'ci', 'nightly.yml'),
      ],
      { encoding: 'utf8' },
    );
    const parsed = JSON.parse(json) as Record<string, unknown>;
    // YAML 1.1 (PyYAML) reads the bare key `on` as the boolean true; GitHub reads it as "on".
    const wf = { ...parsed, on: parsed.on ?? parsed.true } as unknown as {
      name: string;
      on: Record<string, unknown>;
      jobs: Record<
        string,
        {
          'runs-on': unknown;
          'timeout-minutes': number;
          env: Record<string, string>;
          steps: Array<{
            name?: string;
            id?: string;
            if?: string;
            run?: string;
            uses?: string;
            with?: Record<string, string>;
            'continue-on-error'?: boolean;
            env?: Record<string, string>;
          }>;
        }
      >;
    };
    t.ok(wf.on, 'an on: trigger');
    t.equal(wf.name, 'nightly');
    t.ok((wf.on.schedule as Array<{ cron: string }>)[0]!.cron.split(' ').length === 5, 'a cron schedule');
    const job = wf.jobs.rig!;
    t.ok(job, 'one job');
    t.match(JSON.stringify(job['runs-on']), /kvm/, 'runs on a KVM-capable runner');
    t.ok(job['timeout-minutes'] <= 90);
    t.equal(job.env.DMEMFS_RIG_ACCEL, 'kvm', 'KVM forced: a runner without it fails loudly instead of falling back');
    t.equal(job.env.DMEMFS_RIG_LOG, 'quiet');
    const main = command(/main job/);
    t.ok(main, 'the README names the main job command');
    t.ok(
      job.steps.some((s) => s.run === main),
      `a step runs exactly "${main}"`,
    );
    const cache = job.steps.find((s) => s.uses?.startsWith('actions/cache@'));
    t.equal(cache?.with?.path, job.env.DMEMFS_RIG_CACHE, 'the restored cache is the rig cache');
    t.match(cache?.with?.key, /hashFiles\('kernel\/\*\*', 'images\/\*\*'/, 'cache key follows the inputs');
    const upload = job.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    t.equal(upload?.with?.path, 'out/', 'uploads the bundle');
    const compare = job.steps.find((s) => /report --compare base /.test(s.run ?? ''));
    t.ok(compare, 'compares with the accepted base');
    t.notOk(compare?.['continue-on-error'], 'a regression fails the night (no continue-on-error)');
    t.match(compare?.run, /--github/, 'changes become annotations');
    const accept = job.steps.find((s) => /report --accept .* --into base/.test(s.run ?? ''));
    t.ok(accept, 'a step accepts the run as the base');
    t.match(
      accept?.if,
      /steps\.compare\.outcome == 'success' \|\| inputs\.accept/,
      'only a clean night, or on request',
    );
    const save = job.steps.find((s) => s.uses?.startsWith('actions/cache/save@'));
    t.equal(save?.with?.path, 'base', 'the saved cache is the accepted base');
    t.equal(save?.if, accept?.if, 'a regressed night never saves its bundle as the base');
    t.ok((wf.on.workflow_dispatch as { inputs: { accept: unknown } }).inputs.accept, 'accept: true by hand');
    const bisect = job.steps.find((s) => /rig -- bisect --scenario "\$s"/.test(s.run ?? ''));
    t.match(bisect?.if, /steps\.compare\.outcome == 'failure'/, 'a regressed night bisects what regressed');
    t.ok(
      job.steps.some((s) => /rig -- mutants/.test(s.run ?? '')),
      'the mutants run every night',
    );
    const series = job.steps.find((s) => /run --series "\$SERIES"/.test(s.run ?? ''));
    t.equal(series?.env?.SERIES, '${{ inputs.series }}', 'a revision by hand, passed through the environment');
    const debug = job.steps.find((s) => /--profile rfc-v2-debian-debug/.test(s.run ?? ''));
    t.ok(debug, 'the debug variant runs every night');
    t.equal(debug?.if, 'always()', 'also after a regressed main run');
    t.equal(debug?.['continue-on-error'], true, 'reported, not failing the night, until it has a base of its own');
    t.match(
      debug?.run,
      /--out "out\/debug-/,
      'its bundle is uploaded, apart from out/run-* that the compare step reads',
    );
  },
);

t.test('.ci/run runs exactly the README test command', async (t) => {
  const test = command(/the tests/);
  t.equal(test, 'npm ci && npm test');
  const ci = readFileSync(join(projectRoot(), '.ci', 'run'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !/^set |^cd /.test(l));
  t.same(ci, [test]);
});
