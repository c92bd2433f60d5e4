/**
 * Runs one job of a GitHub Actions workflow the way the runner does, for tests: steps in order,
 * each `if:` evaluated (with the implicit `success() &&` when it names no status function), `${{ }}`
 * expressions substituted into `run:` and `env:`, every `run:` script executed under the shell the
 * runner would use (defaults.run.shell, or `sh -e` in a container job without one), a step's
 * outcome from its exit status and its conclusion through continue-on-error. `uses:` steps are not
 * run: they succeed (the actions are GitHub's, not the project's).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
  'runs-on': unknown;
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

/** Run one job: every step in order, as GitHub does. */
export function runJob(
  wf: Workflow,
  jobName: string,
  opts: { cwd: string; env: Record<string, string>; inputs?: Record<string, unknown> },
): JobRun {
  const job = wf.jobs[jobName]!;
  const shell = job.defaults?.run?.shell ?? wf.defaults?.run?.shell;
  const steps: Record<string, { outcome: string; conclusion: string }> = {};
  const ctx: Ctx = {
    inputs: opts.inputs ?? {},
    steps,
    github: { run_id: '1', run_number: '1', event_name: 'schedule' },
  };
  let failed = false;
  const fns = {
    success: () => !failed,
    failure: () => failed,
    always: () => true,
    cancelled: () => false,
    hashFiles: () => 'hash',
  };
  const runs: StepRun[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'rig-workflow-'));
  job.steps.forEach((step, i) => {
    const name = step.name ?? step.uses ?? `step ${i + 1}`;
    const cond = step.if === undefined ? 'success()' : unwrap(String(step.if));
    const expr = /\b(success|failure|always|cancelled)\(/.test(cond) ? cond : `success() && (${cond})`;
    const record = (r: StepRun) => {
      runs.push(r);
      if (step.id) steps[step.id] = { outcome: r.outcome, conclusion: r.conclusion };
      if (r.conclusion === 'failure') failed = true;
    };
    if (!truthy(evaluate(expr, ctx, fns))) {
      record({ name, ...(step.id ? { id: step.id } : {}), ran: false, outcome: 'skipped', conclusion: 'skipped' });
      return;
    }
    if (!step.run) {
      record({ name, ...(step.id ? { id: step.id } : {}), ran: true, outcome: 'success', conclusion: 'success' });
      return;
    }
    const file = join(dir, `step-${i + 1}.sh`);
    writeFileSync(file, interpolate(step.run, ctx, fns));
    const env: Record<string, string> = { ...opts.env };
    for (const [k, v] of Object.entries({ ...(job.env ?? {}), ...(step.env ?? {}) }))
      env[k] = interpolate(String(v), ctx, fns);
    const argv = shellArgv(step.shell ?? shell, Boolean(job.container), file);
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: opts.cwd, env, encoding: 'utf8', timeout: 120_000 });
    const outcome = r.status === 0 ? 'success' : 'failure';
    record({
      name,
      ...(step.id ? { id: step.id } : {}),
      ran: true,
      outcome,
      conclusion: outcome === 'failure' && step['continue-on-error'] ? 'success' : outcome,
      exitCode: r.status ?? -1,
      output: `${r.stdout}${r.stderr}`,
    });
  });
  return { status: failed ? 'failure' : 'success', steps: runs };
}
