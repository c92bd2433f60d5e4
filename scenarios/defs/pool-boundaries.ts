/**
 * pool-boundaries: what a process gets at the edges of the dmem pool, at 4K, 2M and 1G, beside
 * hugetlbfs at 2M and 1G in the same situations, measured the same way (the pool-edge helper):
 * no pool at all, a file larger than the pool, the pool taken by another file while a process
 * faults, truncating down and up under a mapping, many threads faulting one file, a second
 * mount while one is busy, and bad mount options. Every helper run is bounded in time; one that
 * gets stuck is recorded with its state and kernel stack, and its guest is stopped (the next
 * case boots afresh).
 */
import { eq, is, type KernelReport, type Value } from '../../core/results.js';
import { racePlan, THREAD_RACES } from '../races.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { dmemStats } from '../probes.js';
import { boundedHelper, crashReport } from '../steps.js';
import { defineScenario, family, type ScenarioContext } from '../types.js';

/** The columns, each with the pool its boot gives it (pages free before any case). */
const COLUMNS = [
  {
    col: 'dmemfs_4K',
    fs: 'dmemfs',
    page: 4096,
    size: '4K',
    boot: 'pool-edges',
    pool: 65536,
    of: 'dmem=128M on 2 nodes',
  },
  {
    col: 'dmemfs_2M',
    fs: 'dmemfs',
    page: 2 ** 21,
    size: '2M',
    boot: 'pool-edges',
    pool: 128,
    of: 'dmem=128M on 2 nodes',
  },
  {
    col: 'dmemfs_1G',
    fs: 'dmemfs',
    page: 2 ** 30,
    size: '1G',
    boot: 'dmem-1G-aligned',
    pool: 2,
    of: 'dmem=1G:1G on 2 nodes',
  },
  { col: 'hugetlbfs_2M', fs: 'hugetlbfs', page: 2 ** 21, size: '2M', boot: 'pool-edges', pool: 64, of: 'hugepages=64' },
  {
    col: 'hugetlbfs_1G',
    fs: 'hugetlbfs',
    page: 2 ** 30,
    size: '1G',
    boot: 'pool-edges',
    pool: 2,
    of: 'hugepages=2 of 1G',
  },
] as const;
type Column = (typeof COLUMNS)[number];

const CASES = [
  'no_pool_mount',
  'no_pool_fill',
  'pool_pages',
  'oversize_fill',
  'oversize_pages_touched',
  'exhausted_fill',
  'exhausted_pages_touched',
  'shrink_after_shrink',
  'shrink_after_grow',
  'threads_fill',
  'threads_pages_used',
  'threads_kernel_reports',
  'threads_unlink',
  'second_mount_same_size',
  'second_mount_other_size',
  'bad_option_pagesize_3M',
  'bad_option_pagesize_abc',
  'bad_option_unknown',
  'pool_free_at_end',
] as const;
/** hugetlbfs refuses a mapping larger than its pool at mmap: no page is ever touched to count. */
const TOUCHED = ['oversize_pages_touched', 'exhausted_pages_touched'] as const;
const HUGETLBFS_CASES = CASES.filter(
  (c): c is Exclude<(typeof CASES)[number], (typeof TOUCHED)[number]> => !(TOUCHED as readonly string[]).includes(c),
);
const DMEMFS_COLS = ['dmemfs_4K', 'dmemfs_2M', 'dmemfs_1G'] as const;
const HUGETLBFS_COLS = ['hugetlbfs_2M', 'hugetlbfs_1G'] as const;
const MEASUREMENTS = [...family(CASES, DMEMFS_COLS), ...family(HUGETLBFS_CASES, HUGETLBFS_COLS)];
type M = (typeof MEASUREMENTS)[number];

/**
 * A helper run is stuck when its output (progress at least every half second) has not grown
 * for QUIET_S, or when it runs past MAX_S (seconds under KVM, times the guest's timeout scale).
 */
const BOUND = { quietS: 5, maxS: 120 };
/** The victim's pages when another file holds all but two of the pool. */
const VICTIM_PAGES = 4;
const THREADS = 8;
/** Pages the threads fault together: at 4K, racing first faults on one page occurred in every run seen. */
const THREAD_PAGES = 256;

