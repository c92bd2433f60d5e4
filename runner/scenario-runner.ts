/**
 * Runs scenarios: checks what each needs, hands its body a context over the boot pool, asks the
 * judge for its verdict, and produces the run's results (results.json and the bundle).
 */
import { existsSync, readFileSync } from 'node:fs';
import { OVMF_IMAGE } from '../vm/machine-spec.js';
import { tryRun } from '../core/exec.js';
import { messageOf } from '../core/errors.js';
import { info } from '../core/log.js';
import type { RunResults, ScenarioResult } from '../core/results.js';
import { loadProfile } from '../kernel/profile.js';
import { refuseExistingOut, rigVersion, writeBundle, type BundleArtifacts } from '../report/bundle.js';
import { planOrder } from '../scenarios/catalog.js';
import { withCulprits } from '../scenarios/culprit-record.js';
import { signaturesFor } from '../scenarios/signatures.js';
import type { Capability, ScenarioDefinition } from '../scenarios/types.js';
import type { KernelInput } from '../kernel/pipeline.js';
import { withKernelSlowdown, type AccelChoice } from '../vm/accel.js';
import { qemuBinary } from '../vm/guest.js';
import { BootPool } from './boot-pool.js';
import { judge } from './judge.js';
import type { L1Files } from './l1-guest.js';
import { newResult, scenarioRun, SkipSignal } from './scenario-context.js';
import { waiverFor } from '../scenarios/waivers.js';
import { MemoryGate } from '../vm/host-memory.js';
import {
  announce,
  byCost,
  costsFrom,
  RunProgress,
  runOnWorkers,
  shardUnits,
  unitsOf,
  type Costs,
  type Shard,
} from './workers.js';

export interface RunOptions {
  profile: string;
  /** The kernel under test beyond its profile: --series, --base, edits (kernel/edits.ts), a prefix. */
  input?: KernelInput;
  accel: AccelChoice;
  scenarios: ScenarioDefinition[];
  out?: string;
  /** Workers, each with its own boot pool (default 1: one guest at a time). */
  jobs?: number;
  /** Run only this shard's part of the scenarios (run --shard K/N). */
  shard?: Shard;
  /** What each scenario costs (the accepted bundle's times, else the cost table). */
  costs?: Costs;
  /** Host memory shared with runs going on beside this one (bisect and mutants --jobs). */
  memory?: MemoryGate;
  /** Record every boot's commands and console into OUT/recordings/ (vm/recording.ts). */
  record?: boolean;
}

type HostGaps = Record<'iommu' | 'mce-cpu', string | undefined>;

/** What the host can offer, checked once per run. */
async function hostCapabilities(accel: AccelChoice): Promise<HostGaps> {
  const devices = await tryRun(qemuBinary(), ['-device', 'help']);
  const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  return {
    iommu: /"intel-iommu"/.test(devices.stdout) ? undefined : `${qemuBinary()} has no intel-iommu device`,
    // Under TCG the rig sets vendor=GenuineIntel; under KVM the guest sees the host's vendor.
    'mce-cpu':
      accel.accel === 'tcg' || vendor === 'GenuineIntel'
        ? undefined
        : `a recoverable injected MCE needs an Intel-vendor CPU; under KVM this ${vendor} host cannot provide one`,
  };
}

/** Needs met by options of the kernel under test: the options, and what their absence means. */
const CONFIG_NEEDS: Partial<Record<Capability, { options: string[]; without: (missing: string[]) => string }>> = {
  'fs-dax': {
    options: ['CONFIG_FS_DAX'],
    without: () =>
      'the kernel under test is built without CONFIG_FS_DAX: device-dax refuses every mmap ("vma is not DAX capable")',
  },
  'debug-checks': {
    options: ['CONFIG_PROVE_LOCKING', 'CONFIG_DEBUG_ATOMIC_SLEEP'],
    without: (missing) =>
      `the kernel under test is built without ${missing.join(', ')}: it reports none of what this scenario ` +
      'looks for (run it on the debug variant: --profile NAME-debug)',
  },
  'soft-reserved': {
    options: ['CONFIG_EFI_STUB', 'CONFIG_EFI_FAKE_MEMMAP', 'CONFIG_EFI_SOFT_RESERVE', 'CONFIG_DEV_DAX_HMEM'],
    without: (missing) => `the kernel under test is built without ${missing.join(', ')}: no soft-reserved memory`,
  },
};

