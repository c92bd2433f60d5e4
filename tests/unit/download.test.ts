/** Downloads verified by SHA256 while streaming; a mismatch keeps nothing. */
import t from 'tap';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { downloadVerified } from '../../core/download.js';

// A real HTTP server on 127.0.0.1 serving a small "tarball".
const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
const good = createHash('sha256').update(payload).digest('hex');

t.test('downloads over real HTTP are verified by SHA256', async (t) => {
  const srv = createServer((req, res) => {
    if (req.url === '/linux.tar.xz') {
      res.writeHead(200, { 'content-length': String(payload.length) });
      res.end(payload);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'rig-dl-'));

  const ok = await downloadVerified(`${base}/linux.tar.xz`, join(dir, 'ok.tar.xz'), good);
  t.ok(readFileSync(ok).equals(payload), 'the right bytes arrive');

  const wrong = '0'.repeat(64);
  await t.rejects(downloadVerified(`${base}/linux.tar.xz`, join(dir, 'bad.tar.xz'), wrong), {
    kind: 'checksum-mismatch',
    message: new RegExp(`expected sha256 ${wrong}, got ${good}`),
  });
  t.notOk(existsSync(join(dir, 'bad.tar.xz')), 'nothing kept under the final name');
  t.notOk(existsSync(join(dir, 'bad.tar.xz.partial')), 'no partial file left');

  await t.rejects(downloadVerified(`${base}/missing`, join(dir, 'm'), good), { kind: 'download', message: /HTTP 404/ });
  await t.rejects(downloadVerified(`${base}/linux.tar.xz`, join(dir, 'n'), 'not-a-hash'), {
    kind: 'no-checksum',
    message: /no valid SHA256/,
  });
});
