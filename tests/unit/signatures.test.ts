/**
 * The known-failure signatures and the judge, on real evidence. tests/fixtures/reports/ holds one
 * real console excerpt per file, headed by its expected TYPE and TITLE and the SIGNATURE it must
 * match ("none" for near misses); this test walks the folder. Value signatures are checked with
 * the values the series gave (4 large pages, "timeout") and with near misses, worse values and
 * fixed ones.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import { atLeast, eq, is, meets, type KernelReport, type Measurement } from '../../core/results.js';
import { judge, reportMatches, type SeenReport } from '../../runner/judge.js';
import { SIGNATURES, signaturesFor } from '../../scenarios/signatures.js';
import { findReports } from '../../vm/crash-patterns.js';
import { knownFailuresMarkdown } from '../../report/known-failures.js';

interface Fixture {
  file: string;
  title: string;
  type: string;
  signature: string;
  report: KernelReport | undefined;
}

const dir = join(projectRoot(), 'tests', 'fixtures', 'reports');
const fixtures: Fixture[] = readdirSync(dir)
  .filter((f) => f.endsWith('.log'))
  .map((file) => {
    const [head, ...rest] = readFileSync(join(dir, file), 'utf8').split('\n\n');
    const field = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(head!)?.[1] ?? '';
    const r = findReports(rest.join('\n\n').split('\n'))[0];
    const report = r && {
      kind: r.kind,
      title: r.title.replace(/^\[\s*\d+\.\d+\]\s*/, ''),
      excerpt: r.excerpt.join('\n'),
    };
    return { file, title: field('TITLE'), type: field('TYPE'), signature: field('SIGNATURE'), report };
  });

t.test('every fixture parses to the report its header names', async (t) => {
  t.ok(fixtures.length >= 6, `${fixtures.length} fixtures`);
  for (const f of fixtures) {
    if (f.type === 'none') t.equal(f.report, undefined, `${f.file}: no kernel report`);
    else t.same([f.report?.kind, f.report?.title], [f.type, f.title], `${f.file}: ${f.type}`);
  }
});

/** A failed measurement carrying a fixture's report, as a crashing step records it. */
const crashed = (r: KernelReport): Measurement => ({
  value: `${r.kind}: ${r.title}`,
  unit: '',
  expected: is(true),
  ok: false,
  reports: [r],
});

t.test('each report signature matches its own fixture and no other (near misses included)', async (t) => {
  const withReports = SIGNATURES.filter((s) => s.report);
  t.ok(withReports.length >= 2);
  for (const sig of withReports) {
    t.ok(
      fixtures.some((f) => f.signature === sig.id),
      `${sig.id} has a fixture`,
    );
    for (const f of fixtures.filter((x) => x.report)) {
      const matches = reportMatches(f.report!, sig.report!);
      t.equal(matches, f.signature === sig.id, `${sig.id} ${matches ? 'matches' : 'does not match'} ${f.file}`);
    }
  }
});

const fixture = (name: string) => fixtures.find((f) => f.file === name)!.report!;
const m = (value: Measurement['value'], expected: Measurement['expected'], extra: Partial<Measurement> = {}) => ({
  value,
  unit: '',
  expected: expected!,
  ok: meets(value, expected!),
  ...extra,
});

t.test('vfio-pin: the real oops is the known failure; the derived near miss is a fail', async (t) => {
  const sigs = signaturesFor('vfio-pin');
  const known = judge({ measurements: { map_dma: crashed(fixture('vfio-get-dmem-pfn-null.log')) } }, sigs);
  t.equal(known.status, 'known-failure');
  t.same(
    known.signatures.map((c) => [c.id, c.reproduced]),
    [['vfio-get-dmem-pfn-null', true]],
  );
  const other = judge({ measurements: { map_dma: crashed(fixture('near-miss-null-read-in-vfio.log')) } }, sigs);
  t.equal(other.status, 'fail', 'another NULL dereference on the same path is not the known one');
  t.match(other.reason, /vfio-get-dmem-pfn-null/);
  const maps = { map_dma: m(true, is(true)), map_dma_4K: m(true, is(true)), map_dma_1G: m(true, is(true)) };
  const fixed = judge({ measurements: maps }, sigs);
  t.equal(fixed.status, 'pass');
  t.same(
    fixed.signatures.map((c) => [c.id, c.reproduced]),
    [['vfio-get-dmem-pfn-null', false]],
    'a DMA that maps again at every page size: no longer reproduces',
  );
  const at4K = crashed(fixture('vfio-get-dmem-pfn-null.log'));
  const partly = judge({ measurements: { ...maps, map_dma_4K: at4K } }, sigs);
  t.equal(partly.status, 'known-failure', 'fixed at 2M and 1G, still oopsing at 4K: still known');
});

