/** Small readers of guest state used by scenario bodies. */
import { RigError } from '../core/errors.js';
import { between, KB_PER_GIB, STRUCT_PAGE_KB_PER_GIB, type Expectation } from '../core/results.js';
import type { GuestHandle as Guest } from '../vm/guest-handle.js';

export async function memTotalKb(g: Guest): Promise<{ total: number; nodes: number[] }> {
  const r = await g.exec(
    ['sh', '-c', 'cat /proc/meminfo; for n in /sys/devices/system/node/node*/meminfo; do cat "$n"; done'],
    { check: true },
  );
  const total = Number(/^MemTotal:\s+(\d+) kB/m.exec(r.stdout)?.[1]);
  const nodes: number[] = [];
  for (const m of r.stdout.matchAll(/^Node (\d+) MemTotal:\s+(\d+) kB/gm)) nodes[Number(m[1])] = Number(m[2]);
  return { total, nodes };
}

/**
 * The dmem debugfs statistics (/sys/kernel/debug/dmem): top level (free_dpages, total_dpages,
 * dpage_shift, ...) and per node ("node1/free_dpages"). Missing debugfs is an error, never an
 * empty result: a scenario that read nothing must fail with that reason, not compare nothing.
 */
export async function dmemStats(g: Guest): Promise<DmemStats> {
  const r = await g.exec([
    'sh',
    '-c',
    'cd /sys/kernel/debug/dmem 2>/dev/null || exit 0; ' +
      'for f in $(find . -type f); do printf "%s %s\\n" "$f" "$(cat $f 2>/dev/null | head -1)"; done',
  ]);
  const out: Record<string, number> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^\.\/(\S+) (-?\d+)/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  const missing = DMEM_STATS.filter((k) => out[k] === undefined);
  if (missing.length)
    throw new RigError(
      'dmem-debugfs',
      `the dmem debugfs statistics are missing ${missing.map((k) => `/sys/kernel/debug/dmem/${k}`).join(', ')}`,
      {
        fix: 'build the kernel with CONFIG_DMEM_DEBUG_FS=y and boot it with dmem=',
        evidence: r.stdout.slice(0, 2000),
      },
    );
  return { ...out, node: (n, key) => out[`node${n}/${key}`] ?? null } as DmemStats;
}

/** The top-level files of dmem's debugfs (MISSION.md): every one must be there, or reading them is an error. */
export const DMEM_STATS = [
  'registered_pages',
  'total_dpages',
  'free_dpages',
  'dpage_shift',
  'region_num',
  'unaligned_pages',
] as const;

/** dmem debugfs values by file name; node(n, key) reads nodeN/key (null when absent). */
export type DmemStats = Record<string, number> &
  Record<(typeof DMEM_STATS)[number], number> & {
    node(n: number, key: string): number | null;
  };

/** a - b, or null (which meets no expectation) when either side was not read. */
export function delta(a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || b === null || b === undefined ? null : a - b;
}

export interface DmemRegion {
  start: number;
  end: number;
  node: number;
}

/**
 * The kernel log read over SSH. Measurements use this, not the serial console: under load
 * the early serial console drops bytes (seen: "dmem:egister region ..."), the log buffer
 * does not.
 */
export async function kernelLog(g: Guest): Promise<string[]> {
  const r = await g.exec(['dmesg'], { check: true });
  return r.stdout.split('\n').map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ''));
}

/** "dmem: register region [0x1b8000000 - 0x1f8000000] on node 1." lines of the kernel log. */
export async function dmemRegions(g: Guest): Promise<DmemRegion[]> {
  const out: DmemRegion[] = [];
  for (const l of await kernelLog(g)) {
    const m = /dmem: register region \[(0x[0-9a-f]+) - (0x[0-9a-f]+)\] on node (\d+)/.exec(l);
    if (m) out.push({ start: Number(m[1]), end: Number(m[2]), node: Number(m[3]) });
  }
  return out;
}

export async function logMatches(g: Guest, re: RegExp): Promise<string[]> {
  return (await kernelLog(g)).filter((l) => re.test(l));
}

export { KB_PER_GIB, STRUCT_PAGE_KB_PER_GIB } from '../core/results.js';

/** The kernel's own fixed reservations (image, page tables, early allocations): at most this (kB). */
const FIXED_RESERVATIONS_MAX_KB = 128 * 1024;

/** MemTotal of `gib` GiB of RAM: less its struct pages and at most the fixed reservations. */
export function memTotalOf(gib: number): Expectation {
  const top = gib * (KB_PER_GIB - STRUCT_PAGE_KB_PER_GIB);
  return between(top - FIXED_RESERVATIONS_MAX_KB, top);
}

/** MemFree in kB. */
export async function memFreeKb(g: Guest): Promise<number> {
  return Number(/^MemFree:\s+(\d+)/m.exec((await g.exec(['cat', '/proc/meminfo'], { check: true })).stdout)?.[1]);
}
