/**
 * The known failures of the series as Markdown, written from the signatures themselves (what
 * each explains and what its evidence must show): `dmemfs-rig known-failures` prints it, and the
 * docs/scenarios.md's section is this text (npm run rig -- docs writes it; a unit test keeps the two equal).
 */
import { describeExpectation } from '../core/results.js';
import { SIGNATURES } from '../scenarios/signatures.js';
import type { Signature } from '../scenarios/types.js';
import { NO_REPRODUCER, reproducerOf } from '../scenarios/repros.js';
import { loadCulprits, recordedCulpritWords, type RecordedCulprit } from '../scenarios/culprit-record.js';

/** What the evidence must show, in words. */
function evidenceText(sig: Signature): string[] {
  const out = Object.entries(sig.measurements).map(
    ([n, e]) => `\`${n}\` ${e === 'any' || e === undefined ? 'failed' : describeExpectation(e)}`,
  );
  if (sig.report) {
    const r = sig.report;
    out.push(
      `a kernel report of kind ${r.kinds.join(' or ')}` +
        (r.title ? `, title matching \`${r.title.source}\`` : '') +
        (r.excerpt ? `, excerpt matching \`${r.excerpt.source}\`` : '') +
        (sig.seen ? ' on the console while the scenario ran' : ''),
    );
  }
  if (sig.evidence) out.push(`evidence matching \`${sig.evidence.source}\``);
  for (const [n, r] of Object.entries(sig.intermittent ?? {}))
    if (r) out.push(`\`${n}\` intermittent: ${r.hits} of ${r.tries} tries (${r.source})`);
  if (sig.variant) out.push(`on the ${sig.variant} variant only`);
  return out;
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/** Whether `repro` writes a standalone reproducer of it, and if not, why. */
function reproducerWords(sig: Signature): string {
  const r = reproducerOf(sig.id);
  if (r) {
    const helpers = r.helpers.length ? `helper ${r.helpers.map((h) => `\`${h}\``).join(', ')}` : 'no helper';
    return `yes: boot \`${r.boot}\`, ${helpers}${r.fixedBy ? `; not with the fix \`${r.fixedBy}\`` : ''}`;
  }
  return `not yet: ${oneLine(NO_REPRODUCER[sig.id] ?? 'no reproducer written')}`;
}

export function knownFailuresMarkdown(
  signatures: readonly Signature[] = SIGNATURES,
  culprits: Record<string, RecordedCulprit> = loadCulprits(),
): string {
  const head = ['signature', 'scenario', 'what goes wrong', 'the evidence must show', 'culprit (`culprits`)'];
  const lines = [
    `| ${[...head, 'reproducer (`repro`)', 'why'].join(' | ')} |`,
    '|---|---|---|---|---|---|---|',
    ...signatures.map(
      (s) =>
        `| \`${s.id}\` | ${s.scenario === '*' ? 'any' : `\`${s.scenario}\``} | ${oneLine(s.title)} | ${evidenceText(s).join('; ').replace(/\|/g, '\\|')} ` +
        `| ${recordedCulpritWords(s, culprits).replace(/\|/g, '\\|')} | ${reproducerWords(s).replace(/\|/g, '\\|')} ` +
        `| ${oneLine(s.reason).replace(/\|/g, '\\|')} |`,
    ),
  ];
  return lines.join('\n');
}
