/**
 * Runs scenarios: checks what each needs, boots the first-level guests they ask for (one at a
 * time; a request equal to the running one reuses it), runs the small bodies, holds every
 * measurement to its expectation, and produces the results (results.json, TAP).
 */
import { readFileSync } from 'node:fs';
import { tryRun } from '../core/exec.js';
import { qemuBinary } from '../vm/guest.js';
import { RigError, messageOf } from '../core/errors.js';
import { info } from '../core/log.js';
import { loadProfile } from '../kernel/profile.js';
import { checkDmemTokens } from '../scenarios/dmem-param.js';
import { BOOTS } from '../scenarios/boots.js';
import { planOrder } from '../scenarios/catalog.js';
import { redactKeys, rigVersion, saveConsole, writeBundle } from '../report/bundle.js';
import {
  compare,
  describeComparison,
  type BootRequest,
  type Capability,
  type Comparison,
  type Measurement,
  type ScenarioContext,
  type ScenarioDefinition,
  type ScenarioResult,
} from '../scenarios/types.js';
import type { AccelChoice } from '../vm/accel.js';
import type { Guest } from '../vm/guest.js';
import { bootL1, prepareL1, type L1Files } from './l1-guest.js';

class SkipSignal extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export interface RunOptions {
  profile: string;
  accel: AccelChoice;
  scenarios: ScenarioDefinition[];
  out?: string;
}

/** One first-level boot of a run: what QEMU was given and where its console went. */
export interface BootRecord {
  scenario: string;
  name: string;
  guest: string;
  request: BootRequest;
  qemu: { binary: string; args: string[] };
  /** Console log inside the bundle (relative), written when the guest stops. */
  console: string | undefined;
  bootSeconds: number | null;
}

export interface RunResults {
  schemaVersion: 1;
  rig: { version: string; commit: string | undefined };
  profile: string;
  kernel: Record<string, unknown>;
  images: Record<string, unknown>;
  accel: { accel: string; reason: string };
  qemu: { binary: string; version: string };
  startedAt: string;
  seconds: number;
  boots: BootRecord[];
  scenarios: ScenarioResult[];
}

