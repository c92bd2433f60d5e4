/**
 * The in-guest C helpers (images/guest-tools/*.c), compiled statically on the host and cached by
 * the hash of their sources and the compiler version.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cached, hashParts } from '../core/cache.js';
import { run } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { projectRoot } from '../core/paths.js';
import { info } from '../core/log.js';

export const HELPERS = ['map-and-touch', 'pfn', 'vfio-dma', 'mce-victim', 'pool-edge'] as const;
export type HelperName = (typeof HELPERS)[number];

export interface BuiltHelpers {
  dir: string;
  paths: Record<HelperName, string>;
  key: string;
}

export async function buildHelpers(cc = 'gcc'): Promise<BuiltHelpers> {
  const src = join(projectRoot(), 'images', 'guest-tools');
  const files = readdirSync(src)
    .filter((f) => f.endsWith('.c') || f.endsWith('.h'))
    .sort();
  let version: string;
  try {
    version = (await run(cc, ['--version'])).stdout.split('\n')[0]!;
  } catch {
    throw new RigError('missing-tool', `${cc} is not installed`, { fix: 'run `npm run setup`' });
  }
  const key = hashParts(['helpers-v1', version, ...files.flatMap((f) => [f, readFileSync(join(src, f))])]);
  const entry = await cached('helpers', key, async (staging) => {
    info(`helpers: compiling ${HELPERS.length} static helpers`);
    for (const h of HELPERS) {
      await run(cc, ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', join(staging, h), join(src, `${h}.c`)], {
        what: `compiling the ${h} helper`,
        fix: 'install libc6-dev (static libc) with `npm run setup`',
      });
    }
  });
  const paths = Object.fromEntries(HELPERS.map((h) => [h, join(entry.dir, h)])) as Record<HelperName, string>;
  return { dir: entry.dir, paths, key };
}
