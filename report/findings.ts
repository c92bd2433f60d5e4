/**
 * A bundle's findings in the forms the people who fix them read: reply mails (report/mail.ts),
 * patchwork checks (report/checks.ts) and KCIDB JSON (report/kcidb.ts). `report --mail`,
 * `--checks` and `--kcidb` write one each; `nightly findings` writes all three into the bundle.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { warn } from '../core/log.js';
import type { RunResults } from '../core/results.js';
import { parseSeries } from '../kernel/series.js';
import { appliedPatches, patchChecks, type PatchCheck } from './checks.js';
import { kcidbOf, patchsetHash, validKcidb, type KcidbContext } from './kcidb.js';
import { threadMbox, threadOf } from './mail.js';
import { withCulprits } from '../scenarios/culprit-record.js';

/**
 * The run with the culprits recorded for its series since (scenarios/culprits.json) on each
 * signature that lacks one: a culprit belongs to the series, and a bundle made before its bisect
 * is reported with it.
 */
export function withRecordedCulprits(run: RunResults): RunResults {
  return { ...run, scenarios: withCulprits(run.scenarios, run.series?.name) };
}

/** The patchwork checks of the bundle, written to `out`. */
export function writeChecks(bundle: string, run: RunResults, out: string, targetUrl: string | null): PatchCheck[] {
  const mbox = threadMbox(run.series);
  const checks = patchChecks(run, appliedPatches(bundle), threadOf(readFileSync(mbox, 'utf8'), mbox), targetUrl);
  writeFileSync(out, JSON.stringify(checks, null, 2) + '\n');
  return checks;
}

/** What the KCIDB checkout and build take from outside results.json: the mboxes and the build manifest. */
async function kcidbContext(bundle: string, run: RunResults): Promise<KcidbContext> {
  const ctx: KcidbContext = {};
  const own = run.series?.origin.path;
  if (own && existsSync(own))
    ctx.patchsetHash = patchsetHash((await parseSeries(readFileSync(own, 'utf8'))).patches.map((p) => p.diff));
  else warn(`the series' mbox ${own ?? '(none)'} is not here: no patchset_hash`);
  try {
    const mbox = threadMbox(run.series);
    const cover = threadOf(readFileSync(mbox, 'utf8'), mbox).cover?.messageId;
    if (cover) ctx.messageId = cover.replace(/^<|>$/g, '');
  } catch {
    warn("no mbox to take the cover letter's Message-Id from: no message_id");
  }
  const manifest = join(bundle, 'kernel', 'build-manifest.json');
  if (existsSync(manifest)) ctx.build = JSON.parse(readFileSync(manifest, 'utf8')) as KcidbContext['build'];
  return ctx;
}

/** The run as KCIDB v5.0 JSON, checked against the schema, written to `out`. */
export async function writeKcidb(bundle: string, run: RunResults, out: string) {
  const doc = validKcidb(kcidbOf(run, await kcidbContext(bundle, run)));
  writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
  return doc;
}
