/**
 * Runs of the same kernel side by side (`report --repeat BUNDLE...`): each scenario's status in
 * every run, whether they agree, and each run's date, commit and time. A scenario whose status
 * differs between runs is flaky (or the kernel or rig changed between them): the command exits 1.
 */
import type { RunResults } from '../core/results.js';

export interface Repeat {
  runs: Array<{
    name: string;
    startedAt: string;
    commit: string;
    seconds: number;
    prepareSeconds: number | undefined;
    /** The longest a command and the console were both quiet in any boot (what the silence bound must exceed). */
    quietest: { seconds: number; command: string } | undefined;
  }>;
  rows: Array<{ scenario: string; statuses: string[]; same: boolean }>;
  /** Kernels or profiles that differ between the runs (a repeat compares like with like). */
  unlike: string[];
  same: boolean;
}

/** What must be the same for runs to be repeats: the profile and the kernel build (its key covers tree and config). */
const kernelOf = (r: RunResults) => JSON.stringify([r.profile, r.kernel.key ?? null]);

export function repeatRuns(runs: readonly RunResults[], names: readonly string[]): Repeat {
  const ids = [...new Set(runs.flatMap((r) => r.scenarios.map((s) => s.id)))];
  const rows = ids.map((id) => {
    const statuses = runs.map((r) => r.scenarios.find((s) => s.id === id)?.status ?? 'absent');
    return { scenario: id, statuses, same: statuses.every((s) => s === statuses[0]) };
  });
  const unlike = runs
    .map((r, i) => ({ i, k: kernelOf(r) }))
    .filter((x) => x.k !== kernelOf(runs[0]!))
    .map((x) => `${names[x.i]}: another kernel or profile than ${names[0]}`);
  return {
    runs: runs.map((r, i) => ({
      name: names[i] ?? `run ${i + 1}`,
      startedAt: r.startedAt,
      commit: (r.rig.commit ?? 'unknown').slice(0, 7),
      seconds: Math.round(r.seconds),
      prepareSeconds: r.prepareSeconds === undefined ? undefined : Math.round(r.prepareSeconds),
      quietest: r.boots
        .map((b) => b.quietest)
        .filter((q): q is { seconds: number; command: string } => q !== undefined)
        .sort((a, b) => b.seconds - a.seconds)[0],
    })),
    rows,
    unlike,
    same: rows.every((r) => r.same) && unlike.length === 0,
  };
}

export function renderRepeat(r: Repeat): string {
  const head = ['scenario', ...r.runs.map((_, i) => `run ${i + 1}`), 'same'];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...r.rows.map((row) => `| \`${row.scenario}\` | ${row.statuses.join(' | ')} | ${row.same ? 'yes' : '**no**'} |`),
    '',
    '| run | started | rig commit | seconds | of which preparing | longest quiet command (s) |',
    '| --- | --- | --- | ---: | ---: | --- |',
    ...r.runs.map(
      (x, i) =>
        `| ${i + 1} (\`${x.name}\`) | ${x.startedAt} | ${x.commit} | ${x.seconds} | ${x.prepareSeconds ?? '-'} | ` +
        `${x.quietest ? `${x.quietest.seconds}: \`${x.quietest.command.slice(0, 60).replace(/\|/g, '\\|')}\`` : '-'} |`,
    ),
    '',
    r.same
      ? `Every scenario has the same status in all ${r.runs.length} runs.`
      : `Not the same: ${[...r.rows.filter((x) => !x.same).map((x) => x.scenario), ...r.unlike].join('; ')}.`,
  ];
  return `${lines.join('\n')}\n`;
}