type ColumnName = Column['col'];

/**
 * The scenario over some columns: every case with a pool for `columns`, the no-pool case for
 * `noPool`. The catalog's has them all; `npm test` runs a representative part (its test file says
 * which), the whole runs in `npm start` and the nightly.
 */
export function poolBoundariesOver(
  columns: readonly ColumnName[] = COLUMNS.map((c) => c.col),
  noPoolColumns: readonly ColumnName[] = columns,
  opts: { raceTries?: number } = {},
) {
  return defineScenario({
    id: 'pool-boundaries',
    title: 'the edges of the pool at 4K, 2M and 1G, beside hugetlbfs: no pool, too big, exhausted, shrunk, shared',
    proves: `what a process gets when there is no dmem= at all, when its file is larger than the pool,
      when another file holds the pool while it faults, when its file is truncated down and up under
      its mapping, when eight threads fault one file, when a second mount comes while one is busy,
      and with bad mount options, at each dmemfs page size and for hugetlbfs at 2M and 1G, measured
      the same way; a helper stuck past its bound is recorded with its state and kernel stack.`,
    needs: ['patched-kernel'],
    boots: ['plain', 'pool-edges', 'dmem-1G-aligned'],
    measurements: MEASUREMENTS,
    async run(ctx) {
      for (const c of COLUMNS.filter((x) => noPoolColumns.includes(x.col))) await noPool(ctx, c);
      for (const c of COLUMNS.filter((x) => columns.includes(x.col))) await withPool(ctx, c, opts.raceTries);
      // A part of the scenario (npm test's) says what it leaves out, measurement by measurement.
      const part =
        'left to the whole scenario (npm start, the nightly): this run covers ' +
        `${[...columns].join(', ')} and the no-pool case of ${[...noPoolColumns].join(', ')}`;
      for (const n of MEASUREMENTS) {
        const col = COLUMNS.find((c) => n.endsWith(`_${c.col}`))!.col;
        const noPoolCase = n.startsWith('no_pool_');
        if (noPoolCase ? !noPoolColumns.includes(col) : !columns.includes(col)) ctx.skipMeasure(n, part);
      }
    },
  });
}

export const poolBoundaries = poolBoundariesOver();

const mnt = (c: Column, n = '') => `/mnt/edge-${c.col}${n}`;

/**
 * mount(2) with `opts` through the pool-edge helper: "mounted", or "refused:ERRNO" (mount(8)
 * would turn the errno into a sentence), or what went wrong before the call.
 */
async function mount(g: Guest, c: Column, dir: string, opts: string): Promise<string> {
  const r = await g.exec(['pool-edge', '--mount', c.fs, dir, opts]);
  const line = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  const outcome = line ? (JSON.parse(line) as { outcome?: string }).outcome : undefined;
  return outcome ?? `no answer (exit ${r.code}): ${r.stderr.trim().slice(0, 120)}`;
}

async function umount(g: Guest, dir: string): Promise<void> {
  await g.exec(['sh', '-c', 'rm -f "$1"/* 2>/dev/null; umount "$1"', 'umount', dir]);
}

/**
 * A column's guest with its file system mounted. A helper that gets stuck stops the guest (a
 * task stuck in its kernel leaves nothing to trust); the next case boots it afresh and mounts.
 */
class Session {
  private g: Guest | undefined;
  /** Fresh boots after a stuck helper or a crash. */
  rebooted = 0;
  constructor(
    private readonly ctx: ScenarioContext<M>,
    readonly c: Column,
    private readonly boot: 'plain' | 'pool-edges' | 'dmem-1G-aligned',
    /** At most this many tries of a race (a part of the scenario may spend fewer than a fix needs). */
    readonly raceTries?: number,
  ) {}

  /** The running guest, booted (and mounted) again if a stuck helper stopped the last one. */
  async guest(): Promise<Guest> {
    if (this.alive()) return this.g!;
    if (this.g) this.rebooted++;
    this.g = await this.ctx.boot(this.boot);
    const m = await mount(this.g, this.c, mnt(this.c), `pagesize=${this.c.size}`);
    if (m !== 'mounted') throw new Error(`${this.c.col}: the mount failed on a fresh boot: ${m}`);
    return this.g;
  }

