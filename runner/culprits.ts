/**
 * `culprits`: for every known-failure signature of the series, the first patch at which it
 * reproduces (`bisect --signature`), cached by the series' content, the base kernel, the profile
 * and the signature's own definition: a second run on the same series costs nothing, and a
 * changed patch or signature runs its bisect again. A run's results.json carries the culprit of
 * each signature it checked (from this cache: a run never bisects).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cached, entryDir, hashParts, isComplete } from '../core/cache.js';
import { messageOf } from '../core/errors.js';
import { info } from '../core/log.js';
import { loadProfile, type KernelProfile } from '../kernel/profile.js';
import { resolveSeries, type KernelInput, type ResolvedSeries } from '../kernel/pipeline.js';
import { SIGNATURES } from '../scenarios/signatures.js';
import type { Signature } from '../scenarios/types.js';
import {
  CULPRITS_FILE,
  loadCulprits,
  introducedWords,
  presentFromWords,
  saveCulprits,
  signatureSha,
  signatureText,
} from '../scenarios/culprit-record.js';
import type { AccelChoice } from '../vm/accel.js';
import { bisect, type BisectResult, type PrefixRuns } from './bisect.js';
import { DEFAULT_COST, SCENARIO_COSTS } from '../scenarios/costs.js';

export interface Culprit {
  signature: string;
  scenario: string;
  /** The first patch at which it reproduces (null: not found, with the reason). */
  culprit: { number: number; title: string } | null;
  /** The prefix before could not show it at all: present from the culprit, where its path first exists. */
  pathFrom?: number;
  /** What the prefix before said, where more than "not reproduced" (beforeFromSteps). */
  before?: string;
  candidates?: number[];
  patches: number;
  series: string;
  prefixes: number;
  rounds: number;
  seconds: number;
  /** Why there is no culprit (the bisect's error), when it failed. */
  error?: string;
}

/** What a culprit is keyed by: the rig's bisect judging, the profile and base, the series content, the signature. */
export function culpritKey(profile: KernelProfile, series: Pick<ResolvedSeries, 'parsed'>, sig: Signature): string {
  return hashParts([
    'culprit-v1',
    profile.name,
    JSON.stringify(profile.source),
    ...series.parsed.patches.map((p) => p.diff),
    signatureText(sig),
  ]);
}

/** The signatures `culprits` bisects on this profile: its variant's, each tied to one scenario. */
export function culpritSignatures(profile: Pick<KernelProfile, 'variant'>, only: readonly string[] = []): Signature[] {
  return SIGNATURES.filter(
    (s) =>
      s.scenario !== '*' &&
      (s.variant ?? undefined) === (profile.variant ?? undefined) &&
      (!only.length || only.includes(s.id)),
  );
}

/** The cheapest scenarios' signatures first, those of one scenario together (stable within one). */
export function byScenarioCost<T extends Pick<Signature, 'scenario'>>(sigs: readonly T[]): T[] {
  const cost = (s: T) => SCENARIO_COSTS[s.scenario] ?? DEFAULT_COST;
  return sigs
    .map((s, i) => ({ s, i }))
    .sort((a, b) => cost(a.s) - cost(b.s) || a.s.scenario.localeCompare(b.s.scenario) || a.i - b.i)
    .map((x) => x.s);
}

/** A culprit found before for this series, or undefined (never bisects). */
export function cachedCulprit(profile: KernelProfile, series: Pick<ResolvedSeries, 'parsed'>, sig: Signature) {
  const key = culpritKey(profile, series, sig);
  if (!isComplete('culprit', key)) return undefined;
  return JSON.parse(readFileSync(join(entryDir('culprit', key), 'culprit.json'), 'utf8')) as Culprit;
}

export interface CulpritsOptions {
  profile: string;
  input: KernelInput;
  accel: AccelChoice;
  out: string;
  jobs?: number;
  only?: string[];
}

function asCulprit(sig: Signature, r: BisectResult): Culprit {
  return {
    signature: sig.id,
    scenario: sig.scenario,
    culprit: r.culprit,
    ...(r.pathFrom !== undefined ? { pathFrom: r.pathFrom } : {}),
    ...beforeFromSteps(r.culprit?.number, r.steps),
    ...(r.candidates ? { candidates: r.candidates } : {}),
    patches: r.patches,
    series: r.series,
    prefixes: r.steps.length,
    rounds: r.rounds.length,
    seconds: Math.round(r.seconds),
  };
}

