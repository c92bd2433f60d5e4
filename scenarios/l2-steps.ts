/**
 * Second-level guests: QEMU started inside L1 over SSH, its RAM from a file (dmemfs,
 * hugetlbfs, device-dax, tmpfs), its console read back as the command's output; and the same
 * measurements taken whatever backs its RAM.
 */
import { RigError } from '../core/errors.js';
import { warn } from '../core/log.js';
import { approx, between, eq, is, type Measurement } from '../core/results.js';
import { qemuArgs, type MemoryBackend } from '../vm/machine-spec.js';
import type { GuestHandle as Guest } from '../vm/guest-handle.js';
import { l2Machine } from './machines.js';
import { watchLog } from './steps.js';
import type { ScenarioContext } from './types.js';

export interface L2Report {
  ok: boolean;
  memTotalKb: number | undefined;
  touchedMiB: number | undefined;
  nodes: number | undefined;
  done: boolean;
  accel: 'kvm' | 'tcg';
  seconds: number;
  console: string;
  argv: string[];
  /** The console went silent for this many seconds before L2 finished; QEMU was stopped. */
  stalledS?: number;
}

/** Whether L1 can run KVM guests (its CPU has vmx/svm and /dev/kvm exists). */
export async function l1KvmUsable(l1: Guest): Promise<{ ok: boolean; why: string }> {
  const r = await l1.exec(['sh', '-c', 'grep -m1 -o -w -E "vmx|svm" /proc/cpuinfo; test -c /dev/kvm && echo dev-kvm']);
  const flag = /\b(vmx|svm)\b/.exec(r.stdout)?.[1];
  const dev = /dev-kvm/.test(r.stdout);
  return {
    ok: Boolean(flag && dev),
    why: flag
      ? dev
        ? `L1 CPU has ${flag} and /dev/kvm`
        : `L1 CPU has ${flag} but no /dev/kvm`
      : 'L1 CPU has neither vmx nor svm',
  };
}

export interface L2RunOptions<T> {
  memMiB: number;
  backend?: MemoryBackend;
  hostNodes?: number[];
  policy?: 'preferred' | 'bind';
  touchMiB: number;
  accel: 'kvm' | 'tcg';
  timeoutMs: number;
  holdS?: number;
  during?: (l1: Guest) => Promise<T>;
  /** Console silence that counts as a stall (default L2_QUIET_MS for the accelerator). */
  quietMs?: number;
}

/**
 * How long an L2's console may stay silent before it counts as stalled. Its kernel is quiet:
 * the first line is its init's, 12-26 s in with KVM in L1 (nested SVM on TCG), about 100 s
 * under TCG in L1.
 * Seen about once in ten CI runs under nested SVM on TCG: an L2 that stopped printing and
 * never finished, which cost the whole timeout and failed the scenario.
 */
export const L2_QUIET_MS = { kvm: 90_000, tcg: 400_000 } as const;

/**
 * QEMU in the background with its console in a log file that is polled; `during` runs while
 * L2 holds its memory. A console silent for L2_QUIET_MS stops QEMU and the report says so.
 */
async function runL2InBackground<T>(l1: Guest, argv: string[], opts: L2RunOptions<T>) {
  const started = Date.now();
  const log = '/run/rig-l2.log';
  const quietMs = opts.quietMs ?? L2_QUIET_MS[opts.accel];
  await l1.exec(
    [
      'sh',
      '-c',
      'rm -f "$0"; ("$@" > "$0" 2>&1; echo "rig-l2-exit: $?" >> "$0") < /dev/null > /dev/null 2>&1 &',
      log,
      ...argv,
    ],
    { check: true },
  );
  const left = () => Math.max(opts.timeoutMs - (Date.now() - started), 30_000);
  let seen: T | undefined;
  let w = await watchLog(l1, log, opts.during ? /rig-l2: holding|rig-l2-exit:/ : /rig-l2-exit:/, {
    timeoutMs: left(),
    quietMs,
  });
  if (opts.during && w.line && /holding/.test(w.line)) {
    seen = await opts.during(l1);
    w = await watchLog(l1, log, /rig-l2-exit:/, { timeoutMs: left(), quietMs });
  }
  const exit = w.line && /rig-l2-exit: (\d+)/.exec(w.line);
  const out = w.text; // the last read: with the exit line, the whole log
  if (!exit) await l1.exec(['pkill', '-KILL', '-f', 'l2-qmp.sock']);
  return {
    out,
    code: exit ? Number(exit[1]) : null,
    during: seen,
    ...(w.quietMs !== undefined ? { stalledS: Math.round(w.quietMs / 1000) } : {}),
  };
}

/** The L2 report lines its init printed on its console. */
function parseL2Console(out: string) {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : undefined;
  };
  return {
    memTotalKb: num(/rig-l2: memtotal_kb=(\d+)/),
    touchedMiB: num(/rig-l2: touched_mib=(\d+)/),
    nodes: num(/rig-l2: nodes=(\d+)/),
    done: /rig-l2: done/.test(out),
  };
}

