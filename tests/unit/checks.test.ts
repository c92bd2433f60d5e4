/** report --checks on the recorded full run (tests/fixtures/bundles/full-run), culprits and apply results varied. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { patchChecks, DESCRIPTION_MAX } from '../../report/checks.js';
import { threadMbox, threadOf } from '../../report/mail.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';
import type { RunResults } from '../../core/results.js';

const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
const mbox = threadMbox(run.series);
const thread = threadOf(readFileSync(mbox, 'utf8'), mbox);
const clean = run.series!.patches.map((p) => ({ number: p.number, title: p.title, result: 'clean' }));

/** The run with culprits set on some signatures. */
function withCulprit(culprits: Record<string, { number: number; presentFrom?: true }>): RunResults {
  return {
    ...run,
    scenarios: run.scenarios.map((s) => ({
      ...s,
      signatures: s.signatures.map((c) =>
        culprits[c.id] ? { ...c, culprit: { title: 'x', patches: 37, ...culprits[c.id]! } } : c,
      ),
    })),
  };
}

t.test('nothing bisected: every patch success but the last, which carries the findings', async (t) => {
  const checks = patchChecks(run, clean, thread);
  t.equal(checks.length, 37);
  t.ok(checks.slice(0, 36).every((c) => c.state === 'success'));
  t.equal(checks[36]!.state, 'warning');
  t.match(checks[36]!.description, /^10 finding\(s\) of the whole series not bisected to a patch yet: /);
  t.ok(checks.every((c) => c.context === 'dmemfs-rig' && c.target_url === null));
  t.ok(
    checks.every((c) => /^<[^>]+@[^>]+>$/.test(c.msgid ?? '')),
    'each names its Message-Id as mailed',
  );
  t.ok(checks.every((c) => c.description.length <= DESCRIPTION_MAX));
});

t.test('a culprit fails its patch; a present-from warns; a patch that does not apply fails', async (t) => {
  const r = withCulprit({ 'vfio-get-dmem-pfn-null': { number: 35 }, 'kvm-dmem-4k': { number: 5, presentFrom: true } });
  const applied = clean.map((p) =>
    p.number === 12 ? { ...p, result: 'failed' } : p.number === 2 ? { ...p, result: 'fuzz' } : p,
  );
  const checks = patchChecks(r, applied, thread, 'https://ci.example/run/1');
  const by = (n: number) => checks.find((c) => c.patch === n)!;
  t.same([by(35).state, by(35).description], ['fail', 'introduces vfio-get-dmem-pfn-null']);
  t.same(
    [by(5).state, by(5).description],
    ['warning', 'kvm-dmem-4k present from here (its code path first exists here)'],
  );
  t.same([by(12).state, by(12).description], ['fail', 'does not apply']);
  t.same([by(2).state, by(2).description], ['warning', 'applies with fuzz']);
  t.equal(by(3).state, 'success');
  t.match(
    by(37).description,
    /^8 finding\(s\) of the whole series not bisected/,
    'the two bisected ones are off the list',
  );
  t.equal(by(1).target_url, 'https://ci.example/run/1');
});
