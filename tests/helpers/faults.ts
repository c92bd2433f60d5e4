/**
 * The fault suite's bookkeeping: every injected fault is one subtest, recorded by kind
 * (fault, interruption, concurrency, bad-input, security) with whether the rig survived it.
 * `npm test` (scripts/run-tests.ts) points DMEMFS_RIG_FAULT_LOG at a file and prints the
 * counts per kind at the end.
 */
import { appendFileSync } from 'node:fs';
import type { Test } from 'tap';
import type { CliRun } from './cli.js';

export type FaultKind = 'fault' | 'interruption' | 'concurrency' | 'bad-input' | 'security';

export async function fault(
  t: Test,
  kind: FaultKind,
  name: string,
  body: (t: Test) => Promise<void>,
  opts: { skip?: string | false; timeout?: number } = {},
): Promise<void> {
  await t.test(
    `[${kind}] ${name}`,
    { ...(opts.skip ? { skip: opts.skip } : {}), ...(opts.timeout ? { timeout: opts.timeout } : {}) },
    async (st) => {
      // Logged as tried whatever the body does: one that throws was tried and not survived.
      let threw = false;
      try {
        await body(st);
      } catch (e) {
        threw = true;
        throw e;
      } finally {
        // Survived = the body ran to its end and every assertion of this fault held.
        const survived = !threw && st.passing();
        const log = process.env.DMEMFS_RIG_FAULT_LOG;
        if (log) appendFileSync(log, `${JSON.stringify({ kind, name, survived })}\n`);
      }
    },
  );
}

/** The rig refused with one `error [kind]` line, a fix, and no stack trace. */
export function oneClearError(st: Test, r: CliRun, kind: RegExp, message: RegExp): void {
  st.not(r.code, 0, `non-zero exit (${r.code})`);
  const errors = r.stderr.split('\n').filter((l) => /^error \[/.test(l));
  st.equal(errors.length, 1, `one error line: ${errors.join(' | ')}`);
  st.match(errors[0] ?? '', kind);
  st.match(errors[0] ?? '', message);
  st.match(r.stderr, /^fix: \S/m, 'names the fix');
  st.notMatch(r.stderr, /^\s+at .*\.js:\d+/m, 'no stack trace');
}
