/**
 * report/decode-oops.ts on the VFIO oops of the recorded full run (tests/fixtures/bundles/full-run):
 * its Code: bytes disassembled by the host's objdump give the store through NULL at the trap, and
 * the mails of that bundle carry it; lines with no bytes to decode give nothing.
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { RunResults } from '../../core/results.js';
import { codeBytesOf, decodedLines, decodeOops, parseObjdump } from '../../report/decode-oops.js';
import { findingsOf, writeMails } from '../../report/mail.js';
import { FULL_RUN_BUNDLE } from '../helpers/fixtures.js';

const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
const vfio = findingsOf(run).find((f) => f.id === 'vfio-get-dmem-pfn-null')!;

t.test('the Code: bytes of the kernel RIP, not of the user one after it', async (t) => {
  const c = codeBytesOf(vfio.excerpt!)!;
  t.match(c.rip, /^RIP: 0010:get_dmem_pfn\+0x30\/0x70$/);
  t.equal(c.bytes.length, 64);
  t.equal(c.trap, 42);
  t.same(c.bytes.slice(c.trap, c.trap + 4), [0x48, 0x89, 0x14, 0x25]);
});

t.test('decoded: the trapping instruction stores %rdx at address 0', async (t) => {
  const d = await decodeOops(vfio.excerpt!);
  if (!d) return t.fail('objdump (binutils) is a host package of the rig: it must be here');
  const trap = d.lines.find((l) => l.endsWith('<-- trap'))!;
  t.match(trap, /^ {5}0: 48 89 14 25 00 00 00 00 +mov +%rdx,0x0 {2}<-- trap$/, 'a write through NULL');
  const i = d.lines.indexOf(trap);
  t.match(d.lines[i - 1], /^ {4}-7: 48 81 ea 10 01 00 00 +sub +\$0x110,%rdx$/, 'after the container_of of the node');
  t.equal(d.lines.length - i - 1, 3, 'three instructions after it');
  t.ok(
    d.lines.every((l) => l.length <= 72),
    'within 72 columns',
  );
});

t.test('nothing to decode: no kernel RIP, no Code:, a bad RIP', async (t) => {
  t.equal(codeBytesOf('[ 1.0] WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2\n'), undefined);
  t.equal(codeBytesOf('RIP: 0010:f+0x1/0x2\nRSP: 0018:0\n'), undefined);
  t.equal(codeBytesOf('RIP: 0010:0x0\nCode: Bad RIP value.\n'), undefined);
  t.equal(codeBytesOf('RIP: 0033:0x43ce3b\nCode: 00 <89> c2\n'), undefined, 'a user RIP is not decoded');
  t.equal(await decodeOops('no oops here'), undefined);
});

t.test("objdump's listing: an instruction continued on the next line is one", async (t) => {
  const insns = parseObjdump(
    '   2a:\t48 89 14 25 00 00 00 \tmov    %rdx,0x0\n   31:\t00 \n   32:\t48 d3 ef             \tshr    %cl,%rdi\n',
  );
  t.same(insns, [
    { offset: 0x2a, bytes: '48 89 14 25 00 00 00 00', text: 'mov    %rdx,0x0' },
    { offset: 0x32, bytes: '48 d3 ef', text: 'shr    %cl,%rdi' },
  ]);
  t.same(decodedLines([], insns, 0x2a, 0, 1).length, 2, 'the trap and one after');
  const before = [{ offset: 0x27, bytes: '48 39 ca', text: 'cmp %rcx,%rdx' }];
  t.match(decodedLines(before, insns, 0x2a, 6, 0), [/-3: 48 39 ca +cmp %rcx,%rdx$/, /<-- trap$/], 'aligned: shown');
  t.equal(decodedLines(before, insns, 0x2a, 0, 0).length, 1, 'none asked before it: none');
  const across = [{ offset: 0x26, bytes: '48 39 ca', text: 'cmp %rcx,%rdx' }];
  t.equal(decodedLines(across, insns, 0x2a, 6, 0).length, 1, 'a decoding that does not end at the trap: not shown');
});

t.test('report --mail: the VFIO mail carries the decoded instruction after the log', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'rig-decode-mail-'));
  const files = await writeMails(dirname(FULL_RUN_BUNDLE()), run, out);
  const mail = readFileSync(
    files.find((f) => f.includes('vfio-get-dmem-pfn-null'))!,
    'utf8',
  );
  const at = mail.indexOf('The trapping instruction of RIP: 0010:get_dmem_pfn+0x30/0x70,');
  t.ok(at > mail.indexOf('The kernel log (lines as printed'), 'after the kernel log');
  t.match(mail.slice(at), /mov +%rdx,0x0 {2}<-- trap\r\n/);
  const section = mail.slice(at, mail.indexOf('Reported-by:', at)).split('\r\n');
  t.same(
    section.filter((l) => l.length > 72),
    [],
    'the section within 72 columns',
  );
});
