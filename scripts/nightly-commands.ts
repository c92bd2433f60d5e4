/**
 * The nightly's steps as commands: each one's exit status is the step's, and each writes its
 * Markdown (and JSON) into the bundle itself, so the workflow needs no pipes, no `ls | tail` and
 * no inline scripts (ci/nightly.yml). A regression fails `nightly compare`; an uncaught mutant
 * fails `nightly mutants`; `nightly accept` makes a bundle the base.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageOf, RigError } from '../core/errors.js';
import { info, warn } from '../core/log.js';
import { withRecordedCulprits, writeChecks, writeKcidb } from '../report/findings.js';
import { writeMails } from '../report/mail.js';
import { loadProfile } from '../kernel/profile.js';
import { acceptBundle, githubAnnotations, recoverBase } from '../report/baseline.js';
import { mergeBundles } from '../report/merge.js';
import { loadMutantShards, mergeMutantShards } from '../report/merge-mutants.js';
import { compareRuns, findingsMoved, loadBundle, renderDiff, type RunDiff } from '../report/bundle-diff.js';
import { bisect, bisectTable } from '../runner/bisect.js';
import { referenceGap, runMutants } from '../runner/mutants.js';
import { parseJobs } from '../runner/workers.js';
import { MUTANTS } from '../scenarios/mutants.js';
import { chooseAccel } from '../vm/accel.js';
import {
  defineCommand,
  accelOpt,
  kernelInput,
  kernelOpts,
  parallelism,
  parallelOpts,
  type Command,
  type Values,
} from './options.js';
import { mutantsPassed, writeMutants } from './series-commands.js';

const bundleOpt = {
  type: 'string' as const,
  help: 'the bundle of the night (default: the newest out/run-* directory)',
};

/** The bundle a step works on: --bundle, else the newest out/run-* (names sort by their time). */
const baseOpt = { type: 'string', help: 'the accepted base directory (default base)' } as const;

export function nightBundle(v: Values, root = 'out'): string {
  if (typeof v.bundle === 'string') {
    if (!existsSync(join(v.bundle, 'results.json')))
      throw new RigError('bad-bundle', `${v.bundle} holds no results.json`, {
        fix: 'give a bundle written by `dmemfs-rig run --out DIR`',
      });
    return v.bundle;
  }
  const runs = existsSync(root)
    ? readdirSync(root)
        .filter((d) => d.startsWith('run-') && statSync(join(root, d)).isDirectory())
        .filter((d) => existsSync(join(root, d, 'results.json')))
        .sort()
    : [];
  if (!runs.length)
    throw new RigError('no-bundle', `no bundle under ${root}/ (out/run-*/results.json)`, {
      fix: 'run the main job first (`npm start` writes out/run-<time>/), or pass --bundle DIR',
    });
  return join(root, runs.at(-1)!);
}

function compareCommand(): Command {
  return defineCommand({
    name: 'nightly compare',
    summary: "compare the night's bundle with the accepted base; exit 1 on a regression",
    usage: '[--base DIR] [--bundle DIR] [--tolerance 0.1]',
    details:
      'Writes compare.md and compare.json into the bundle and prints the Markdown with GitHub annotations. ' +
      'Without an accepted base (DIR/accepted.json) the night becomes the first one: exit 0.',
    options: {
      base: baseOpt,
      bundle: bundleOpt,
      tolerance: { type: 'string', help: 'relative change that counts as moved (default 0.1)' },
    },
    async run(v) {
      const bundle = nightBundle(v);
      const base = v.base ?? 'base';
      recoverBase(base);
      const tolerance = v.tolerance === undefined ? 0.1 : Number(v.tolerance);
      if (!(tolerance >= 0))
        throw new RigError('usage', `--tolerance ${String(v.tolerance)} is not a non-negative number`);
      if (!existsSync(join(base, 'accepted.json'))) {
        const md = `no accepted base in ${base}/ yet: ${bundle} becomes the first\n`;
        writeFileSync(join(bundle, 'compare.md'), md);
        process.stdout.write(md);
        return 0;
      }
      const d: RunDiff = compareRuns(loadBundle(base), loadBundle(bundle), {
        tolerance,
        names: [`${base} (accepted)`, bundle],
      });
      const md = renderDiff(d, tolerance);
      writeFileSync(join(bundle, 'compare.md'), md);
      writeFileSync(join(bundle, 'compare.json'), `${JSON.stringify(d, null, 2)}\n`);
      process.stdout.write(
        md +
          githubAnnotations(d)
            .map((l) => `${l}\n`)
            .join(''),
      );
      return d.regressions ? 1 : 0;
    },
  });
}

