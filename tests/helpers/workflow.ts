/**
 * Runs a GitHub Actions workflow the way the service and its runners do, for tests. Jobs run in
 * the order of their `needs:`, each matrix leg in a workspace of its own; a job's `if:` sees
 * `needs.<job>.result` and `.outputs` (and the implicit `success()`, every needed job succeeded);
 * a job fails when one of its legs does, and a job with continue-on-error does not fail the run.
 * Inside a leg: steps in order, each `if:` evaluated (with the implicit `success() &&` when it
 * names no status function), `${{ }}` substituted into `run:`, `env:` and `with:`, every `run:`
 * script executed under the shell the runner would use (defaults.run.shell, or `sh -e` in a
 * container job without one), a step's outcome from its exit status and its conclusion through
 * continue-on-error. Of the `uses:` steps, the ones that carry data between jobs do what GitHub's
 * do: upload-artifact (and its if-no-files-found), download-artifact by name or by pattern (one
 * subdirectory per artifact), cache/restore (the key, else the newest entry of a restore key) and
 * cache/save. The others (checkout, setup-node, the rig cache) succeed without doing anything.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';

export interface WorkflowStep {
  name?: string;
  id?: string;
  if?: string | boolean;
  run?: string;
  uses?: string;
  shell?: string;
  env?: Record<string, string>;
  'continue-on-error'?: boolean;
  with?: Record<string, string>;
}

export interface WorkflowJob {
  name?: string;
  'runs-on': unknown;
  needs?: string | string[];
  if?: string | boolean;
  strategy?: { 'fail-fast'?: boolean; matrix?: Record<string, unknown[]> };
  outputs?: Record<string, string>;
  'continue-on-error'?: boolean;
  'timeout-minutes'?: number;
  container?: unknown;
  env?: Record<string, string>;
  defaults?: { run?: { shell?: string } };
  steps: WorkflowStep[];
}

export interface Workflow {
  name: string;
  on: Record<string, unknown>;
  defaults?: { run?: { shell?: string } };
  jobs: Record<string, WorkflowJob>;
}

export function loadWorkflow(file: string): Workflow {
  return parse(readFileSync(file, 'utf8')) as Workflow;
}

export interface StepRun {
  name: string;
  id?: string;
  ran: boolean;
  outcome: 'success' | 'failure' | 'skipped';
  conclusion: 'success' | 'failure' | 'skipped';
  exitCode?: number;
  output?: string;
}

export interface JobRun {
  status: 'success' | 'failure';
  steps: StepRun[];
}

type Ctx = Record<string, unknown>;

// ---- expressions (the subset workflows use: literals, contexts, ! == != && || (), functions) ----

type Tok = { t: 'str' | 'num' | 'id' | 'op'; v: string };

function tokens(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) i++;
    else if (c === "'") {
      let v = '';
      for (i++; i < src.length; i++) {
        if (src[i] === "'" && src[i + 1] === "'") {
          v += "'";
          i++;
        } else if (src[i] === "'") break;
        else v += src[i];
      }
      i++;
      out.push({ t: 'str', v });
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9.]+/.exec(src.slice(i))![0];
      out.push({ t: 'num', v: m });
      i += m.length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(src.slice(i))![0];
      out.push({ t: 'id', v: m });
      i += m.length;
    } else {
      const two = src.slice(i, i + 2);
      const op = ['==', '!=', '&&', '||', '<=', '>='].includes(two) ? two : c;
      out.push({ t: 'op', v: op });
      i += op.length;
    }
  }
  return out;
}

const truthy = (v: unknown) => !(v === false || v === 0 || v === '' || v === null || v === undefined);
const eqLoose = (a: unknown, b: unknown) =>
  typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b;

/** Evaluate an expression against contexts and status functions. */
export function evaluate(src: string, ctx: Ctx, fns: Record<string, (...a: unknown[]) => unknown>): unknown {
  const ts = tokens(src);
  let p = 0;
  const peek = () => ts[p];
  const take = (v?: string) => {
    const x = ts[p++];
    if (!x || (v !== undefined && x.v !== v)) throw new Error(`expression ${src}: expected ${v ?? 'more'} at ${p}`);
    return x;
  };
  const primary = (): unknown => {
    const x = take();
    if (x.t === 'str') return x.v;
    if (x.t === 'num') return Number(x.v);
    if (x.t === 'op' && x.v === '(') {
      const v = or();
      take(')');
      return v;
    }
    if (x.t === 'op' && x.v === '!') return !truthy(primary());
    if (x.t === 'id') {
      if (x.v === 'true') return true;
      if (x.v === 'false') return false;
      if (x.v === 'null') return null;
      if (peek()?.v === '(') {
        take('(');
        const args: unknown[] = [];
        while (peek()?.v !== ')') {
          args.push(or());
          if (peek()?.v === ',') take(',');
        }
        take(')');
        const f = fns[x.v];
        if (!f) throw new Error(`expression ${src}: unknown function ${x.v}`);
        return f(...args);
      }
      return x.v.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Ctx)[k] : undefined), ctx);
    }
    throw new Error(`expression ${src}: unexpected ${x.v}`);
  };
  const cmp = (): unknown => {
    let l = primary();
    while (peek()?.v === '==' || peek()?.v === '!=') {
      const op = take().v;
      const r = primary();
      l = op === '==' ? eqLoose(l, r) : !eqLoose(l, r);
    }
    return l;
  };
  const and = (): unknown => {
    let l = cmp();
    while (peek()?.v === '&&') {
      take();
      const r = cmp();
      l = truthy(l) ? r : l;
    }
    return l;
  };
  const or = (): unknown => {
    let l = and();
    while (peek()?.v === '||') {
      take();
      const r = and();
      l = truthy(l) ? l : r;
    }
    return l;
  };
  const v = or();
  if (p !== ts.length) throw new Error(`expression ${src}: trailing ${ts[p]!.v}`);
  return v;
}

