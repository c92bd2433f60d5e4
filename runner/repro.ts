/**
 * `dmemfs-rig repro ID --out DIR`: a reproducer of a known failure that needs nothing of the rig.
 * The directory holds the machine (qemu.sh, from the same machine spec the scenario booted, with
 * no SSH, QMP or disk), the kernel command line, the steps (repro.sh) run by a busybox
 * initramfs's /init, the helpers' C sources with their build line, what the console shows with
 * the bug and without it, the kernel's .config and a short README.
 *
 * `--prove` runs the directory as it is written (build.sh, mkinitramfs.sh, qemu.sh with KERNEL=
 * each kernel) on the series, the baseline kernel and the fixing mutant: the bug must show on
 * the first only.
 */
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { run, startProcess } from '../core/exec.js';
import { digestEntry } from '../core/cache-digest.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';
import { makePrivateRunDir, projectRoot } from '../core/paths.js';
import { qemuPrefix, track } from '../core/processes.js';
import type { RunResults, SignatureCheck } from '../core/results.js';
import { BOOTS } from '../scenarios/boots.js';
import { l1Machine } from '../scenarios/machines.js';
import {
  NO_REPRODUCER,
  RESULT_LINE,
  REPRODUCERS,
  reproducerOf,
  type ProofKernel,
  type ProofRecord,
  type ProofRow,
  type ReproOutcome,
  type Reproducer,
} from '../scenarios/repros.js';

export type { ProofKernel, ProofRecord, ProofRow, ReproOutcome } from '../scenarios/repros.js';
import { SIGNATURES } from '../scenarios/signatures.js';
import type { BootRequest, Signature } from '../scenarios/types.js';
import { appendLine, qemuArgs, withWatchdogs } from '../vm/machine-spec.js';
import type { AccelChoice } from '../vm/accel.js';
import { qemuBinary } from '../vm/guest.js';
import { namedEdits } from '../kernel/edits.js';
import { runKernelPipeline, type KernelInput, type PipelineResult } from '../kernel/pipeline.js';
import { recordedCulpritWords } from '../scenarios/culprit-record.js';

/** Where the written scripts take their inputs: shell variables, with defaults beside the script. */
const MARK = { kernel: '@KERNEL@', initrd: '@INITRD@', accel: '@ACCEL@' } as const;
const VAR: Record<string, string> = { [MARK.kernel]: 'KERNEL', [MARK.initrd]: 'INITRD', [MARK.accel]: 'ACCEL' };

/** What a reproducer says about the kernel it was written for. */
export interface ReproSource {
  /** "the series <name> (N patches) on <base>": a line for the README. */
  series: string;
  /** The first patch that shows it, as the culprits table words it (or why there is none). */
  culprit: string;
  /** The kernel build's .config, copied as kernel.config. */
  kernelConfig?: string;
  /** Where the rig saw it (a bundle's scenario and boot), when a bundle was given. */
  seenIn?: string;
}

/** The signature, or why it cannot be reproduced standalone (an `error [no-reproducer]`). */
export function reproducerFor(id: string): { sig: Signature; repro: Reproducer } {
  const sig = SIGNATURES.find((s) => s.id === id);
  if (!sig)
    throw new RigError('unknown-signature', `no known-failure signature "${id}"`, {
      fix: `known: ${SIGNATURES.map((s) => s.id).join(', ')} (scenarios/signatures.ts)`,
    });
  const repro = reproducerOf(id);
  if (!repro)
    throw new RigError('no-reproducer', `signature ${id} has no standalone reproducer: ${NO_REPRODUCER[id] ?? '?'}`, {
      fix: `reproducers exist for ${REPRODUCERS.map((r) => r.signature).join(', ')} (scenarios/repros.ts)`,
    });
  return { sig, repro };
}