function acceptCommand(): Command {
  return defineCommand({
    name: 'nightly accept',
    summary: "make the night's bundle the accepted base",
    usage: '[--bundle DIR] [--into base] [--reason TEXT]',
    options: {
      bundle: bundleOpt,
      into: baseOpt,
      reason: { type: 'string', help: 'why it is accepted (recorded in accepted.json)' },
    },
    async run(v) {
      const bundle = nightBundle(v);
      const into = v.into ?? 'base';
      const a = acceptBundle(bundle, into, typeof v.reason === 'string' ? v.reason : 'a night without regressions');
      process.stdout.write(`${into}: now the accepted base (${bundle}; ${a.reason})\n`);
      return 0;
    },
  });
}

/** The scenarios that regressed in a compare.json (status, expectation, skip or signature changes). */
export function regressedScenarios(d: RunDiff): string[] {
  const lists: Array<Array<{ scenario: string; regression: boolean }>> = [
    d.statusChanges,
    d.expectationChanges,
    d.moved,
    d.unchecked,
    d.swapped,
    d.unheld,
  ];
  return [...new Set(lists.flatMap((l) => l.filter((c) => c.regression).map((c) => c.scenario)))];
}

function bisectRegressionsCommand(): Command {
  return defineCommand({
    name: 'nightly bisect-regressions',
    summary: "bisect every scenario that regressed in the bundle's compare.json; the tables into bisect.md",
    usage: '[--bundle DIR] [--profile P] [--series …] [--jobs N]',
    details:
      'Exit 0 when every regressed scenario was bisected (found or not), 1 when a bisect could not run.\n' +
      '--jobs N tests N prefixes per round at once (a k-ary bisect).',
    options: {
      ...kernelOpts,
      bundle: bundleOpt,
      accel: accelOpt,
      jobs: { type: 'string', help: 'prefixes per round, built and run at once (default 1; also DMEMFS_RIG_JOBS)' },
    },
    async run(v) {
      const bundle = nightBundle(v);
      const file = join(bundle, 'compare.json');
      if (!existsSync(file))
        throw new RigError('no-compare', `${file} is missing: nothing says what regressed`, {
          fix: 'run `dmemfs-rig nightly compare` on the bundle first',
        });
      const diff = loadDiff(file);
      const ids = regressedScenarios(diff);
      const a = chooseAccel(v.accel);
      const jobs = parseJobs(v.jobs ?? process.env.DMEMFS_RIG_JOBS) ?? 1;
      const parts: string[] = [`# bisect of what regressed in ${bundle}`, ''];
      let failed = 0;
      for (const id of ids) {
        info(`nightly: bisecting ${id}`);
        try {
          const r = await bisect({
            profile: v.profile ?? 'rfc-v2-debian',
            scenario: id,
            input: kernelInput(v),
            accel: a,
            out: join(bundle, `bisect-${id}`),
            jobs,
          });
          writeFileSync(join(bundle, `bisect-${id}`, 'bisect.json'), `${JSON.stringify(r, null, 2)}\n`);
          parts.push(`## ${id}`, '', bisectTable(r), '');
        } catch (e) {
          failed++;
          parts.push(`## ${id}`, '', `bisect could not run: ${(e as Error).message.split('\n')[0]}`, '');
        }
      }
      if (!ids.length) parts.push('(no scenario regressed)');
      const md = `${parts.join('\n')}\n`;
      writeFileSync(join(bundle, 'bisect.md'), md);
      process.stdout.write(md);
      return failed ? 1 : 0;
    },
  });
}

function loadDiff(file: string): RunDiff {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunDiff;
  } catch (e) {
    throw new RigError('bad-compare', `cannot read ${file}: ${(e as Error).message}`, {
      fix: 'run `dmemfs-rig nightly compare` again',
    });
  }
}

