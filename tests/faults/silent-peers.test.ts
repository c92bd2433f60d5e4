/**
 * Peers that are not what the rig waits for, on real sockets: an SSH listener on 127.0.0.1 that
 * never sends its banner (an SSH connection that accepts and stays silent, or another process
 * on the forwarded port), a QMP socket that never greets (a QEMU hung before its monitor), and
 * an SSH server that answers with another host key than the one the rig made for the boot.
 * Each is refused within its bound, with one error that names it, and nothing is left open.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import ssh2 from 'ssh2';
import { fingerprint, generateHostKey, generateRunKey, SshSession, type HostKey } from '../../vm/ssh.js';
import { QmpClient } from '../../vm/qmp.js';
import { fault } from '../helpers/faults.js';

const tmp = mkdtempSync(join(tmpdir(), 'rig-silent-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** A server that accepts every connection and says nothing; counts what is still open. */
function silent(listen: (s: Server) => void): Promise<{ server: Server; open: () => number; accepted: () => number }> {
  const socks = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => undefined);
  });
  return new Promise((resolve) => {
    server.on('listening', () => resolve({ server, open: () => socks.size, accepted: () => accepted }));
    listen(server);
  });
}

/**
 * The connections still open once the client's close has had time to arrive (a loaded host can
 * take longer than a fixed pause): polled up to `ms`, so a connection left open still counts.
 */
async function closedWithin(open: () => number, ms: number): Promise<number> {
  const until = Date.now() + ms;
  while (open() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  return open();
}

await fault(t, 'fault', 'an SSH listener that never sends its banner: ssh-timeout within the deadline', async (st) => {
  const peer = await silent((s) => s.listen(0, '127.0.0.1'));
  const port = (peer.server.address() as AddressInfo).port;
  const key = generateRunKey(tmp);
  const t0 = Date.now();
  await st.rejects(SshSession.connect({ port, privateKey: key.privateKey, deadline: Date.now() + 4000 }), {
    kind: 'ssh-timeout',
    message: new RegExp(`no SSH login on 127\\.0\\.0\\.1:${port} after \\d+ tries: no SSH banner yet`),
  });
  const s = (Date.now() - t0) / 1000;
  st.ok(s >= 3.5 && s < 10, `given up at its deadline (${s.toFixed(1)} s for 4 s)`);
  st.ok(peer.accepted() >= 1, 'the listener was reached');
  st.equal(await closedWithin(peer.open, 5000), 0, 'no connection left open');
  peer.server.close();
});

await fault(t, 'fault', 'a QMP socket that never greets: qmp-connect within its timeout', async (st) => {
  const path = join(tmp, 'qmp.sock');
  const peer = await silent((s) => s.listen(path));
  const t0 = Date.now();
  await st.rejects(QmpClient.connect(path, 3000), {
    kind: 'qmp-connect',
    message: /no QMP greeting from .*qmp\.sock within \d+ ms|could not connect to QMP/,
  });
  const s = (Date.now() - t0) / 1000;
  st.ok(s >= 2.5 && s < 8, `given up at its timeout (${s.toFixed(1)} s for 3 s)`);
  st.equal(await closedWithin(peer.open, 5000), 0, 'no connection left open');
  peer.server.close();
});

/** An SSH server of our own on 127.0.0.1 with its own host key, which lets anyone in. */
async function impostor() {
  const kp = ssh2.utils.generateKeyPairSync('ed25519');
  const blob = Buffer.from(kp.public.trim().split(/\s+/)[1]!, 'base64');
  const own: HostKey = { path: '', publicKey: kp.public.trim(), blob };
  let authentications = 0;
  let open = 0;
  const server = new ssh2.Server({ hostKeys: [kp.private] }, (client) => {
    open++;
    client.on('close', () => open--);
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      authentications++;
      ctx.accept();
    });
    client.on('session', (accept) => {
      accept().on('exec', (acc) => {
        const ch = acc();
        ch.write('impostor\n');
        ch.exit(0);
        ch.end();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return { server, port, own, authentications: () => authentications, open: () => open };
}

await fault(
  t,
  'security',
  'an SSH server with another host key on the forwarded port: ssh-host-key at once, no credentials sent',
  async (st) => {
    const peer = await impostor();
    const key = generateRunKey(tmp);
    const want = await generateHostKey(tmp);
    const t0 = Date.now();
    await st.rejects(
      SshSession.connect({ port: peer.port, privateKey: key.privateKey, deadline: Date.now() + 20_000, hostKey: want }),
      {
        kind: 'ssh-host-key',
        message: `127.0.0.1:${peer.port} offered host key ${fingerprint(peer.own.blob)}, not ${fingerprint(want.blob)}`,
      },
    );
    const s = (Date.now() - t0) / 1000;
    st.ok(s < 5, `refused on its first try, not retried until the deadline (${s.toFixed(1)} s of 20)`);
    st.equal(peer.authentications(), 0, 'no credentials reached it: the key is refused before authentication');
    st.equal(await closedWithin(peer.open, 5000), 0, 'no connection left open');
    // The control: the same server, expected with its own key, is logged into (the comparison takes the right key).
    const ok = await SshSession.connect({
      port: peer.port,
      privateKey: key.privateKey,
      deadline: Date.now() + 20_000,
      hostKey: peer.own,
    });
    st.equal((await ok.exec(['true'])).stdout, 'impostor\n', 'its own key is accepted');
    ok.close();
    peer.server.close();
  },
);