/**
 * Run an L2 guest inside L1 to completion and parse its report from its console (QEMU runs in
 * the background with its console in a log file that is polled). With `during`, L2 holds its
 * touched memory for `holdS` seconds and `during` runs in that window (for example to read
 * KVM's large-page counters in L1).
 */
export async function runL2<T = undefined>(l1: Guest, opts: L2RunOptions<T>): Promise<L2Report & { during?: T }> {
  const spec = l2Machine({ ...opts, ...(opts.during ? { holdS: opts.holdS ?? 20 } : {}) });
  const argv = ['qemu-system-x86_64', ...qemuArgs(spec, { accel: opts.accel, qmpSocket: '/run/l2-qmp.sock' })];
  const started = Date.now();
  const { out, code, during, stalledS } = await runL2InBackground(l1, argv, opts);
  const parsed = parseL2Console(out);
  const report: L2Report & { during?: T } = {
    ok: code === 0 && parsed.done,
    ...parsed,
    accel: opts.accel,
    seconds: (Date.now() - started) / 1000,
    console: out.slice(-6000),
    argv,
    ...(stalledS !== undefined ? { stalledS } : {}),
    ...(during === undefined ? {} : { during }),
  };
  if (!report.done && code !== 0 && stalledS === undefined) {
    throw new RigError('l2-failed', `the L2 guest's QEMU exited with ${code} before its report`, {
      evidence: out.slice(-3000),
    });
  }
  return report;
}

/**
 * KVM's large-page count in L1 (debugfs kvm/largepages: huge mappings in the TDP tables of
 * every VM), read while L2 runs; with nx_largepages_splitted for context.
 */
export async function kvmLargePages(
  l1: Guest,
): Promise<{ largepages: number | undefined; splitted: number | undefined }> {
  const r = await l1.exec([
    'sh',
    '-c',
    'cd /sys/kernel/debug/kvm 2>/dev/null && echo "largepages $(cat largepages)" && echo "splitted $(cat ' +
      'nx_largepages_splitted 2>/dev/null)"',
  ]);
  const num = (k: string) => {
    const m = new RegExp(`^${k} (\\d+)`, 'm').exec(r.stdout);
    return m ? Number(m[1]) : undefined;
  };
  return { largepages: num('largepages'), splitted: num('splitted') };
}

/** L2 ended at once without a line of its kernel's console: QEMU exited 0 on its reset. */
export function resetBeforeItsKernel(r: Pick<L2Report, 'done' | 'console' | 'seconds'>): boolean {
  const printed = r.console.split('\n').some((l) => l.trim() && !/^rig-l2-exit: /.test(l.trim()));
  return !r.done && !printed && /rig-l2-exit: 0/.test(r.console);
}

/**
 * Why an L2 run is worth one more attempt, or undefined: it reset before its kernel printed,
 * or its console went silent before its report. An L2 that reported (done) is judged as it is.
 */
export function l2RetryReason(r: Pick<L2Report, 'done' | 'console' | 'seconds' | 'stalledS'>): string | undefined {
  if (r.done) return undefined;
  if (resetBeforeItsKernel(r)) return 'the first L2 reset before its kernel printed anything';
  if (r.stalledS !== undefined) return `the first L2's console was silent for ${r.stalledS} s before its report`;
  return undefined;
}

/**
 * runL2, once more if the first attempt is worth retrying (l2RetryReason). A second stall is a
 * failure with both consoles as evidence.
 */
export async function runL2Retrying<T>(
  l1: Guest,
  opts: L2RunOptions<T>,
): Promise<{ report: L2Report & { during?: T }; attempts: 1 | 2; retried?: { why: string; console: string } }> {
  const first = await runL2(l1, opts);
  const why = l2RetryReason(first);
  if (!why) return { report: first, attempts: 1 };
  warn(`${why} (${first.seconds.toFixed(0)} s); running it once more`);
  const second = await runL2(l1, opts);
  if (second.stalledS !== undefined && !second.done) throw l2Stalled(second, first, why);
  return { report: second, attempts: 2, retried: { why, console: first.console } };
}

function l2Stalled(r: L2Report, first: L2Report, why: string): RigError {
  return new RigError('l2-stalled', `the L2 guest's console was silent for ${r.stalledS} s before its report; ${why}`, {
    fix: 'see both L2 consoles below; a kernel that hangs the same way twice is a finding',
    evidence: `first attempt:\n${first.console.slice(-2000)}\n--- second attempt ---\n${r.console.slice(-3000)}`,
  });
}

/** What measureL2 records, each name after the L2's prefix. */
export const L2_MEASURES = [
  'l2_accel',
  'l2_attempts',
  'l2_seconds',
  'l2_done',
  'l2_memtotal_kb',
  'l2_touched_mib',
  'kvm_largepages',
] as const;
export type L2Measure<P extends string> = `${P}${(typeof L2_MEASURES)[number]}`;

export interface MeasuredL2<P extends string> {
  memMiB: number;
  backend: MemoryBackend;
  hostNodes?: number[];
  /** The backend's page size in bytes: with KVM in L1 at 2 MiB or more, L2 should be mapped with large pages. */
  pageBytes: number;
  touchMiB?: number;
  /** Prefix of every measurement name, for several L2 guests in one scenario ('' for one). */
  prefix: P;
}

