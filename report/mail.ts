/**
 * `report --mail DIR`: one RFC 5322 message per reproduced known failure and per unexpected
 * failure of a bundle, as .eml files, never sent. Each replies to the patch that introduced it
 * (its culprit, from `culprits`), else to the cover letter, in the thread on the list: the
 * Message-Ids come from the mbox of the series as mailed (the series the run's was rebased from,
 * when the profile knows it), else from the run's own. The body is the kernel test robot's
 * layout: what was seen, on which base, series, config, compiler and machine, how to reproduce
 * it, the console excerpt, and the rig's Reported-by trailer (no Closes: link is invented).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { RigError } from '../core/errors.js';
import { describeExpectation, type RunResults, type ScenarioResult } from '../core/results.js';
import { provenanceLine, type SeriesProvenance } from '../core/series-record.js';
import { parseMbox, parseSubject, type MailMessage } from '../kernel/mbox.js';
import { expandPath, listProfiles, loadProfile } from '../kernel/profile.js';
import { seriesDefinition } from '../kernel/series.js';
import { decodeOops } from './decode-oops.js';
import { reproducerOf, type ProofRecord } from '../scenarios/repros.js';
import { SIGNATURES } from '../scenarios/signatures.js';

export const RIG_ADDRESS = 'dmemfs-rig <dmemfs-rig@dmemfs-rig.invalid>';
export const WRAP = 72;

export interface Finding {
  /** The signature's id, or scenario/measurement for an unexpected failure. */
  id: string;
  known: boolean;
  scenario: string;
  title: string;
  why?: string;
  seen: string[];
  excerpt?: string;
  /** The oops's faulting instruction, decoded from its Code: bytes (report/decode-oops.ts). */
  decoded?: { rip: string; lines: string[] };
  culprit?: { number: number; title: string; patches: number; presentFrom?: true };
}

/** Reproduced signatures, then each held value that failed with no signature to explain it. */
export function findingsOf(run: Pick<RunResults, 'scenarios'>): Finding[] {
  const out: Finding[] = [];
  for (const s of run.scenarios) {
    for (const c of s.signatures.filter((x) => x.reproduced)) {
      const sig = SIGNATURES.find((x) => x.id === c.id);
      out.push({
        id: c.id,
        known: true,
        scenario: s.id,
        title: c.title,
        ...(sig ? { why: sig.reason.replace(/\s+/g, ' ') } : {}),
        seen: c.measurements.map((n) => seenLine(s, n)),
        ...excerptOf(s, c.measurements),
        ...(c.culprit ? { culprit: c.culprit } : {}),
      });
    }
    const claimed = new Set(s.signatures.filter((x) => x.reproduced).flatMap((x) => x.measurements));
    for (const [n, m] of Object.entries(s.measurements))
      if (m.ok === false && !claimed.has(n))
        out.push({
          id: `${s.id}/${n}`,
          known: false,
          scenario: s.id,
          title:
            `${s.id}: ${n} is ${JSON.stringify(m.value)}` +
            (m.expected ? `, expected ${describeExpectation(m.expected)}` : ''),
          seen: [seenLine(s, n)],
          ...excerptOf(s, [n]),
        });
  }
  return out;
}

function seenLine(s: ScenarioResult, name: string): string {
  const m = s.measurements[name];
  if (!m) return `${name}: not measured`;
  const v = `${JSON.stringify(m.value)}${m.unit ? ` ${m.unit}` : ''}`;
  return `${name} = ${v}${m.expected ? ` (expected ${describeExpectation(m.expected)})` : ''}`;
}

/** The first kernel report attached to these measurements, from its title line on (40 lines at most). */
function excerptOf(s: ScenarioResult, names: string[]): { excerpt?: string } {
  const r = names.flatMap((n) => s.measurements[n]?.reports ?? [])[0];
  if (!r) return {};
  const lines = r.excerpt.split('\n');
  const at = Math.max(
    0,
    lines.findIndex((l) => l.includes(r.title.slice(0, 40))),
  );
  return { excerpt: lines.slice(at, at + 40).join('\n') };
}

