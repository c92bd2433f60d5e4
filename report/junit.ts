/**
 * JUnit XML of a run, for CI systems: one testsuite, one testcase per scenario. A skip and a
 * known failure of the series are <skipped> with their reason (JUnit has no "expected
 * failure"); a failure carries the unmet expectations and the evidence.
 */
import { describeExpectation } from '../core/results.js';
import type { RunResults } from '../core/results.js';

export function xmlEscape(s: string): string {
  // Characters XML 1.0 cannot carry at all are dropped (console excerpts hold control bytes).
  return (
    s
      // eslint-disable-next-line no-control-regex -- these control characters are the point
      .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
  );
}

export function toJunit(run: RunResults): string {
  const count = (st: string) => run.scenarios.filter((s) => s.status === st).length;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="dmemfs-rig" tests="${run.scenarios.length}" failures="${count('fail')}" ` +
      `skipped="${count('skip') + count('known-failure')}" time="${run.seconds.toFixed(1)}">`,
    `  <testsuite name="${xmlEscape(`scenarios (${run.profile}, ${run.accel.accel})`)}" ` +
      `tests="${run.scenarios.length}" failures="${count('fail')}" errors="0" ` +
      `skipped="${count('skip') + count('known-failure')}" time="${run.seconds.toFixed(1)}" ` +
      `timestamp="${run.startedAt}">`,
    '    <properties>',
    `      <property name="profile" value="${xmlEscape(run.profile)}"/>`,
    `      <property name="accel" value="${xmlEscape(`${run.accel.accel}: ${run.accel.reason}`)}"/>`,
    `      <property name="qemu" value="${xmlEscape(run.qemu.version)}"/>`,
    '    </properties>',
  ];
  for (const s of run.scenarios) {
    out.push(
      `    <testcase classname="dmemfs-rig.${xmlEscape(s.id)}" name="${xmlEscape(`${s.id}: ${s.title}`)}" ` +
        `time="${s.seconds.toFixed(1)}">`,
    );
    if (s.status === 'skip') out.push(`      <skipped message="${xmlEscape(s.reason ?? 'skipped')}"/>`);
    if (s.status === 'known-failure')
      out.push(`      <skipped message="${xmlEscape(`known failure of the series: ${s.reason ?? ''}`)}"/>`);
    if (s.status === 'fail') {
      out.push(
        `      <failure message="${xmlEscape(s.reason ?? 'failed')}">${xmlEscape(
          s.evidence
            .map((e) => `${e.label}:\n${e.text}`)
            .join('\n\n')
            .slice(-8000),
        )}</failure>`,
      );
    }
    const lines = Object.entries(s.measurements).map(
      ([n, m]) =>
        `${n} = ${String(m.value)} ${m.unit}` +
        (m.expected ? ` (expected ${describeExpectation(m.expected)}: ${m.ok ? 'ok' : 'NOT MET'})` : ''),
    );
    if (lines.length) out.push(`      <system-out>${xmlEscape(lines.join('\n'))}</system-out>`);
    out.push('    </testcase>');
  }
  out.push('  </testsuite>', '</testsuites>', '');
  return out.join('\n');
}
