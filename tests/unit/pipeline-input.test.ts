/** The pipeline refuses bad input before any download or build. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { DEBUG_FRAGMENT, DEBUG_TIMEOUT_SCALE, debugVariant, fragmentPath, loadProfile } from '../../kernel/profile.js';
import { verifiedSeries } from '../../kernel/pipeline.js';
import { REBASED_MBOX, rawMessages, readFixture, writeTemp } from '../helpers/fixtures.js';

t.test('unknown or malformed profile names', async (t) => {
  t.throws(() => loadProfile('no-such-profile'), {
    kind: 'unknown-profile',
    message: /unknown profile "no-such-profile"/,
  });
  t.throws(() => loadProfile('../etc/passwd'), { kind: 'unknown-profile', message: /not valid/ });
  t.throws(() => loadProfile('x; rm -rf /'), { kind: 'unknown-profile', message: /not valid/ });
  t.equal(loadProfile('rfc-v2-debian').series?.name, 'rfc-v2-on-debian-5.10.223');
  t.throws(() => loadProfile('no-such-profile-debug'), {
    kind: 'unknown-profile',
    message: /unknown profile "no-such-profile"/,
    fix: /NAME-debug for the debug variant/,
  });
});

t.test('NAME-debug is the debug variant of any profile: its fragments plus the debug checks', async (t) => {
  for (const name of ['rfc-v2-debian', 'baseline-debian']) {
    const plain = loadProfile(name);
    const debug = loadProfile(`${name}-debug`);
    t.equal(debug.name, `${name}-debug`);
    t.same(debug.config.fragments, [...plain.config.fragments, DEBUG_FRAGMENT], 'same base, same fragments, plus one');
    t.equal(debug.config.base, plain.config.base);
    t.same(debug.series, plain.series, 'the same series');
    t.equal(debug.timeoutScale, DEBUG_TIMEOUT_SCALE);
    t.equal(debug.expectedObjects, undefined, "the plain build's object count is not the debug build's");
  }
  t.equal(
    debugVariant(debugVariant(loadProfile('rfc-v2-debian'))).config.fragments.filter((f) => f === DEBUG_FRAGMENT)
      .length,
    1,
  );
  const text = readFileSync(fragmentPath(DEBUG_FRAGMENT), 'utf8');
  for (const opt of ['KASAN', 'PROVE_LOCKING', 'DEBUG_ATOMIC_SLEEP', 'DEBUG_VM', 'DEBUG_LIST'])
    t.match(text, new RegExp(`^CONFIG_${opt}=y$`, 'm'), `${opt} is asked for (and so verified by the config check)`);
});

t.test('a damaged or missing series stops the pipeline with the patch named', async (t) => {
  const profile = loadProfile('rfc-v2-debian');
  const ok = await verifiedSeries(profile, REBASED_MBOX());
  t.equal(ok?.report.ok, true);
  // Drop patch 21 (the follow_pfn adaptation) from a copy.
  const msgs = rawMessages(readFixture(REBASED_MBOX())).filter(
    (m) => !/\[RFC V2 5\.10\.223 21\/37\]/.test(m.replace(/\n[ \t]+/g, ' ')),
  );
  const damaged = writeTemp('damaged.mbox', msgs.join('\n'));
  await t.rejects(verifiedSeries(profile, damaged), {
    kind: 'series-damaged',
    message: /patch 21 \(mm: support dmem huge pmd for follow_pfn\(\)\) is missing$/,
  });
  try {
    await verifiedSeries(profile, damaged);
  } catch (e) {
    t.match(
      (e as { evidence?: string }).evidence ?? '',
      /patch 21 \(mm: support dmem huge pmd for follow_pfn\(\)\) is missing/,
    );
  }
  await t.rejects(verifiedSeries(profile, '/nonexistent/series.mbox'), {
    kind: 'missing-series',
    message: /does not exist/,
  });
});
