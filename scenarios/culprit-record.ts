/**
 * The culprits found so far, as data (scenarios/culprits.json, written by `culprits --record`
 * from a real run): for each signature, the first patch at which it reproduces on the named
 * series, with the digest of the signature's definition it was found under. The known-failures
 * table and results.json read it; a signature changed since says so instead of a stale culprit.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { projectRoot } from '../core/paths.js';
import type { ScenarioResult } from '../core/results.js';
import { SIGNATURES } from './signatures.js';
import type { Signature } from './types.js';

export interface RecordedCulprit {
  series: string;
  patches: number;
  culprit: { number: number; title: string } | null;
  pathFrom?: number;
  /** What the prefix before it said, where more than "not reproduced" (runner/culprits.ts beforeFromSteps). */
  before?: string;
  candidates?: number[];
  /** sha256 of the signature's definition (signatureText) when it was bisected. */
  signatureSha: string;
  measured: string;
  prefixes: number;
  rounds: number;
  seconds: number;
}

export const CULPRITS_FILE = (): string => join(projectRoot(), 'scenarios', 'culprits.json');

/** The signature as text: what it explains and how its evidence must match (RegExps as their source). */
export function signatureText(s: Signature): string {
  return JSON.stringify(s, (_k, v: unknown) => (v instanceof RegExp ? String(v) : v));
}

export const signatureSha = (s: Signature): string => createHash('sha256').update(signatureText(s)).digest('hex');

export function loadCulprits(file = CULPRITS_FILE()): Record<string, RecordedCulprit> {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, RecordedCulprit>) : {};
}

export function saveCulprits(all: Record<string, RecordedCulprit>, file = CULPRITS_FILE()): void {
  const sorted = Object.fromEntries(Object.entries(all).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(file, JSON.stringify(sorted, null, 2) + '\n');
}

/** The words of the known-failures table: the culprit, or why there is none yet. */
export function recordedCulpritWords(sig: Signature, all = loadCulprits()): string {
  const c = all[sig.id];
  if (!c) return sig.scenario === '*' ? 'seen in every scenario: not bisected' : 'not bisected yet';
  if (c.signatureSha !== signatureSha(sig)) return `bisected before the signature changed: run culprits again`;
  if (c.culprit && c.pathFrom !== undefined) return presentFromWords(c);
  if (c.culprit) return introducedWords(c);
  return c.candidates ? `one of ${c.candidates.join(', ')}` : 'not found';
}

/**
 * "present from N/M TITLE, where the path first exists", and what the prefix before said when
 * that was not the signature's own path missing (a scenario that cannot run there at all).
 */
export function presentFromWords(c: Pick<RecordedCulprit, 'culprit' | 'patches' | 'before'>): string {
  const head = `present from ${c.culprit!.number}/${c.patches} ${c.culprit!.title}, where the path first exists`;
  return c.before ? `${head} (${c.culprit!.number - 1}/${c.patches}: ${c.before})` : head;
}

/** "introduced by N/M TITLE", and what the prefix before said when more than "not reproduced". */
export function introducedWords(c: Pick<RecordedCulprit, 'culprit' | 'patches' | 'before'>): string {
  const head = `introduced by ${c.culprit!.number}/${c.patches} ${c.culprit!.title}`;
  return c.before ? `${head} (${c.culprit!.number - 1}/${c.patches}: ${c.before})` : head;
}

/** Each checked signature with its recorded culprit, where it was found on this series and definition. */
export function withCulprits(
  scenarios: ScenarioResult[],
  series: string | undefined,
  recorded = loadCulprits(),
): ScenarioResult[] {
  const culpritOf = (id: string) => {
    const c = recorded[id];
    const sig = SIGNATURES.find((x) => x.id === id);
    if (!c?.culprit || !sig || c.series !== series || c.signatureSha !== signatureSha(sig)) return undefined;
    return { ...c.culprit, patches: c.patches, ...(c.pathFrom !== undefined ? { presentFrom: true as const } : {}) };
  };
  return scenarios.map((s) => ({
    ...s,
    signatures: s.signatures.map((c) => {
      const culprit = c.culprit ?? culpritOf(c.id);
      return culprit ? { ...c, culprit } : c;
    }),
  }));
}