/** The bundle's check of the signature; a signature the bundle did not reproduce is refused. */
export function reproducedIn(run: RunResults, bundle: string, id: string): { check: SignatureCheck; scenario: string } {
  for (const s of run.scenarios)
    for (const c of s.signatures) if (c.id === id && c.reproduced) return { check: c, scenario: s.id };
  const seen = run.scenarios.flatMap((s) =>
    s.signatures.filter((c) => c.id === id).map((c) => `${s.id}: ${c.outcome}`),
  );
  throw new RigError(
    'not-reproduced',
    `signature ${id} did not reproduce in ${bundle} (${seen.length ? seen.join('; ') : 'not checked there'})`,
    {
      fix: 'give a bundle whose run reproduced it (`dmemfs-rig run --scenario SCENARIO`), or leave --bundle out',
    },
  );
}

/** The signatures a run reproduced that have a standalone reproducer, in the catalog's order. */
export function reproducible(run: RunResults): string[] {
  const seen = new Set(run.scenarios.flatMap((s) => s.signatures.filter((c) => c.reproduced).map((c) => c.id)));
  return REPRODUCERS.map((r) => r.signature).filter((id) => seen.has(id));
}

/** The machine of the reproducer: the boot's spec, the initramfs as root, no SSH, QMP or disk. */
export function reproMachineArgs(repro: Reproducer): { args: string[]; append: string } {
  const req: BootRequest = BOOTS[repro.boot];
  const spec = l1Machine(
    { kernel: MARK.kernel, initrd: MARK.initrd, image: '', modular: false },
    {
      name: `repro-${repro.signature}`,
      nodeMiB: req.nodeMiB,
      role: req.role,
      append: ['watchdog_thresh=60', ...req.append],
      initramfsRoot: true,
      ...(req.iommu ? { iommu: true } : {}),
      ...(req.devices ? { devices: req.devices } : {}),
      ...(req.machineOptions ? { machineOptions: req.machineOptions } : {}),
      ...(req.dimms ? { dimms: req.dimms } : {}),
      ...(req.hotplug ? { hotplug: req.hotplug } : {}),
      ...(req.firmware ? { firmware: req.firmware } : {}),
    },
  );
  // TCG's watchdog thresholds: looser than KVM's, so one command line holds on both.
  const args = qemuArgs(spec, { accel: 'tcg' }).map((a) =>
    a.startsWith(`${spec.machine.type},accel=tcg`) ? a.replace('accel=tcg', `accel=${MARK.accel}`) : a,
  );
  return { args, append: appendLine(withWatchdogs(spec.append, 'tcg')) };
}

/** What a user runs: qemu.sh, or the host script that runs it (inject.sh). */
export function runScript(repro: Reproducer): string {
  return repro.host ? 'inject.sh' : 'qemu.sh';
}

