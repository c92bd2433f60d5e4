/**
 * `report --kcidb BUNDLE`: the run as KCIDB v5.0 JSON, checked against KCIDB_V5_SCHEMA before it
 * is written. One checkout (the base and the series: its patchset hash, its cover letter's
 * Message-Id), one build (architecture, compiler, config), a test per scenario
 * (dmemfs_rig.<scenario>) and per measurement (dmemfs_rig.<scenario>.<measurement>, numbers with
 * units), each known-failure signature as an issue (its culprit patch in the comment) and each
 * check of one as an incident, present or not. Submitting is the user's step (kcidb-submit).
 */
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { RigError } from '../core/errors.js';
import type { Measurement, RunResults, ScenarioResult } from '../core/results.js';
import { SCENARIOS } from '../scenarios/catalog.js';
import { SIGNATURES } from '../scenarios/signatures.js';
import { KCIDB_V5_SCHEMA } from './kcidb-schema.js';

export const ORIGIN = 'dmemfs_rig';

type Status = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export interface KcidbContext {
  /** sha256 over the newline-terminated sha256 of each patch, in order (KCIDB's definition). */
  patchsetHash?: string;
  /** The cover letter's Message-Id, without angle brackets. */
  messageId?: string;
  build?: {
    toolchain?: { version?: string };
    source?: { package?: string; version?: string };
    seconds?: number;
    configSha256?: string;
  };
}

/** KCIDB's patchset hash of patch texts. */
export function patchsetHash(patches: readonly string[]): string {
  const lines = patches.map((p) => `${createHash('sha256').update(p).digest('hex')}\n`).join('');
  return createHash('sha256').update(lines).digest('hex');
}

/** A scenario's status as KCIDB's word: a known failure is the tested code failing. */
export function scenarioStatus(s: Pick<ScenarioResult, 'status'>): Status {
  const words: Record<string, Status> = { pass: 'PASS', fail: 'FAIL', 'known-failure': 'FAIL', skip: 'SKIP' };
  return words[s.status] ?? 'ERROR';
}

export function measurementStatus(m: Measurement | undefined): Status {
  if (!m) return 'MISS';
  if (m.skipped !== undefined) return 'SKIP';
  if (m.ok === true) return 'PASS';
  if (m.ok === false) return 'FAIL';
  return 'DONE';
}

const safe = (s: string) => s.replace(/[^a-zA-Z0-9_-]/g, '_');

function measurementTests(s: ScenarioResult, buildId: string) {
  const declared = SCENARIOS.find((d) => d.id === s.id)?.measurements ?? [];
  const names = [...new Set([...declared, ...Object.keys(s.measurements)])];
  return names.map((n) => {
    const m = s.measurements[n];
    const num = typeof m?.value === 'number' && Number.isFinite(m.value) ? m.value : undefined;
    return {
      build_id: buildId,
      id: `${buildId}.${safe(s.id)}.${safe(n)}`,
      origin: ORIGIN,
      path: `${ORIGIN}.${safe(s.id)}.${safe(n)}`,
      status: measurementStatus(m),
      ...(num !== undefined ? { number: { value: num, ...(m?.unit ? { unit: m.unit } : {}) } } : {}),
      ...(m?.skipped !== undefined ? { comment: `skipped: ${m.skipped}` } : {}),
      ...(m && num === undefined ? { misc: { value: m.value } } : {}),
    };
  });
}

interface Ids {
  checkoutId: string;
  buildId: string;
}

function idsOf(run: RunResults): Ids {
  const key = String(run.kernel.key ?? '');
  const runId = createHash('sha256').update(`${run.startedAt}\0${key}`).digest('hex').slice(0, 16);
  const checkoutId = `${ORIGIN}:${runId}`;
  return { checkoutId, buildId: `${checkoutId}.${(key || 'kernel').slice(0, 16)}` };
}

function checkoutOf(run: RunResults, ctx: KcidbContext, ids: Ids) {
  const src = ctx.build?.source;
  return {
    id: ids.checkoutId,
    origin: ORIGIN,
    tree_name: run.profile,
    git_commit_name: src?.package ? `${src.package} ${src.version}` : `Linux ${String(run.kernel.release ?? '')}`,
    ...(ctx.patchsetHash ? { patchset_hash: ctx.patchsetHash } : {}),
    ...(ctx.messageId ? { message_id: ctx.messageId } : {}),
    start_time: run.startedAt,
    valid: true,
    misc: { series: run.series?.name ?? null, kernel_release: run.kernel.release ?? null },
  };
}