  /** Whether the guest still runs (a stuck helper or a kernel crash ends it). */
  alive(): boolean {
    return Boolean(this.g && this.g.exitCode === undefined && !this.g.failureReason());
  }

  /** The guest as it is, for the first mount (which the caller measures). */
  async bare(): Promise<Guest> {
    this.g ??= await this.ctx.boot(this.boot);
    return this.g;
  }

  /**
   * pool-edge, bounded: its outcome, or "stuck: <state letter>" with the state, stack and task
   * dump as the measurement's evidence (and the guest stopped).
   */
  async edge(label: string, args: string[]): Promise<Edge> {
    const g = await this.guest();
    const r = await boundedHelper(g, ['pool-edge', ...args], BOUND);
    if (!r.finished) {
      const evidence =
        `${label}: stuck after ${r.seconds} s\n${r.state}\n/proc/PID/stack:\n` +
        `${r.stack || '(empty: the task is running)'}\ntask dump:\n${r.tasks}`;
      this.ctx.evidence(`${label}: stuck`, evidence);
      await g.stop();
      return { outcome: `stuck: ${/State:\s+(\S)/.exec(r.state)?.[1] ?? '?'}`, opts: { evidence } };
    }
    this.ctx.evidence(label, r.output.trim());
    return { outcome: String(r.json?.outcome ?? 'no output'), opts: {}, ...(r.json ? { json: r.json } : {}) };
  }

  /** A command on the running guest; nothing when a stuck helper stopped it (a fresh boot has no files). */
  async exec(argv: string[]): Promise<void> {
    if (this.alive()) await this.g!.exec(argv);
  }
}

/** A helper's outcome; `opts` carries the evidence of a stuck one onto the measurements it decides. */
interface Edge {
  outcome: string;
  json?: Record<string, unknown>;
  opts: { evidence?: string };
}

/** The pool's free pages: dmem's free dpages at the mounted size, or the hstate's free huge pages. */
async function freePages(g: Guest, c: Column): Promise<number | null> {
  if (c.fs === 'dmemfs') return (await dmemStats(g)).free_dpages;
  const r = await g.exec(['cat', `/sys/kernel/mm/hugepages/hugepages-${c.page / 1024}kB/free_hugepages`]);
  return r.code === 0 ? Number(r.stdout.trim()) : null;
}

function fillArgs(c: Column, what: string, file: string, pages: number, extra: string[] = []): string[] {
  return ['--case', what, '--file', file, '--page', String(c.page), '--pages', String(pages), ...extra];
}

/** What a fill past the pool gets, for each kind of file system. */
function expectFill(c: Column) {
  return c.fs === 'dmemfs'
    ? { expect: is('sigbus'), why: 'no reservation at mmap: the fault that finds no free dpage gets SIGBUS' }
    : { expect: is('mmap:ENOMEM'), why: 'hugetlbfs reserves the whole shared mapping at mmap and refuses it' };
}

/** No pool: dmemfs on a kernel booted without dmem=, hugetlbfs with no huge pages reserved. */
async function noPool(ctx: ScenarioContext<M>, c: Column): Promise<void> {
  const s = new Session(ctx, c, 'plain');
  const m = await mount(await s.bare(), c, mnt(c), `pagesize=${c.size}`);
  ctx.measure(`no_pool_mount_${c.col}`, m, {
    expect: is('mounted'),
    why:
      c.fs === 'dmemfs'
        ? 'dmemfs registers whether or not dmem= reserved anything; the pool is asked at fault time'
        : 'hugetlbfs mounts with an empty pool',
    note: c.fs === 'dmemfs' ? 'no dmem= on the command line' : 'no huge pages reserved',
  });
  if (m !== 'mounted') return;
  const r = await s.edge(`no pool, ${c.col}`, fillArgs(c, 'fill', `${mnt(c)}/f`, 1));
  ctx.measure(`no_pool_fill_${c.col}`, r.outcome, { ...expectFill(c), ...r.opts });
  await s.exec(['umount', mnt(c)]);
}