/** Bisect every signature not in the cache; a failed bisect is reported and not cached. */
export async function culprits(opts: CulpritsOptions): Promise<Array<Culprit & { cached: boolean }>> {
  const profile = loadProfile(opts.profile);
  const series = await resolveSeries(profile, opts.input);
  if (!series) return [];
  const out: Array<Culprit & { cached: boolean }> = [];
  // The signatures of one scenario are judged on the same run of each prefix.
  const prefixRuns: PrefixRuns = new Map();
  for (const sig of byScenarioCost(culpritSignatures(profile, opts.only))) {
    const key = culpritKey(profile, series, sig);
    const had = isComplete('culprit', key);
    try {
      const entry = await cached('culprit', key, async (staging) => {
        info(`culprits: bisecting ${sig.id} (${sig.scenario})`);
        const r = await bisect({
          profile: opts.profile,
          scenario: sig.scenario,
          signature: sig.id,
          input: opts.input,
          accel: opts.accel,
          out: join(opts.out, sig.scenario),
          prefixRuns,
          ...(opts.jobs ? { jobs: opts.jobs } : {}),
        });
        writeFileSync(join(staging, 'culprit.json'), JSON.stringify(asCulprit(sig, r), null, 2) + '\n');
        writeFileSync(join(staging, 'bisect.json'), JSON.stringify(r, null, 2) + '\n');
      });
      const c = JSON.parse(readFileSync(join(entry.dir, 'culprit.json'), 'utf8')) as Culprit;
      out.push({ ...c, ...beforeOf(c, join(entry.dir, 'bisect.json')), cached: had });
    } catch (e) {
      out.push({
        signature: sig.id,
        scenario: sig.scenario,
        culprit: null,
        patches: series.parsed.patches.length,
        series: series.name,
        prefixes: 0,
        rounds: 0,
        seconds: 0,
        error: messageOf(e).split('\n')[0]!,
        cached: false,
      });
    }
  }
  return out;
}

/**
 * With pathFrom: the note of the prefix just before the culprit, from the bisect's steps, where it
 * is the scenario's own words (an error that kept it from running there) rather than its path missing.
 */
export function beforeOf(c: Pick<Culprit, 'culprit' | 'before'>, bisectJson: string): { before?: string } {
  if (!c.culprit || c.before !== undefined || !existsSync(bisectJson)) return {};
  const r = JSON.parse(readFileSync(bisectJson, 'utf8')) as Pick<BisectResult, 'steps'>;
  return beforeFromSteps(c.culprit.number, r.steps);
}

/**
 * What the prefix just before a culprit said, where it was more than "not reproduced": the
 * scenario's error that kept it from running there, the signature's measurements failing
 * another way, or an intermittent one not seen in this run's tries (the culprit may then be earlier).
 */
export function beforeFromSteps(culprit: number | undefined, steps: BisectResult['steps']): { before?: string } {
  if (culprit === undefined) return {};
  const step = steps.find((x) => x.k === culprit - 1);
  if (!step) return {};
  const value = typeof step.value === 'string' ? step.value : '';
  // The scenario's error, or its skip on that kernel (a skip there is the signature's path absent).
  const said = step.note
    ? (/error \[[\w-]+\][^(;\n]*/.exec(step.note) ?? /^the scenario skipped on this kernel: [^\n]*/.exec(step.note))
    : null;
  const error = said?.[0]?.trim();
  const other = /(failed differently: [^;]*|[\w]+: not seen this run \(intermittent[^)]*\))/.exec(value)?.[0];
  const words =
    step.verdict === 'path absent' ? error : (other ?? (step.verdict === 'not reproduced' ? undefined : error));
  if (!words) return {};
  return { before: words.length > 160 ? `${words.slice(0, 157)}...` : words };
}

/** Write the culprits found into scenarios/culprits.json (culprits --record): the data the docs read. */
export function recordCulprits(
  rows: ReadonlyArray<Culprit>,
  measured = new Date().toISOString(),
  file = CULPRITS_FILE(),
): void {
  const all = loadCulprits(file);
  for (const r of rows) {
    const sig = SIGNATURES.find((s) => s.id === r.signature);
    if (!sig || (!r.culprit && !r.candidates)) continue;
    all[r.signature] = {
      series: r.series,
      patches: r.patches,
      culprit: r.culprit,
      ...(r.pathFrom !== undefined ? { pathFrom: r.pathFrom } : {}),
      ...(r.before ? { before: r.before } : {}),
      ...(r.candidates ? { candidates: r.candidates } : {}),
      signatureSha: signatureSha(sig),
      measured,
      prefixes: r.prefixes,
      rounds: r.rounds,
      seconds: r.seconds,
    };
  }
  saveCulprits(all, file);
}

/** "introduced by 35/37 vfio: ..." or "present from 3/37 ..., where the path first exists". */
export function culpritWords(
  c: Pick<Culprit, 'culprit' | 'pathFrom' | 'patches' | 'candidates' | 'error' | 'before'>,
): string {
  if (c.culprit && c.pathFrom !== undefined) return presentFromWords(c);
  if (c.culprit) return introducedWords(c);
  if (c.candidates) return `among ${c.candidates.join(', ')} (the prefixes between could not be judged)`;
  return `not found: ${c.error ?? 'no bisect'}`;
}

export function culpritsTable(rows: Array<Culprit & { cached: boolean }>): string {
  return [
    '| signature | scenario | culprit | prefixes (rounds) | seconds |',
    '| --- | --- | --- | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| \`${r.signature}\` | ${r.scenario} | ${culpritWords(r)} | ${r.prefixes} (${r.rounds}) | ` +
        `${r.cached ? `cached (${r.seconds})` : r.seconds} |`,
    ),
  ].join('\n');
}