t.test('nested-guest: 4 large pages is known; 0 or unreadable is worse; 32 no longer reproduces', async (t) => {
  const sigs = signaturesFor('nested-guest');
  const dmemfsL2 = 'L2 RAM: file /mnt/dmem/l2-ram; L2 reported touched_mib=64; kvm/largepages 4 under KVM in L1';
  const at = (v: number | null, evidence = dmemfsL2) =>
    judge({ measurements: { kvm_largepages: m(v, atLeast(32), { evidence }) } }, sigs);
  t.equal(at(4).status, 'known-failure');
  t.equal(at(0).status, 'fail', 'every large page gone is worse than known');
  t.match(at(0).reason, /kvm_largepages = 0, where kvm-dmem-4k has 3\.\.6/);
  t.equal(at(2).status, 'fail', 'half the known count is another behaviour');
  t.equal(at(8).status, 'fail', 'twice the known count too');
  const onHugetlbfs =
    'L2 RAM: file /dev/hugepages/l2-ram; L2 reported touched_mib=64; kvm/largepages 4 under KVM in L1';
  t.equal(at(4, onHugetlbfs).status, 'fail', 'the count of an L2 that is not on dmemfs is not the known failure');
  t.equal(at(4, dmemfsL2.replace('=64', '=0')).status, 'fail', 'nor of one that never touched its memory');
  t.equal(at(null).status, 'fail', 'a counter that could not be read is never the known failure');
  t.equal(at(20).status, 'fail', 'more large pages but still short of 32: a different failure');
  const fixed = at(32);
  t.equal(fixed.status, 'pass');
  t.equal(fixed.signatures[0]?.reproduced, false);
});

t.test('mce-dmemfs: a timeout is known, a missing event is not; the WARNING must be claimed', async (t) => {
  const sigs = signaturesFor('mce-dmemfs');
  const warning = fixture('mce-dmem-memtype-reserve-warning.log');
  const handledLine = 'MCE 0x240000: handled by dmem';
  const base = {
    sigbus_default_sysctl: m('timeout', is('sigbus'), { evidence: handledLine }),
    sigbus_early_kill: m('timeout', is('sigbus'), { evidence: handledLine }),
    kernel_warnings_after_mce: m(1, eq(0), { reports: [warning, warning] }),
  };
  const known = judge({ measurements: base }, sigs);
  t.equal(known.status, 'known-failure');
  t.same(known.signatures.map((c) => c.reproduced).sort(), [true, true]);
  const noEvent = judge({ measurements: { ...base, sigbus_default_sysctl: m(null, is('sigbus')) } }, sigs);
  t.equal(noEvent.status, 'fail', 'no final event at all (a hang, a crash) is not the known timeout');
  const notLogged = judge(
    { measurements: { ...base, sigbus_default_sysctl: m('timeout', is('sigbus'), { evidence: '' }) } },
    sigs,
  );
  t.equal(notLogged.status, 'fail', 'a timeout without the kernel taking the error is not the known failure');
  const topology = fixture('near-miss-topology-warning.log');
  const otherWarning = judge(
    { measurements: { ...base, kernel_warnings_after_mce: m(1, eq(0), { reports: [topology] }) } },
    sigs,
  );
  t.equal(otherWarning.status, 'fail', 'a WARNING of another kind is not the known one');
  const seen: SeenReport[] = [{ ...topology, guest: 'l1', line: 7 }];
  const unclaimed = judge({ measurements: base }, sigs, seen);
  t.equal(unclaimed.status, 'fail');
  t.match(unclaimed.reason, /kernel warning on l1: WARNING: CPU: 1 PID: 0 at arch\/x86\/kernel\/smpboot\.c:432/);
  const claimed = judge({ measurements: base }, sigs, [{ ...warning, guest: 'l1', line: 3 }]);
  t.equal(claimed.status, 'known-failure', 'a report a measurement claimed is judged through that measurement');
  const fixed = judge(
    {
      measurements: {
        sigbus_default_sysctl: m('sigbus', is('sigbus')),
        sigbus_early_kill: m('sigbus', is('sigbus')),
        kernel_warnings_after_mce: m(0, eq(0)),
      },
    },
    sigs,
  );
  t.equal(fixed.status, 'pass');
  t.same(
    fixed.signatures.map((c) => c.reproduced),
    [false, false],
  );
});

