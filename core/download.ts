/**
 * HTTP(S) downloads verified by SHA256: streamed to "<dest>.partial" with progress, checked,
 * then renamed. A mismatch deletes the partial file and names both hashes.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RigError } from './errors.js';
import { Progress } from './log.js';

export async function downloadVerified(
  url: string,
  dest: string,
  sha256: string,
  opts: { label?: string; timeoutMs?: number } = {},
): Promise<string> {
  if (!/^[0-9a-f]{64}$/i.test(sha256))
    throw new RigError('no-checksum', `no valid SHA256 given for ${url}`, {
      fix: 'pin the SHA256 of the file in the profile (or pass it on the command line)',
    });
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000) });
  } catch (e) {
    throw new RigError('download', `cannot download ${url}: ${(e as Error).message}`, {
      fix: 'check the network, or give a local copy of the file',
    });
  }
  if (!res.ok || !res.body)
    throw new RigError('download', `download of ${url} failed: HTTP ${res.status}`, {
      fix: 'check the URL, or give a local copy of the file',
    });
  const total = Number(res.headers.get('content-length') ?? 0) || undefined;
  const progress = new Progress(`download ${opts.label ?? url}`, total ? total / 1048576 : undefined, ' MiB');
  const hash = createHash('sha256');
  let bytes = 0;
  const partial = `${dest}.partial`;
  const body = Readable.fromWeb(res.body as never);
  body.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
    progress.update(bytes / 1048576);
  });
  const file = createWriteStream(partial);
  try {
    await pipeline(body, file);
  } catch (e) {
    // The file may still be opening when the body breaks: removed only once it is closed, or a
    // late open would leave an empty .partial behind (the fault suite's short download saw one).
    if (!file.closed) await new Promise<void>((r) => file.once('close', () => r()));
    rmSync(partial, { force: true });
    throw new RigError('download', `download of ${url} was interrupted: ${(e as Error).message}`);
  }
  const got = hash.digest('hex');
  if (got !== sha256.toLowerCase()) {
    rmSync(partial, { force: true });
    throw new RigError(
      'checksum-mismatch',
      `checksum mismatch for ${url}: expected sha256 ${sha256.toLowerCase()}, got ${got}`,
      {
        fix:
          'the file is damaged or was replaced upstream; nothing was kept. Check the source, or update the ' +
          'pinned hash if the change is legitimate',
      },
    );
  }
  renameSync(partial, dest);
  progress.done(`${(bytes / 1048576).toFixed(1)} MiB, sha256 verified`);
  return dest;
}
