/**
 * `dmemfs-rig shell`, for real: a catalog boot with the rig's kernel, one command with its exit
 * status passed through, a --keep guest ended by Ctrl-C (SIGINT) with nothing left behind, and
 * a boot name the catalog does not have refused with the list of names.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rigCli } from '../helpers/cli.js';

function qemuPids(match: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', match], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The private key path the access text printed (ssh -i PATH ...). */
const keyOf = (stderr: string) => /ssh -i (\S+) /.exec(stderr)?.[1];

t.test('a command runs in the boot and its exit status is the exit status', async (t) => {
  const r = await rigCli(['shell', '--boot', 'dmem-1G', '--', 'sh', '-c', 'grep -c dmemfs /proc/filesystems; exit 7']);
  t.equal(r.code, 7, 'exit status 7 passed through');
  t.equal(r.stdout.trim(), '1', "the command's output, on stdout: the rig's kernel has dmemfs");
  t.match(r.stderr, /guest shell-dmem-1G \(boot dmem-1G\) is up/);
  t.match(r.stderr, /qmp: +socat - UNIX-CONNECT:\S+\/qmp\.sock/, 'how to reach QMP');
  t.match(r.stderr, /console: tail -f \S+\/console\.log/, 'and the console log');
  const key = keyOf(r.stderr);
  t.ok(key && !existsSync(key), 'the private key is gone');
  t.same(qemuPids('shell-dmem-1G'), [], 'no QEMU left');
});

t.test('--keep stays up until Ctrl-C, then stops its guest and removes its key', async (t) => {
  const r = await rigCli(['shell', '--boot', 'plain', '--keep'], {
    interrupt: { at: /--keep: the guest stays up/, signal: 'SIGINT', delayMs: 2000 },
    timeoutMs: 10 * 60_000,
  });
  t.ok(r.interrupted, 'the guest came up and waited');
  t.equal(r.code, 130, 'ended by SIGINT');
  t.match(r.stderr, /SIGINT: stopping 1 guest/);
  const key = keyOf(r.stderr);
  t.ok(key && !existsSync(key), 'the private key is gone (stopped cleanly, not only killed)');
  t.same(qemuPids('shell-plain'), [], 'no QEMU left');
});

t.test('a boot the catalog does not have is refused before anything is built, with the names', async (t) => {
  const r = await rigCli(['shell', '--boot', 'no-such-boot', '--', 'true'], { timeoutMs: 60_000 });
  t.equal(r.code, 1);
  t.match(r.stderr, /^error \[unknown-boot\]: no boot named "no-such-boot" in the catalog$/m);
  t.match(r.stderr, /^fix: one of: .*\bdmem-1G\b.*\bplain\b.*\(scenarios\/boots\.ts\)$/m, 'lists the boot names');
  t.ok(r.seconds < 20, `refused in ${r.seconds.toFixed(1)} s`);
  const none = await rigCli(['shell', '--', 'true'], { timeoutMs: 60_000 });
  t.match(none.stderr, /^error \[unknown-boot\]: --boot NAME is required$/m);
});
