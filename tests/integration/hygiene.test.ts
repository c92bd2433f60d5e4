/**
 * Process hygiene for real: SIGTERM (and SIGKILL) to the rig mid-boot leaves no QEMU behind.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../core/paths.js';
import { prepareFirstGuest } from '../../runner/first-guest.js';
import { alive, gone } from '../helpers/process.js';

/** Start `dmemfs-rig boot`, resolve with (child, qemu pid) once QEMU runs. */
function startRig(): Promise<{ child: ReturnType<typeof spawn>; qemuPid: number; output: () => string }> {
  const child = spawn(
    process.execPath,
    [join(projectRoot(), 'dist', 'scripts', 'cli.js'), 'boot', '--', 'sleep', '600'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`QEMU did not start: ${out}`)), 120_000);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /QEMU started \(pid (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, qemuPid: Number(m[1]), output: () => out });
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', () => reject(new Error(`rig exited early: ${out}`)));
  });
}

t.before(async () => {
  await prepareFirstGuest(); // warm the cache so the children start QEMU quickly
});

for (const signal of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
  t.test(`${signal} to the rig mid-boot leaves no QEMU process`, async (t) => {
    const { child, qemuPid, output } = await startRig();
    t.ok(alive(qemuPid), `QEMU ${qemuPid} is running`);
    const exited = new Promise<number | null>((r) => child.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
    child.kill(signal);
    const code = await exited;
    if (signal === 'SIGTERM') t.equal(code, 143, 'the rig exits with 128+15');
    if (signal === 'SIGINT') t.equal(code, 130, 'the rig exits with 128+2');
    if (signal !== 'SIGKILL')
      t.match(output(), new RegExp(`${signal}: stopping 1 guest`), 'the rig says what it stops');
    t.ok(await gone(qemuPid, 5000), `QEMU ${qemuPid} is gone within 5 s`);
  });
}
