/** The pipeline refuses bad input before any download or build. */
import t from 'tap';
import { loadProfile } from '../../kernel/profile.js';
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
