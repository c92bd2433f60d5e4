/**
 * mce-dmemfs: an uncorrected memory error injected (HMP `mce -b`, an Intel-vendor L1) at the
 * guest-physical address of a mapped page. hugetlbfs is the control, device-dax is recorded,
 * dmemfs is judged: the kernel survives, the process gets SIGBUS at the right address, and the
 * page leaves the pool. Kernel reports are taken per injection, so each one is charged to the
 * memory that caused it.
 */
import { eq, is, type KernelReport } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { dmemRegions, dmemStats, logMatches } from '../probes.js';
import { controlInjection, mceVictim, mountDmemfs, oneGigHugePage, victimOutcome } from '../steps.js';
import { defineScenario, type ScenarioContext } from '../types.js';
import { DEVMEM_OFFSET } from './mem-devmem.js';

/** Where the mce boot's memmap=1G!7G puts the device-dax range (scenarios/boots.ts). */
const DEVDAX_BASE = 7 * 2 ** 30;

const MEASUREMENTS = [
  'control_hugetlbfs_sigbus',
  'control_hugetlbfs_si_code',
  'control_hugetlbfs_si_addr_lsb',
  'control_hugetlbfs_kernel_reports',
  'control_devdax_sigbus',
  'control_devdax_kernel_reports',
  'control_hugetlbfs_1G_sigbus',
  'control_hugetlbfs_1G_si_addr_lsb',
  'control_anonymous_sigbus',
  'control_anonymous_si_addr_lsb',
  'control_anonymous_kernel_reports',
  'control_anonymous_baseline_sigbus',
  'control_anonymous_baseline_kernel_reports',
  'mount_4K',
  'pagemap_shows_dmem_page',
  'victim_paddr',
  'victim_paddr_found',
  'kernel_survived',
  'sigbus_default_sysctl',
  'handled_by_dmem_logged',
  'sigbus_early_kill',
  'si_code_early_kill',
  'si_addr_matches_page',
  'si_addr_lsb',
  'kernel_warnings_after_mce',
  'free_dpages_after_unlink_delta',
  'mount_2M',
  'sigbus_2M',
  'mount_1G',
  'sigbus_1G',
  'control_devmem_signal',
  'control_devmem_kernel_reports',
] as const;
type M = (typeof MEASUREMENTS)[number];

/** What the extra boots measure (dmemfs at 2M and 1G, mem= with /dev/mem). */
const EXTRA_BOOT_MEASUREMENTS = [
  'mount_2M',
  'sigbus_2M',
  'mount_1G',
  'sigbus_1G',
  'control_devmem_signal',
  'control_devmem_kernel_reports',
  'control_anonymous_baseline_sigbus',
  'control_anonymous_baseline_kernel_reports',
] as const satisfies readonly M[];

/**
 * The scenario, with or without its three extra boots (dmemfs at 2M and at 1G, mem= with
 * /dev/mem): `npm test` keeps the first boot (dmemfs 4K and every control in it), `npm start`
 * and the nightly run them all.
 */
/** The controls on boots of their own (mem= with /dev/mem, the kernel without the series), or their skips. */
async function extraControls(ctx: ScenarioContext<M>, extraBoots: boolean): Promise<void> {
  if (extraBoots) {
    await devmemControl(ctx, await ctx.boot('mce-intel-mem-4G'));
    await anonymousBaseline(ctx, await ctx.boot('mce-intel-baseline'));
  } else
    for (const n of EXTRA_BOOT_MEASUREMENTS)
      ctx.skipMeasure(
        n,
        'left to the whole scenario (npm start, the nightly): its own boots ' +
          '(dmemfs 2M, 1G, mem=, the kernel without the series)',
      );
}

