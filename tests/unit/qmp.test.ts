/** The QMP client: greeting, commands, events, HMP passthrough, against a fake socket peer. */
import t from 'tap';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { encodeCommand, QmpClient, QmpFramer } from '../../vm/qmp.js';

t.test('framer splits CRLF-separated JSON across arbitrary chunk boundaries', async (t) => {
  const f = new QmpFramer();
  const wire =
    '{"QMP": {"version": {}}}\r\n{"return": {}, "id": "rig-1"}\r\n{"event": "STOP", "timestamp": {"seconds": 1, ' +
    '"microseconds": 2}}\r\n';
  const got = [];
  for (let i = 0; i < wire.length; i += 7) got.push(...f.push(wire.slice(i, i + 7)));
  t.equal(got.length, 3);
  t.same(got[1], { return: {}, id: 'rig-1' });
  t.equal(got[2]!.event, 'STOP');
  t.equal(f.pending(), '');
  t.same(f.push('{"a":'), []);
  t.equal(f.pending(), '{"a":');
  t.throws(() => new QmpFramer().push('not json\r\n'), /not JSON/);
});

t.test('commands are encoded with id and arguments', async (t) => {
  t.equal(encodeCommand('query-status', undefined, 'rig-3'), '{"execute":"query-status","id":"rig-3"}\r\n');
  t.equal(
    encodeCommand('human-monitor-command', { 'command-line': 'info numa' }, 'x'),
    '{"execute":"human-monitor-command","id":"x","arguments":{"command-line":"info numa"}}\r\n',
  );
});

t.test('client negotiates, matches replies by id, maps errors, delivers events', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qmp-unit-'));
  const path = join(dir, 'qmp.sock');
  const seen: string[] = [];
  const srv = createServer((sock) => {
    sock.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\r\n');
    const f = new QmpFramer();
    sock.on('data', (d) => {
      for (const m of f.push(d)) {
        seen.push(m.execute as string);
        if (m.execute === 'qmp_capabilities') sock.write(`{"return": {}, "id": "${m.id}"}\r\n`);
        else if (m.execute === 'human-monitor-command') {
          // An event arrives before the reply, in the same chunk.
          sock.write(
            `{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 0}}\r\n{"return": "node 0 cpus: ` +
              `0\\r\\n", "id": "${m.id}"}\r\n`,
          );
        } else
          sock.write(
            `{"error": {"class": "CommandNotFound", "desc": "The command ${m.execute} has not been found"}, ` +
              `"id": "${m.id}"}\r\n`,
          );
      }
    });
  });
  await new Promise<void>((r) => srv.listen(path, r));
  const c = await QmpClient.connect(path, 3000);
  t.teardown(() => {
    c.close();
    srv.close();
  });
  t.same(seen, ['qmp_capabilities']);
  t.equal(await c.hmp('info numa'), 'node 0 cpus: 0\r\n');
  t.equal((await c.waitEvent('RESUME', 1000, 0)).event, 'RESUME', 'an event that came before the reply is kept');
  await t.rejects(c.execute('no-such'), /CommandNotFound/);
});

t.test('connect fails clearly when the socket never appears', async (t) => {
  await t.rejects(QmpClient.connect('/nonexistent/qmp.sock', 300), /could not connect to QMP/);
});