/** What the host can offer, checked once per run. */
async function hostCapabilities(accel: AccelChoice): Promise<Record<'iommu' | 'mce-cpu', string | undefined>> {
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

/** Capabilities known before booting. nested KVM is decided after boot (the body asks L1). */
function missingCapability(
  needs: Capability[],
  profileHasSeries: boolean,
  host: Record<'iommu' | 'mce-cpu', string | undefined>,
): string | undefined {
  if (needs.includes('patched-kernel') && !profileHasSeries)
    return 'the profile has no DMEMFS series (unpatched kernel)';
  if (needs.includes('iommu') && host.iommu) return host.iommu;
  if (needs.includes('mce-cpu') && host['mce-cpu']) return host['mce-cpu'];
  return undefined;
}

export async function runScenarios(opts: RunOptions): Promise<RunResults> {
  const started = Date.now();
  const profile = loadProfile(opts.profile);
  const files = new Map<string, L1Files>();
  const filesFor = async (kernel: BootRequest['kernel']) => {
    const name = kernel === 'baseline' ? 'baseline-debian' : opts.profile;
    if (!files.has(name)) files.set(name, await prepareL1({ profile: name }));
    return files.get(name)!;
  };
  let live: { key: string; guest: Guest; record: BootRecord } | undefined;
  const boots: BootRecord[] = [];
  const stopLive = async () => {
    if (live) {
      await live.guest.stop();
      if (opts.out) live.record.console = saveConsole(opts.out, live.guest);
    }
    live = undefined;
  };
  const results: ScenarioResult[] = [];
  const host = await hostCapabilities(opts.accel);
  try {
    for (const def of planOrder(opts.scenarios)) {
      const t0 = Date.now();
      const result: ScenarioResult = {
        id: def.id,
        title: def.title,
        status: 'pass',
        measurements: {},
        evidence: [],
        seconds: 0,
        boots: [],
      };
      const known = new Map<string, string>();
      let missing = missingCapability(def.needs, Boolean(profile.series), host);
      if (!missing && def.needs.includes('fs-dax')) {
        const cfg = (await filesFor('profile')).kernel.config;
        if (!cfg || !/^CONFIG_FS_DAX=y$/m.test(readFileSync(cfg, 'utf8')))
          missing =
            'the kernel under test is built without CONFIG_FS_DAX: device-dax refuses every mmap ("vma is not DAX capable")';
      }
      if (missing) {
        results.push({ ...result, status: 'skip', reason: missing });
        info(`scenario ${def.id}: skipped (${missing})`);
        continue;
      }
      info(`scenario ${def.id}: ${def.title}`);
      const ctx: ScenarioContext = {
        accel: opts.accel.accel,
        async boot(name) {
          if (!def.boots.includes(name))
            throw new RigError(
              'scenario-definition',
              `scenario ${def.id} boots "${name}" but does not list it in its boots`,
              { fix: `add '${name}' to ${def.id}.boots` },
            );
          const req: BootRequest = BOOTS[name];
          checkDmemTokens(req.append);
          const key = JSON.stringify(req);
          if (live?.key === key && !live.guest.failureReason()) {
            result.boots.push(`${name} (reused)`);
            return live.guest;
          }
          await stopLive();
          const f = await filesFor(req.kernel);
          const guest = await bootL1(f, opts.accel, {
            nodeMiB: req.nodeMiB,
            role: req.role,
            append: [...req.append, ...(req.unchecked ?? [])],
            name: `${def.id}-${name}`,
            ...(req.iommu ? { iommu: true } : {}),
            ...(req.devices ? { devices: req.devices } : {}),
            ...(req.machineOptions ? { machineOptions: req.machineOptions } : {}),
            ...(req.consoleAllow ? { consoleAllow: req.consoleAllow.map((s) => new RegExp(s)) } : {}),
            ...(req.dimms ? { dimms: req.dimms } : {}),
            ...(req.hotplug ? { hotplug: req.hotplug } : {}),
          });
          const record: BootRecord = {
            scenario: def.id,
            name,
            guest: guest.opts.spec.name,
            request: req,
            qemu: { binary: qemuBinary(), args: redactKeys(guest.args) },
            console: undefined,
            bootSeconds: guest.timings.sshReadyAt ? (guest.timings.sshReadyAt - guest.timings.spawnedAt) / 1000 : null,
          };
          boots.push(record);
          live = { key, guest, record };
          result.boots.push(name);
          return guest;
        },
        measure(name, value, unit, expected?: Comparison, note?: string) {
          const m: Measurement = {
            value,
            unit,
            ...(expected ? { expected, ok: compare(value, expected) } : {}),
            ...(note ? { note } : {}),
          };
          result.measurements[name] = m;
          info(
            `  ${name} = ${String(value)} ${unit}${expected ? ` (expected ${describeComparison(expected)}: ${m.ok ? 'ok' : 'NOT MET'})` : ''}`,
          );
          return m;
        },
        evidence(label, text) {
          result.evidence.push({ label, text: text.length > 20000 ? text.slice(-20000) : text });
        },
        skip(reason): never {
          throw new SkipSignal(reason);
        },
        knownFailure(measurement, reason) {
          known.set(measurement, reason);
        },
        async json(g, argv) {
          const r = await g.exec(argv);
          const line = r.stdout
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .at(-1);
          if (!line)
            throw new RigError('helper-output', `${argv[0]} printed no JSON (exit ${r.code})`, {
              evidence: `${r.stdout}\n${r.stderr}`.slice(-3000),
            });
          return { ...JSON.parse(line), _code: r.code, _stderr: r.stderr };
        },
      };
      try {
        await def.run(ctx);
        const failed = Object.entries(result.measurements).filter(([, m]) => m.ok === false);
        const unknown = failed.filter(([n]) => !known.has(n));
        if (unknown.length) {
          result.status = 'fail';
          result.reason = `not met: ${unknown.map(([n, m]) => `${n} = ${String(m.value)} (expected ${describeComparison(m.expected!)})`).join('; ')}`;
        } else if (failed.length) {
          result.status = 'known-failure';
          // One entry per known failure, naming every measurement it explains.
          const byReason = new Map<string, string[]>();
          for (const [n] of failed) byReason.set(known.get(n)!, [...(byReason.get(known.get(n)!) ?? []), n]);
          result.reason = [...byReason].map(([why, names]) => `${names.join(', ')}: ${why}`).join('; ');
        }
      } catch (e) {
        if (e instanceof SkipSignal) {
          result.status = 'skip';
          result.reason = e.reason;
        } else {
          result.status = 'fail';
          result.reason = messageOf(e).split('\n')[0];
          result.evidence.push({ label: 'error', text: messageOf(e) });
          if (live) result.evidence.push({ label: 'console tail', text: live.guest.console.tail(40) });
          await stopLive(); // a failed scenario may leave the guest in any state
        }
      }
      result.seconds = (Date.now() - t0) / 1000;
      info(
        `scenario ${def.id}: ${result.status.toUpperCase()}${result.reason ? ` (${result.reason})` : ''} in ${result.seconds.toFixed(0)} s`,
      );
      results.push(result);
    }
  } finally {
    await stopLive();
  }
  const kernelFiles = files.get(opts.profile);
  const run: RunResults = {
    schemaVersion: 1,
    rig: rigVersion(),
    profile: opts.profile,
    kernel: kernelFiles ? { ...kernelFiles.kernel.provenance } : {},
    images: kernelFiles
      ? {
          l1Image: kernelFiles.image.key,
          l1Packages: kernelFiles.image.manifest.packages.length,
          helpers: kernelFiles.image.manifest.helpersKey,
          l2: kernelFiles.image.manifest.l2,
        }
      : {},
    accel: { accel: opts.accel.accel, reason: opts.accel.reason },
    qemu: {
      binary: qemuBinary(),
      version: (await tryRun(qemuBinary(), ['--version'])).stdout.split('\n')[0]?.trim() ?? 'unknown',
    },
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    boots,
    scenarios: results,
  };
  if (opts.out) writeBundle(opts.out, run, kernelFiles);
  return run;
}

export { toTap } from '../report/tap.js';