/** One shell word: single-quoted text, the marks as double-quoted variables. */
export function shellWord(a: string): string {
  if (a === '') return "''";
  const parts = a.split(/(@KERNEL@|@INITRD@|@ACCEL@)/).filter((p) => p !== '');
  return parts.map((p) => (VAR[p] ? `"$${VAR[p]}"` : `'${p.replace(/'/g, `'\\''`)}'`)).join('');
}

/** qemu.sh: the machine, one option and its value per line. */
export function qemuScript(repro: Reproducer, sig: Signature): string {
  const { args } = reproMachineArgs(repro);
  const lines: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    if (a.startsWith('-') && next !== undefined && !next.startsWith('-')) {
      lines.push(`${shellWord(a)} ${shellWord(next)}`);
      i++;
    } else lines.push(shellWord(a));
  }
  return [
    '#!/bin/sh',
    `# ${sig.id}: ${sig.title.replace(/\s+/g, ' ')}`,
    `# The machine the rig saw it on (boot "${repro.boot}"), with the initramfs as root and no network.`,
    '#   KERNEL  the bzImage of the series, built with kernel.config (default ./bzImage)',
    '#   INITRD  the initramfs mkinitramfs.sh writes (default ./initramfs.cpio.gz)',
    '#   ACCEL   kvm, or tcg where there is no /dev/kvm (default kvm)',
    '# The console is this terminal; QEMU exits when the guest powers off or panics.',
    'set -eu',
    'here=$(dirname "$0")',
    'KERNEL=${KERNEL:-$here/bzImage}',
    'INITRD=${INITRD:-$here/initramfs.cpio.gz}',
    'ACCEL=${ACCEL:-kvm}',
    '# Options after these (inject.sh adds a monitor) are passed on to QEMU.',
    'exec "${QEMU:-qemu-system-x86_64}" \\',
    ...lines.map((l) => `  ${l} \\`),
    '  "$@"',
    '',
  ].join('\n');
}

const BUILD_FLAGS = ['-static', '-O2', '-Wall', '-Wextra'];

/** The one-line build command of a helper, run in the reproducer's directory. */
export function helperBuildLine(h: string): string {
  return `gcc ${BUILD_FLAGS.join(' ')} -o ${h} ${h}.c`;
}

function buildScript(repro: Reproducer): string {
  return [
    '#!/bin/sh',
    '# The helpers repro.sh runs, linked statically (Debian: gcc and libc6-dev): one line each.',
    'set -eu',
    'cd "$(dirname "$0")"',
    ...repro.helpers.map(helperBuildLine),
    '',
  ].join('\n');
}

function mkinitramfsScript(repro: Reproducer): string {
  return [
    '#!/bin/sh',
    '# initramfs.cpio.gz: a static busybox (Debian: busybox-static), init, repro.sh and the helpers',
    '# build.sh made. Needs cpio and gzip.',
    'set -eu',
    'here=$(cd "$(dirname "$0")" && pwd)',
    'busybox=${BUSYBOX:-/bin/busybox}',
    'root=$(mktemp -d)',
    'trap \'rm -rf "$root"\' EXIT',
    'mkdir -p "$root/bin" "$root/repro"',
    'cp "$busybox" "$root/bin/busybox"',
    'cp "$here/init" "$root/init"',
    `cp "$here/repro.sh" ${repro.helpers.map((h) => `"$here/${h}"`).join(' ')} "$root/repro/"`,
    'chmod 755 "$root/init" "$root/bin/busybox"',
    '(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -9 > "$here/initramfs.cpio.gz"',
    'echo "$here/initramfs.cpio.gz"',
    '',
  ].join('\n');
}

function expectedText(repro: Reproducer, sig: Signature): string {
  return [
    `# ${sig.id}: what the console shows (every pattern matches a line: grep -E)`,
    '',
    '## With the bug (the series as mailed)',
    repro.bug.says,
    ...repro.bug.lines,
    '',
    repro.fixedBy
      ? `## Without it (the fix ${repro.fixedBy} of dmemfs-rig's kernel/edits.ts)`
      : '## Without it (no one-line fix is known: what a fixed kernel would show)',
    repro.fixed.says,
    ...repro.fixed.lines,
    '',
    '## On a kernel without the series',
    '^repro: RESULT absent',
    '',
  ].join('\n');
}

function readme(repro: Reproducer, sig: Signature, src: ReproSource): string {
  const { append } = reproMachineArgs(repro);
  return [
    `${sig.title}`,
    '',
    `Known failure ${sig.id} of the DMEMFS series: ${src.series}; ${src.culprit}.`,
    ...(src.seenIn ? [`Seen by dmemfs-rig in ${src.seenIn}.`] : []),
    '',
    'Needs qemu-system-x86_64, gcc with a static libc, busybox-static, cpio, gzip, and the series',
    'built with kernel.config (its bzImage). Then:',
    ...(repro.variant === 'debug'
      ? [
          "kernel.config is the series' debug build (lockdep, DEBUG_ATOMIC_SLEEP, KASAN): the bug is what",
          'its checkers print.',
        ]
      : []),
    '',
    '  sh build.sh && sh mkinitramfs.sh',
    `  KERNEL=/path/to/arch/x86/boot/bzImage sh ${runScript(repro)} 2>&1 | tee console.log`,
    ...(repro.host
      ? [
          '',
          'inject.sh runs qemu.sh and acts on the machine from outside through its monitor (see',
          'its first lines).',
        ]
      : []),
    '',
    `With the bug: ${repro.bug.says}.`,
    `Without it: ${repro.fixed.says}.`,
    'expected.txt has the console lines of each case; repro.sh the steps (init runs it as the',
    "guest's only program); cmdline the kernel command line qemu.sh passes:",
    `  ${append}`,
    '',
  ].join('\n');
}

/** repro.sh: the script, its variables (when the reproducer sets any) in the first lines. */
export function reproScript(repro: Reproducer, script: string): string {
  const vars = Object.entries(repro.vars ?? {});
  if (!vars.length) return script;
  return [
    `# ${repro.signature}: the variables the steps below read`,
    ...vars.map(([k, v]) => `${k}=${v}`),
    script,
  ].join('\n');
}

/** Write the reproducer of `id` into `out` (created; files it writes are replaced). The files, sorted. */
export function writeReproducer(id: string, out: string, src: ReproSource): string[] {
  const { sig, repro } = reproducerFor(id);
  const images = join(projectRoot(), 'images');
  if (existsSync(out) && readdirSync(out).length && !isReproDir(out))
    throw new RigError('out-exists', `${out} holds files that are not a reproducer: nothing written`, {
      fix: 'give --out a new directory, or one a reproducer was written into',
    });
  // A proof is of the files it ran: written again, the old one is gone until --prove runs.
  rmSync(join(out, 'proof'), { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const files: Record<string, string> = {
    README: readme(repro, sig, src),
    'qemu.sh': qemuScript(repro, sig),
    cmdline: reproMachineArgs(repro).append + '\n',
    'repro.sh': reproScript(repro, readFileSync(join(images, 'repro', repro.script), 'utf8')),
    init: readFileSync(join(images, 'repro', 'init.sh'), 'utf8'),
    'build.sh': buildScript(repro),
    'mkinitramfs.sh': mkinitramfsScript(repro),
    'expected.txt': expectedText(repro, sig),
    'rig-helper.h': readFileSync(join(images, 'guest-tools', 'rig-helper.h'), 'utf8'),
    ...(repro.host ? { 'inject.sh': readFileSync(join(images, 'repro', repro.host), 'utf8') } : {}),
    ...Object.fromEntries(
      repro.helpers.map((h) => [`${h}.c`, readFileSync(join(images, 'guest-tools', `${h}.c`), 'utf8')]),
    ),
  };
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(out, name), text);
    if (name.endsWith('.sh') || name === 'init') chmodSync(join(out, name), 0o755);
  }
  if (src.kernelConfig) copyFileSync(src.kernelConfig, join(out, 'kernel.config'));
  return [...Object.keys(files), ...(src.kernelConfig ? ['kernel.config'] : [])].sort();
}

/** The console of one run, judged by the reproducer's own expected lines. */
export function judgeConsole(repro: Reproducer, console: string): { outcome: ReproOutcome; result: string } {
  const lines = console.replace(/\r/g, '').split('\n');
  const all = (pats: string[]) => pats.every((p) => lines.some((l) => new RegExp(p).test(l)));
  const last = lines
    .map((l) => RESULT_LINE.exec(l.trim()))
    .filter((m) => m !== null)
    .pop();
  const result = last ? last[0] : '(no RESULT line)';
  if (all(repro.bug.lines)) return { outcome: 'bug', result };
  if (all(repro.fixed.lines)) return { outcome: 'no-bug', result };
  if (last?.[1] === 'absent') return { outcome: 'absent', result };
  return { outcome: 'inconclusive', result };
}

/** What the proof requires on each kernel. */
export const EXPECTED: Record<ProofKernel['label'], ReproOutcome[]> = {
  series: ['bug'],
  baseline: ['absent'],
  fixed: ['no-bug'],
};

/** sha256 of every file of the reproducer's directory (proof/ aside), by name: the cache's digest. */
export function fileDigests(dir: string): Record<string, string> {
  const { files } = digestEntry(dir, new Set(['proof']));
  return Object.fromEntries(Object.entries(files).map(([n, f]) => [n, f.sha256]));
}

/**
 * qemu.sh once, with an environment of its own (PATH, the kernel, the accelerator and the QEMU
 * the rig boots with): nothing else of the caller's environment reaches the scripts.
 */
async function runOnce(
  repro: Reproducer,
  work: string,
  k: ProofKernel,
  accel: AccelChoice,
): Promise<{ console: string }> {
  const bound = (repro.seconds + 30) * accel.timeoutScale * 1000;
  const argv = [...qemuPrefix(), 'sh', join(work, runScript(repro))];
  // QEMU itself, tracked so that no guest outlives the rig (core/processes.ts), as vm/guest.ts spawns it.
  const p = startProcess(argv[0]!, argv.slice(1), {
    cwd: work,
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KERNEL: k.image, ACCEL: accel.accel, QEMU: qemuBinary() },
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: bound,
    killSignal: 'SIGKILL',
  });
  track(p);
  const r = await p;
  return { console: String(r.all ?? '') + (r.timedOut ? `\n(repro: killed after ${bound / 1000} s)\n` : '') };
}