t.test('pool-boundaries: the stuck 4K fault, the racing-fault leak and its BUG, stale data', async (t) => {
  const sigs = signaturesFor('pool-boundaries');
  const stuck = readFileSync(join(projectRoot(), 'tests', 'fixtures', 'evidence', 'dmemfs-4k-stuck.txt'), 'utf8');
  const bug = fixture('dmemfs-unlink-clear-inode-bug.log');
  const warn = fixture('dmemfs-racing-pmd-warning.log');
  const warn1G = fixture('dmemfs-racing-pud-warning.log');
  // The values of the real run (tests/fixtures/evidence: its no-pool 4K evidence).
  const helperOk =
    '{"tool":"pool-edge","case":"threads","pages":256,"pages_touched":256,"verified":true,"outcome":"ok"}';
  const oldData =
    '{"after_shrink":"sigbus","after_grow":"stale","after_grow_word":"0x5a5a5a5a5a5a5a5a",' +
    '"after_grow_is_old_data":"yes","outcome":"ok"}';
  const real = {
    no_pool_fill_dmemfs_4K: m('stuck: R', is('sigbus'), { evidence: stuck }),
    oversize_fill_dmemfs_4K: m('stuck: R', is('sigbus'), { evidence: stuck }),
    oversize_pages_touched_dmemfs_4K: m(null, eq(65536), { evidence: stuck }),
    threads_pages_used_dmemfs_4K: m(263, eq(256), { evidence: helperOk }),
    threads_unlink_dmemfs_4K: crashed(bug),
    threads_pages_used_dmemfs_2M: m(65, eq(64), { evidence: helperOk }),
    threads_kernel_reports_dmemfs_2M: m(1, eq(0), { reports: [warn] }),
    threads_unlink_dmemfs_2M: crashed(bug),
    shrink_after_grow_dmemfs_2M: m('stale', is('zero'), { evidence: oldData }),
    shrink_after_grow_dmemfs_1G: m('stale', is('zero'), { evidence: oldData }),
    threads_kernel_reports_dmemfs_1G: m(1, eq(0), { reports: [warn1G] }),
  };
  const known = judge({ measurements: real }, sigs);
  t.equal(known.status, 'known-failure', known.reason ?? '');
  t.same(known.signatures.filter((c) => c.reproduced).length, 5, 'all five signatures reproduce');
  // The PUD WARNING of a 1G race is the same signature's: its title regex once matched pmd only.
  const huge = known.signatures.find((c) => c.id === 'dmemfs-racing-huge-faults-warn')!;
  t.match(huge.detail, /threads_kernel_reports_dmemfs_1G = 1/, 'the 1G WARNING (vmf_insert_pfn_pud_prot) is claimed');
  const other = (patch: Record<string, Measurement>) => judge({ measurements: { ...real, ...patch } }, sigs);
  t.equal(
    other({ no_pool_fill_dmemfs_4K: m('stuck: D', is('sigbus'), { evidence: stuck }) }).status,
    'fail',
    'a task stuck in D state is another failure than the spinning fault',
  );
  t.equal(
    other({ no_pool_fill_dmemfs_4K: m('stuck: R', is('sigbus'), { evidence: 'task:pool-edge state:R' }) }).status,
    'fail',
    'stuck without the page fault in its task dump is not the known one',
  );
  t.equal(other({ threads_pages_used_dmemfs_4K: m(250, eq(256)) }).status, 'fail', 'fewer pages than the file');
  const iput = fixture('near-miss-iput-bug-on-unlink.log');
  t.equal(other({ threads_unlink_dmemfs_4K: crashed(iput) }).status, 'fail', 'another BUG on unlink');
  const devdax = fixture('near-miss-devdax-pmd-warning.log');
  t.equal(
    other({ threads_kernel_reports_dmemfs_2M: m(1, eq(0), { reports: [devdax] }) }).status,
    'fail',
    "the same WARNING from device-dax's fault is not dmemfs's",
  );
  t.equal(other({ shrink_after_grow_dmemfs_2M: m('sigbus', is('zero')) }).status, 'fail', 'SIGBUS is not stale data');
  // The run of 2026-12-04: a lower dpage another file had freed (page 64's word) came back.
  const earlierFile = oldData.replace('0x5a5a5a5a5a5a5a5a', '0x5a5a5a5a5a5a5a1a').replace('"yes"', '"no"');
  t.equal(
    other({ shrink_after_grow_dmemfs_2M: m('stale', is('zero'), { evidence: earlierFile }) }).status,
    'known-failure',
    "an earlier file's old data is the same finding",
  );
  const otherBytes = oldData.replace('0x5a5a5a5a5a5a5a5a', '0x00000000deadbeef').replace('"yes"', '"no"');
  t.equal(
    other({ shrink_after_grow_dmemfs_2M: m('stale', is('zero'), { evidence: otherBytes }) }).status,
    'fail',
    'non-zero bytes that no fill wrote are another failure',
  );
  t.equal(
    other({ threads_pages_used_dmemfs_4K: m(263, eq(256), { evidence: '{"outcome":"mmap:ENOMEM"}' }) }).status,
    'fail',
    'extra dpages from a fill that failed are not the race',
  );
  const fixedSpin = judge(
    {
      measurements: {
        no_pool_fill_dmemfs_4K: m('sigbus', is('sigbus')),
        oversize_fill_dmemfs_4K: m('sigbus', is('sigbus')),
        oversize_pages_touched_dmemfs_4K: m(65536, eq(65536)),
        exhausted_fill_dmemfs_4K: m('sigbus', is('sigbus')),
        exhausted_pages_touched_dmemfs_4K: m(2, eq(2)),
        shrink_after_shrink_dmemfs_4K: m('sigbus', is('sigbus')),
        shrink_after_grow_dmemfs_4K: m('zero', is('zero')),
      },
    },
    sigs,
  );
  t.equal(fixedSpin.status, 'pass');
  t.same(
    fixedSpin.signatures.map((c) => [c.id, c.reproduced]),
    [['dmemfs-4k-fault-error-spins', false]],
    'a 4K fault that gets SIGBUS: no longer reproduces',
  );
});

