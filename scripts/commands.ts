/** The subcommands of dmemfs-rig. Each body is small: the work lives in the stage modules. */
import { median } from '../core/stats.js';
import { chooseAccel } from '../vm/accel.js';
import { info } from '../core/log.js';
import { setupHost, HOST_PACKAGES } from './setup-host.js';
import { benchBootOnce, bootFirstGuest, prepareFirstGuest } from '../runner/first-guest.js';
import { runKernelPipeline, runTreeStages, type PipelineOptions } from '../kernel/pipeline.js';
import {
  identifySeries,
  parseSeries,
  readMbox,
  seriesDefinition,
  seriesDistance,
  verifySeries,
} from '../kernel/series.js';
import { expandPath, listProfiles, loadProfile } from '../kernel/profile.js';
import { acquireSource } from '../kernel/source.js';
import { checkoutBase } from '../kernel/tree.js';
import { applySeries, formatApplyReport } from '../kernel/apply.js';
import { resolveSeries } from '../kernel/pipeline.js';
import { benchBuild } from '../runner/bench-build.js';
import { prepareL1Image } from '../runner/l1-guest.js';
import { buildHelpers } from '../images/guest-tools.js';
import { runScenarios } from '../runner/scenario-runner.js';
import { runSummary, toTap } from '../report/tap.js';
import { SCENARIOS, selectScenarios } from '../scenarios/catalog.js';
import { comparisonMarkdown, comparisonTable } from '../report/comparison-table.js';
import { compareRuns, loadBundle, renderDiff } from '../report/bundle-diff.js';
import { acceptBundle, githubAnnotations } from '../report/baseline.js';
import { knownFailuresMarkdown } from '../report/known-failures.js';
import { writeDocs } from './docs.js';
import { renderRepeat, repeatRuns } from '../report/repeat.js';
import { writeMails } from '../report/mail.js';
import { withRecordedCulprits, writeChecks, writeKcidb } from '../report/findings.js';
import { rerender } from '../report/bundle.js';
import { mergeBundles } from '../report/merge.js';
import { parseJobs } from '../runner/workers.js';
import { seriesCommands } from './series-commands.js';
import { shellCommand } from './shell-command.js';
import { nightlyCommands } from './nightly-commands.js';
import { CRASH_CASES, recordCrashes } from '../runner/crash-corpus.js';
import {
  accelOpt,
  jsonOpt,
  kernelInput,
  kernelOpts,
  parallelOpts,
  parallelism,
  profileOpt,
  type Command,
  type OptionSpec,
  type Values,
  type ValuesOf,
  defineCommand,
} from './options.js';

export type { Command, OptionSpec };
import { benchRun } from '../runner/bench-run.js';
import { NOT_ENTRIES, freeMiB, listCache, pruneCache, verifyCache } from '../core/cache.js';
import { cacheRoot } from '../core/paths.js';
import { checkDmemTokens } from '../scenarios/dmem-param.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { RigError } from '../core/errors.js';
import { tmpdir } from 'node:os';
import { proofTable, reproduce, reproducible } from '../runner/repro.js';
import type { RunResults } from '../core/results.js';
import type { AccelChoice } from '../vm/accel.js';
import type { KernelInput } from '../kernel/pipeline.js';

/** run --repro: the reproducers of what the run reproduced, each proven; whether every proof held. */
async function reproducersOfRun(r: RunResults, out: string, accel: AccelChoice, input: KernelInput): Promise<boolean> {
  const ids = reproducible(r);
  if (!ids.length) {
    info('repro: the run reproduced no signature that has a standalone reproducer');
    return true;
  }
  const done = await reproduce({
    ids,
    out: join(out, 'repro'),
    kernels: { profile: r.profile, input, baseline: 'baseline-debian' },
    accel,
    prove: true,
    bundle: { path: out, run: r },
  });
  for (const d of done) if (d.proof) process.stdout.write(`\n${proofTable(d.id, d.proof)}\n`);
  return done.every((d) => d.proof?.every((p) => p.ok));
}