interface ThreadMail {
  messageId: string;
  subject: string;
  from?: string;
  to?: string;
  cc?: string;
}

export interface Thread {
  /** Where the Message-Ids come from. */
  mbox: string;
  cover?: ThreadMail;
  patches: Map<number, ThreadMail>;
}

const header = (m: MailMessage, h: string) =>
  m.headers
    .get(h)
    ?.map((v) => v.replace(/\s+/g, ' ').trim())
    .join(', ');
const bracket = (id: string) => (id.startsWith('<') ? id : `<${id}>`);

export function threadOf(mboxText: string, mbox: string): Thread {
  const t: Thread = { mbox, patches: new Map() };
  for (const m of parseMbox(mboxText)) {
    const s = parseSubject(m.subject);
    if (!s || !m.messageId) continue;
    const mail: ThreadMail = {
      messageId: bracket(m.messageId),
      subject: m.subject.replace(/\s+/g, ' ').trim(),
      ...(m.from ? { from: m.from } : {}),
      ...(header(m, 'to') ? { to: header(m, 'to')! } : {}),
      ...(header(m, 'cc') ? { cc: header(m, 'cc')! } : {}),
    };
    if (s.number === 0) t.cover = mail;
    else t.patches.set(s.number, mail);
  }
  return t;
}

/**
 * The mbox whose Message-Ids the mails thread into: the series as mailed when the run's series was
 * rebased from it (kernel/series/NAME.json rebasedFrom, the profile naming that series), else the
 * run's own mbox. An mbox that cannot be read: error [no-mbox].
 */
export function threadMbox(series: SeriesProvenance | undefined): string {
  if (!series?.origin.path)
    throw new RigError('no-mbox', 'the bundle names no mbox for its series: nothing to reply to', {
      fix: 'run with a profile or --series that gives the series as an mbox (the mails reply into its thread)',
    });
  const own = series.origin.path;
  const mailed = mailedMbox(series.name);
  for (const p of [mailed, own]) if (p && existsSync(p)) return p;
  throw new RigError('no-mbox', `the series' mbox ${own} is not here`, {
    fix: 'run report --mail where the mbox the run used can be read (or copy it to that path)',
  });
}

function mailedMbox(seriesName: string): string | undefined {
  let from: string | undefined;
  try {
    from = seriesDefinition(seriesName.split('+')[0]!.split('@')[0]!).rebasedFrom;
  } catch {
    return undefined; // an unpinned series: no definition, no series it was rebased from
  }
  const p = listProfiles()
    .map((n) => loadProfile(n))
    .find((x) => x.series?.name === from && x.series?.mbox);
  return p?.series?.mbox ? expandPath(p.series.mbox) : undefined;
}

/** Prose wrapped at WRAP columns, with a hanging indent. */
export function wrap(text: string, indent = '', first = indent): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let cur = first;
  for (const w of words) {
    if (cur.trim() && cur.length + 1 + w.length > WRAP) {
      lines.push(cur);
      cur = indent + w;
    } else cur = cur.trim() ? `${cur} ${w}` : `${cur}${w}`;
  }
  if (cur.trim()) lines.push(cur);
  return lines.join('\n');
}

/**
 * A standalone reproducer the run wrote and proved (`run --repro`: BUNDLE/repro/ID/, every
 * proof as required): its files, attached to the mail, and what each kernel showed.
 */
export interface MailRepro {
  files: Array<{ name: string; text: string }>;
  proof: Array<{ kernel: string; outcome: string; seconds: number }>;
}

/**
 * The proven reproducer of `id` in the bundle, or undefined: none written, a proof not met, a
 * proof without its kernels (the series, the baseline, and the fixing edit where the reproducer
 * names one), or a file that is not the one the proof ran (by sha256).
 * Only the files the proof ran are attached.
 */
