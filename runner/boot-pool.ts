/**
 * The boot pool of a run's worker: at most one first-level guest at a time. A request equal to the one
 * running is reused; another stops it first. Every boot is recorded (QEMU arguments with keys
 * redacted, boot time, console saved into the bundle when it stops).
 */
import { fingerprint } from '../vm/ssh.js';
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { RigError } from '../core/errors.js';
import { warn } from '../core/log.js';
import type { BootRecord } from '../core/results.js';
import { redactKeys, saveConsole } from '../report/bundle.js';
import { BOOTS, type BootName } from '../scenarios/boots.js';
import { checkDmemTokens } from '../scenarios/dmem-param.js';
import type { BootRequest } from '../scenarios/types.js';
import type { KernelInput } from '../kernel/pipeline.js';
import type { AccelChoice } from '../vm/accel.js';
import { qemuBinary, type Guest } from '../vm/guest.js';
import { SCENARIO_FATAL } from '../vm/crash-patterns.js';
import type { GuestRecording } from '../vm/recording.js';
import { bootL1, prepareL1, type L1Files } from './l1-guest.js';
import type { MemoryGate } from '../vm/host-memory.js';
import { buildSelftests, type SelftestBuild } from '../kernel/selftests.js';

export interface PoolOptions {
  profile: string;
  /** The kernel under test beyond its profile: --series, --base, edits (kernel/edits.ts), a prefix. */
  input?: KernelInput;
  accel: AccelChoice;
  out?: string;
  /** Boot files shared by the run's pools (one kernel build per profile, however many workers wait). */
  files?: Map<string, Promise<L1Files>>;
  /** The run's shared host memory, when several workers boot at once. */
  memory?: MemoryGate;
  /** Record every boot's commands and console into OUT/recordings/ (run --record). */
  record?: boolean;
}

interface Live {
  key: string;
  guest: Guest;
  record: BootRecord;
  /** Commands the boot itself ran (readiness, kmod's list) before a scenario had the guest. */
  setupExecs: number;
}

export class BootPool {
  readonly records: BootRecord[] = [];
  private readonly files: Map<string, Promise<L1Files>>;
  private readonly ready = new Map<string, L1Files>();
  private live: Live | undefined;

  constructor(private readonly opts: PoolOptions) {
    this.files = opts.files ?? new Map();
  }

  /**
   * The L1 boot files for a kernel of the catalog ('profile' or 'baseline'), prepared once per
   * run: a second worker asking for a kernel being built waits for that build.
   */
  async filesFor(kernel: BootRequest['kernel']): Promise<L1Files> {
    const name = kernel === 'baseline' ? 'baseline-debian' : this.opts.profile;
    const done = this.ready.get(name);
    if (done) return done;
    const t0 = Date.now();
    let f = this.files.get(name);
    if (!f) {
      f = prepareL1({ profile: name, ...(kernel === 'profile' ? this.opts.input : {}) });
      this.files.set(name, f);
      // A failed preparation is not kept: the next ask tries again (and says why).
      f.catch(() => this.files.get(name) === f && this.files.delete(name));
    }
    const files = await f;
    this.prepareMs += Date.now() - t0;
    this.ready.set(name, files);
    return files;
  }

  /** Time spent building or fetching kernels and images (cache hits included), in ms. */
  prepareMs = 0;

  /** A test module the series carries, as its kernel build made it (undefined: none in the series). */
  async testModule(name: string): Promise<{ path?: string; error?: string } | undefined> {
    const build = (await this.filesFor('profile')).pipeline?.build;
    const m = build?.manifest.testModules?.[name];
    if (!build || !m) return undefined;
    return { ...(m.ko ? { path: join(build.dir, m.ko) } : {}), ...(m.error ? { error: m.error } : {}) };
  }

  /** The mm selftests of a kernel's tree, built once per tree (undefined: not a kernel the rig built). */
  async selftests(kernel: BootRequest['kernel']): Promise<SelftestBuild | undefined> {
    const tree = (await this.filesFor(kernel)).pipeline?.tree;
    return tree ? buildSelftests(tree.dir, tree.id) : undefined;
  }

  /** The files of the run's own profile, if any boot of this pool used them. */
  profileFiles(): L1Files | undefined {
    return this.ready.get(this.opts.profile);
  }

  /** The guest running now, if any. */
  current(): Guest | undefined {
    return this.live?.guest;
  }

