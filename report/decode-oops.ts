/**
 * The trapping instruction of a kernel oops, decoded from its `Code:` line: the bytes around the
 * kernel RIP, with the trapping one in angle brackets, disassembled by binutils' objdump (x86-64),
 * as the kernel's scripts/decodecode does, so that a mail says what the CPU was doing
 * (`mov %rdx,0x0`: a store through a NULL pointer) beside the log.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool, run } from '../core/exec.js';

export interface CodeBytes {
  /** The RIP line the bytes belong to ("RIP: 0010:get_dmem_pfn+0x30/0x70"). */
  rip: string;
  bytes: number[];
  /** The index of the trapping byte (the one in <>). */
  trap: number;
}

/** The Code: line that follows the first kernel-mode RIP (CS 0010) of the excerpt, or undefined. */
export function codeBytesOf(excerpt: string): CodeBytes | undefined {
  const lines = excerpt.split('\n');
  const at = lines.findIndex((l) => /RIP: 0010:\S/.test(l));
  if (at < 0) return undefined;
  const rip = /RIP: 0010:\S+/.exec(lines[at]!)![0];
  const code = lines.slice(at + 1, at + 4).find((l) => /\bCode: /.test(l));
  if (!code) return undefined;
  const words = code
    .slice(code.indexOf('Code: ') + 6)
    .trim()
    .split(/\s+/);
  if (!words.every((w) => /^<?[0-9a-f]{2}>?$/.test(w))) return undefined; // "Bad RIP value." and the like
  const trap = words.findIndex((w) => w.startsWith('<'));
  if (trap < 0) return undefined;
  return { rip, bytes: words.map((w) => parseInt(w.replace(/[<>]/g, ''), 16)), trap };
}

interface Insn {
  offset: number;
  bytes: string;
  text: string;
}

/** objdump's listing as instructions (a long one's bytes continued on the next line joined to it). */
export function parseObjdump(out: string): Insn[] {
  const insns: Insn[] = [];
  for (const l of out.split('\n')) {
    const m = /^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*(?:\t(.*))?$/.exec(l);
    if (!m) continue;
    if (m[3] === undefined && insns.length) insns.at(-1)!.bytes += ` ${m[2]!}`;
    else if (m[3] !== undefined) insns.push({ offset: parseInt(m[1]!, 16), bytes: m[2]!, text: m[3].trim() });
  }
  return insns;
}

const len = (i: Insn) => i.bytes.split(' ').length;

/**
 * The instructions before the trapping one (from a disassembly of all the bytes, where it does not
 * run across the trap), the trapping one and those after it (disassembled from the trap, which is
 * an instruction boundary): at most `before` and `after` of them.
 */
export function decodedLines(all: Insn[], fromTrap: Insn[], trap: number, before = 6, after = 3): string[] {
  // From byte 0 the decoding may start inside an instruction: its lines before the trap are shown
  // only when one of them ends exactly at the trap (the two decodings then agree there).
  const upTo = all.filter((i) => i.offset + len(i) <= trap);
  const aligned = upTo.length > 0 && upTo.at(-1)!.offset + len(upTo.at(-1)!) === trap;
  const head = aligned && before > 0 ? upTo.slice(-before) : [];
  const tail = fromTrap.filter((i) => i.offset >= trap).slice(0, after + 1);
  const rel = (o: number) => (o - trap === 0 ? '   0' : `${o - trap > 0 ? '+' : '-'}${Math.abs(o - trap)}`.padStart(4));
  return [...head, ...tail].map(
    (i) =>
      `  ${rel(i.offset)}: ${i.bytes.padEnd(24)} ${i.text.replace(/\s+/g, ' ')}` +
      (i.offset === trap ? '  <-- trap' : ''),
  );
}

/** The decoded lines of the excerpt's oops; undefined when it has no Code: bytes or no objdump. */
export async function decodeOops(excerpt: string): Promise<{ rip: string; lines: string[] } | undefined> {
  const code = codeBytesOf(excerpt);
  const objdump = findTool('objdump');
  if (!code || !objdump) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'rig-decode-'));
  try {
    const bin = join(dir, 'code.bin');
    writeFileSync(bin, Buffer.from(code.bytes));
    const dis = (extra: string[]) =>
      run(objdump, ['-D', '-z', '-b', 'binary', '-m', 'i386:x86-64', ...extra, bin], {
        what: 'objdump of the Code: bytes',
      });
    const all = parseObjdump((await dis([])).stdout);
    const fromTrap = parseObjdump((await dis([`--start-address=${code.trap}`])).stdout);
    return { rip: code.rip, lines: decodedLines(all, fromTrap, code.trap) };
  } catch {
    return undefined; // an objdump without x86-64: the mail goes without the decoded lines
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