/** Every case that needs a pool, on one column's mount. */
async function withPool(ctx: ScenarioContext<M>, c: Column, raceTries?: number): Promise<void> {
  const s = new Session(ctx, c, c.boot, raceTries);
  const m = await mount(await s.bare(), c, mnt(c), `pagesize=${c.size}`);
  if (m !== 'mounted') {
    ctx.measure(`pool_pages_${c.col}`, m, { expect: is('a pool'), note: 'the mount failed' });
    return;
  }
  const pool = await freePages(await s.guest(), c);
  ctx.measure(`pool_pages_${c.col}`, pool, { unit: 'pages', expect: eq(c.pool), why: `${c.of}, free at the start` });
  if (pool === null || pool < 2) return;
  for (const step of [oversize, exhausted, shrinkGrow, threads, secondMount, badOptions]) await step(ctx, s, pool);
  // The pool after every case, counted on a fresh mount of the same size.
  if (s.rebooted || !s.alive()) {
    await s.exec(['umount', mnt(c)]); // the next column mounts another size: the pool must be free
    return void ctx.skipMeasure(
      `pool_free_at_end_${c.col}`,
      'a stuck helper or a crash ended a guest of this column: a fresh boot has a new pool',
      { unit: 'pages' },
    );
  }
  const g = await s.guest();
  await umount(g, mnt(c));
  const again = await mount(g, c, mnt(c), `pagesize=${c.size}`);
  ctx.measure(`pool_free_at_end_${c.col}`, again === 'mounted' ? await freePages(g, c) : null, {
    unit: 'pages',
    expect: eq(pool),
    why: 'every file is gone: every page is back in the pool',
  });
  await umount(g, mnt(c));
}

type Step = (ctx: ScenarioContext<M>, s: Session, pool: number) => Promise<void>;

/** A file one page larger than the pool, filled in order. */
const oversize: Step = async (ctx, s, pool) => {
  const { c } = s;
  const r = await s.edge(`oversize ${c.col}`, fillArgs(c, 'fill', `${mnt(c)}/big`, pool + 1));
  ctx.measure(`oversize_fill_${c.col}`, r.outcome, { ...expectFill(c), ...r.opts });
  if (c.fs === 'dmemfs')
    ctx.measure(`oversize_pages_touched_${c.col}`, (r.json?.pages_touched as Value) ?? null, {
      unit: 'pages',
      expect: eq(pool),
      why: 'every page of the pool, and the SIGBUS on the first page past it',
      ...r.opts,
    });
  await s.exec(['rm', '-f', `${mnt(c)}/big`]);
};

/** Another file holds all but two pages of the pool while a process faults four. */
const exhausted: Step = async (ctx, s, pool) => {
  const { c } = s;
  if (pool > 2) {
    const ballast = await s.edge(`ballast ${c.col}`, fillArgs(c, 'fill', `${mnt(c)}/ballast`, pool - 2));
    if (ballast.outcome !== 'ok') {
      ctx.measure(`exhausted_fill_${c.col}`, `ballast: ${ballast.outcome}`, { expect: is('ok') });
      await s.exec(['rm', '-f', `${mnt(c)}/ballast`]);
      return;
    }
  }
  const r = await s.edge(`exhausted ${c.col}`, fillArgs(c, 'fill', `${mnt(c)}/victim`, VICTIM_PAGES));
  ctx.measure(`exhausted_fill_${c.col}`, r.outcome, { ...expectFill(c), ...r.opts });
  if (c.fs === 'dmemfs')
    ctx.measure(`exhausted_pages_touched_${c.col}`, (r.json?.pages_touched as Value) ?? null, {
      unit: 'pages',
      expect: eq(2),
      why: 'the two pages the other file left',
      ...r.opts,
    });
  await s.exec(['rm', '-f', `${mnt(c)}/ballast`, `${mnt(c)}/victim`]);
};