function mutantsNightCommand(): Command {
  return defineCommand({
    name: 'nightly mutants',
    summary: 'every mutant of the profile (or one shard of them); exit 1 when one is not caught cleanly',
    usage: '[--bundle DIR | --out DIR] [--shard K/N] [--jobs N] [--profile P]',
    details:
      "With --bundle (or the newest out/run-*), the night's own run is the reference where it ran every " +
      'scenario a mutant needs, and the results go into BUNDLE/mutants/ and BUNDLE/mutants.md. With --out DIR ' +
      'and no bundle (a leg of the nightly matrix), the mutants run their own reference and write DIR/mutants.json ' +
      'and DIR/mutants.md; `nightly mutants-merge` joins the legs.',
    options: {
      profile: kernelOpts.profile!,
      bundle: bundleOpt,
      out: { type: 'string', help: 'write here instead of into the bundle (a new or empty directory)' },
      accel: accelOpt,
      ...parallelOpts,
    },
    async run(v) {
      const a = chooseAccel(v.accel);
      const profile = v.profile ?? 'rfc-v2-debian';
      const { jobs, shard, costs } = parallelism(v, []);
      const alone = typeof v.out === 'string' && typeof v.bundle !== 'string';
      const bundle = alone ? undefined : nightBundle(v);
      // The night's own run is the reference when it ran every scenario a mutant needs, unedited.
      const night = bundle ? loadBundle(bundle) : undefined;
      const variant = loadProfile(profile).variant;
      const needed = [...new Set(MUTANTS.filter((m) => m.variant === variant).map((m) => m.scenario))];
      const gap = night ? referenceGap(night, profile, needed) : 'none given (--out without --bundle)';
      info(
        gap
          ? `mutants: a reference run of their own (the night's bundle: ${gap})`
          : `mutants: judged against ${bundle}`,
      );
      const out = alone ? String(v.out) : join(bundle!, 'mutants');
      const r = await runMutants({
        profile,
        accel: a,
        mutants: MUTANTS,
        out,
        // Without --jobs, one mutant at a time: each builds a kernel, and builds take the cores.
        jobs: v.jobs === undefined && !process.env.DMEMFS_RIG_JOBS ? 1 : jobs,
        costs,
        ...(shard ? { shard } : {}),
        ...(gap || !night ? {} : { reference: night }),
      });
      const md = writeMutants(out, r);
      if (bundle) writeFileSync(join(bundle, 'mutants.md'), md);
      process.stdout.write(md);
      return mutantsPassed(r) ? 0 : 1;
    },
  });
}

function mergeNightCommand(): Command {
  return defineCommand({
    name: 'nightly merge',
    summary: "one bundle from the legs' shard bundles under a directory (one subdirectory each)",
    usage: '--shards DIR --out DIR',
    details:
      'The shards are every subdirectory of --shards that holds a results.json (how the merge job downloads ' +
      "the legs' artifacts); the refusals are report --merge's: a shard missing or twice, another kernel, " +
      'series, image, rig commit or profile.',
    options: {
      shards: { type: 'string', help: "the directory holding the legs' bundles" },
      out: { type: 'string', help: 'the merged bundle (a new directory)' },
    },
    async run(v) {
      const root = required(v, 'shards', 'nightly merge --shards shards/main --out out/run-night');
      const out = required(v, 'out', 'nightly merge --shards shards/main --out out/run-night');
      const dirs = subdirsWith(root, 'results.json');
      if (!dirs.length)
        throw new RigError('no-shards', `no shard bundle under ${root}/ (DIR/*/results.json)`, {
          fix: 'download the legs of `run --shard K/N` into one directory, one subdirectory each',
        });
      const run = mergeBundles(dirs, out);
      process.stdout.write(`${out}: merged ${run.merged?.length ?? 0} shards, ${run.scenarios.length} scenarios\n`);
      return 0;
    },
  });
}

/**
 * Mails, patchwork checks and KCIDB JSON into BUNDLE/findings/, each part on its own, when the
 * series changed or a signature moved against the accepted base (or there is none yet).
 */