/** The first need of `def` this run cannot meet, as a reason; nested KVM is decided in the body. */
async function missingNeed(def: ScenarioDefinition, hasSeries: boolean, host: HostGaps, pool: BootPool) {
  const needs = new Set<Capability>(def.needs);
  if (needs.has('patched-kernel') && !hasSeries) return 'the profile has no DMEMFS series (unpatched kernel)';
  if (needs.has('iommu') && host.iommu) return host.iommu;
  if (needs.has('mce-cpu') && host['mce-cpu']) return host['mce-cpu'];
  if (needs.has('soft-reserved') && !existsSync(OVMF_IMAGE))
    return `no UEFI firmware for the EFI boot (${OVMF_IMAGE}): run \`npm run setup\``;
  for (const [need, want] of Object.entries(CONFIG_NEEDS) as Array<
    [Capability, NonNullable<(typeof CONFIG_NEEDS)[Capability]>]
  >) {
    if (!needs.has(need)) continue;
    const cfg = (await pool.filesFor('profile')).kernel.config;
    const text = cfg ? readFileSync(cfg, 'utf8') : '';
    const missing = want.options.filter((o) => !new RegExp(`^${o}=y$`, 'm').test(text));
    if (missing.length) return want.without(missing);
  }
  return undefined;
}

/** Run one scenario's body through the pool and judge it. */
async function runOne(
  def: ScenarioDefinition,
  pool: BootPool,
  accel: AccelChoice,
  variant: 'debug' | undefined,
  unmet: (need: Capability) => Promise<string | undefined>,
): Promise<ScenarioResult> {
  const run = scenarioRun(def, pool, accel.accel, waiverFor(variant), unmet);
  const { result } = run;
  const signatures = signaturesFor(def.id, variant);
  try {
    await def.run(run.ctx);
    Object.assign(result, judge(result, signatures, run.reports()));
    const silent = unaccounted(def, result);
    if (silent.length) {
      const why =
        `declared but neither measured nor skipped with a reason: ${silent.join(', ')} ` +
        '(a scenario body says why it does not take a measurement)';
      result.reason = result.status === 'fail' ? `${result.reason}; ${why}` : why;
      result.status = 'fail';
    }
  } catch (e) {
    if (e instanceof SkipSignal) {
      result.status = 'skip';
      result.reason = e.reason;
      return result;
    }
    result.status = 'fail';
    result.reason = messageOf(e).split('\n')[0];
    result.evidence.push({ label: 'error', text: messageOf(e) });
    const live = pool.current();
    if (live) result.evidence.push({ label: 'console tail', text: live.console.tail(40) });
    // The judge still says which signatures were checked before the body stopped.
    result.signatures = judge(result, signatures).signatures;
    await pool.stop(); // a failed scenario may leave the guest in any state
  }
  return result;
}

/** The measurements a scenario declares that its body neither took nor skipped. */
export function unaccounted(
  def: Pick<ScenarioDefinition, 'measurements'>,
  result: Pick<ScenarioResult, 'measurements'>,
) {
  return def.measurements.filter((n) => !(n in result.measurements));
}

export async function runScenarios(given: RunOptions): Promise<RunResults> {
  const started = Date.now();
  if (given.out) refuseExistingOut(given.out);
  const profile = loadProfile(given.profile);
  const opts = { ...given, accel: withKernelSlowdown(given.accel, profile.timeoutScale, `profile ${profile.name}`) };
  const cost = given.costs ?? costsFrom();
  const all = unitsOf(planOrder(opts.scenarios));
  const units = opts.shard ? shardUnits(all, (u) => unitCost(u, cost), opts.shard) : all;
  const jobs = Math.min(opts.jobs ?? 1, Math.max(1, units.length));
  // One serial worker keeps the plan's order; several take the longest units first.
  const queue = jobs > 1 ? byCost(units, (u) => unitCost(u, cost)) : units;
  announce(units, jobs, opts.shard);
  // One kernel build per profile however many workers ask, and one budget of host memory.
  const files = new Map<string, Promise<L1Files>>();
  const memory = given.memory ?? (jobs > 1 ? new MemoryGate() : undefined);
  const host = await hostCapabilities(opts.accel);
  const progress = new RunProgress(
    queue.flat().length,
    queue.flat().reduce((a, d) => a + cost(d.id), 0),
    jobs,
  );
  const pools: BootPool[] = [];
  const done = await runOnWorkers(queue, jobs, async (unit) => {
    const pool = new BootPool({
      profile: opts.profile,
      accel: opts.accel,
      files,
      ...(memory ? { memory } : {}),
      ...(opts.out ? { out: opts.out } : {}),
      ...(opts.input ? { input: opts.input } : {}),
      ...(opts.record ? { record: true } : {}),
    });
    pools.push(pool);
    const results: ScenarioResult[] = [];
    try {
      for (const def of unit) {
        results.push(await runPlanned(def, pool, opts, profile, host));
        info(progress.finished(cost(def.id)));
      }
    } finally {
      await pool.stop();
    }
    return results;
  });
  // Results, and boot records, in the plan's order whatever order the workers finished in.
  const order = new Map(units.flat().map((d, i) => [d.id, i]));
  const rank = (id: string) => order.get(id) ?? 0;
  const results = done.flat().sort((a, b) => rank(a.id) - rank(b.id));
  const run = await runResults(opts, started, pools, results);
  run.boots.sort((a, b) => rank(a.scenario) - rank(b.scenario));
  if (jobs > 1) run.jobs = jobs;
  if (opts.shard)
    run.shard = {
      ...opts.shard,
      plan: Array.from({ length: opts.shard.count }, (_, k) =>
        shardUnits(all, (u) => unitCost(u, cost), { index: k + 1, count: opts.shard!.count })
          .flat()
          .map((d) => d.id),
      ),
    };
  if (opts.out) writeBundle(opts.out, run, bundleArtifacts(pools.map((p) => p.profileFiles()).find(Boolean)));
  return run;
}