const unwrap = (s: string) =>
  s
    .trim()
    .replace(/^\$\{\{([\s\S]*)\}\}$/, '$1')
    .trim();

/** `${{ expr }}` inside a string replaced by its value. */
function interpolate(s: string, ctx: Ctx, fns: Record<string, (...a: unknown[]) => unknown>): string {
  return s.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, e: string) => {
    const v = evaluate(e, ctx, fns);
    return v === null || v === undefined ? '' : String(v);
  });
}

/** The argv GitHub runs a script with, for a `shell:` value (its documented templates). */
export function shellArgv(shell: string | undefined, container: boolean, file: string): string[] {
  const s = shell ?? (container ? 'sh' : 'bash');
  if (s === 'bash') return ['bash', '--noprofile', '--norc', '-eo', 'pipefail', file];
  if (s === 'sh') return ['sh', '-e', file];
  throw new Error(`shell ${s} is not one this runner knows`);
}

type Fns = Record<string, (...a: unknown[]) => unknown>;

/** Where artifacts and caches live between the jobs of one run (and caches between runs). */
export interface Stores {
  artifacts: string;
  caches: string;
}

export function newStores(root = mkdtempSync(join(tmpdir(), 'rig-stores-'))): Stores {
  const s = { artifacts: join(root, 'artifacts'), caches: join(root, 'caches') };
  mkdirSync(s.artifacts, { recursive: true });
  mkdirSync(s.caches, { recursive: true });
  return s;
}

/** Copy a file or a directory's contents into `dest`. */
function copyInto(src: string, dest: string): void {
  mkdirSync(dest, { recursive: true });
  if (statSync(src).isDirectory()) cpSync(src, dest, { recursive: true });
  else cpSync(src, join(dest, src.split('/').at(-1)!));
}

