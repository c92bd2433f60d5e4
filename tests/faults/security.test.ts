/**
 * Security of a running guest and of the rig's inputs: per-run key 0600 in a 0700 run
 * directory, the QMP socket inside it, forwarded ports on 127.0.0.1 only, no password login,
 * and values with shell metacharacters never reach a shell.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Client } from 'ssh2';
import { chooseAccel } from '../../vm/accel.js';
import { bootFirstGuest, prepareFirstGuest } from '../../runner/first-guest.js';
import { appendLine } from '../../vm/machine-spec.js';
import { fingerprint, generateHostKey, SshSession } from '../../vm/ssh.js';
import { RigError } from '../../core/errors.js';
import { projectRoot } from '../../core/paths.js';
import { fault } from '../helpers/faults.js';
import { rigCli } from '../helpers/cli.js';

const accel = chooseAccel();
const files = await prepareFirstGuest();
const g = await bootFirstGuest(files, accel, { name: `security-${process.pid}` });
t.teardown(() => g.stop());

const mode = (p: string) => statSync(p).mode & 0o777;

await fault(
  t,
  'security',
  'run directory 0700, private key 0600, QMP socket inside the private directory',
  async (st) => {
    st.equal(mode(g.runDir), 0o700, `${g.runDir} is 0700`);
    st.equal(mode(g.key.privateKeyPath), 0o600, 'private key 0600');
    const qmpArg = g.args[g.args.indexOf('-qmp') + 1] ?? '';
    st.match(qmpArg, new RegExp(`^unix:${g.runDir}/qmp\\.sock,`), 'QMP socket in the run directory');
    st.ok(existsSync(join(g.runDir, 'qmp.sock')));
  },
);

await fault(
  t,
  'security',
  'forwarded ports on 127.0.0.1 only (QEMU arguments and the listening sockets)',
  async (st) => {
    const fwds = g.args.filter((a) => a.includes('hostfwd='));
    st.ok(fwds.length > 0);
    for (const f of fwds) for (const m of f.matchAll(/hostfwd=tcp:([^:]*):/g)) st.equal(m[1], '127.0.0.1', f);
    const ss = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(`pid=${g.pid},`));
    st.ok(ss.length > 0, 'QEMU listens');
    for (const l of ss) st.match(l.split(/\s+/)[3] ?? '', /^127\.0\.0\.1:\d+$/, `QEMU listens on ${l.split(/\s+/)[3]}`);
  },
);

await fault(t, 'security', 'no password login: the guest refuses a password, accepts only the run key', async (st) => {
  const port = Number(/hostfwd=tcp:127\.0\.0\.1:(\d+)-:22/.exec(g.args.join(' '))?.[1]);
  const outcome = await new Promise<string>((resolve) => {
    const c = new Client();
    c.on('ready', () => {
      c.end();
      resolve('logged in');
    });
    c.on('error', (e) => resolve(e.message));
    c.connect({
      host: '127.0.0.1',
      port,
      username: 'root',
      password: '',
      tryKeyboard: false,
      readyTimeout: 20_000 * accel.timeoutScale,
      hostVerifier: () => true,
    });
  });
  st.match(
    outcome,
    /authentication methods failed|All configured authentication/i,
    `password login refused: ${outcome}`,
  );
  const r = await g.exec(['sh', '-c', 'cat /proc/$(cat /run/dropbear.pid)/cmdline | tr "\\0" " "']);
  st.match(r.stdout, / -s /, 'dropbear runs with -s (password logins off)');
});

await fault(
  t,
  'security',
  "the guest's SSH host key is the one the rig made for this boot, and the client takes no other",
  async (st) => {
    const port = Number(/hostfwd=tcp:127\.0\.0\.1:(\d+)-:22/.exec(g.args.join(' '))?.[1]);
    const hostKey = g.hostKey;
    if (!hostKey) return void st.fail('the guest was booted without a host key of the rig');
    st.equal(mode(hostKey.path), 0o600, 'the host key file is 0600 in the private run directory');
    st.ok(hostKey.path.startsWith(`${g.runDir}/`), hostKey.path);
    const fwcfg = g.args.filter((a) => a.startsWith('name=opt/dmemfs-rig/host_key,'));
    st.same(fwcfg, [`name=opt/dmemfs-rig/host_key,file=${hostKey.path}`], 'handed over through fw_cfg');
    st.ok(
      g.console.lines.some((l) => /rig-init: host key from the rig/.test(l.raw)),
      "the guest's init installed it",
    );
    // The same guest, expected to hold another key: refused at once, nothing sent.
    const other = await generateHostKey(mkdtempSync(join(tmpdir(), 'rig-otherkey-')));
    const t0 = Date.now();
    await st.rejects(
      SshSession.connect({ port, privateKey: g.key.privateKey, deadline: Date.now() + 60_000, hostKey: other }),
      {
        kind: 'ssh-host-key',
        message: `offered host key ${fingerprint(hostKey.blob)}, not ${fingerprint(other.blob)}`,
      },
    );
    st.ok(Date.now() - t0 < 15_000 * accel.timeoutScale, 'refused on the first try, not at the deadline');
    const s = await SshSession.connect({ port, privateKey: g.key.privateKey, deadline: Date.now() + 60_000, hostKey });
    st.equal((await s.exec(['echo', 'pinned'])).stdout, 'pinned\n', 'with its own key the client logs in');
    s.close();
  },
);

await fault(t, 'security', 'shell metacharacters in inputs never reach a shell', async (st) => {
  const marker = join(mkdtempSync(join(tmpdir(), 'rig-meta-')), 'pwned');
  // A profile name with a command substitution.
  const a = await rigCli(['kernel', 'tree', '--profile', `$(touch ${marker})`]);
  st.not(a.code, 0);
  st.match(a.stderr, /error \[unknown-profile\]/);
  // A profile file whose config fragment and description carry shell syntax.
  const p = JSON.parse(readFileSync(join(projectRoot(), 'kernel', 'profiles', 'rfc-v2-debian.json'), 'utf8'));
  p.name = 'meta';
  p.description = `x; touch ${marker}`;
  p.config.fragments = [`guest.config; touch ${marker}`, `$(touch ${marker})`];
  const dir = mkdtempSync(join(tmpdir(), 'rig-meta-profile-'));
  const file = join(dir, 'meta.json');
  writeFileSync(file, JSON.stringify(p));
  const b = await rigCli(['kernel', 'build', '--profile', file]);
  st.not(b.code, 0);
  st.match(b.stderr, /error \[bad-profile\]: profile meta: config fragment guest\.config; touch .* does not exist/);
  // A guest command argument with shell syntax arrives as one literal argument.
  const r = await g.exec(['printf', '%s', `$(touch /tmp/x); echo; \`id\` 'q' "d"`], { check: true });
  st.equal(r.stdout, `$(touch /tmp/x); echo; \`id\` 'q' "d"`);
  st.equal((await g.exec(['test', '-e', '/tmp/x'])).code, 1, 'nothing ran in the guest');
  // A kernel command-line token with shell syntax is refused.
  st.throws(() => appendLine(['console=ttyS0', 'rig.x=$(reboot)']), RigError);
  st.notOk(existsSync(marker), 'no command ran on the host');
});