/** Truncate to 0 under the mapping, read; truncate back, read. */
const shrinkGrow: Step = async (ctx, s) => {
  const { c } = s;
  const r = await s.edge(`shrink-grow ${c.col}`, fillArgs(c, 'shrink-grow', `${mnt(c)}/sg`, 1));
  ctx.measure(`shrink_after_shrink_${c.col}`, (r.json?.after_shrink as Value) ?? r.outcome, {
    expect: is('sigbus'),
    why: 'a page past EOF of a shared file mapping raises SIGBUS',
    ...r.opts,
  });
  ctx.measure(`shrink_after_grow_${c.col}`, (r.json?.after_grow as Value) ?? r.outcome, {
    expect: is('zero'),
    why: 'the truncated page was freed: growing the file back gives a new zeroed page, never the old data',
    evidence: r.opts.evidence ?? (r.json ? JSON.stringify(r.json) : r.outcome),
  });
  await s.exec(['rm', '-f', `${mnt(c)}/sg`]);
};

/** What one try of the threads case came to. */
interface ThreadsTry {
  fill: string;
  fillOpts: { evidence?: string };
  helper: string;
  used: number | null;
  reports: KernelReport[] | undefined;
  unlink: { value: string; reports?: KernelReport[] } | undefined;
  /** Whether the race showed: a wrong count, a report, an unlink that failed, a stuck helper. */
  hit: boolean;
}

/**
 * Eight threads fault the same file at once; it takes one page of the pool per page of the file,
 * and unlinking it gives them back. On dmemfs the race behind the series' failures fires in some
 * tries only: the case is tried again until it fires, up to the tries a fix needs (races.ts).
 */
const threads: Step = async (ctx, s, pool) => {
  const { c } = s;
  const pages = Math.min(THREAD_PAGES, Math.floor(pool / 2));
  const needed = c.fs === 'dmemfs' ? racePlan(THREAD_RACES[c.col as keyof typeof THREAD_RACES]) : 1;
  const plan = Math.min(needed, s.raceTries ?? needed);
  let t: ThreadsTry | undefined;
  let tries = 0;
  while (tries < plan && !t?.hit) {
    tries++;
    t = await threadsTry(s, pages, tries);
  }
  const tr = t!;
  const ofTries = plan > 1 ? { tries } : {};
  const said = plan > 1 ? `; ${tries} of at most ${plan} tries (until the race fires)` : '';
  ctx.measure(`threads_fill_${c.col}`, tr.fill, { expect: is('ok, verified'), ...tr.fillOpts, ...ofTries });
  ctx.measure(`threads_pages_used_${c.col}`, tr.used, {
    unit: 'pages',
    expect: eq(pages),
    why: `${THREADS} threads racing on each page fault must allocate it once`,
    note: `${pages} pages${said}`,
    evidence: tr.helper,
    ...ofTries,
  });
  if (tr.reports === undefined || tr.unlink === undefined) {
    const why = 'the threads got stuck and their guest was stopped: nothing left to read';
    ctx.skipMeasure(`threads_kernel_reports_${c.col}`, why, { unit: 'reports' });
    ctx.skipMeasure(`threads_unlink_${c.col}`, why);
    return;
  }
  ctx.measure(`threads_kernel_reports_${c.col}`, tr.reports.length, {
    unit: 'reports',
    expect: eq(0),
    why: 'racing faults are the normal case for a shared mapping',
    reports: tr.reports,
    ...ofTries,
  });
  ctx.measure(`threads_unlink_${c.col}`, tr.unlink.value, {
    expect: is('unlinked'),
    ...(tr.unlink.reports ? { reports: tr.unlink.reports } : {}),
    ...ofTries,
  });
};

