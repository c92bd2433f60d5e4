/**
 * The rig's check of a dmem= value before it boots anything, following the series'
 * kernel-parameters.txt and mm/dmem_reserve.c: dmem=[!]size[KMG][@addr[KMG]][:align[KMG]].
 * Sizes and addresses are aligned to the memory section (128 MiB on x86_64) or to align;
 * align is a power of two of at least a section; addr and align are never 0; "!" (leave
 * this much to the kernel) cannot be combined with @addr.
 */
import { RigError } from '../core/errors.js';

export const SECTION_BYTES = 128n << 20n;

export interface DmemParam {
  keepForKernel: boolean;
  size: bigint;
  addr: bigint | undefined;
  align: bigint;
}

/** Linux memparse: a number (decimal, 0x hex, 0 octal) with an optional K/M/G/T/P/E suffix. */
export function memparse(s: string): { value: bigint; rest: string } | undefined {
  const m = /^(0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)(.*)$/.exec(s);
  if (!m) return undefined;
  let v = BigInt(
    m[1]!.startsWith('0x') ? m[1]! : m[1]!.length > 1 && m[1]!.startsWith('0') ? `0o${m[1]!.slice(1)}` : m[1]!,
  );
  const shift: Record<string, bigint> = { k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n };
  if (m[2]) v <<= shift[m[2].toLowerCase()]!;
  return { value: v, rest: m[3]! };
}

function bad(value: string, problem: string, fix: string): RigError {
  return new RigError('bad-dmem', `dmem=${value}: ${problem}`, {
    fix: `${fix} (syntax: dmem=[!]size[KMG][@addr][:align], sizes aligned to 128M or to align)`,
  });
}

/** The @addr and :align parts after the size, each at most once and never 0. */
function parseIndicators(value: string, rest: string): { addr: bigint | undefined; align: bigint | undefined } {
  const found: { addr: bigint | undefined; align: bigint | undefined } = { addr: undefined, align: undefined };
  while (rest) {
    const ind = rest[0]!;
    if (ind !== '@' && ind !== ':') throw bad(value, `unknown indicator "${ind}"`, 'use @addr and :align only');
    const which = ind === '@' ? 'addr' : 'align';
    const v = memparse(rest.slice(1));
    if (!v) throw bad(value, `${which} is not a number`, 'give a number with an optional K/M/G suffix');
    if (found[which] !== undefined) throw bad(value, `${which} is given twice`, `give ${ind}${which} once`);
    if (v.value === 0n) throw bad(value, `${which} is 0`, 'addr and align must not be 0');
    found[which] = v.value;
    rest = v.rest;
  }
  return found;
}

/** Alignment rules: align a power of two of at least a section; addr and size aligned to it. */
function checkAlignment(value: string, p: DmemParam, sectionBytes: bigint): void {
  const a = p.align;
  if (a < sectionBytes)
    throw bad(value, `align ${a} is below the memory section size ${sectionBytes}`, 'use an align of at least 128M');
  if ((a & (a - 1n)) !== 0n)
    throw bad(value, `align ${a} is not a power of two`, 'use a power of two such as 128M, 1G');
  if (p.addr !== undefined && p.addr % a !== 0n) throw bad(value, `addr is not aligned to ${a}`, 'align the address');
  if (p.size % a !== 0n) throw bad(value, `size is not aligned to ${a}`, `use a multiple of ${a / 1048576n}M`);
}

export function parseDmemParam(value: string, sectionBytes = SECTION_BYTES): DmemParam {
  const keepForKernel = value.startsWith('!');
  const sz = memparse(keepForKernel ? value.slice(1) : value);
  if (!sz) throw bad(value, 'the size is not a number', 'start with a size such as 1G');
  if (sz.value === 0n) throw bad(value, 'the size is 0', 'give a non-zero size');
  const { addr, align } = parseIndicators(value, sz.rest);
  const p: DmemParam = { keepForKernel, size: sz.value, addr, align: align ?? sectionBytes };
  checkAlignment(value, p, sectionBytes);
  if (keepForKernel && addr !== undefined)
    throw bad(value, '"!" (leave size to the kernel) cannot be combined with @addr', 'drop either ! or @addr');
  return p;
}

/** Check every dmem= token of a kernel command line (throws the first problem). */
export function checkDmemTokens(tokens: string[]): void {
  for (const t of tokens) if (t.startsWith('dmem=')) parseDmemParam(t.slice('dmem='.length));
}
