/** The commands for a changing series: pin a revision, bisect a verdict, run the mutants. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { materializeSeries } from '../kernel/series-input.js';
import { pinSeries, writeProfile } from '../kernel/series-pin.js';
import { loadBundle } from '../report/bundle-diff.js';
import { bisect, bisectTable, signatureById } from '../runner/bisect.js';
import { culprits, culpritsTable, recordCulprits } from '../runner/culprits.js';
import { coverageTable, mutantsTable, runMutants, type MutantsResult } from '../runner/mutants.js';
import { parseJobs } from '../runner/workers.js';
import { MUTANTS } from '../scenarios/mutants.js';
import { reproCommand } from './repro-command.js';
import { chooseAccel } from '../vm/accel.js';
import {
  accelOpt as accel,
  jsonOpt as json,
  kernelInput,
  kernelOpts,
  parallelOpts,
  parallelism,
  type Command,
  type Values,
  defineCommand,
} from './options.js';

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');

/** A whole number option, or an error naming it. */
function intOpt(v: Values, name: string): number | undefined {
  if (v[name] === undefined) return undefined;
  const n = Number(v[name]);
  if (!Number.isInteger(n) || n < 0)
    throw new RigError('usage', `--${name} ${String(v[name])} is not a patch count`, { fix: `--${name} K, K in 0..N` });
  return n;
}

function pinCommand(): Command {
  return defineCommand({
    name: 'series pin',
    summary: 'pin a series (mbox, Message-Id or git range) under kernel/series/, and optionally make a profile of it',
    usage: '<mbox|Message-Id|PATH:BASE..HEAD> --name N [--profile NEW [--from P]]',
    words: '<mbox>',
    details:
      'Writes kernel/series/N.json with the patch id of every patch. With --profile, also writes ' +
      'kernel/profiles/NEW.json: the profile --from (default rfc-v2-debian) with this series.',
    options: {
      name: { type: 'string', help: 'the name of the pinned series' },
      profile: { type: 'string', help: 'also write a profile of this name that uses the series' },
      from: { type: 'string', help: 'the profile to copy (default rfc-v2-debian)' },
    },
    async run(v, pos) {
      if (!pos[0] || typeof v.name !== 'string')
        throw new RigError('usage', 'series pin needs a series and --name', {
          fix: 'dmemfs-rig series pin ./v3.mbox --name rfc-v3',
        });
      const origin = await materializeSeries(pos[0]);
      const { path, def } = await pinSeries(origin.path, v.name);
      process.stdout.write(`${path}: ${def.total} patches of [${def.subjectPrefix}] pinned as ${def.name}\n`);
      if (typeof v.profile === 'string') {
        const p = writeProfile(v.profile, v.from ?? 'rfc-v2-debian', def.name, origin.path);
        process.stdout.write(`${p}: run it with dmemfs-rig run --profile ${v.profile}\n`);
      }
      return 0;
    },
  });
}

/** The accelerator of --accel (or the host's best), said once. */
function announcedAccel(v: { accel?: string | undefined }) {
  const a = chooseAccel(v.accel);
  info(`accelerator: ${a.accel} (${a.reason})`);
  return a;
}

/** Options of the commands that build and run prefixes of the series in rounds (bisect, culprits). */
function prefixRunOpts(what: string, name: string) {
  return {
    jobs: { type: 'string', help: 'prefixes per round, built and run at once (default 1; also DMEMFS_RIG_JOBS)' },
    accel,
    out: { type: 'string', help: `where ${what} go (default out/${name}-<time>)` },
    json,
  } as const;
}

/** What bisect looks for: a scenario (or one of its measurements), or a known signature. */
function checkBisectTarget(v: Record<string, unknown>): void {
  if (typeof v.scenario !== 'string' && typeof v.signature !== 'string')
    throw new RigError('usage', 'bisect needs --scenario or --signature', {
      fix: 'dmemfs-rig bisect --scenario dmemfs-files, or --signature vfio-get-dmem-pfn-null',
    });
  if (typeof v.signature === 'string') signatureById(v.signature);
}

