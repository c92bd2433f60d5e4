/**
 * `report --checks BUNDLE`: one patchwork check per patch of the series (context dmemfs-rig):
 * fail for a patch that does not apply or that introduces a finding (its culprit, from
 * `culprits`), warning for one applied with fuzz or from which a finding is present (the code
 * path first exists there), and on the last patch for findings not bisected yet (they belong to
 * the series as a whole); success for the rest. Each names the patch's Message-Id in the
 * thread as mailed, which is how patchwork knows it; posting is the user's step (git-pw).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResults } from '../core/results.js';
import type { Thread } from './mail.js';

export type CheckState = 'success' | 'warning' | 'fail';

export interface PatchCheck {
  patch: number;
  title: string;
  msgid: string | null;
  context: string;
  state: CheckState;
  description: string;
  target_url: string | null;
}

interface AppliedPatch {
  number: number;
  title: string;
  result: string;
}

const RANK: Record<CheckState, number> = { success: 0, warning: 1, fail: 2 };

/** patchwork keeps a check's description short: one line, at most this long. */
export const DESCRIPTION_MAX = 200;

export function patchChecks(
  run: Pick<RunResults, 'scenarios' | 'series'>,
  applied: readonly AppliedPatch[],
  thread: Pick<Thread, 'patches'> | undefined,
  targetUrl: string | null = null,
): PatchCheck[] {
  const patches = run.series?.patches ?? applied.map((p) => ({ number: p.number, title: p.title }));
  const culprits = run.scenarios.flatMap((s) =>
    s.signatures.filter((c) => c.reproduced && c.culprit).map((c) => ({ id: c.id, culprit: c.culprit! })),
  );
  // Findings with no culprit yet belong to the series as a whole: said on its last patch.
  const unbisected = run.scenarios.flatMap((s) =>
    s.signatures.filter((c) => c.reproduced && !c.culprit).map((c) => c.id),
  );
  const last = Math.max(0, ...patches.map((p) => p.number));
  return patches.map((p) => {
    const notes: Array<{ state: CheckState; text: string }> = [];
    const a = applied.find((x) => x.number === p.number);
    if (!a || a.result === 'failed') notes.push({ state: 'fail', text: 'does not apply' });
    else if (a.result === 'fuzz') notes.push({ state: 'warning', text: 'applies with fuzz' });
    for (const c of culprits.filter((x) => x.culprit.number === p.number))
      notes.push(
        c.culprit.presentFrom
          ? { state: 'warning', text: `${c.id} present from here (its code path first exists here)` }
          : { state: 'fail', text: `introduces ${c.id}` },
      );
    if (p.number === last && unbisected.length)
      notes.push({
        state: 'warning',
        text:
          `${unbisected.length} finding(s) of the whole series not bisected to a patch yet: ` + unbisected.join(', '),
      });
    const state = notes.reduce<CheckState>((s, n) => (RANK[n.state] > RANK[s] ? n.state : s), 'success');
    const description = notes.length
      ? notes.map((n) => n.text).join('; ')
      : 'applies clean; no bisected finding of the run starts at this patch';
    return {
      patch: p.number,
      title: p.title,
      msgid: thread?.patches.get(p.number)?.messageId ?? null,
      context: 'dmemfs-rig',
      state,
      description:
        description.length > DESCRIPTION_MAX ? `${description.slice(0, DESCRIPTION_MAX - 3)}...` : description,
      target_url: targetUrl,
    };
  });
}

/** The bundle's apply report (kernel/apply-report.json), or none. */
export function appliedPatches(bundle: string): AppliedPatch[] {
  const f = join(bundle, 'kernel', 'apply-report.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { patches: AppliedPatch[] }).patches : [];
}