export function mceWith(opts: { extraBoots: boolean }) {
  return defineScenario({
    id: 'mce-dmemfs',
    title: 'an uncorrected memory error injected into a dmemfs page in use',
    proves: `with an error injected at the guest-physical address of a mapped dmemfs page, the kernel
    survives, the mapping process gets SIGBUS at the right address, and the page leaves the pool;
    hugetlbfs is the control, and what device-dax does with the same injection is recorded.`,
    needs: ['patched-kernel', 'mce-cpu'],
    boots: ['mce-intel', 'mce-intel-2M', 'mce-intel-1G', 'mce-intel-mem-4G', 'mce-intel-baseline'],
    measurements: MEASUREMENTS,
    async run(ctx) {
      const g = await ctx.boot('mce-intel');
      await hugetlbfsControl(ctx, g);
      await otherControls(ctx, g);
      await devdaxRecorded(ctx, g);
      const m = await mountDmemfs(g, '4K');
      ctx.measure('mount_4K', m.ok, { expect: is(true), ...(m.err ? { note: m.err } : {}) });
      if (!m.ok) return;
      const before = await dmemStats(g);
      const regions = await dmemRegions(g);
      const inDmem = (pa: number) => regions.some((r) => pa >= r.start && pa < r.end);
      const first = await defaultSysctl(ctx, g, inDmem);
      if (!first) return;
      const early = await earlyKill(ctx, g, inDmem);
      const reports = [...first.reports, ...early.reports];
      // The pages the dmem handler took: one WARNING each is the known failure, none is right.
      let poisonedPages = [first, early].filter((v) => v.logged.length > 0).length;
      await g.exec(['rm', '-f', '/mnt/dmem/victim', '/mnt/dmem/victim2']);
      const after = await dmemStats(g);
      const poisoned = early.ready?.paddr ? 2 : 1;
      ctx.measure('free_dpages_after_unlink_delta', after.free_dpages - before.free_dpages, {
        unit: 'dpages',
        expect: eq(-poisoned),
        why: 'each poisoned page leaves the pool for good; the healthy ones come back',
      });
      await g.exec(['umount', '/mnt/dmem']);
      // The same injection at 2M and 1G, each on a fresh boot (the pool takes its page size at the
      // first mount).
      if (opts.extraBoots)
        for (const size of ['2M', '1G'] as const) {
          const huge = await dmemfsHuge(ctx, await ctx.boot(`mce-intel-${size}`), size);
          reports.push(...huge.reports);
          poisonedPages += huge.poisoned;
        }
      for (const r of reports) ctx.evidence('kernel report after a dmemfs MCE', r.excerpt);
      ctx.measure('kernel_warnings_after_mce', poisonedPages ? reports.length / poisonedPages : null, {
        unit: 'reports per poisoned page',
        expect: eq(0),
        why: 'a handled memory error is not a kernel bug: no WARNING, no trace',
        note: `${reports.length} report(s) over ${poisonedPages} poisoned dmem page(s); ${reports[0]?.title ?? 'none'}`,
        reports,
      });
      await extraControls(ctx, opts.extraBoots);
    },
  });
}

export const mceDmemfs = mceWith({ extraBoots: true });

/** "mem= plus /dev/mem": the page above mem= a process reads through /dev/mem, poisoned. */
async function devmemControl(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const base = Number(DEVMEM_OFFSET);
  const v = await controlInjection(ctx, g, {
    label: '/dev/mem above mem=',
    file: '/dev/mem',
    size: '4K',
    tag: 'devmem',
    log: /Memory failure|mce:|MCE/i,
    accept: (pa) => pa >= base && pa < base + 4096,
    timeoutS: 30,
    extra: ['--offset', DEVMEM_OFFSET],
  });
  ctx.measure('control_devmem_signal', v.event, {
    expect: is('timeout'),
    why:
      'memory_failure() finds no struct page above mem= ("memory outside kernel control"): nobody is signalled; ' +
      '"timeout" counts only where the kernel logged the error for that page',
    note: v.note,
    evidence: v.logged.join('\n'),
  });
  ctx.measure('control_devmem_kernel_reports', v.reports.length, {
    unit: 'reports',
    expect: eq(0),
    why: 'an error in memory the kernel does not manage is logged and left alone: no WARNING, no trace',
    note: v.reports.map((r) => r.title).join('; ') || 'none',
    reports: v.reports,
  });
}