function bisectCommand(): Command {
  return defineCommand({
    name: 'bisect',
    summary:
      'the first patch at which a scenario (one measurement, or a known-failure signature) gets the verdict it has ' +
      'on the whole series',
    usage:
      '--scenario ID [--measurement NAME] | --signature ID; [--profile P] [--series …] [--edit NAME] ' +
      '[--good K] [--bad K] [--jobs N] [--json]',
    details:
      'Builds and runs the prefixes 1..k of the series (binary search; k = 0 is the base without patches). ' +
      'A prefix that does not apply, build or boot is skipped. Trees and builds are cached by content, so a ' +
      'second bisect of the same series reuses them.\n--jobs N tests N prefixes per round, at once (the ' +
      'interval splits into N + 1 parts; their builds take turns in the build directory).\n' +
      '--signature ID bisects where a known failure first reproduces, judged as the judge claims it (its values ' +
      'and its evidence); a prefix where none of its measurements could be taken is "path absent", and a culprit ' +
      'right after one is "present from N, where the path first exists".\n' +
      'Exit 0 when a first patch was found.',
    options: {
      ...kernelOpts,
      scenario: { type: 'string', help: 'the scenario to run on each prefix' },
      measurement: { type: 'string', help: "bisect this measurement's pass/fail instead of the scenario's verdict" },
      signature: { type: 'string', help: 'bisect where this known-failure signature first reproduces' },
      good: { type: 'string', help: 'a prefix whose verdict differs (default 0, the base)' },
      bad: { type: 'string', help: 'the prefix whose verdict is sought (default the whole series)' },
      ...prefixRunOpts('the runs of each prefix', 'bisect'),
    },
    async run(v) {
      checkBisectTarget(v);
      const a = announcedAccel(v);
      const good = intOpt(v, 'good');
      const bad = intOpt(v, 'bad');
      const jobs = parseJobs(v.jobs ?? process.env.DMEMFS_RIG_JOBS) ?? 1;
      const out = String(v.out ?? join('out', `bisect-${stamp()}`));
      const r = await bisect({
        profile: v.profile ?? 'rfc-v2-debian',
        scenario: typeof v.scenario === 'string' ? v.scenario : '',
        ...(typeof v.measurement === 'string' ? { measurement: v.measurement } : {}),
        ...(typeof v.signature === 'string' ? { signature: v.signature } : {}),
        input: kernelInput(v),
        ...(good !== undefined ? { good } : {}),
        ...(bad !== undefined ? { bad } : {}),
        accel: a,
        out,
        jobs,
      });
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'bisect.json'), JSON.stringify(r, null, 2) + '\n');
      process.stdout.write(v.json ? JSON.stringify(r, null, 2) + '\n' : bisectTable(r) + '\n');
      return r.culprit ? 0 : 1;
    },
  });
}

function culpritsCommand(): Command {
  return defineCommand({
    name: 'culprits',
    summary: 'the first patch at which each known-failure signature reproduces (bisect --signature), cached',
    usage: '[--only ID ...] [--record] [--profile P] [--series …] [--jobs N] [--json]',
    details:
      "Bisects every signature of the profile's variant that its series reproduces, each once per series content, " +
      'base and signature definition (the cache: culprit/); a second run on the same series answers from the cache. ' +
      'Runs carry the culprit of each signature in results.json, and `known-failures` prints it.\n' +
      'Exit 1 when a signature got no culprit.',
    options: {
      ...kernelOpts,
      only: { type: 'string', multiple: true, help: 'only these signatures (ids)' },
      record: { type: 'boolean', help: 'write what was found into scenarios/culprits.json (the data the docs read)' },
      ...prefixRunOpts('the runs of the bisects', 'culprits'),
    },
    async run(v) {
      // `--only a b c` is `--only a --only b --only c` (scripts/options.ts trailingValues).
      const only = v.only ?? [];
      for (const id of only) signatureById(id);
      const a = announcedAccel(v);
      const jobs = parseJobs(v.jobs ?? process.env.DMEMFS_RIG_JOBS) ?? 1;
      const out = String(v.out ?? join('out', `culprits-${stamp()}`));
      const rows = await culprits({
        profile: v.profile ?? 'rfc-v2-debian',
        input: kernelInput(v),
        accel: a,
        out,
        jobs,
        only,
      });
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'culprits.json'), JSON.stringify(rows, null, 2) + '\n');
      if (v.record) recordCulprits(rows);
      process.stdout.write(v.json ? JSON.stringify(rows, null, 2) + '\n' : culpritsTable(rows) + '\n');
      return rows.every((r) => r.culprit) ? 0 : 1;
    },
  });
}

