/** The per-patch apply report: GNU patch output parsed into clean, offset, fuzz and failed hunks. */
import t from 'tap';
import { formatApplyReport, parsePatchOutput, worstStatus, type ApplyReport } from '../../kernel/apply.js';

const diff = [
  'diff --git a/mm/Kconfig b/mm/Kconfig',
  '--- a/mm/Kconfig',
  '+++ b/mm/Kconfig',
  '@@ -1,3 +1,4 @@',
  '@@ -50,3 +51,4 @@',
  'diff --git a/mm/gup.c b/mm/gup.c',
  '--- a/mm/gup.c',
  '+++ b/mm/gup.c',
  '@@ -10,3 +10,4 @@',
  'diff --git a/mm/pagewalk.c b/mm/pagewalk.c',
  '@@ -1,1 +1,1 @@',
  '',
].join('\n');

t.test('GNU patch messages become per-hunk results; unmentioned hunks are clean', async (t) => {
  const out = [
    'checking file mm/Kconfig',
    'Hunk #2 succeeded at 63 (offset 13 lines).',
    'checking file mm/gup.c',
    'Hunk #1 succeeded at 15 with fuzz 2 (offset 5 lines).',
    'checking file mm/pagewalk.c',
    'Hunk #1 FAILED at 1.',
    '1 out of 1 hunk FAILED',
  ].join('\n');
  const hunks = parsePatchOutput(out, diff);
  t.same(hunks, [
    { file: 'mm/Kconfig', hunk: 1, status: 'clean' },
    { file: 'mm/Kconfig', hunk: 2, status: 'offset', offset: 13 },
    { file: 'mm/gup.c', hunk: 1, status: 'fuzz', offset: 5, fuzz: 2 },
    { file: 'mm/pagewalk.c', hunk: 1, status: 'failed' },
  ]);
  t.equal(worstStatus(hunks), 'failed');
  t.equal(worstStatus(hunks.slice(0, 2)), 'offset');
});

t.test('report table names results, methods and hunks', async (t) => {
  const r: ApplyReport = {
    series: 's',
    baseCommit: '5712f84e3a1649185a84748c5dd882da7bd296d6',
    ok: false,
    firstFailure: 2,
    counts: { clean: 1, offset: 0, fuzz: 0, failed: 1 },
    patches: [
      {
        number: 1,
        title: 'fs: introduce dmemfs module',
        patchId: 'a',
        result: 'clean',
        method: 'git-am',
        files: ['fs/Makefile'],
        hunks: [{ file: 'fs/Makefile', hunk: 1, status: 'clean' }],
        afterFailure: false,
      },
      {
        number: 2,
        title: 'mm: x',
        patchId: 'b',
        result: 'failed',
        method: 'none',
        files: ['mm/pagewalk.c'],
        hunks: [{ file: 'mm/pagewalk.c', hunk: 1, status: 'failed' }],
        afterFailure: false,
      },
    ],
  };
  const text = formatApplyReport(r);
  t.match(text, /1 clean, 0 offset, 0 fuzz, 1 failed/);
  t.match(text, /\s1\s+clean\s+git-am\s+1 hunks in 1 files\s+fs: introduce dmemfs module/);
  t.match(text, /\s2\s+failed\s+none\s+mm\/pagewalk\.c#1:failed\s+mm: x/);
});