async function threadsTry(s: Session, pages: number, n: number): Promise<ThreadsTry> {
  const { c } = s;
  const file = `${mnt(c)}/th${n}`;
  const g0 = await s.guest();
  // The file exists before the reports are counted: creating it is not what this case measures.
  await g0.exec(['truncate', '-s', '0', file], { check: true });
  const before = await freePages(g0, c);
  await g0.console.settled(); // a report of the creation closes first
  const mark = g0.console.reports.length;
  const r = await s.edge(
    `threads ${c.col} (try ${n})`,
    fillArgs(c, 'threads', file, pages, ['--threads', String(THREADS)]),
  );
  const fill = r.outcome === 'ok' && r.json?.verified === true ? 'ok, verified' : r.outcome;
  const helper = r.json ? JSON.stringify(r.json) : (r.opts.evidence ?? r.outcome);
  if (r.outcome.startsWith('stuck'))
    return { fill, fillOpts: r.opts, helper, used: null, reports: undefined, unlink: undefined, hit: true };
  const after = await freePages(await s.guest(), c);
  const used = before === null || after === null ? null : before - after;
  const g = await s.guest();
  // A report is complete 1.5 s after its last line (console-watch): let it settle.
  await g.console.settled();
  const reports = g.console.reports
    .slice(mark)
    .map((x) => ({ kind: x.kind, title: x.title, excerpt: x.excerpt.join('\n') }));
  let unlink: ThreadsTry['unlink'];
  try {
    const rm = await g.exec(['rm', '-f', file]);
    unlink = { value: rm.code === 0 ? 'unlinked' : rm.stderr.trim() };
  } catch (e) {
    const report = crashReport(e, g);
    if (!report) throw e;
    unlink = { value: `${report.kind}: ${report.title}`, reports: [report] };
  }
  const hit = fill !== 'ok, verified' || used !== pages || reports.length > 0 || unlink.value !== 'unlinked';
  return { fill, fillOpts: r.opts, helper, used, reports, unlink, hit };
}

/** A second mount of the same file system while a file of the first is in use. */
const secondMount: Step = async (ctx, s) => {
  const { c } = s;
  await s.edge(`held file ${c.col}`, fillArgs(c, 'fill', `${mnt(c)}/held`, 1));
  const g = await s.guest();
  const same = await mount(g, c, mnt(c, '-2'), `pagesize=${c.size}`);
  ctx.measure(`second_mount_same_size_${c.col}`, same, {
    expect: is('mounted'),
    why: 'mounts of one file system type share its pool',
  });
  if (same === 'mounted') await umount(g, mnt(c, '-2'));
  // dmemfs: another dpage size; hugetlbfs: the other huge page size (both have a pool).
  const other = c.fs === 'hugetlbfs' ? (c.size === '2M' ? '1G' : '2M') : c.size === '2M' ? '4K' : '2M';
  const diff = await mount(g, c, mnt(c, '-3'), `pagesize=${other}`);
  ctx.measure(`second_mount_other_size_${c.col}`, diff, {
    ...(c.fs === 'dmemfs'
      ? {
          expect: is('refused:EBUSY'),
          why: 'the dmem pool has one page size at a time: it is busy at the first one (dmem_alloc_init: -EBUSY)',
        }
      : { expect: is('mounted'), why: 'each huge page size has its own pool' }),
    note: `pagesize=${other} while a ${c.size} file exists`,
  });
  if (diff === 'mounted') await umount(g, mnt(c, '-3'));
  await g.exec(['rm', '-f', `${mnt(c)}/held`]);
};

/** The errno a bad option gets, and why (measured on 5.10.223 with the series). */
function badOptionErrno(c: Column, name: string): { errno: string; why: string } {
  if (c.fs === 'hugetlbfs')
    return { errno: 'EINVAL', why: 'hugetlbfs_parse_param: an unsupported page size or an unknown option is -EINVAL' };
  if (name === 'bad_option_unknown')
    return { errno: 'EINVAL', why: 'dmemfs_parse_param: fs_parse refuses an option it does not know' };
  return { errno: 'EINVAL', why: 'dmemfs_parse_param: check_dpage_size refuses a size that is not 4K, 2M or 1G' };
}

/** Bad mount options, each on its own mount point. */
const badOptions: Step = async (ctx, s) => {
  const { c } = s;
  const g = await s.guest();
  const cases = [
    ['bad_option_pagesize_3M', 'pagesize=3M'],
    ['bad_option_pagesize_abc', 'pagesize=abc'],
    ['bad_option_unknown', 'nosuchoption=1'],
  ] as const;
  for (const [name, opt] of cases) {
    const r = await mount(g, c, mnt(c, '-bad'), opt);
    const want = badOptionErrno(c, name);
    ctx.measure(`${name}_${c.col}`, r, { expect: is(`refused:${want.errno}`), why: want.why, note: opt });
    if (r === 'mounted') await umount(g, mnt(c, '-bad'));
  }
};