export const COMMANDS: Command[] = [
  defineCommand({
    name: 'series verify',
    summary: 'check an mbox: cover letter, patches 1..N of one version, each intact by patch id',
    usage: '<mbox> [--series-name NAME] [--json]',
    words: '<mbox>',
    details:
      'Exit 0 when complete and intact; otherwise non-zero, naming each missing, extra, duplicate or altered ' +
      'patch.\nWithout --series-name the pinned series (kernel/series/*.json) with most matching patch ids is used.',
    options: {
      'series-name': { type: 'string', help: 'pinned series to check against (rfc-v2, rfc-v2-on-debian-5.10.223)' },
      json: jsonOpt,
    },
    async run(v, pos) {
      if (!pos[0]) throw new Error('series verify needs the path of an mbox');
      const parsed = await parseSeries(readMbox(pos[0]));
      const def = v['series-name'] ? seriesDefinition(String(v['series-name'])) : identifySeries(parsed);
      const r = verifySeries(parsed, def);
      if (v.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        process.stdout.write(
          `${pos[0]}: series ${def.name}: ${parsed.patches.length} patches, cover letter ` +
            `${r.cover ? 'present' : 'missing'}\n`,
        );
        for (const p of r.patches)
          if (p.verdict !== 'ok')
            process.stdout.write(`  patch ${String(p.number).padStart(2)}: ${p.verdict.toUpperCase()}  ${p.title}\n`);
        for (const pr of r.problems) process.stdout.write(`  problem: ${pr}\n`);
        process.stdout.write(
          r.ok
            ? `OK: complete and intact (${r.patches.length} patch ids match)\n`
            : `FAILED: ${r.problems.length} problem(s)\n`,
        );
      }
      return r.ok ? 0 : 1;
    },
  }),
  defineCommand({
    name: 'series compare',
    summary: 'how far a rebased series is from the original, patch by patch',
    usage: '<original.mbox> <rebased.mbox> [--json]',
    words: '<original> <rebased>',
    options: { json: jsonOpt },
    async run(v, pos) {
      if (pos.length < 2) throw new Error('series compare needs two mboxes: original and rebased');
      const rows = seriesDistance(await parseSeries(readMbox(pos[0]!)), await parseSeries(readMbox(pos[1]!)));
      if (v.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      else {
        const differ = rows.filter((r) => !r.identical);
        const ctx = differ.filter((r) => r.kind === 'context-only').length;
        process.stdout.write(
          `${rows.length} patches: ${rows.length - differ.length} identical, ${ctx} differ in context only, ` +
            `${differ.length - ctx} differ in content\n`,
        );
        for (const r of differ)
          process.stdout.write(
            `  ${String(r.number).padStart(2)}  ${r.kind.padEnd(12)} -${r.onlyInOriginal}/+${r.onlyInRebased} ` +
              `changed lines  ${r.title}${r.note ? `\n      ${r.note.slice(0, 160)}` : ''}\n`,
          );
      }
      return 0;
    },
  }),
  defineCommand({
    name: 'series apply',
    summary:
      "apply a profile's series to its source and print the per-patch report (all patches, even after a failure)",
    usage: '[--profile P] [--series mbox|Message-Id|PATH:BASE..HEAD] [--base path] [--edit NAME] [--json]',
    details:
      'Reports clean / offset / fuzz / failed per patch with files and hunks. Exit 0 only when every patch ' +
      'applies.\nThe tree is a scratch copy; the build pipeline keeps its own.',
    options: { ...kernelOpts, json: jsonOpt },
    async run(v) {
      const profile = loadProfile(v.profile ?? 'rfc-v2-debian');
      const input = kernelInput(v);
      const series = await resolveSeries(profile, input);
      if (!series) throw new RigError('no-series', `profile ${profile.name} has no series`, { fix: 'pass --series' });
      const source = await acquireSource(profile.source, input.base);
      const dir = join(mkdtempSync(join(tmpdir(), 'rig-series-apply-')), 'src');
      try {
        await checkoutBase(source, dir);
        const r = await applySeries(dir, series.name, source.baseCommit, series.parsed.patches, { keepGoing: true });
        process.stdout.write(v.json ? JSON.stringify(r, null, 2) + '\n' : formatApplyReport(r) + '\n');
        return r.ok ? 0 : 1;
      } finally {
        rmSync(join(dir, '..'), { recursive: true, force: true });
      }
    },
  }),
  defineCommand({
    name: 'kernel build',
    summary:
      'run the kernel pipeline of a profile: series verified, source, patched tree, config verified, bzImage (cached)',
    usage:
      '[--profile P] [--series mbox|Message-Id|PATH:BASE..HEAD] [--base path] [--edit NAME] [--cc gcc-12] [--json]',
    options: {
      ...kernelOpts,
      cc: { type: 'string', help: 'compiler (default from the profile: gcc)' },
      json: jsonOpt,
    },
    async run(v) {
      const r = await runKernelPipeline(pipelineOptions(v));
      if (v.json)
        process.stdout.write(
          JSON.stringify(
            { dir: r.build.dir, hit: r.build.hit, manifest: r.build.manifest, applyReport: r.tree.report },
            null,
            2,
          ) + '\n',
        );
      else {
        if (r.tree.report) process.stdout.write(formatApplyReport(r.tree.report) + '\n');
        const m = r.build.manifest;
        const how = r.build.hit ? 'cached' : `built in ${m.seconds.build.toFixed(0)} s, ${m.objectsCompiled} objects`;
        process.stdout.write(`kernel ${m.release}: ${r.build.bzImage} (${how})\n`);
      }
      return 0;
    },
  }),
  defineCommand({
    name: 'kernel tree',
    summary: 'the pipeline up to the patched tree: series verified, source, series applied (cached); no build',
    usage: '[--profile P] [--series mbox|Message-Id|PATH:BASE..HEAD] [--base path] [--edit NAME] [--json]',
    options: { ...kernelOpts, json: jsonOpt },
    async run(v) {
      const r = await runTreeStages(pipelineOptions(v));
      if (v.json)
        process.stdout.write(
          JSON.stringify(
            { dir: r.tree.dir, hit: r.tree.hit, headCommit: r.tree.headCommit, applyReport: r.tree.report },
            null,
            2,
          ) + '\n',
        );
      else
        process.stdout.write(
          `${r.tree.report ? `${formatApplyReport(r.tree.report)}\n` : ''}tree ${r.tree.dir} at ` +
            `${r.tree.headCommit.slice(0, 12)}${r.tree.hit ? ' (cached)' : ''}\n`,
        );
      return 0;
    },
  }),
  defineCommand({
    name: 'image l1',
    summary: 'build (or reuse) the first-level host image from Debian packages and print its manifest',
    usage: '[--json]',
    options: { json: jsonOpt },
    async run(v) {
      const t0 = Date.now();
      const img = await prepareL1Image();
      const secs = (Date.now() - t0) / 1000;
      if (v.json)
        process.stdout.write(
          JSON.stringify({ path: img.path, key: img.key, hit: img.hit, seconds: secs, manifest: img.manifest }) + '\n',
        );
      else {
        process.stdout.write(
          `${img.path} (${img.hit ? 'from cache' : 'built'} in ${secs.toFixed(1)} s): ` +
            `${img.manifest.packages.length} packages, ${img.manifest.contentMiB} MiB content, ` +
            `${img.manifest.imageMiB} MiB image\n`,
        );
        for (const p of img.manifest.requested)
          process.stdout.write(`  ${p} ${img.manifest.packages.find((x) => x.name === p)?.version ?? '?'}\n`);
      }
      return 0;
    },
  }),
  defineCommand({
    name: 'image helpers',
    summary: 'build (or reuse) the static in-guest helpers and print where they are',
    usage: '',
    async run() {
      const h = await buildHelpers();
      for (const [n, p] of Object.entries(h.paths)) process.stdout.write(`${n.padEnd(14)} ${p}\n`);
      return 0;
    },
  }),
  defineCommand({
    name: 'run',
    summary: 'the main job: kernel pipeline, L1 image, every scenario; results.json and TAP in --out',
    usage:
      '[--profile P] [--series mbox|Message-Id|PATH:BASE..HEAD] [--base path] [--edit NAME ...] [--scenario ID ...] ' +
      '[--accel kvm|tcg] [--jobs N] [--shard K/N] [--costs DIR] [--out DIR] [--repro] [--record] [--list]',
    details:
      'Each scenario passes, fails, is skipped with its reason, or is a known failure of the series (with ' +
      "evidence).\n--series runs another revision of the series, or the profile's with local changes: it " +
      'need not be pinned; its provenance against the nearest pinned series goes into the bundle.\n--edit runs ' +
      'the series with a named change from kernel/edits.ts (a local fix, say); a known failure it fixes is ' +
      'reported as "no longer reproduces".\n--jobs N runs independent scenarios at once, each worker with its own ' +
      'guest; scenarios that share a boot stay on one worker. --shard K/N runs one part of a partition balanced ' +
      'by cost; `report --merge` makes one bundle of the shards.\nExit 0 when no scenario failed.',
    options: {
      ...kernelOpts,
      ...parallelOpts,
      scenario: { type: 'string', multiple: true, help: 'run only these scenarios (repeatable)' },
      accel: accelOpt,
      out: { type: 'string', help: 'result directory (default out/run-<time>)' },
      list: { type: 'boolean', help: 'list the scenarios and what each proves' },
      repro: {
        type: 'boolean',
        help: 'then write a standalone reproducer of every signature it reproduced and prove it (OUT/repro/)',
      },
      record: {
        type: 'boolean',
        help: "record every boot's commands, their results and its console (OUT/recordings/, for replay tests)",
      },
    },
    async run(v) {
      if (v.list) {
        for (const s of SCENARIOS)
          process.stdout.write(
            `${s.id}\n  ${s.title}\n  proves: ${s.proves}\n  needs: ${s.needs.join(', ') || 'nothing special'}\n`,
          );
        return 0;
      }
      const scenarios = selectScenarios(v.scenario);
      const spread = parallelism(v, scenarios);
      const accel = chooseAccel(v.accel);
      info(`accelerator: ${accel.accel} (${accel.reason})`);
      const out = String(v.out ?? join('out', `run-${new Date().toISOString().replace(/[:.]/g, '-')}`));
      const r = await runScenarios({
        profile: v.profile ?? 'rfc-v2-debian',
        accel,
        scenarios,
        out,
        input: kernelInput(v),
        ...spread,
        ...(v.record ? { record: true } : {}),
      });
      process.stdout.write(toTap(r));
      process.stdout.write(`\n${comparisonMarkdown(comparisonTable(r.scenarios))}\n\n`);
      process.stdout.write(
        `${runSummary(r)}\n# bundle: ${out} (report.html, report.md, results.json, ` + `junit.xml, consoles/)\n`,
      );
      const proofs = v.repro ? await reproducersOfRun(r, out, accel, kernelInput(v)) : true;
      return r.scenarios.some((s) => s.status === 'fail') || !proofs ? 1 : 0;
    },
  }),
  defineCommand({
    name: 'report',
    summary: "render a bundle's report again, validate it, compare two bundles, or accept one as the base",
    usage:
      'BUNDLE | --compare A B [--tolerance 0.1] [--json] [--github] | --validate BUNDLE | --accept BUNDLE --into DIR ' +
      '| --merge SHARD... --out DIR | --repeat BUNDLE... | --mail BUNDLE [--out DIR] | --checks BUNDLE [--out FILE] ' +
      '| --kcidb BUNDLE [--out FILE]',
    words: 'BUNDLE ..., or the bundles of --compare, --merge, --repeat',
    details:
      'A bundle is the directory `run --out DIR` writes. --compare exits 1 when a scenario, an expectation or a ' +
      'held value regressed; a known failure that no longer reproduces is listed apart and does not fail. ' +
      'A (the base) may be a directory made by --accept. --accept makes BUNDLE the accepted base in DIR. ' +
      '--merge makes one bundle of the shards of a run (run --shard K/N), refusing shards of another kernel, ' +
      'series, image, rig commit or profile, and a shard twice or missing. --repeat puts runs of the same kernel ' +
      "side by side (each scenario's status in each, each run's time) as Markdown and exits 1 when a status differs.",
    options: {
      repeat: { type: 'boolean', help: 'runs of the same kernel side by side; exit 1 when a status differs' },
      kcidb: {
        type: 'boolean',
        help: 'BUNDLE as KCIDB v5 JSON, schema-checked (into --out FILE, default BUNDLE/kcidb.json)',
      },
      checks: {
        type: 'boolean',
        help: 'one patchwork check per patch of BUNDLE as JSON (into --out FILE, default BUNDLE/checks.json)',
      },
      'target-url': { type: 'string', help: "the checks' target_url (where the bundle is published)" },
      mail: {
        type: 'boolean',
        help: "one .eml per finding of BUNDLE, replying to its culprit patch's mail (into --out, default BUNDLE/mail)",
      },
      merge: { type: 'boolean', help: 'merge the shard bundles given into one bundle (with --out DIR)' },
      out: { type: 'string', help: 'where --merge writes the merged bundle (a new directory)' },
      compare: { type: 'boolean', help: 'compare bundle A (before, or an accepted base) with bundle B (after)' },
      tolerance: { type: 'string', help: 'relative change that counts as moved (default 0.1)' },
      validate: { type: 'boolean', help: 'check results.json against the schema' },
      accept: { type: 'boolean', help: 'make BUNDLE the accepted base (with --into DIR)' },
      into: { type: 'string', help: 'the accepted base directory' },
      reason: { type: 'string', help: 'why the bundle is accepted (recorded in accepted.json)' },
      github: { type: 'boolean', help: 'also print GitHub Actions annotations' },
      json: jsonOpt,
    },
    async run(v, pos) {
      if (v.compare) return compareCommand(v, pos);
      if (v.accept) return acceptCommand(v, pos);
      if (v.merge) return mergeCommand(v, pos);
      if (v.repeat) return repeatCommand(pos);
      if (v.mail) return mailCommand(v, pos);
      if (v.checks) return checksCommand(v, pos);
      if (v.kcidb) return kcidbCommand(v, pos);
      if (pos.length !== 1)
        throw new RigError('usage', 'report needs one bundle directory', { fix: 'dmemfs-rig report out/run-...' });
      const run = loadBundle(pos[0]!);
      if (v.validate) {
        process.stdout.write(
          `${pos[0]}: results.json matches the schema (${run.scenarios.length} scenarios, ${run.boots.length} boots)\n`,
        );
        return 0;
      }
      rerender(pos[0]!);
      process.stdout.write(`${join(pos[0]!, 'report.html')}\n${join(pos[0]!, 'report.md')}\n`);
      return 0;
    },
  }),
  defineCommand({
    name: 'docs',
    summary: 'write the generated docs: docs/cli.md from the commands, and the tables the other pages take from data',
    usage: '[--check]',
    details: 'With --check nothing is written: exit 1 naming each page that differs from what its generator writes.',
    options: { check: { type: 'boolean', help: 'only say which pages are stale' } },
    async run(v) {
      const stale = writeDocs(COMMANDS, Boolean(v.check));
      for (const p of stale) process.stdout.write(`${v.check ? 'stale' : 'written'}: ${p}\n`);
      return v.check && stale.length ? 1 : 0;
    },
  }),
  defineCommand({
    name: 'known-failures',
    summary: 'the known failures of the series: each signature and what its evidence must show (Markdown)',
    usage: '',
    options: {},
    async run() {
      process.stdout.write(`${knownFailuresMarkdown()}\n`);
      return 0;
    },
  }),
  defineCommand({
    name: 'cache info',
    summary: 'what the cache holds: entries per kind, sizes, last use',
    usage: '[--json]',
    options: { json: jsonOpt },
    async run(v) {
      const items = listCache();
      if (v.json) {
        process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
        return 0;
      }
      process.stdout.write(`${cacheRoot()} (${freeMiB(cacheRoot())} MiB free)\n`);
      for (const kind of [...new Set(items.map((i) => i.kind))].sort()) {
        const of = items.filter((i) => i.kind === kind);
        const mib = (of.reduce((a, i) => a + i.bytes, 0) / 1048576).toFixed(0).padStart(7);
        const why = kind === 'build-work' ? "each profile's source copy and objects" : `managed by ${kind}`;
        process.stdout.write(
          NOT_ENTRIES.includes(kind)
            ? `${kind.padEnd(14)}             ${mib} MiB (not pruned: ${why})\n`
            : `${kind.padEnd(14)} ${String(of.length).padStart(3)} entries ${mib} MiB\n`,
        );
      }
      return 0;
    },
  }),
  defineCommand({
    name: 'cache verify',
    summary: 'check every cache entry byte for byte against the digest recorded when it was published',
    usage: '[--remove] [--json]',
    details:
      'Exit 1 when an entry is damaged. A hit checks sizes and the largest files cheaply on every use (a ' +
      'damaged entry is built again, and said); this reads everything. --remove deletes the damaged entries.',
    options: { remove: { type: 'boolean', help: 'remove the damaged entries' }, json: jsonOpt },
    async run(v) {
      const r = await verifyCache({ remove: Boolean(v.remove) });
      if (v.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        for (const e of r.filter((x) => x.state !== 'whole'))
          process.stdout.write(
            `${e.state} ${e.kind}/${e.key}${e.why ? `: ${e.why}` : ''}` +
              `${e.state === 'damaged' && v.remove ? ' (removed)' : ''}\n`,
          );
        const n = (s: string) => r.filter((x) => x.state === s).length;
        process.stdout.write(`${n('whole')} whole, ${n('damaged')} damaged, ${n('no digest')} without a digest\n`);
      }
      return r.some((x) => x.state === 'damaged') ? 1 : 0;
    },
  }),
  defineCommand({
    name: 'cache prune',
    summary: 'remove cache entries not used for a while (the newest of each kind stays)',
    usage: '[--older-than DAYS] [--dry-run]',
    details: 'Default: entries not used for 14 days. apt archives, ccache and build work directories are left alone.',
    options: {
      'older-than': {
        type: 'string',
        help: 'days without use (default 14; 0 = everything but the newest of each kind)',
      },
      'dry-run': { type: 'boolean', help: 'only list what would go' },
    },
    async run(v) {
      const days = v['older-than'] === undefined ? 14 : Number(v['older-than']);
      if (!(days >= 0)) throw new RigError('usage', `--older-than ${String(v['older-than'])} is not a number of days`);
      const r = await pruneCache({ olderThanDays: days, dryRun: Boolean(v['dry-run']) });
      for (const i of r.removed)
        process.stdout.write(
          `${v['dry-run'] ? 'would remove' : 'removed'} ${i.kind}/${i.key} (${(i.bytes / 1048576).toFixed(0)} ` +
            `MiB, last used ${i.lastUsed?.toISOString() ?? '?'})\n`,
        );
      process.stdout.write(
        `${r.removed.length} entries ${v['dry-run'] ? 'would be ' : ''}removed, ` +
          `${(r.freedBytes / 1048576).toFixed(0)} MiB; ${r.kept} kept\n`,
      );
      return 0;
    },
  }),
  defineCommand({
    name: 'profiles',
    summary: 'list the kernel profiles',
    usage: '',
    async run() {
      for (const n of listProfiles()) {
        const p = loadProfile(n);
        process.stdout.write(`${n.padEnd(18)} ${p.description}\n`);
        if (p.series?.mbox)
          process.stdout.write(`${''.padEnd(18)} series: ${p.series.name} (${expandPath(p.series.mbox)})\n`);
      }
      return 0;
    },
  }),
  defineCommand({
    name: 'setup',
    summary: 'install the Debian host packages the rig needs (idempotent)',
    usage: '[--dry-run] [--list]',
    options: {
      'dry-run': { type: 'boolean', help: 'only print what would be installed' },
      list: { type: 'boolean', help: 'list the packages and why each is needed' },
    },
    async run(v) {
      if (v.list) {
        for (const [p, why] of Object.entries(HOST_PACKAGES)) process.stdout.write(`${p.padEnd(24)} ${why}\n`);
        return 0;
      }
      const r = await setupHost({ dryRun: Boolean(v['dry-run']) });
      if (r.installed.length) info(`setup: installed ${r.installed.join(' ')}`);
      return 0;
    },
  }),
  defineCommand({
    name: 'accel',
    summary: 'show which accelerator the rig would use here, and why',
    usage: '[--accel kvm|tcg|auto] [--json]',
    options: { accel: accelOpt, json: { type: 'boolean', help: 'print JSON' } },
    async run(v) {
      const a = chooseAccel(v.accel);
      process.stdout.write(v.json ? JSON.stringify(a) + '\n' : `${a.accel}: ${a.reason}\n`);
      return 0;
    },
  }),
  defineCommand({
    name: 'boot',
    summary: 'boot the first guest (Debian kernel, two NUMA nodes), run a command over SSH, stop',
    usage: '[--accel X] [--node-mib N] [--append TOKEN ...] [-- command args...]',
    words: '-- cmd ...',
    details:
      'Without a command it prints /proc/meminfo and the NUMA nodes the guest sees. dmem= tokens in --append ' +
      'are checked before booting.',
    options: {
      accel: accelOpt,
      'node-mib': { type: 'string', help: 'memory per NUMA node in MiB (default 512)' },
      append: { type: 'string', multiple: true, help: 'extra kernel command-line token (repeatable)' },
    },
    async run(v, pos) {
      const append = v.append ?? [];
      checkDmemTokens(append);
      const nodeMiB = v['node-mib'] ? Number(v['node-mib']) : 512;
      if (!Number.isInteger(nodeMiB) || nodeMiB < 128)
        throw new RigError('usage', `--node-mib ${String(v['node-mib'])} is not a whole number of MiB >= 128`);
      const accel = chooseAccel(v.accel);
      info(`accelerator: ${accel.accel} (${accel.reason})`);
      const files = await prepareFirstGuest();
      const g = await bootFirstGuest(files, accel, { nodeMiB, append });
      try {
        const argv = pos.length ? pos : ['sh', '-c', 'grep MemTotal /proc/meminfo; ls /sys/devices/system/node'];
        const r = await g.exec(argv);
        process.stdout.write(r.stdout);
        process.stderr.write(r.stderr);
        return r.code ?? 1;
      } finally {
        await g.stop();
      }
    },
  }),
  defineCommand({
    name: 'bench build',
    summary:
      'kernel build figures: cached pipeline time, the profile build (time, objects), optionally cold and plain ' +
      'defconfig',
    usage: '[--profile P] [--cold] [--defconfig] [--json]',
    details:
      'It also builds the series with one patch changed (a one-line edit) after the profile build: ' +
      'the incremental rebuild.\n' +
      '--cold rebuilds everything in an empty temporary cache with ccache off (about 15 min here).\n--defconfig ' +
      'also builds plain x86_64 defconfig of the same tree for comparison (about 14 min here).',
    options: {
      profile: profileOpt,
      cold: { type: 'boolean', help: 'also a full cold run in an empty cache, no ccache' },
      defconfig: { type: 'boolean', help: 'also build plain defconfig of the same tree' },
      json: jsonOpt,
    },
    async run(v) {
      const r = await benchBuild({
        profile: v.profile ?? 'rfc-v2-debian',
        cold: Boolean(v.cold),
        defconfig: Boolean(v.defconfig),
      });
      if (v.json) process.stdout.write(JSON.stringify(r) + '\n');
      else {
        process.stdout.write(
          `profile ${r.profile}: cached pipeline ${r.cachedSeconds.toFixed(1)} s; build in cache: ` +
            `${r.profileBuild.buildSeconds.toFixed(0)} s, ${r.profileBuild.objects} objects` +
            `${r.profileBuild.ccache ? ' (ccache)' : ''}\n`,
        );
        if (r.cold)
          process.stdout.write(
            `cold (empty cache, no ccache): ${r.cold.totalSeconds.toFixed(0)} s total, build ` +
              `${r.cold.buildSeconds.toFixed(0)} s, ${r.cold.objects} objects\n`,
          );
        const one = r.onePatchRebuild;
        process.stdout.write(
          `one patch changed (${one.edit} in patch ${one.patch}): tree ${one.treeSeconds} s, ` +
            `rebuild ${one.buildSeconds.toFixed(0)} s, ${one.objects} objects\n`,
        );
        if (r.defconfig)
          process.stdout.write(
            `plain defconfig (${r.defconfig.tree}): ${r.defconfig.buildSeconds.toFixed(0)} s, ` +
              `${r.defconfig.objects} objects` +
              ` (the profile compiles ${((100 * r.profileBuild.objects) / r.defconfig.objects).toFixed(0)}% of them)\n`,
          );
      }
      return 0;
    },
  }),
  defineCommand({
    name: 'bench run',
    summary: 'main-job time: the whole run warm (on the cache as it is) and, with --cold, from an empty cache',
    usage: '[--profile P] [--runs N] [--cold] [--jobs 1,2] [--scenario ID ...] [--json]',
    details:
      'Each run is `dmemfs-rig run` as a child process, timed from outside. --cold also downloads, builds and ' +
      'boots everything in an empty temporary cache (about 25 min here). A run whose scenarios failed is timed ' +
      'all the same, and counted in runsWithFailures.\n--jobs 1,2 times the warm run at each number of workers ' +
      'and says the ratio and whether every run gave every scenario the same status.',
    options: {
      profile: profileOpt,
      runs: { type: 'string', help: 'warm runs (default 1); the median is reported' },
      cold: { type: 'boolean', help: 'also one run from an empty cache' },
      scenario: { type: 'string', multiple: true, help: 'time only these scenarios' },
      jobs: { type: 'string', help: 'comma-separated numbers of workers to time the warm run at (e.g. 1,2)' },
      json: jsonOpt,
    },
    async run(v) {
      const jobs =
        v.jobs === undefined
          ? undefined
          : String(v.jobs)
              .split(',')
              .map((j) => parseJobs(j)!);
      const r = await benchRun({
        ...(v.profile ? { profile: v.profile } : {}),
        runs: Math.max(1, Number(v.runs ?? 1)),
        cold: Boolean(v.cold),
        ...(v.scenario ? { scenarios: v.scenario } : {}),
        ...(jobs ? { jobs } : {}),
      });
      if (v.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else if (r.byJobs)
        process.stdout.write(
          `${r.byJobs.map((b) => `--jobs ${b.jobs}: ${b.medianSeconds.toFixed(0)} s`).join(', ')}; ratio ` +
            `${r.jobsRatio!.toFixed(2)}; statuses ${r.statusesIdentical ? 'identical' : 'DIFFER'}\n`,
        );
      else
        process.stdout.write(
          `main job, ${r.profile} (${r.scenarios === 'all' ? 'all scenarios' : r.scenarios.join(', ')}): warm ` +
            `${r.warm.medianSeconds.toFixed(0)} s (median of ${r.warm.runs})` +
            `${r.cold ? `, cold ${r.cold.seconds.toFixed(0)} s` : ''}\n`,
        );
      return 0;
    },
  }),
  defineCommand({
    name: 'bench boot',
    summary: "time QEMU start -> first SSH command, and the kernel's own time to init",
    usage: '[--accel X] [--runs N] [--firmware bios|efi] [--json]',
    details:
      'bootToSshSeconds: host clock from QEMU spawn to the first successful SSH command.\nkernelInitSeconds: ' +
      'printk timestamp of "Run /init as init process".\n' +
      "ratio = bootToSsh / kernelInit shows the rig's own overhead (goal <= 1.5 under TCG).",
    options: {
      accel: accelOpt,
      runs: { type: 'string', help: 'number of boots (default 3); medians are reported' },
      firmware: {
        type: 'string',
        help: 'bios (SeaBIOS, the PVH vmlinux; default) or efi (OVMF, the bzImage through its EFI stub)',
      },
      json: { type: 'boolean', help: 'one JSON object on stdout' },
    },
    async run(v) {
      const accel = chooseAccel(v.accel);
      info(`accelerator: ${accel.accel} (${accel.reason})`);
      const files = await prepareFirstGuest();
      const runs = Math.max(1, Number(v.runs ?? 3));
      const firmware = v.firmware ?? 'bios';
      if (firmware !== 'bios' && firmware !== 'efi')
        throw new RigError('usage', `--firmware ${firmware}: use bios or efi`);
      const each = [];
      for (let i = 0; i < runs; i++) each.push(await benchBootOnce(files, accel, firmware));
      const result = {
        accel: accel.accel,
        firmware,
        runs,
        bootToSshSeconds: median(each.map((e) => e.bootToSshSeconds)),
        kernelInitSeconds: median(each.map((e) => e.kernelInitSeconds)),
        ratio: median(each.map((e) => e.ratio)),
        each,
      };
      if (v.json) process.stdout.write(JSON.stringify(result) + '\n');
      else
        process.stdout.write(
          `accel ${result.accel}, ${firmware}, ${runs} boots (medians): ` +
            `bootToSsh ${result.bootToSshSeconds.toFixed(2)}s, ` +
            `kernelInit ${result.kernelInitSeconds.toFixed(2)}s, ratio ${result.ratio.toFixed(2)}\n`,
        );
      return 0;
    },
  }),
  ...seriesCommands(),
  ...nightlyCommands(),
  shellCommand(),
  defineCommand({
    name: 'record crashes',
    summary: "records the crash-pattern corpus: the first guest's kernel failing each named way",
    usage: '[--only CASE ...] [--out DIR] [--accel X]',
    details:
      `Cases: ${CRASH_CASES.map((c) => c.file).join(', ')}. Builds images/crash-module/ against the first ` +
      "guest's kernel headers (apt-get install linux-headers-<release>), boots one guest per case and writes " +
      'tests/fixtures/crashes/CASE.log (or --out DIR/CASE.log): a header with what the crash patterns find, then ' +
      'the console.',
    options: {
      only: { type: 'string', multiple: true, help: 'record these cases only' },
      out: { type: 'string', help: 'where the fixtures go (default tests/fixtures/crashes)' },
      accel: accelOpt,
    },
    async run(v) {
      const accel = chooseAccel(v.accel);
      const written = await recordCrashes(accel, {
        ...(v.out ? { out: v.out } : {}),
        ...(v.only ? { only: v.only } : {}),
      });
      for (const w of written) process.stdout.write(`${w}\n`);
      return 0;
    },
  }),
];

function compareCommand(v: Values, pos: string[]): number {
  if (pos.length !== 2)
    throw new RigError('usage', 'report --compare needs two bundles: A (before) and B (after)', {
      fix: 'dmemfs-rig report --compare out/run-1 out/run-2',
    });
  const tolerance = v.tolerance === undefined ? 0.1 : Number(v.tolerance);
  if (!(tolerance >= 0)) throw new RigError('usage', `--tolerance ${String(v.tolerance)} is not a non-negative number`);
  const d = compareRuns(loadBundle(pos[0]!), loadBundle(pos[1]!), { tolerance, names: [pos[0]!, pos[1]!] });
  process.stdout.write(v.json ? `${JSON.stringify(d, null, 2)}\n` : renderDiff(d, tolerance));
  if (v.github)
    process.stdout.write(
      githubAnnotations(d)
        .map((l) => `${l}\n`)
        .join(''),
    );
  return d.regressions ? 1 : 0;
}

async function kcidbCommand(v: Values, pos: string[]): Promise<number> {
  if (pos.length !== 1)
    throw new RigError('usage', 'report --kcidb needs one bundle', { fix: 'dmemfs-rig report --kcidb out/run-...' });
  const out = typeof v.out === 'string' ? v.out : join(pos[0]!, 'kcidb.json');
  const doc = await writeKcidb(pos[0]!, withRecordedCulprits(loadBundle(pos[0]!)), out);
  process.stdout.write(
    `${out}: KCIDB v5.0, ${doc.tests.length} tests, ${doc.issues.length} issues, ${doc.incidents.length} incidents\n`,
  );
  return 0;
}

function checksCommand(v: Values, pos: string[]): number {
  if (pos.length !== 1)
    throw new RigError('usage', 'report --checks needs one bundle', { fix: 'dmemfs-rig report --checks out/run-...' });
  const out = typeof v.out === 'string' ? v.out : join(pos[0]!, 'checks.json');
  const target = typeof v['target-url'] === 'string' ? v['target-url'] : null;
  const checks = writeChecks(pos[0]!, withRecordedCulprits(loadBundle(pos[0]!)), out, target);
  const count = (s: string) => checks.filter((c) => c.state === s).length;
  process.stdout.write(`${out}: ${count('success')} success, ${count('warning')} warning, ${count('fail')} fail\n`);
  return 0;
}

async function mailCommand(v: Values, pos: string[]): Promise<number> {
  if (pos.length !== 1)
    throw new RigError('usage', 'report --mail needs one bundle', { fix: 'dmemfs-rig report --mail out/run-...' });
  const out = typeof v.out === 'string' ? v.out : join(pos[0]!, 'mail');
  const files = await writeMails(pos[0]!, withRecordedCulprits(loadBundle(pos[0]!)), out);
  for (const f of files) process.stdout.write(`${f}\n`);
  if (!files.length) process.stdout.write('no finding in the bundle: no mail\n');
  return 0;
}

function repeatCommand(pos: string[]): number {
  if (pos.length < 2)
    throw new RigError('usage', 'report --repeat needs two bundles or more', {
      fix: 'dmemfs-rig report --repeat out/run-1 out/run-2 out/run-3',
    });
  const r = repeatRuns(
    pos.map((p) => loadBundle(p)),
    pos.map((p) => basename(p.replace(/\/+$/, ''))),
  );
  process.stdout.write(renderRepeat(r));
  return r.same ? 0 : 1;
}

function mergeCommand(v: Values, pos: string[]): number {
  if (typeof v.out !== 'string')
    throw new RigError('usage', 'report --merge needs --out DIR', {
      fix: 'dmemfs-rig report --merge shard-1/ shard-2/ --out merged/',
    });
  const run = mergeBundles(pos, v.out);
  const what = `${run.scenarios.length} scenarios, ${run.boots.length} boots`;
  process.stdout.write(`${v.out}: merged ${run.merged?.length ?? 0} shards (${what})\n`);
  process.stdout.write(`${runSummary(run)}\n`);
  return run.scenarios.some((s) => s.status === 'fail') ? 1 : 0;
}

function acceptCommand(v: Values, pos: string[]): number {
  if (pos.length !== 1 || typeof v.into !== 'string')
    throw new RigError('usage', 'report --accept needs one bundle and --into DIR', {
      fix: 'dmemfs-rig report --accept out/run-... --into base/',
    });
  const a = acceptBundle(pos[0]!, v.into, typeof v.reason === 'string' ? v.reason : 'accepted by hand');
  const st = Object.values(a.statuses);
  const n = (status: string) => st.filter((x) => x === status).length;
  process.stdout.write(
    `${v.into}: now the accepted base (${pos[0]}, ${st.length} scenarios: ` +
      `${n('pass')} pass, ${n('known-failure')} known failure, ${n('fail')} fail; ${a.reason})\n`,
  );
  return 0;
}

/** The kernel pipeline's inputs from the options every kernel-consuming command shares. */
function pipelineOptions(v: Partial<ValuesOf<typeof kernelOpts>> & { cc?: string | undefined }): PipelineOptions {
  return {
    profile: v.profile ?? 'rfc-v2-debian',
    ...kernelInput(v),
    ...(v.cc ? { cc: v.cc } : {}),
  };
}
