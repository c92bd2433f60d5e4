/**
 * Where the series a run applied came from, and how it relates to the nearest pinned series,
 * as results.json records it (kernel/provenance.ts computes it; the report prints it).
 */
/** Where a series came from, as it goes into the bundle. */
export interface SeriesOrigin {
  kind: 'profile' | 'mbox' | 'message-id' | 'git-range';
  /** The mbox the rig read (for a range or a Message-Id, the one it wrote). */
  path: string;
  sha256: string;
  messageId?: string;
  url?: string;
  repo?: string;
  base?: string;
  head?: string;
  commits?: number;
}

export type PatchKind = 'identical' | 'context-only' | 'content-changed' | 'new' | 'missing';

export interface ProvenanceRow {
  /** The patch's number in the series run (for "missing": in the pinned series). */
  number: number;
  title: string;
  kind: PatchKind;
  patchId?: string;
  pinnedNumber?: number;
  pinnedPatchId?: string;
}

export interface SeriesProvenance {
  /** The name the run gives the series: the pinned name, or unpinned-<hash>. */
  name: string;
  pinned: boolean;
  origin: SeriesOrigin;
  /** The nearest pinned series by patch id (undefined: none shares a patch or a title). */
  nearest: string | undefined;
  counts: Record<PatchKind, number>;
  patches: ProvenanceRow[];
  /** Edits applied on top (kernel/edits.ts), and the prefix length when only 1..k were applied. */
  edits?: string[];
  prefix?: number;
}

/** One line: "36 identical, 1 content-changed (35) against rfc-v2-on-debian-5.10.223". */
export function provenanceLine(
  p: Pick<SeriesProvenance, 'nearest' | 'counts' | 'patches' | 'pinned' | 'name' | 'edits' | 'prefix'>,
): string {
  const applied = [
    ...(p.prefix !== undefined ? [p.prefix ? `only patches 1..${p.prefix} applied` : 'no patch applied'] : []),
    ...(p.edits?.length ? [`edited: ${p.edits.map((e) => e.split(':')[0]).join(', ')}`] : []),
  ];
  return applied.length ? `${origin(p)} (${applied.join('; ')})` : origin(p);
}

function origin(p: Pick<SeriesProvenance, 'nearest' | 'counts' | 'patches' | 'pinned' | 'name'>): string {
  if (p.pinned) return `${p.name}: pinned, every patch id matches`;
  if (!p.nearest) return `${p.name}: unpinned; no pinned series shares a patch with it`;
  const parts = (Object.keys(p.counts) as PatchKind[])
    .filter((k) => p.counts[k] > 0)
    .map((k) => {
      const nums = k === 'identical' ? [] : p.patches.filter((r) => r.kind === k).map((r) => r.number);
      return `${p.counts[k]} ${k}${nums.length && nums.length <= 8 ? ` (${nums.join(', ')})` : ''}`;
    });
  return `${p.name}: unpinned; against ${p.nearest}: ${parts.join(', ')}`;
}