/** build.sh and mkinitramfs.sh in the private copy, with PATH alone for an environment. */
async function buildInCopy(id: string, work: string): Promise<void> {
  for (const script of ['build.sh', 'mkinitramfs.sh'])
    await run('sh', [join(work, script)], {
      cwd: work,
      stdin: 'ignore',
      extendEnv: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    }).catch((e: unknown) => {
      throw new RigError('repro-build', `${script} of the ${id} reproducer failed: ${(e as Error).message}`, {
        fix: 'install what its README names (`npm run setup` installs them on Debian)',
        ...(e instanceof RigError && e.evidence ? { evidence: e.evidence } : {}),
      });
    });
}

/**
 * Run the written directory as it is, once per kernel: build.sh and mkinitramfs.sh in a private
 * copy, then qemu.sh with KERNEL= the kernel, its console kept beside the reproducer
 * (proof/console-LABEL.log). No rig code runs inside the guest.
 */
export async function proveReproducer(
  id: string,
  dir: string,
  kernels: ProofKernel[],
  accel: AccelChoice,
): Promise<ProofRow[]> {
  const { repro } = reproducerFor(id);
  const work = makePrivateRunDir(`repro-${id}`);
  try {
    const proofDir = join(dir, 'proof');
    cpSync(dir, work, { recursive: true, filter: (s) => s !== proofDir && !s.startsWith(`${proofDir}/`) });
    await buildInCopy(id, work);
    rmSync(proofDir, { recursive: true, force: true });
    mkdirSync(proofDir, { recursive: true });
    const rows: ProofRow[] = [];
    for (const k of kernels) {
      info(`repro ${id}: on ${k.what}`);
      const t0 = Date.now();
      // The serial console under TCG can drop a character; a console the judge cannot read
      // (inconclusive) is run once more, and both consoles are kept.
      let run = await runOnce(repro, work, k, accel);
      writeFileSync(join(proofDir, `console-${k.label}.log`), run.console);
      let tries = 1;
      if (judgeConsole(repro, run.console).outcome === 'inconclusive') {
        info(`repro ${id}: the console on ${k.what} is inconclusive; once more`);
        writeFileSync(join(proofDir, `console-${k.label}-1.log`), run.console);
        run = await runOnce(repro, work, k, accel);
        writeFileSync(join(proofDir, `console-${k.label}.log`), run.console);
        tries = 2;
      }
      const { outcome, result } = judgeConsole(repro, run.console);
      const expected = EXPECTED[k.label];
      rows.push({
        label: k.label,
        kernel: k.what,
        outcome,
        result,
        expected,
        ok: expected.includes(outcome),
        seconds: Math.round((Date.now() - t0) / 100) / 10,
        console: join('proof', `console-${k.label}.log`),
        ...(tries > 1 ? { tries } : {}),
      });
    }
    const proof: ProofRecord = { files: fileDigests(dir), rows };
    writeFileSync(join(proofDir, 'proof.json'), JSON.stringify(proof, null, 2) + '\n');
    writeFileSync(join(proofDir, 'proof.txt'), proofTable(id, rows) + '\n');
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function proofTable(id: string, rows: ProofRow[]): string {
  return [
    `reproducer ${id}, run as written:`,
    '| kernel | shows | must show | seconds | last line |',
    '|---|---|---|---:|---|',
    ...rows.map((r) => {
      const must = `${r.expected.join(' or ')}${r.ok ? '' : ' (NOT MET)'}`;
      return `| ${r.kernel} | ${r.outcome} | ${must} | ${r.seconds} | ${r.result} |`;
    }),
  ].join('\n');
}

/** Whether the directory holds a reproducer written by this rig (a second --out onto it replaces it). */
export function isReproDir(dir: string): boolean {
  return existsSync(join(dir, 'repro.sh')) && existsSync(join(dir, 'expected.txt'));
}

/** The kernels a reproducer is written for and proven on. */
export interface ReproKernels {
  profile: string;
  input: KernelInput;
  /** The unpatched kernel of the same config (the profile the boot pool calls baseline). */
  baseline: string;
}

/** The series line, the culprit words and the .config of the profile's kernel (built or cached). */
async function seriesKernel(k: ReproKernels): Promise<{ build: PipelineResult; series: string }> {
  const build = await runKernelPipeline({ profile: k.profile, ...k.input });
  const s = build.series;
  const base = `Linux ${build.source.kernelVersion} (${build.source.baseCommit.slice(0, 12)})`;
  return { build, series: s ? `${s.name}, ${s.parsed.patches.length} patches on ${base}` : `no series, ${base}` };
}

/**
 * Write the reproducer of each signature into OUT/<id>/ and, with `prove`, run it on the series,
 * the baseline and the fixing mutant. A bundle, when given, must have reproduced each one.
 */
export async function reproduce(opts: {
  ids: string[];
  out: string;
  kernels: ReproKernels;
  accel: AccelChoice;
  prove: boolean;
  bundle?: { path: string; run: RunResults };
}): Promise<Array<{ id: string; dir: string; files: string[]; proof?: ProofRow[] }>> {
  for (const id of opts.ids) {
    reproducerFor(id);
    if (opts.bundle) reproducedIn(opts.bundle.run, opts.bundle.path, id);
  }
  // The series' kernel per variant (the debug reproducers are written for the debug build).
  const builds = new Map<string, Promise<{ build: PipelineResult; series: string }>>();
  const seriesOf = (r: Reproducer) => {
    const profile = r.variant === 'debug' ? `${opts.kernels.profile}-debug` : opts.kernels.profile;
    if (!builds.has(profile)) builds.set(profile, seriesKernel({ ...opts.kernels, profile }));
    return { profile, kernel: builds.get(profile)! };
  };
  const done: Array<{ id: string; dir: string; files: string[]; proof?: ProofRow[] }> = [];
  for (const id of opts.ids) {
    const { sig, repro } = reproducerFor(id);
    const { profile, kernel } = seriesOf(repro);
    const { build, series } = await kernel;
    const dir = join(opts.out, id);
    const seen = opts.bundle ? reproducedIn(opts.bundle.run, opts.bundle.path, id) : undefined;
    const files = writeReproducer(id, dir, {
      series,
      culprit: recordedCulpritWords(sig),
      kernelConfig: build.build.config,
      ...(seen ? { seenIn: `scenario ${seen.scenario} of the run ${opts.bundle!.run.startedAt}` } : {}),
    });
    info(`repro ${id}: ${dir} (${files.length} files)`);
    if (!opts.prove) {
      done.push({ id, dir, files });
      continue;
    }
    const kernels: ProofKernel[] = [
      { label: 'series', what: `the series (${build.series?.name ?? 'none'}, ${profile})`, image: build.build.bzImage },
    ];
    const baseline = await runKernelPipeline({ profile: opts.kernels.baseline });
    kernels.push({ label: 'baseline', what: `the baseline (${opts.kernels.baseline})`, image: baseline.build.bzImage });
    if (repro.fixedBy) {
      const edits = [...(opts.kernels.input.edits ?? []), ...namedEdits([repro.fixedBy])];
      const fixed = await runKernelPipeline({ profile, ...opts.kernels.input, edits });
      kernels.push({ label: 'fixed', what: `the series with ${repro.fixedBy}`, image: fixed.build.bzImage });
    }
    const proof = await proveReproducer(id, dir, kernels, opts.accel);
    done.push({ id, dir, files, proof });
  }
  return done;
}