export function reproOf(bundle: string, id: string): MailRepro | undefined {
  const dir = join(bundle, 'repro', id);
  const proofFile = join(dir, 'proof', 'proof.json');
  if (!existsSync(proofFile)) return undefined;
  const proof = JSON.parse(readFileSync(proofFile, 'utf8')) as Partial<ProofRecord>;
  const rows = Array.isArray(proof.rows) ? proof.rows : [];
  const shown = (label: string, outcome: string) =>
    rows.some((r) => r.label === label && r.outcome === outcome && r.ok);
  const fix = reproducerOf(id)?.fixedBy !== undefined;
  if (!rows.every((r) => r.ok) || !shown('series', 'bug') || !shown('baseline', 'absent')) return undefined;
  if (fix && !shown('fixed', 'no-bug')) return undefined;
  const listed = Object.entries(proof.files ?? {});
  if (!listed.some(([n]) => n === 'repro.sh')) return undefined;
  const files: MailRepro['files'] = [];
  for (const [name, sha] of listed) {
    const path = join(dir, name);
    if (!existsSync(path)) return undefined;
    const bytes = readFileSync(path);
    if (createHash('sha256').update(bytes).digest('hex') !== sha) return undefined;
    files.push({ name, text: bytes.toString('utf8') });
  }
  return { files, proof: rows.map(({ kernel, outcome, seconds }) => ({ kernel, outcome, seconds })) };
}

/** How to reproduce: the attached reproducer when the run proved one, else the rig's own command. */
function reproduceLines(f: Finding, run: RunResults, repro: MailRepro | undefined): string[] {
  const rig = [`  npm ci`, `  npm run rig -- run --profile ${run.profile} \\`, `      --scenario ${f.scenario}`];
  if (!repro) return ['To reproduce, in a clone of dmemfs-rig:', ...rig];
  const script = repro.files.find((x) => x.name === 'repro.sh')!.text.replace(/\n$/, '');
  // A reproducer that acts on the machine from outside (an MCE through the monitor) runs qemu.sh itself.
  const host = repro.files.some((x) => x.name === 'inject.sh');
  return [
    wrap(
      'To reproduce with nothing of dmemfs-rig: save the attached files in one directory' +
        (repro.files.some((x) => x.name === 'kernel.config')
          ? ' (kernel.config.gz is the config of the kernel that showed it; build the series with it)'
          : '') +
        ', then, with qemu-system-x86_64, gcc and a static libc, busybox-static, cpio and gzip:',
    ),
    '',
    '  sh build.sh && sh mkinitramfs.sh',
    `  KERNEL=/path/to/arch/x86/boot/bzImage sh ${host ? 'inject.sh' : 'qemu.sh'}`,
    ...(host
      ? ['', wrap("inject.sh runs qemu.sh and injects the error through QEMU's monitor when the guest asks.")]
      : []),
    '',
    wrap('The rig ran them as attached, each in a fresh guest, on this run:'),
    ...repro.proof.map((p) => wrap(`${p.kernel}: ${p.outcome}, ${p.seconds} s`, '      ', '  ')),
    '',
    "repro.sh, the guest's only program (init runs it, then powers off):",
    '',
    ...script.split('\n').map((l) => (l ? `  ${l}` : '')),
    '',
    'Or, in a clone of dmemfs-rig:',
    ...rig,
  ];
}

export interface MailContext {
  run: RunResults;
  thread: Thread;
  repro?: MailRepro;
  build?: { toolchain?: { version?: string }; source?: { package?: string; version?: string; baseCommit?: string } };
}

function baseWords(run: RunResults, src: NonNullable<MailContext['build']>['source']): string {
  const pkg = src?.package ? ` (${src.package} ${src.version})` : '';
  const commit = src?.baseCommit ? `, commit ${src.baseCommit.slice(0, 12)}` : '';
  return `Linux ${String(run.kernel.release ?? '?')}${pkg}${commit}`;
}

/** The boot's QEMU argument after `k`, or "?". */
function qemuArg(args: readonly string[] | undefined, k: string): string {
  const i = args?.indexOf(k) ?? -1;
  return i >= 0 ? args![i + 1]! : '?';
}