function findingsCommand(): Command {
  return defineCommand({
    name: 'nightly findings',
    summary: "the night's findings for the list, patchwork and KCIDB, into the bundle (reviewed and sent by hand)",
    usage: '[--bundle DIR] [--base DIR] [--always]',
    details:
      'Writes BUNDLE/findings/mail/*.eml (report --mail, each with the reproducer the shard proved, ' +
      'BUNDLE/repro/), checks.json (report --checks) and kcidb.json (report --kcidb), and findings/why.txt: ' +
      'what moved against the accepted base (no base yet, the series changed, a finding came or went or changed ' +
      'its culprit, a signature outcome changed). ' +
      'When nothing moved, only why.txt is written, saying so (--always writes them all the same). A part that ' +
      'cannot be made (no mbox to reply into) is said and skipped; exit 1 only when the KCIDB document breaks ' +
      'its schema.',
    options: {
      bundle: bundleOpt,
      base: baseOpt,
      always: { type: 'boolean', help: 'write the findings even when nothing moved' },
    },
    async run(v) {
      const bundle = nightBundle(v);
      const run = withRecordedCulprits(loadBundle(bundle));
      const base = v.base ?? 'base';
      // Both with the culprits recorded now: a mail's thread moves when the record does, not between loads.
      const was = existsSync(join(base, 'accepted.json')) ? withRecordedCulprits(loadBundle(base)) : undefined;
      const moved = findingsMoved(was, run);
      const dir = join(bundle, 'findings');
      mkdirSync(dir, { recursive: true });
      const why = moved.length
        ? `written: ${moved.join('; ')}`
        : `nothing moved against the accepted base in ${base}/ (series and every signature outcome)` +
          (v.always ? ': written all the same (--always)' : ': not written again (--always writes them)');
      info(`findings: ${why}`);
      if (!moved.length && !v.always) {
        writeFileSync(join(dir, 'why.txt'), why + '\n');
        return 0;
      }
      const made: string[] = [];
      const parts: Array<[string, () => Promise<string>]> = [
        ['mail', async () => `${(await writeMails(bundle, run, join(dir, 'mail'))).length} mail(s)`],
        ['checks', async () => `${writeChecks(bundle, run, join(dir, 'checks.json'), null).length} check(s)`],
        ['kcidb', async () => `${(await writeKcidb(bundle, run, join(dir, 'kcidb.json'))).tests.length} test(s)`],
      ];
      for (const [name, make] of parts) {
        try {
          const what = await make();
          made.push(`${name}: ${what}`);
          info(`findings: ${name}: ${what} in ${dir}`);
        } catch (e) {
          made.push(`${name}: not written: ${messageOf(e).split('\n')[0]}`);
          writeFileSync(join(dir, 'why.txt'), [why, ...made].join('\n') + '\n');
          if (name === 'kcidb') throw e;
          warn(`findings: ${name} not written: ${messageOf(e).split('\n')[0]}`);
        }
      }
      writeFileSync(join(dir, 'why.txt'), [why, ...made].join('\n') + '\n');
      return 0;
    },
  });
}

function mutantsMergeCommand(): Command {
  return defineCommand({
    name: 'nightly mutants-merge',
    summary: "one mutants result from the legs' (DIR/*/mutants.json); exit 1 when one is not caught cleanly",
    usage: '--shards DIR --out DIR',
    options: {
      shards: { type: 'string', help: "the directory holding the mutants legs' results" },
      out: { type: 'string', help: 'where mutants.json and mutants.md go' },
    },
    async run(v) {
      const root = required(v, 'shards', 'nightly mutants-merge --shards shards/mutants --out out/mutants');
      const out = required(v, 'out', 'nightly mutants-merge --shards shards/mutants --out out/mutants');
      const r = mergeMutantShards(loadMutantShards(root));
      const md = writeMutants(out, r);
      process.stdout.write(md);
      return mutantsPassed(r) ? 0 : 1;
    },
  });
}

function required(v: Values, name: string, example: string): string {
  const x = v[name];
  if (typeof x !== 'string' || !x)
    throw new RigError('usage', `--${name} DIR is required`, { fix: `dmemfs-rig ${example}` });
  return x;
}

/** The subdirectories of `root` holding `file`, sorted. */
function subdirsWith(root: string, file: string): string[] {
  return existsSync(root)
    ? readdirSync(root)
        .map((d) => join(root, d))
        .filter((d) => statSync(d).isDirectory() && existsSync(join(d, file)))
        .sort()
    : [];
}

export function nightlyCommands(): Command[] {
  return [
    compareCommand(),
    acceptCommand(),
    bisectRegressionsCommand(),
    mutantsNightCommand(),
    mergeNightCommand(),
    mutantsMergeCommand(),
    findingsCommand(),
  ];
}