function mutantsCommand(): Command {
  return defineCommand({
    name: 'mutants',
    summary: 'the fidelity self-test: the series with deliberate changes, each of which must change its named check',
    usage: '[--only EDIT ...] [--scenario ID ...] [--reference BUNDLE] [--profile P] [--jobs N] [--shard K/N] [--json]',
    details:
      'Runs the scenarios on the series as it is, then once per mutant (scenarios/mutants.ts). A mutant is ' +
      'caught when its named measurement changes as it says and no other verdict does.\nExit 0 when every ' +
      'mutant is caught cleanly.\n--jobs N runs N mutants at once (their kernel builds take turns); --shard K/N ' +
      "runs one part of the mutants, balanced by their scenarios' costs.",
    options: {
      profile: kernelOpts.profile!,
      ...parallelOpts,
      only: { type: 'string', multiple: true, help: 'run only these mutants (their edit names)' },
      scenario: { type: 'string', multiple: true, help: 'the scenarios of every run (default all)' },
      reference: {
        type: 'string',
        help: 'judge against this bundle (a run of the same profile and series) instead of a reference run',
      },
      accel,
      out: { type: 'string', help: 'result directory (default out/mutants-<time>)' },
      json,
    },
    async run(v) {
      const only = v.only;
      const unknown = (only ?? []).filter((n) => !MUTANTS.some((m) => m.edit === n));
      if (unknown.length)
        throw new RigError('unknown-mutant', `no mutant ${unknown.join(', ')}`, {
          fix: `known: ${MUTANTS.map((m) => m.edit).join(', ')}`,
        });
      const spread = parallelism(v, []);
      const a = announcedAccel(v);
      const out = String(v.out ?? join('out', `mutants-${stamp()}`));
      const r = await runMutants({
        profile: v.profile ?? 'rfc-v2-debian',
        accel: a,
        mutants: only ? MUTANTS.filter((m) => only.includes(m.edit)) : MUTANTS,
        ...(v.scenario ? { scenarios: v.scenario } : {}),
        ...(v.reference ? { reference: loadBundle(v.reference) } : {}),
        out,
        // Without --jobs, one mutant at a time: each builds a kernel, and builds take the cores.
        jobs: v.jobs === undefined && !process.env.DMEMFS_RIG_JOBS ? 1 : spread.jobs,
        ...(spread.shard ? { shard: spread.shard } : {}),
        costs: spread.costs,
      });
      const md = writeMutants(out, r);
      process.stdout.write(v.json ? JSON.stringify(r, null, 2) + '\n' : md);
      return mutantsPassed(r) ? 0 : 1;
    },
  });
}

/** mutants.json and mutants.md in `out`; the Markdown, also for stdout. */
export function writeMutants(out: string, r: MutantsResult): string {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'mutants.json'), JSON.stringify(r, null, 2) + '\n');
  const md =
    `${mutantsTable(r.outcomes)}\n\n${coverageTable(r.coverage)}\n\n` +
    `${r.outcomes.filter((o) => o.ok).length} of ${r.outcomes.length} mutants caught cleanly; ` +
    `time: ${r.seconds.toFixed(0)} s\n`;
  writeFileSync(join(out, 'mutants.md'), md);
  return md;
}

/** Every mutant caught, and none changed another verdict (a skipped one only when it changed nothing). */
export const mutantsPassed = (r: MutantsResult): boolean =>
  r.outcomes.every((o) => o.ok || (o.skipped !== undefined && !o.collateral.length));

export function seriesCommands(): Command[] {
  return [pinCommand(), bisectCommand(), culpritsCommand(), reproCommand(), mutantsCommand()];
}