/**
 * MemTotal an L2 given `memMiB` reports: Debian's 6.1 kernel with the rig's L2 initramfs keeps
 * 210752 kB of 262144 (80.4%) at 256 MiB; the kernel's own reservations (image, memmap,
 * crashkernel-free early allocations) grow with the guest, so the expectation scales with it.
 */
export const L2_MEMTOTAL_SHARE = 210752 / 262144;

/**
 * Runs L2 (KVM in L1 where it can, else TCG, said in l2_accel), holds it while KVM's large-page
 * counter is read, and records the L2 measurements plus kvm_largepages.
 */
export async function measureL2<P extends string>(
  ctx: ScenarioContext<L2Measure<NoInfer<P>>>,
  g: Guest,
  l2: MeasuredL2<P>,
): Promise<{ report: L2Report; largepages: Measurement }> {
  const p = l2.prefix;
  const kvm = await l1KvmUsable(g);
  ctx.measure(`${p}l2_accel`, kvm.ok ? 'kvm' : 'tcg', {
    expect: is('kvm'),
    why: "every L1 that runs an L2 is given the CPU's virtualization (svm under TCG, the host's under KVM): KVM in L1",
    note: kvm.why,
  });
  const touchMiB = l2.touchMiB ?? 64;
  const {
    report: r,
    attempts,
    retried,
  } = await runL2Retrying(g, {
    memMiB: l2.memMiB,
    backend: l2.backend,
    ...(l2.hostNodes ? { hostNodes: l2.hostNodes, policy: 'bind' as const } : {}),
    touchMiB,
    accel: kvm.ok ? 'kvm' : 'tcg',
    timeoutMs: (kvm.ok ? 240 : 900) * 1000,
    ...(kvm.ok ? { holdS: 15, during: kvmLargePages } : {}),
  });
  if (retried)
    ctx.evidence(`${p}L2 console, first attempt (${retried.why.replace(/^the first L2/, 'it')})`, retried.console);
  ctx.measure(`${p}l2_attempts`, attempts, { note: retried?.why ?? 'first attempt' });
  ctx.evidence(`${p}L2 console`, r.console);
  ctx.evidence(`${p}L2 QEMU arguments (in L1)`, JSON.stringify(r.argv));
  ctx.measure(`${p}l2_seconds`, Math.round(r.seconds), { unit: 's' });
  ctx.measure(`${p}l2_done`, r.done, { expect: is(true) });
  ctx.measure(`${p}l2_memtotal_kb`, r.memTotalKb ?? null, {
    unit: 'kB',
    expect: approx(l2.memMiB * 1024 * L2_MEMTOTAL_SHARE, 0.01),
    why: 'the same L2 kernel and initramfs keep the same share of its RAM for themselves; 1% covers KASLR',
    note: `of ${l2.memMiB} MiB given`,
  });
  ctx.measure(`${p}l2_touched_mib`, r.touchedMiB ?? null, { unit: 'MiB', expect: eq(touchMiB) });
  const backend = l2.backend.kind === 'file' ? `file ${l2.backend.path}` : 'anonymous memory';
  return { report: r, largepages: measureLargePages(ctx, p, r, l2.pageBytes, touchMiB, kvm.why, backend) };
}

function measureLargePages<P extends string>(
  ctx: ScenarioContext<L2Measure<P>>,
  p: P,
  r: L2Report & { during?: { largepages: number | undefined; splitted: number | undefined } },
  pageBytes: number,
  touchMiB: number,
  kvmWhy: string,
  backend: string,
): Measurement {
  if (!r.during)
    return ctx.skipMeasure(
      `${p}kvm_largepages`,
      r.accel === 'tcg'
        ? `L2 runs under TCG in L1 (${kvmWhy}), so there are no KVM page tables to count`
        : 'L2 ended before it held its memory, so there was nothing to count (see l2_done)',
      { unit: 'mappings' },
    );
  // Backed by 2M (or larger) pages, the touched memory alone should take touchMiB/2 large mappings.
  const huge = pageBytes >= 2 << 20;
  return ctx.measure(`${p}kvm_largepages`, r.during.largepages ?? null, {
    unit: 'mappings',
    ...(huge
      ? {
          expect: between(touchMiB / 2 + 16, touchMiB * 2),
          why:
            `${touchMiB} MiB touched in 2 MiB pages (one large mapping each: ${touchMiB / 2}) and what the L2 ` +
            'kernel touches of its own: 89 on every 2 MiB backend here; half or twice that is another mapping',
        }
      : {}),
    note:
      `debugfs kvm/largepages while L2 held ${touchMiB} MiB touched; nx_largepages_splitted ` +
      `${r.during.splitted ?? '?'}`,
    // What the count was read of: the L2's RAM and how much of it the L2 had touched.
    evidence:
      `L2 RAM: ${backend}; L2 reported touched_mib=${r.touchedMiB ?? '?'}; kvm/largepages ` +
      `${r.during.largepages ?? '?'} under KVM in L1`,
  });
}