/** hugetlbfs 1G and anonymous memory (THP on): the same injection, the signal each gets. */
async function otherControls(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const no1G = await oneGigHugePage(g, '/mnt/huge1g');
  if (no1G)
    for (const n of ['control_hugetlbfs_1G_sigbus', 'control_hugetlbfs_1G_si_addr_lsb'] as const)
      ctx.skipMeasure(n, no1G);
  else {
    const huge = await mceVictim(ctx, g, '/mnt/huge1g/victim', '1G', 'hugetlbfs-1G', { timeoutS: 30 });
    ctx.evidence('victim on hugetlbfs 1G', JSON.stringify(huge));
    const log = (await logMatches(g, /Memory failure/)).filter((l) => /huge page/.test(l));
    ctx.evidence('kernel log: memory failure on huge pages', log.join('\n'));
    // 5.10's memory_failure() leaves gigantic pages alone: the reader is never signalled.
    ctx.measure('control_hugetlbfs_1G_sigbus', victimOutcome(huge), {
      expect: is('timeout'),
      why:
        '5.10 memory_failure() leaves a 1 GiB hugetlb page alone ("non-pmd-sized huge page: Ignored"); "timeout" ' +
        'counts only where the kernel logged the error for that page',
      evidence: huge.logged.join('\n'),
      note: huge.logged.join(' / ') || 'nothing logged for the page',
    });
    if (huge.final?.event === 'sigbus')
      ctx.measure('control_hugetlbfs_1G_si_addr_lsb', huge.final.si_addr_lsb ?? null, {
        expect: eq(30),
        why: 'the whole 1 GiB huge page is lost: log2(1 GiB)',
      });
    else ctx.skipMeasure('control_hugetlbfs_1G_si_addr_lsb', 'no SIGBUS arrived: nothing to read from siginfo');
    await g.exec(['rm', '-f', '/mnt/huge1g/victim']);
  }
  const anon = await mceVictim(ctx, g, '', '4K', 'anonymous', { extra: ['--anon'] });
  ctx.evidence('victim on anonymous memory', JSON.stringify(anon));
  ctx.measure('control_anonymous_sigbus', victimOutcome(anon), { expect: is('sigbus') });
  ctx.measure('control_anonymous_si_addr_lsb', anon.final?.si_addr_lsb ?? null, {
    expect: eq(12),
    why: 'one 4 KiB page is lost',
  });
  // Seen: "BUG: Bad page map in process mce-victim" as the killed victim exits (its pte the
  // hwpoison entry); the same injection on the unpatched kernel says whose it is (anonymousBaseline).
  ctx.measure('control_anonymous_kernel_reports', reportTitles(anon.reports), {
    expect: is(ANONYMOUS_MCE_REPORTS),
    why: ANONYMOUS_MCE_WHY,
    note: `${anon.reports.length} report(s)`,
    reports: anon.reports,
  });
}

/** What an MCE in an anonymous page prints besides its "Memory failure" lines, on 5.10.223 with or without the series.
 */
const ANONYMOUS_MCE_REPORTS = 'BUG: Bad page map in process mce-victim';
const ANONYMOUS_MCE_WHY =
  'measured: as the killed victim exits, zap_pte_range() prints the hwpoison entry left in its pte ' +
  '(type 29 = SWP_HWPOISON, offset the poisoned pfn) as a bad page map; the unpatched 5.10.223 kernel prints ' +
  "the same for the same injection (control_anonymous_baseline_kernel_reports): not the series'";

/** The distinct titles of some reports, without the addresses and pte values that vary: a word to hold. */
export function reportTitles(reports: readonly KernelReport[]): string {
  const titles = reports.map((r) => r.title.replace(/\s+(pte|pmd|pud|addr|address):.*$/, '').trim());
  return [...new Set(titles)].join('; ') || 'none';
}

/** The anonymous-memory injection on the unpatched kernel: the control of the control. */
async function anonymousBaseline(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const anon = await mceVictim(ctx, g, '', '4K', 'anonymous-baseline', { extra: ['--anon'] });
  ctx.evidence('victim on anonymous memory, unpatched kernel', JSON.stringify(anon));
  ctx.measure('control_anonymous_baseline_sigbus', victimOutcome(anon), {
    expect: is('sigbus'),
    why: 'the unpatched kernel, the same machine and injection',
  });
  ctx.measure('control_anonymous_baseline_kernel_reports', reportTitles(anon.reports), {
    expect: is(ANONYMOUS_MCE_REPORTS),
    why: "measured on the unpatched 5.10.223 kernel: the report is the base kernel's own",
    note: `${anon.reports.length} report(s)`,
    reports: anon.reports,
  });
}