const globRe = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/** What the data-carrying actions do; undefined for an action that only succeeds. */
function action(uses: string, w: Record<string, string>, ws: string, stores: Stores): { ok: boolean; note: string } {
  const [name] = uses.split('@');
  if (name === 'actions/upload-artifact') {
    const src = join(ws, w.path ?? '.');
    if (!existsSync(src)) {
      const error = (w['if-no-files-found'] ?? 'warn') === 'error';
      return { ok: !error, note: `no files at ${w.path}` };
    }
    const dest = join(stores.artifacts, w.name ?? 'artifact');
    if (existsSync(dest)) return { ok: false, note: `artifact ${w.name} exists` };
    copyInto(src, dest);
    return { ok: true, note: `uploaded ${w.name}` };
  }
  if (name === 'actions/download-artifact') {
    const into = join(ws, w.path ?? '.');
    const all = readdirSync(stores.artifacts).sort();
    if (w.name) {
      if (!all.includes(w.name)) return { ok: false, note: `no artifact ${w.name}` };
      copyInto(join(stores.artifacts, w.name), into);
      return { ok: true, note: `downloaded ${w.name}` };
    }
    const hits = all.filter((a) => !w.pattern || globRe(w.pattern).test(a));
    for (const a of hits) copyInto(join(stores.artifacts, a), join(into, a));
    mkdirSync(into, { recursive: true });
    return { ok: true, note: `downloaded ${hits.join(', ') || 'nothing'}` };
  }
  if (name === 'actions/cache/restore') {
    const keys = readdirSync(stores.caches).sort();
    const exact = keys.find((k) => k.replace(/^\d+-/, '') === w.key);
    const prefixes = (w['restore-keys'] ?? '')
      .split('\n')
      .map((x) => x.trim())
      .filter(Boolean);
    const hit = exact ?? keys.reverse().find((k) => prefixes.some((p) => k.replace(/^\d+-/, '').startsWith(p)));
    if (hit) copyInto(join(stores.caches, hit), join(ws, w.path ?? '.'));
    return { ok: true, note: hit ? `restored ${hit}` : 'cache miss' };
  }
  if (name === 'actions/cache/save') {
    const src = join(ws, w.path ?? '.');
    if (!existsSync(src)) return { ok: false, note: `nothing at ${w.path}` };
    const n = readdirSync(stores.caches).length;
    copyInto(src, join(stores.caches, `${String(n).padStart(4, '0')}-${w.key}`));
    return { ok: true, note: `saved ${w.key}` };
  }
  return { ok: true, note: "not run (an action of GitHub's)" };
}

interface LegOpts {
  cwd: string;
  env: Record<string, string>;
  ctx: Ctx;
  stores: Stores;
}

/** One leg of a job: every step in order, as a runner does. */
function runLeg(wf: Workflow, job: WorkflowJob, o: LegOpts): JobRun & { ctx: Ctx; fns: Fns } {
  const shell = job.defaults?.run?.shell ?? wf.defaults?.run?.shell;
  const steps: Record<string, { outcome: string; conclusion: string }> = {};
  const ctx: Ctx = { ...o.ctx, steps };
  let failed = false;
  const fns: Fns = {
    success: () => !failed,
    failure: () => failed,
    always: () => true,
    cancelled: () => false,
    hashFiles: () => 'hash',
  };
  const runs: StepRun[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'rig-workflow-'));
  job.steps.forEach((step, i) => {
    const name = interpolate(step.name ?? step.uses ?? `step ${i + 1}`, ctx, fns);
    const idPart = step.id ? { id: step.id } : {};
    const record = (r: StepRun) => {
      runs.push(r);
      if (step.id) steps[step.id] = { outcome: r.outcome, conclusion: r.conclusion };
      if (r.conclusion === 'failure') failed = true;
    };
    if (!truthy(evaluate(withStatus(step.if), ctx, fns))) {
      record({ name, ...idPart, ran: false, outcome: 'skipped', conclusion: 'skipped' });
      return;
    }
    const conclude = (ok: boolean, extra: Partial<StepRun>) => {
      const outcome = ok ? 'success' : 'failure';
      const conclusion = !ok && step['continue-on-error'] ? 'success' : outcome;
      record({ name, ...idPart, ran: true, outcome, conclusion, ...extra });
    };
    if (!step.run) {
      const w = Object.fromEntries(
        Object.entries(step.with ?? {}).map(([k, v]) => [k, interpolate(String(v), ctx, fns)]),
      );
      const a = action(step.uses ?? '', w, o.cwd, o.stores);
      conclude(a.ok, { output: a.note });
      return;
    }
    const file = join(dir, `step-${i + 1}.sh`);
    writeFileSync(file, interpolate(step.run, ctx, fns));
    const env: Record<string, string> = { ...o.env };
    for (const [k, v] of Object.entries({ ...(job.env ?? {}), ...(step.env ?? {}) }))
      env[k] = interpolate(String(v), ctx, fns);
    const argv = shellArgv(step.shell ?? shell, Boolean(job.container), file);
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: o.cwd, env, encoding: 'utf8', timeout: 120_000 });
    conclude(r.status === 0, { exitCode: r.status ?? -1, output: `${r.stdout}${r.stderr}` });
  });
  return { status: failed ? 'failure' : 'success', steps: runs, ctx, fns };
}