function testedLines(ctx: MailContext, f: Finding): string[] {
  const { run, build } = ctx;
  const args = run.boots.find((b) => b.scenario === f.scenario)?.qemu.args;
  const a = (k: string) => qemuArg(args, k);
  const kv = (k: string, v: string) => wrap(v, ' '.repeat(12), `  ${k.padEnd(9)}`);
  return [
    kv('base:', baseWords(run, build?.source)),
    kv('series:', run.series ? provenanceLine(run.series) : 'none'),
    kv('config:', `sha256 ${String(run.kernel.configSha256 ?? '?').slice(0, 16)} (the bundle's kernel/config)`),
    kv('compiler:', build?.toolchain?.version ?? 'unknown'),
    kv(
      'machine:',
      `${run.qemu.version}, ${run.accel.accel}; -machine ${a('-machine')} -cpu ${a('-cpu')} -smp ${a('-smp')} ` +
        `-m ${a('-m')}`,
    ),
    kv('cmdline:', a('-append').replace(/rig\.key=(<[^>]*>|\S+) ?/, '')),
  ];
}

/** Where in the series the finding starts, in words. */
function whereWords(f: Finding): string {
  return f.culprit
    ? f.culprit.presentFrom
      ? `from patch ${f.culprit.number}/${f.culprit.patches} on, where the code path first exists (the prefixes ` +
        'before it cannot show it; found by bisecting the series)'
      : `from patch ${f.culprit.number}/${f.culprit.patches} on: the first prefix of the series at which it ` +
        'reproduces, found by bisection'
    : 'on the whole series (the patch that introduced it is not bisected yet: dmemfs-rig culprits)';
}

function decodedSection(f: Finding): string[] {
  if (!f.decoded) return [];
  return [
    '',
    `The trapping instruction of ${f.decoded.rip},`,
    'decoded from its Code: bytes with objdump (offsets in bytes from it;',
    "a jump's target counts from the first byte of Code:):",
    '',
    ...f.decoded.lines,
  ];
}

/** One finding as an RFC 5322 message (CRLF line ends, as mail tools write them). */
export function renderMail(f: Finding, ctx: MailContext): string {
  const { run, thread } = ctx;
  const target = (f.culprit && thread.patches.get(f.culprit.number)) ?? thread.cover;
  if (!target)
    throw new RigError('no-mbox', `${thread.mbox} has neither patch ${f.culprit?.number ?? '-'} nor a cover letter`, {
      fix: 'give the series as mailed, with its cover letter',
    });
  const refs = [thread.cover?.messageId, target.messageId].filter((x, i, a): x is string => !!x && a.indexOf(x) === i);
  const id = createHash('sha256').update(`${run.startedAt}\0${f.id}`).digest('hex').slice(0, 20);
  const subject = `Re: ${target.subject.replace(/^(Re:\s*)+/i, '')}`;
  const where = whereWords(f);
  const body = [
    'Hello,',
    '',
    wrap(
      `dmemfs-rig, a test rig that builds the series and runs it under QEMU, ${f.known ? 'reproduced' : 'saw'} ` +
        `the following ${where}:`,
    ),
    '',
    wrap(f.title, '    ', '    '),
    '',
    'Tested:',
    ...testedLines(ctx, f),
    '',
    'What was seen:',
    ...f.seen.map((l) => wrap(l, '    ', '  ')),
    ...(f.why ? ['', 'Why, as far as the rig can tell:', wrap(f.why, '  ', '  ')] : []),
    '',
    ...reproduceLines(f, run, ctx.repro),
    ...(f.excerpt ? ['', 'The kernel log (lines as printed, not wrapped):', '', ...f.excerpt.split('\n')] : []),
    ...decodedSection(f),
    '',
    `Reported-by: ${RIG_ADDRESS}`,
    '',
  ];
  const headers = [
    `From: ${RIG_ADDRESS}`,
    ...(target.from ? [`To: ${target.from}`] : []),
    ...(() => {
      const cc = [target.to, target.cc].filter(Boolean).join(', ');
      return cc ? [`Cc: ${cc}`] : [];
    })(),
    `Subject: ${subject}`,
    `Date: ${new Date(run.startedAt).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <dmemfs-rig.${id}@dmemfs-rig.invalid>`,
    `In-Reply-To: ${target.messageId}`,
    `References: ${refs.join(' ')}`,
    'MIME-Version: 1.0',
    ...(ctx.repro
      ? [`Content-Type: multipart/mixed; boundary="${boundaryOf(id)}"`, 'Content-Transfer-Encoding: 8bit']
      : TEXT_PART),
    'X-Mailer: dmemfs-rig report --mail (never sent by the rig)',
  ].map((h) => foldHeader(h));
  // wrap() and the excerpt break lines with LF: every line end of the message is CRLF.
  const text = body.join('\n').replace(/\r?\n/g, '\r\n');
  if (!ctx.repro) return [...headers, '', text].join('\r\n');
  return [...headers, '', ...withAttachments(text, ctx.repro, boundaryOf(id))].join('\r\n');
}

