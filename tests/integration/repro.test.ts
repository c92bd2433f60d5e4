/**
 * `dmemfs-rig repro --prove` for real: the reproducers of the VFIO oops and of the stale dpage,
 * written and then run as written (build.sh, mkinitramfs.sh, qemu.sh: real gcc, busybox, cpio and
 * QEMU, no rig code in the guest) on the series, the baseline kernel and the fixing mutant. The
 * bug must show on the series only. npm start proves every reproducer (`run --repro`).
 */
import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProofRow } from '../../runner/repro.js';
import { rigCli } from '../helpers/cli.js';

const out = mkdtempSync(join(tmpdir(), 'rig-repro-'));
const ids = ['vfio-get-dmem-pfn-null', 'dmemfs-new-file-reads-old-data'];
const r = await rigCli(['repro', ...ids, '--out', out, '--prove', '--json']);
type Done = Array<{ id: string; dir: string; files: string[]; proof: ProofRow[] }>;
const done = (r.code === 0 ? JSON.parse(r.stdout) : []) as Done;

t.test('repro --prove exits 0, one directory per signature', async (t) => {
  t.equal(r.code, 0, r.stderr.slice(-3000));
  t.same(
    done.map((d) => d.id),
    ids,
  );
  t.same(readdirSync(out).sort(), [...ids].sort());
});

for (const id of ids)
  t.test(`${id}: the bug on the series, not on the baseline nor with its fix`, async (t) => {
    const d = done.find((x) => x.id === id);
    if (!d) return t.fail(`no result for ${id}`);
    t.same(
      d.proof.map((p) => [p.label, p.outcome, p.ok]),
      [
        ['series', 'bug', true],
        ['baseline', 'absent', true],
        ['fixed', 'no-bug', true],
      ],
    );
    const consoles = d.proof.map((p) => readFileSync(join(d.dir, p.console), 'utf8'));
    t.ok(
      consoles.every((c) => /^repro: start on 5\.10\.223: /m.test(c)),
      "each console is the reproducer's own init, booted by qemu.sh",
    );
    t.match(consoles[0], id.startsWith('vfio') ? /RIP: 0010:get_dmem_pfn\+/ : /"after_grow":"stale"/);
    t.match(consoles[1], /repro: RESULT absent: this kernel cannot mount dmemfs/);
    t.match(readFileSync(join(d.dir, 'proof', 'proof.txt'), 'utf8'), /\| the series .* \| bug \| bug \|/);
    t.ok(d.files.includes('kernel.config'), "the series build's .config is in it");
    t.match(readFileSync(join(d.dir, 'kernel.config'), 'utf8'), /^CONFIG_DMEM_FS=y$/m);
  });