/** A dmemfs page of `size` poisoned under the default sysctl: the event the victim reports. */
async function dmemfsHuge(
  ctx: ScenarioContext<M>,
  g: Guest,
  size: '2M' | '1G',
): Promise<{ reports: KernelReport[]; poisoned: number }> {
  const m = await mountDmemfs(g, size);
  ctx.measure(`mount_${size}`, m.ok, { expect: is(true), ...(m.err ? { note: m.err } : {}) });
  if (!m.ok) {
    ctx.skipMeasure(`sigbus_${size}`, `dmemfs would not mount at ${size}: ${m.err}`);
    return { reports: [], poisoned: 0 };
  }
  const regions = await dmemRegions(g);
  const inDmem = (pa: number) => regions.some((r) => pa >= r.start && pa < r.end);
  const v = await mceVictim(ctx, g, '/mnt/dmem/victim', size, `dmemfs-${size}`, {
    accept: inDmem,
    timeoutS: 30,
    extra: ['--create', '--align', size],
  });
  ctx.evidence(`victim on dmemfs ${size}, default sysctl`, JSON.stringify(v));
  const handled = (await logMatches(g, /handled by dmem/)).join('\n');
  ctx.evidence(`kernel log: handled by dmem (${size})`, handled);
  ctx.measure(`sigbus_${size}`, victimOutcome(v), {
    expect: is('sigbus'),
    note: v.final?.si_code_name ?? v.paddrSource,
    evidence: v.logged.join('\n'),
  });
  return { reports: v.reports, poisoned: v.logged.length > 0 ? 1 : 0 };
}

/** The control: a hugetlbfs victim gets SIGBUS BUS_MCEERR_AR for its 2 MiB page. */
async function hugetlbfsControl(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  await g.exec(['sh', '-c', 'echo 4 > /proc/sys/vm/nr_hugepages'], { check: true });
  const control = await mceVictim(ctx, g, '/dev/hugepages/victim', '2M', 'hugetlbfs');
  ctx.evidence('victim on hugetlbfs', JSON.stringify(control));
  ctx.measure('control_hugetlbfs_sigbus', victimOutcome(control), { expect: is('sigbus') });
  ctx.measure('control_hugetlbfs_si_code', control.final?.si_code_name ?? null, {
    expect: is('BUS_MCEERR_AR'),
    why: 'the victim reads the page: an action-required error in its own context',
  });
  ctx.measure('control_hugetlbfs_si_addr_lsb', control.final?.si_addr_lsb ?? null, {
    expect: eq(21),
    why: 'the whole 2 MiB huge page is lost: log2(2 MiB)',
  });
  ctx.measure('control_hugetlbfs_kernel_reports', control.reports.length, {
    unit: 'reports',
    expect: eq(0),
    reports: control.reports,
  });
}

/** Device-dax (memmap=1G!7G as a devdax namespace): recorded beside dmemfs, no expectation. */
async function devdaxRecorded(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const ns = await g.exec([
    'sh',
    '-c',
    'test -c /dev/dax0.0 || ndctl create-namespace -f -e namespace0.0 --mode=devdax --map=mem >/dev/null 2>&1; ' +
      'test -c /dev/dax0.0',
  ]);
  if (ns.code !== 0) {
    const why = 'no /dev/dax0.0 (a kernel without CONFIG_FS_DAX or ndctl failed)';
    ctx.skipMeasure('control_devdax_sigbus', why);
    ctx.skipMeasure('control_devdax_kernel_reports', why);
    return;
  }
  const inRange = (pa: number) => pa >= DEVDAX_BASE && pa < DEVDAX_BASE + 2 ** 30;
  const devdax = await controlInjection(ctx, g, {
    label: 'device-dax',
    file: '/dev/dax0.0',
    size: '2M',
    tag: 'devdax',
    log: /Memory failure|mce:|dax/i,
    accept: inRange,
    timeoutS: 30,
    extra: ['--align', '2M'],
  });
  ctx.measure('control_devdax_sigbus', devdax.event, {
    expect: is('timeout'),
    why:
      'measured: no SIGBUS in 30 s on device-dax (soft-reserved devices the same), where hugetlbfs gets one, ' +
      'although the kernel logs "recovery action for dax page: Recovered"; "timeout" counts only with that line',
    note: devdax.note,
    evidence: devdax.logged.join('\n'),
  });
  ctx.measure('control_devdax_kernel_reports', devdax.reports.length, {
    unit: 'reports',
    expect: eq(0),
    why: 'measured: a device-dax page poisoned and recovered leaves no WARNING or trace',
    note: devdax.reports.map((r) => r.title).join('; ') || 'none',
    reports: devdax.reports,
  });
}