t.test('debug-kernel reports on any use of dmemfs are claimed where seen; any other report still fails', async (t) => {
  const on = (r: KernelReport): SeenReport => ({ ...r, guest: 'l1', line: 1 });
  const sleeping = fixture('debug-dmemfs-alloc-inode-sleeping.log');
  const rcu = fixture('debug-dmemfs-fault-suspicious-rcu.log');
  const relock = fixture('debug-dmemfs-fault-recursive-mmap-lock.log');
  const passing = { measurements: { mount_4K: m(true, is(true)) } };
  for (const scenario of ['dmemfs-files', 'pool-boundaries', 'vfio-pin']) {
    const v = judge(passing, signaturesFor(scenario, 'debug'), [on(sleeping), on(sleeping), on(rcu), on(relock)]);
    t.equal(v.status, 'known-failure', `${scenario}: the three debug findings are known`);
    t.same(
      v.signatures.map((c) => c.id),
      [
        'dmemfs-inode-alloc-sleeps-under-spinlock',
        'dmemfs-fault-sleeps-under-rcu',
        'dmemfs-4k-fault-retry-relocks-mmap',
      ],
    );
  }
  const other = judge(passing, signaturesFor('dmemfs-files', 'debug'), [
    on(sleeping),
    on(fixture('near-miss-topology-warning.log')),
  ]);
  t.equal(other.status, 'fail', 'a WARNING no signature names still fails the scenario');
  t.match(other.reason, /smpboot\.c/);
  t.equal(judge(passing, signaturesFor('dmemfs-files')).status, 'pass', 'not seen: not listed, nothing to claim');
  t.equal(
    judge(passing, signaturesFor('dmemfs-files'), [on(sleeping)]).status,
    'fail',
    'on the plain kernel no debug signature applies: the same report fails the scenario',
  );
});

t.test('a skipped measurement is never judged a pass or a fix: the known failure stands, not re-checked', async (t) => {
  const sigs = signaturesFor('nested-guest');
  const v = judge({ measurements: { kvm_largepages: { value: null, unit: '', skipped: 'L2 under TCG' } } }, sigs);
  t.equal(v.status, 'known-failure', 'not a pass');
  t.equal(v.signatures[0]?.outcome, 'not-rechecked');
  t.same(v.signatures[0]?.unchecked, [{ measurement: 'kvm_largepages', reason: 'L2 under TCG' }]);
  t.match(v.reason, /kvm-dmem-4k \[not re-checked\]/);
});

t.test("docs/scenarios.md's known-failures section is the signatures' own text", async (t) => {
  const page = readFileSync(join(projectRoot(), 'docs', 'scenarios.md'), 'utf8');
  t.ok(page.includes(knownFailuresMarkdown()), 'docs/scenarios.md holds the output of `dmemfs-rig known-failures`');
});

t.test('mce-dmemfs at 2M/1G: a timeout is known only where the dmem handler took the error', async (t) => {
  const sigs = signaturesFor('mce-dmemfs');
  const timeout = (evidence: string): Measurement => ({ ...m('timeout', is('sigbus')), evidence });
  const handled = '[  103.37] MCE 0x180000: handled by dmem';
  const known = judge({ measurements: { sigbus_2M: timeout(handled), sigbus_1G: timeout(handled) } }, sigs);
  t.equal(known.status, 'known-failure');
  const never = judge({ measurements: { sigbus_2M: timeout(''), sigbus_1G: timeout(handled) } }, sigs);
  t.equal(never.status, 'fail', 'no "handled by dmem" for the 2M page: not the known failure');
  t.match(never.reason, /sigbus_2M/);
});