const unitCost = (u: ScenarioDefinition[], cost: Costs) => u.reduce((a, d) => a + cost(d.id), 0);

/** One scenario of the plan on a worker's pool: skipped for a need the run cannot meet, else run and judged. */
async function runPlanned(
  def: ScenarioDefinition,
  pool: BootPool,
  opts: RunOptions,
  profile: ReturnType<typeof loadProfile>,
  host: HostGaps,
): Promise<ScenarioResult> {
  const t0 = Date.now();
  const prepared = pool.prepareMs;
  const missing = await missingNeed(def, Boolean(profile.series), host, pool);
  const result = missing
    ? { ...newResult(def), status: 'skip' as const, reason: missing }
    : (info(`scenario ${def.id}: ${def.title}`),
      await runOne(def, pool, opts.accel, profile.variant, (need) =>
        missingNeed({ ...def, needs: [need] }, Boolean(profile.series), host, pool),
      ));
  // The kernel and image preparation a scenario's first boot waited for is counted apart.
  result.seconds = (Date.now() - t0 - (pool.prepareMs - prepared)) / 1000;
  const why = result.reason ? ` (${result.reason})` : '';
  info(`scenario ${def.id}: ${result.status.toUpperCase()}${why} in ${result.seconds.toFixed(0)} s`);
  return result;
}

async function runResults(
  opts: RunOptions,
  started: number,
  pools: BootPool[],
  scenarios: ScenarioResult[],
): Promise<RunResults> {
  const f = pools.map((p) => p.profileFiles()).find(Boolean);
  const version = (await tryRun(qemuBinary(), ['--version'])).stdout.split('\n')[0]?.trim();
  return {
    schemaVersion: 2,
    rig: rigVersion(),
    profile: opts.profile,
    kernel: f ? { ...f.kernel.provenance } : {},
    ...(f?.pipeline?.series ? { series: f.pipeline.series.provenance } : {}),
    images: f
      ? {
          l1Image: f.image.key,
          l1Packages: f.image.manifest.packages.length,
          helpers: f.image.manifest.helpersKey,
          l2: f.image.manifest.l2,
        }
      : {},
    accel: { accel: opts.accel.accel, reason: opts.accel.reason },
    qemu: { binary: qemuBinary(), version: version ?? 'unknown' },
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    // Workers wait for one preparation together: the longest wait is the run's.
    prepareSeconds: Math.max(0, ...pools.map((p) => p.prepareMs)) / 1000,
    boots: pools.flatMap((p) => p.records),
    scenarios: withCulprits(scenarios, f?.pipeline?.series?.name),
  };
}

/** What of the kernel pipeline and the images goes into the bundle, as plain data. */
export function bundleArtifacts(files: L1Files | undefined): BundleArtifacts {
  const p = files?.pipeline;
  const applied = new Map((p?.tree.report?.patches ?? []).map((x) => [x.number, x]));
  return {
    patches: (p?.series?.provenance.patches ?? []).map((v) => ({
      number: v.number,
      title: v.title,
      verdict: v.kind === 'identical' ? 'ok' : v.kind,
      apply: applied.get(v.number)?.result ?? 'not applied',
      method: applied.get(v.number)?.method ?? '-',
    })),
    json: bundleJson(files),
    copies: p ? { 'kernel/config': p.build.config } : {},
  };
}

/** The JSON files of the bundle's kernel/ and images/ directories. */
function bundleJson(files: L1Files | undefined): Record<string, unknown> {
  const p = files?.pipeline;
  const s = p?.series;
  return {
    ...(p?.tree.report ? { 'kernel/apply-report.json': p.tree.report } : {}),
    ...(s?.report ? { 'kernel/series-verify.json': s.report } : {}),
    ...(s ? { 'kernel/series-provenance.json': s.provenance } : {}),
    ...(p ? { 'kernel/build-manifest.json': p.build.manifest } : {}),
    ...(files ? { 'images/l1-manifest.json': files.image.manifest } : {}),
  };
}
