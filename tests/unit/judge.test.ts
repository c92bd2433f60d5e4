/**
 * The judge's rules that no outcome may slip past (made-up measurements and signatures: fakes are
 * fine for the rules themselves; tests/unit/signatures.test.ts judges the real signatures on real
 * evidence):
 * - a signature is judged measurement by measurement: cured ones are said while others reproduce,
 *   and a new defect in another measurement is a fail in its own name;
 * - a skipped measurement leaves a known failure standing, "not re-checked";
 * - an intermittent failure that did not fire is "not seen" until a run tries often enough;
 * - only a held measurement or a signature claims a kernel report;
 * - a measurement's reports must all be some signature's.
 */
import t from 'tap';
import { atLeast, eq, is, meets, triesNeeded, type KernelReport, type Measurement } from '../../core/results.js';
import { judge, type SeenReport } from '../../runner/judge.js';
import type { Signature } from '../../scenarios/types.js';

const m = (value: Measurement['value'], expected?: Measurement['expected'], extra: Partial<Measurement> = {}) => ({
  value,
  unit: '',
  ...(expected ? { expected, ok: meets(value, expected) } : {}),
  ...extra,
});
const report = (title: string, kind = 'warning'): KernelReport => ({ kind, title, excerpt: `${title}\nCall Trace:` });
const seen = (r: KernelReport): SeenReport => ({ ...r, guest: 'l1', line: 1 });

const sig: Signature = {
  id: 'spins',
  scenario: 's',
  title: 'the fault spins',
  reason: 'r',
  measurements: { a: is('stuck'), b: is('stuck') },
};

t.test('cured in one measurement, still reproducing in the other: both said', async (t) => {
  const v = judge({ measurements: { a: m('sigbus', is('sigbus')), b: m('stuck', is('sigbus')) } }, [sig]);
  t.equal(v.status, 'known-failure');
  t.equal(v.signatures[0]?.outcome, 'reproduced');
  t.same(v.signatures[0]?.cured, ['a'], 'a is cured');
  t.match(v.signatures[0]?.detail, /no longer reproduces: a = sigbus/);
});

t.test(
  'cured where it was, and a new defect elsewhere: "no longer reproduces" and a fail in its own name',
  async (t) => {
    const v = judge(
      {
        measurements: {
          a: m('sigbus', is('sigbus')),
          b: m('sigbus', is('sigbus')),
          c: m(false, is(true)),
        },
      },
      [sig],
    );
    t.equal(v.status, 'fail');
    t.equal(v.signatures[0]?.outcome, 'fixed');
    t.match(v.reason, /not met: c = false \(expected = true\)/);
    t.match(v.reason, /no longer reproduces: spins/);
    t.notMatch(v.reason, /where spins has/, 'the new value is not read as the old signature');
  },
);

t.test('a different value in a signature measurement is a fail, and the cured part is said', async (t) => {
  const v = judge({ measurements: { a: m('sigbus', is('sigbus')), b: m('stuck: D', is('sigbus')) } }, [sig]);
  t.equal(v.status, 'fail');
  t.equal(v.signatures[0]?.outcome, 'different');
  t.match(v.reason, /b = stuck: D, where spins has = stuck/);
  t.match(v.reason, /no longer reproduces: spins \(a\)/);
});

t.test(
  'a skipped measurement keeps the known failure, not re-checked; an untouched signature is not judged',
  async (t) => {
    const v = judge(
      { measurements: { a: m(null, undefined, { skipped: 'no KVM in L1' }), b: m('sigbus', is('sigbus')) } },
      [sig],
    );
    t.equal(v.status, 'known-failure', 'never a pass');
    t.equal(v.signatures[0]?.outcome, 'not-rechecked');
    t.same(v.signatures[0]?.unchecked, [{ measurement: 'a', reason: 'no KVM in L1' }]);
    t.same(v.signatures[0]?.cured, ['b']);
    const none = judge({ measurements: { other: m(1, eq(1)) } }, [sig]);
    t.equal(none.status, 'pass');
    t.same(none.signatures, [], 'a scenario that never got there checked nothing');
  },
);

t.test('an intermittent race: not seen in too few tries, fixed only after enough', async (t) => {
  const race: Signature = {
    ...sig,
    id: 'race',
    measurements: { used: eq(300) },
    intermittent: { used: { hits: 1, tries: 3, source: 'test' } },
  };
  t.equal(triesNeeded(1, 3), 8, 'a third of the tries: 8 clean ones make a miss under 5%');
  t.equal(triesNeeded(1, 1), 1, 'always: one clean try is enough');
  const once = judge({ measurements: { used: m(256, eq(256)) } }, [race]);
  t.equal(once.status, 'known-failure');
  t.equal(once.signatures[0]?.outcome, 'not-seen');
  t.match(once.reason, /not seen this run/);
  t.match(once.signatures[0]?.detail, /intermittent: 1 of 3; 1 try here, 8 needed/);
  const enough = judge({ measurements: { used: m(256, eq(256), { tries: 8 }) } }, [race]);
  t.equal(enough.status, 'pass');
  t.equal(enough.signatures[0]?.outcome, 'fixed', 'eight clean tries: no longer reproduces');
  const hit = judge({ measurements: { used: m(300, eq(256), { tries: 2 }) } }, [race]);
  t.equal(hit.signatures[0]?.outcome, 'reproduced');
});

t.test('only a held measurement or a signature claims a kernel report', async (t) => {
  const w = report('WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2');
  const recorded = judge({ measurements: { reports: m(1, undefined, { reports: [w] }) } }, [], [seen(w)]);
  t.equal(recorded.status, 'fail', 'a recorded value claims nothing: the report fails the scenario');
  const held = judge({ measurements: { reports: m(1, eq(1), { reports: [w] }) } }, [], [seen(w)]);
  t.equal(held.status, 'pass', 'a held value that expects it claims it');
});

t.test("a measurement's reports must all be some signature's", async (t) => {
  const known = report('kernel BUG at fs/inode.c:538!', 'bug');
  const other = report('WARNING: CPU: 0 PID: 1 at mm/y.c:2 g+0x1/0x2');
  const bugSig: Signature = {
    ...sig,
    id: 'bug',
    measurements: { unlink: 'any' },
    report: { kinds: ['bug'], title: /inode\.c/ },
  };
  const one = judge({ measurements: { unlink: m('bug', is('unlinked'), { reports: [known] }) } }, [bugSig]);
  t.equal(one.status, 'known-failure');
  const two = judge({ measurements: { unlink: m('bug', is('unlinked'), { reports: [known, other] }) } }, [bugSig]);
  t.equal(two.status, 'fail', 'a second report no signature names keeps it a fail');
  t.match(two.reason, /is no signature's/);
  const valueOnly: Signature = { ...sig, id: 'value', measurements: { n: atLeast(1) } };
  const withReport = judge({ measurements: { n: m(2, eq(0), { reports: [other] }) } }, [valueOnly]);
  t.equal(withReport.status, 'fail', 'a signature of values cannot claim a report it does not name');
});