const TEXT_PART = ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'];
const boundaryOf = (id: string) => `=_dmemfs-rig_${id}`;

/**
 * multipart/mixed (RFC 2046 5.1): the body, then each file of the reproducer as an attachment in
 * base64 (saved, each is byte for byte the file the rig ran: LF line ends, its mode aside), and
 * kernel.config gzipped, as the kernel test robot sends its config.gz.
 */
function withAttachments(body: string, repro: MailRepro, boundary: string): string[] {
  const b64 = (b: Buffer) => b.toString('base64').match(/.{1,76}/g) ?? [];
  const part = (name: string, type: string, bytes: Buffer) => [
    `Content-Type: ${type}; name="${name}"`,
    `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    ...b64(bytes),
  ];
  const parts: string[][] = [
    [...TEXT_PART, '', body],
    ...repro.files.map((f) =>
      f.name === 'kernel.config'
        ? part('kernel.config.gz', 'application/gzip', gzipSync(Buffer.from(f.text), { level: 9 }))
        : part(f.name, 'text/plain; charset=utf-8', Buffer.from(f.text)),
    ),
  ];
  return [
    'This is a MIME message: the report, then the reproducer as attachments.',
    ...parts.flatMap((p) => [`--${boundary}`, ...p]),
    `--${boundary}--`,
    '',
  ];
}

/** Long headers folded (RFC 5322 2.2.3): address lists after their commas, others at spaces. */
function foldHeader(h: string): string {
  if (h.length <= 78) return h;
  const sep = h.includes(', ') ? ', ' : ' ';
  const parts = h.split(sep);
  const lines: string[] = [];
  let cur = parts[0]!;
  for (const p of parts.slice(1)) {
    // Never leave the header's name alone on its line.
    if (cur.length + sep.length + p.length > 78 && !cur.endsWith(':')) {
      lines.push(sep === ', ' ? `${cur},` : cur);
      cur = ` ${p}`;
    } else cur = `${cur}${sep}${p}`;
  }
  lines.push(cur);
  return lines.join('\r\n');
}

/** Write every finding of the bundle as DIR/NN-ID.eml; the paths written. */
export async function writeMails(bundle: string, run: RunResults, outDir: string): Promise<string[]> {
  const mbox = threadMbox(run.series);
  const thread = threadOf(readFileSync(mbox, 'utf8'), mbox);
  const manifest = join(bundle, 'kernel', 'build-manifest.json');
  const build = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as MailContext['build']) : undefined;
  const findings = findingsOf(run);
  for (const f of findings) {
    const decoded = f.excerpt ? await decodeOops(f.excerpt) : undefined;
    if (decoded) f.decoded = decoded;
  }
  mkdirSync(outDir, { recursive: true });
  return findings.map((f, i) => {
    const file = join(outDir, `${String(i + 1).padStart(2, '0')}-${f.id.replace(/[^A-Za-z0-9.-]+/g, '_')}.eml`);
    const repro = f.known ? reproOf(bundle, f.id) : undefined;
    writeFileSync(file, renderMail(f, { run, thread, ...(build ? { build } : {}), ...(repro ? { repro } : {}) }));
    return file;
  });
}