  /** Boot `name` for `scenario`, or reuse the running guest when its request is the same. */
  async boot(scenario: string, name: BootName): Promise<{ guest: Guest; reused: boolean }> {
    const req: BootRequest = BOOTS[name];
    checkDmemTokens(req.append);
    const key = JSON.stringify(req);
    const live = this.live?.guest;
    // Reused only while it runs: a scenario may have stopped it (a task stuck in its kernel).
    if (this.live?.key === key && live && !live.failureReason() && live.exitCode === undefined)
      return { guest: live, reused: true };
    await this.stop();
    const guest = await bootL1(await this.filesFor(req.kernel), this.opts.accel, {
      ...bootOptionsOf(req, `${scenario}-${name}`),
      fatalKinds: SCENARIO_FATAL,
      ...(this.opts.memory ? { memory: this.opts.memory } : {}),
      ...(this.opts.record ? { record: true } : {}),
    });
    const record: BootRecord = {
      scenario,
      name,
      guest: guest.opts.spec.name,
      request: req,
      qemu: { binary: qemuBinary(), args: redactKeys(guest.args) },
      console: undefined,
      bootSeconds: guest.timings.sshReadyAt ? (guest.timings.sshReadyAt - guest.timings.spawnedAt) / 1000 : null,
      ...(guest.restarts.length ? { restarts: [...guest.restarts] } : {}),
      ...(guest.hostKey ? { hostKey: fingerprint(guest.hostKey.blob) } : {}),
    };
    this.records.push(record);
    this.live = { key, guest, record, setupExecs: guest.recording?.execs.length ?? 0 };
    return { guest, reused: false };
  }

  /** Stop the running guest (if any) and save its console into the bundle. */
  async stop(): Promise<void> {
    const live = this.live;
    this.live = undefined;
    if (!live) return;
    await live.guest.stop();
    const q = live.guest.quietest;
    if (q.ms > 0) live.record.quietest = { seconds: Math.round(q.ms / 100) / 10, command: q.command };
    const flood = live.guest.console.floodNote();
    if (flood) {
      live.record.consoleFlood = flood;
      warn(`${live.guest.opts.spec.name}: ${flood}`);
    }
    if (this.opts.out) live.record.console = saveConsole(this.opts.out, live.guest.runDir, live.guest.opts.spec.name);
    if (this.opts.out && live.guest.recording) saveRecording(this.opts.out, live);
  }
}

/** OUT/recordings/<guest>.json: the boot's commands with their results, and its console (vm/recording.ts). */
function saveRecording(out: string, live: Live): void {
  const rec: GuestRecording = {
    scenario: live.record.scenario,
    boot: live.record.name,
    accel: live.guest.opts.accel.accel,
    setup: live.setupExecs,
    execs: live.guest.recording!.execs,
    qmp: live.guest.recording!.qmp,
    console: live.guest.console.lines.map((l) => l.raw),
  };
  const dir = join(out, 'recordings');
  mkdirSync(dir, { recursive: true });
  // The run's key is per run and public, but kept out of the bundle like everywhere else in it.
  writeFileSync(join(dir, `${live.guest.opts.spec.name}.json`), redactKeys(JSON.stringify(rec)) + '\n', {
    mode: 0o600,
  });
}

/** A named boot's L1 options: what the pool boots for it (the golden files hold its QEMU arguments). */
export function bootOptionsOf(req: BootRequest, name: string): NonNullable<Parameters<typeof bootL1>[2]> {
  return {
    nodeMiB: req.nodeMiB,
    role: req.role,
    append: [...req.append, ...(req.unchecked ?? [])],
    name,
    ...optionalBootParts(req),
  };
}

/** The parts of a boot request that only some boots have, as bootL1 options. */
function optionalBootParts(req: BootRequest): Parameters<typeof bootL1>[2] {
  return {
    ...(req.iommu ? { iommu: true } : {}),
    ...(req.devices ? { devices: req.devices } : {}),
    ...(req.machineOptions ? { machineOptions: req.machineOptions } : {}),
    ...(req.consoleAllow ? { consoleAllow: req.consoleAllow.map((s) => new RegExp(s)) } : {}),
    ...(req.dimms ? { dimms: req.dimms } : {}),
    ...(req.hotplug ? { hotplug: req.hotplug } : {}),
    ...(req.firmware ? { firmware: req.firmware } : {}),
  };
}

/** A scenario asked for a boot it does not declare: the planning data would be wrong. */
export function undeclaredBoot(scenario: string, name: string): RigError {
  return new RigError('scenario-definition', `scenario ${scenario} boots "${name}" but does not list it in its boots`, {
    fix: `add '${name}' to ${scenario}.boots`,
  });
}