function buildOf(run: RunResults, ctx: KcidbContext, ids: Ids) {
  const version = ctx.build?.toolchain?.version;
  const seconds = ctx.build?.seconds;
  return {
    checkout_id: ids.checkoutId,
    id: ids.buildId,
    origin: ORIGIN,
    architecture: 'x86_64',
    ...(version ? { compiler: version } : {}),
    config_name: run.profile,
    ...(typeof seconds === 'number' ? { duration: seconds } : {}),
    status: 'PASS' as Status,
    misc: { config_sha256: run.kernel.configSha256 ?? null, build_key: run.kernel.key ?? null },
  };
}

function scenarioTests(run: RunResults, s: ScenarioResult, buildId: string) {
  return [
    {
      build_id: buildId,
      id: `${buildId}.${safe(s.id)}`,
      origin: ORIGIN,
      path: `${ORIGIN}.${safe(s.id)}`,
      status: scenarioStatus(s),
      environment: { comment: `${run.qemu.version}, ${run.accel.accel}` },
      ...(s.reason ? { comment: s.reason.slice(0, 1000) } : {}),
      duration: s.seconds,
    },
    ...measurementTests(s, buildId),
  ];
}

type Checked = { s: ScenarioResult; c: ScenarioResult['signatures'][number] };

function issueOf(sid: string, checked: Checked[]) {
  const sig = SIGNATURES.find((x) => x.id === sid);
  const c = checked.find((x) => x.c.id === sid)!.c;
  const where = c.culprit
    ? `${c.culprit.presentFrom ? 'present from' : 'introduced by'} patch ${c.culprit.number}/${c.culprit.patches} ` +
      `${c.culprit.title}. `
    : 'culprit patch not bisected yet. ';
  return {
    id: `${ORIGIN}:${safe(sid)}`,
    version: 1,
    origin: ORIGIN,
    report_subject: c.title,
    culprit: { code: true, tool: false, harness: false },
    comment: where + (sig ? sig.reason.replace(/\s+/g, ' ') : ''),
    ...(c.culprit ? { misc: { culprit_patch: c.culprit.number, culprit_title: c.culprit.title } } : {}),
  };
}

export function kcidbOf(run: RunResults, ctx: KcidbContext = {}) {
  const ids = idsOf(run);
  const checked: Checked[] = run.scenarios.flatMap((s) => s.signatures.map((c) => ({ s, c })));
  return {
    version: { major: 5, minor: 0 },
    checkouts: [checkoutOf(run, ctx, ids)],
    builds: [buildOf(run, ctx, ids)],
    tests: run.scenarios.flatMap((s) => scenarioTests(run, s, ids.buildId)),
    issues: [...new Set(checked.map(({ c }) => c.id))].map((sid) => issueOf(sid, checked)),
    incidents: checked.map(({ s, c }) => ({
      id: `${ids.buildId}.${safe(c.id)}`,
      origin: ORIGIN,
      issue_id: `${ORIGIN}:${safe(c.id)}`,
      issue_version: 1,
      build_id: ids.buildId,
      test_id: `${ids.buildId}.${safe(s.id)}`,
      present: c.reproduced,
      comment: c.detail.slice(0, 1000),
    })),
  };
}

const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;
let compiled: ReturnType<Ajv['compile']> | undefined;

/** Where a KCIDB document breaks the schema (empty: valid). */
export function kcidbErrors(doc: unknown): string[] {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, strict: true });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    compiled = ajv.compile(KCIDB_V5_SCHEMA);
  }
  return compiled(doc) ? [] : (compiled.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

/** The document, refused with error [kcidb-invalid] when it breaks the schema. */
export function validKcidb<T>(doc: T): T {
  const errors = kcidbErrors(doc);
  if (errors.length)
    throw new RigError('kcidb-invalid', `the KCIDB document breaks the v5.0 schema: ${errors.slice(0, 3).join('; ')}`, {
      fix: 'a bug of the rig: report it with the bundle',
    });
  return doc;
}
