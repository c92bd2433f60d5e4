/**
 * `dmemfs-rig series apply` for real on Debian's 5.10.223 source: the original series (made
 * for v5.10-rc3) does not apply there, and the report says which patches fail and where;
 * the rebased series applies 37/37 clean.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import type { ApplyReport } from '../../kernel/apply.js';
import { ORIGINAL_MBOX, REBASED_MBOX } from '../helpers/fixtures.js';

function seriesApply(mbox: string): { code: number | null; report: ApplyReport; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [
      join(projectRoot(), 'dist', 'scripts', 'cli.js'),
      'series',
      'apply',
      '--profile',
      'rfc-v2-debian',
      '--series',
      mbox,
      '--json',
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 900_000 },
  );
  return { code: r.status, report: JSON.parse(r.stdout) as ApplyReport, stderr: r.stderr };
}

t.test('the original RFC V2 mbox on Debian 5.10.223: the report lists the failing patches', async (t) => {
  const { code, report } = seriesApply(ORIGINAL_MBOX());
  t.not(code, 0, 'exit status is non-zero');
  const failed = report.patches.filter((p) => p.result === 'failed').map((p) => p.number);
  t.same(failed, [12, 19, 27, 29], 'patches 12, 19, 27 and 29 fail (rejected hunks)');
  t.same(
    report.patches.filter((p) => p.result === 'fuzz').map((p) => p.number),
    [2, 17, 25, 30, 36],
    'patches 2, 17, 25, 30, 36 need fuzz',
  );
  const p29 = report.patches.find((p) => p.number === 29)!;
  t.same(
    p29.hunks.filter((h) => h.status === 'failed').map((h) => `${h.file}#${h.hunk}`),
    ['mm/memory.c#1', 'mm/memory.c#3', 'mm/memory.c#4'],
    'hunks named',
  );
  t.equal(report.firstFailure, 12);
  t.comment(`original on 5.10.223: ${JSON.stringify(report.counts)}`);
});

t.test('the rebased mbox applies 37/37 clean', async (t) => {
  const { code, report } = seriesApply(REBASED_MBOX());
  t.equal(code, 0);
  t.same(report.counts, { clean: 37, offset: 0, fuzz: 0, failed: 0 });
  t.ok(
    report.patches.every((p) => p.method === 'git-am' && p.commit),
    'each applied by git am, one commit per patch',
  );
});