/** The default sysctl (vm.memory_failure_early_kill=0): the victim reads the page for 30 s. */
async function defaultSysctl(ctx: ScenarioContext<M>, g: Guest, inDmem: (pa: number) => boolean) {
  const victim = await mceVictim(ctx, g, '/mnt/dmem/victim', '4K', 'dmemfs', { accept: inDmem, timeoutS: 30 });
  ctx.evidence('victim on dmemfs, default sysctl', JSON.stringify(victim));
  ctx.measure('pagemap_shows_dmem_page', !victim.ready?.paddr_unavailable, {
    expect: is(false),
    why: "a finding: the 5.10 page walk skips VM_PFNMAP VMAs, so pagemap hides a dmemfs page's PFN",
    note: victim.ready?.paddr_unavailable ?? 'pagemap has the PFN',
  });
  ctx.measure('victim_paddr', victim.ready?.paddr ?? null, {
    note: `from ${victim.paddrSource}; inside a dmem region`,
  });
  ctx.measure('victim_paddr_found', Boolean(victim.ready?.paddr), { expect: is(true) });
  const alive = await g
    .exec(['true'])
    .then((r) => r.code === 0)
    .catch(() => false);
  ctx.measure('kernel_survived', alive, { expect: is(true) });
  if (!alive) return undefined;
  ctx.measure('sigbus_default_sysctl', victimOutcome(victim), {
    expect: is('sigbus'),
    note: 'the victim reads the page every iteration for 30 s after the injection',
    evidence: victim.logged.join('\n'),
  });
  const log = await logMatches(g, /Memory failure|mce:|dmem/i);
  const relevant = log.filter((l) => !/register region|parameter|pre-defined/.test(l));
  ctx.evidence('kernel log: memory failure', relevant.join('\n'));
  ctx.measure(
    'handled_by_dmem_logged',
    log.some((l) => /handled by dmem/.test(l)),
    {
      expect: is(true),
      why: "the series' MCE handler (31-32/37) claimed the error",
      evidence: relevant.join('\n'),
    },
  );
  return victim;
}

/** Early kill on: the process should be signalled as soon as the page is poisoned. */
async function earlyKill(ctx: ScenarioContext<M>, g: Guest, inDmem: (pa: number) => boolean) {
  await g.exec(['sh', '-c', 'echo 1 > /proc/sys/vm/memory_failure_early_kill'], { check: true });
  const early = await mceVictim(ctx, g, '/mnt/dmem/victim2', '4K', 'dmemfs-early', { accept: inDmem });
  ctx.evidence('victim on dmemfs, early kill', JSON.stringify(early));
  ctx.measure('sigbus_early_kill', victimOutcome(early), { expect: is('sigbus'), evidence: early.logged.join('\n') });
  if (early.final?.event !== 'sigbus') {
    const why = `no SIGBUS arrived (${early.final?.event ?? 'no final event'}): nothing to read from siginfo`;
    for (const n of ['si_code_early_kill', 'si_addr_matches_page', 'si_addr_lsb'] as const) ctx.skipMeasure(n, why);
    return early;
  }
  ctx.measure('si_code_early_kill', early.final.si_code_name ?? null, { expect: is('BUS_MCEERR_AO') });
  ctx.measure('si_addr_matches_page', early.final.addr_matches ?? null, { expect: is(true) });
  ctx.measure('si_addr_lsb', early.final.si_addr_lsb ?? null, { expect: eq(12), why: 'one 4 KiB dpage' });
  return early;
}