/** An `if:` with GitHub's implicit `success() &&` when it names no status function. */
function withStatus(cond: string | boolean | undefined): string {
  const c = cond === undefined ? 'success()' : unwrap(String(cond));
  return /\b(success|failure|always|cancelled)\(/.test(c) ? c : `success() && (${c})`;
}

/** Run one job (its first leg, in `opts.cwd`): every step in order, as GitHub does. */
export function runJob(
  wf: Workflow,
  jobName: string,
  opts: { cwd: string; env: Record<string, string>; inputs?: Record<string, unknown>; stores?: Stores },
): JobRun {
  const ctx: Ctx = { inputs: opts.inputs ?? {}, github: GITHUB, matrix: {}, needs: {} };
  const r = runLeg(wf, wf.jobs[jobName]!, { cwd: opts.cwd, env: opts.env, ctx, stores: opts.stores ?? newStores() });
  return { status: r.status, steps: r.steps };
}

const GITHUB = { run_id: '1', run_number: '1', event_name: 'schedule' };

export interface LegRun extends JobRun {
  matrix: Record<string, unknown>;
  /** The leg's workspace, kept for the test to read. */
  dir: string;
}

export interface JobResult {
  name: string;
  result: 'success' | 'failure' | 'skipped';
  legs: LegRun[];
  outputs: Record<string, string>;
}

export interface WorkflowRun {
  status: 'success' | 'failure';
  jobs: Record<string, JobResult>;
}

/** The legs of a matrix: every combination of its values (one leg without a matrix). */
function legsOf(job: WorkflowJob): Array<Record<string, unknown>> {
  let legs: Array<Record<string, unknown>> = [{}];
  for (const [k, values] of Object.entries(job.strategy?.matrix ?? {}))
    legs = legs.flatMap((l) => values.map((v) => ({ ...l, [k]: v })));
  return legs;
}

const needsOf = (job: WorkflowJob) => (job.needs === undefined ? [] : [job.needs].flat());

/** The jobs in an order that runs each after what it needs. */
function jobOrder(wf: Workflow): string[] {
  const order: string[] = [];
  const visit = (id: string, path: string[]) => {
    if (order.includes(id)) return;
    if (path.includes(id)) throw new Error(`workflow: needs cycle ${[...path, id].join(' -> ')}`);
    for (const n of needsOf(wf.jobs[id]!)) visit(n, [...path, id]);
    order.push(id);
  };
  for (const id of Object.keys(wf.jobs)) visit(id, []);
  return order;
}

/**
 * Run the whole workflow: jobs by their needs, matrix legs in fresh workspaces under `root`.
 * `env` is every step's base environment, with WORKFLOW_JOB and WORKFLOW_LEG (the matrix as JSON)
 * added, so that stubs on PATH can answer per leg.
 */
export function runWorkflow(
  wf: Workflow,
  opts: { root: string; env: Record<string, string>; inputs?: Record<string, unknown>; stores?: Stores },
): WorkflowRun {
  const stores = opts.stores ?? newStores(join(opts.root, 'stores'));
  const jobs: Record<string, JobResult> = {};
  let failed = false;
  for (const id of jobOrder(wf)) {
    const job = wf.jobs[id]!;
    const needs = Object.fromEntries(
      needsOf(job).map((n) => [n, { result: jobs[n]!.result, outputs: jobs[n]!.outputs }]),
    );
    const base: Ctx = { inputs: opts.inputs ?? {}, github: GITHUB, needs };
    const fns: Fns = {
      success: () => Object.values(needs).every((n) => n.result === 'success'),
      failure: () => Object.values(needs).some((n) => n.result === 'failure'),
      always: () => true,
      cancelled: () => false,
    };
    if (!truthy(evaluate(withStatus(job.if), base, fns))) {
      jobs[id] = { name: id, result: 'skipped', legs: [], outputs: {} };
      continue;
    }
    const legs = legsOf(job).map((matrix, k) => {
      const dir = join(opts.root, `${id}-${k + 1}`);
      mkdirSync(dir, { recursive: true });
      const env = { ...opts.env, WORKFLOW_JOB: id, WORKFLOW_LEG: JSON.stringify(matrix) };
      const r = runLeg(wf, job, { cwd: dir, env, ctx: { ...base, matrix }, stores });
      return { ...r, matrix, dir };
    });
    const result = legs.some((l) => l.status === 'failure') ? 'failure' : 'success';
    const last = legs.at(-1)!;
    const outputs = Object.fromEntries(
      Object.entries(job.outputs ?? {}).map(([k, v]) => [k, interpolate(String(v), last.ctx, last.fns)]),
    );
    jobs[id] = {
      name: id,
      result,
      legs: legs.map(({ ctx: _c, fns: _f, ...l }) => l),
      outputs,
    };
    if (result === 'failure' && !job['continue-on-error']) failed = true;
  }
  return { status: failed ? 'failure' : 'success', jobs };
}
