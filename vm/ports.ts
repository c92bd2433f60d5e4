/** Free TCP ports on 127.0.0.1 for forwarding; never on other addresses. */
import { createServer } from 'node:net';
import { RigError } from '../core/errors.js';

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Fail clearly when a port the user asked for is taken. */
export function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new RigError('port-in-use', `127.0.0.1:${port} is already in use (${e.code})`, {
          fix: 'choose another port, or leave it unset so the rig picks a free one',
        }),
      ),
    );
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/** QEMU's message when a hostfwd port could not be bound. */
export function isHostFwdBindError(stderr: string): boolean {
  return /Could not set up host forwarding rule|hostfwd.*(in use|failed)/i.test(stderr);
}
