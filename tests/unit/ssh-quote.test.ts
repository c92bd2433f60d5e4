/** Argument arrays quoted for the guest shell: nothing in an argument is ever run. */
import t from 'tap';
import { publicKeyBlob, quoteArgv, shellQuote } from '../../vm/ssh.js';

t.test('arguments are quoted for the remote shell, metacharacters inert', async (t) => {
  t.equal(shellQuote('/proc/meminfo'), '/proc/meminfo');
  t.equal(shellQuote(''), "''");
  t.equal(shellQuote('a b'), "'a b'");
  t.equal(shellQuote("it's"), `'it'\\''s'`);
  t.equal(shellQuote('$(reboot); `id` | x & y > z'), "'$(reboot); `id` | x & y > z'");
  t.equal(
    quoteArgv(['mount', '-t', 'dmemfs', '-o', 'pagesize=2M', 'none', '/mnt/dmem']),
    'mount -t dmemfs -o pagesize=2M none /mnt/dmem',
  );
  t.throws(() => quoteArgv([]), /empty command/);
});

t.test('public key blob', async (t) => {
  t.same(publicKeyBlob('ssh-ed25519 AAAAC3Nza+/= comment'), { type: 'ssh-ed25519', blob: 'AAAAC3Nza+/=' });
  t.throws(() => publicKeyBlob('ssh-ed25519 bad"blob'), /malformed/);
});
