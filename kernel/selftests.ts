/**
 * The kernel's own mm selftests (tools/testing/selftests/vm), built from a kernel tree with
 * that tree's Makefile: its uapi headers installed from the same tree (`headers_install`, out
 * of the tree through O=), each test linked static and stripped (the guest's libc is beside the
 * point), cached by the tree. A test that does not build in a tree is recorded with the
 * compiler's words: the scenario reports it, the other tests still run.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cached, hashParts } from '../core/cache.js';
import { run, tryRun } from '../core/exec.js';
import { RigError } from '../core/errors.js';
import { info } from '../core/log.js';

/**
 * The Makefile targets the rig builds (TEST_GEN_FILES of the 5.10 Makefile, x86_64) and the
 * scripts it copies. hmm-tests needs libhugetlbfs, which Debian 12 does not package: not built.
 */
export const SELFTEST_TARGETS = [
  'compaction_test',
  'gup_benchmark',
  'hugepage-mmap',
  'hugepage-shm',
  'map_hugetlb',
  'map_fixed_noreplace',
  'map_populate',
  'mlock-random-test',
  'mlock2-tests',
  'mremap_dontunmap',
  'on-fault-limit',
  'thuge-gen',
  'userfaultfd',
  'khugepaged',
  'va_128TBswitch',
  'virtual_address_range',
  'write_to_hugetlbfs',
  'protection_keys_64',
] as const;
export type SelftestTarget = (typeof SELFTEST_TARGETS)[number];

export const SELFTEST_SCRIPTS = ['test_vmalloc.sh', 'test_hmm.sh'] as const;

/** Where the tests live in a kernel tree. */
export const SELFTEST_DIR = 'tools/testing/selftests/vm';

export interface SelftestBuild {
  /** The directory of the built tests and the copied scripts. */
  dir: string;
  tree: string;
  /** Each target: built, or the compiler's last lines. */
  targets: Record<string, { built: boolean; error?: string }>;
  seconds: number;
  hit: boolean;
}

/** What a selftests entry is keyed by: the tree's content id, the targets, the build recipe. */
export function selftestsKey(treeId: string): string {
  return hashParts(['selftests-v1', treeId, ...SELFTEST_TARGETS, ...SELFTEST_SCRIPTS, ...makeArgs('OUT', 'HDR')]);
}

/** The make arguments for the targets: headers from the tree, static, stripped. */
export function makeArgs(out: string, headers: string): string[] {
  return [
    `OUTPUT=${out}`,
    `EXTRA_CFLAGS=-I${headers}`,
    'LDFLAGS=-static -s',
    '-k',
    ...SELFTEST_TARGETS.map((t) => `${out}/${t}`),
  ];
}

/** The compiler's lines about one target, from a `make -k` log. */
export function targetErrors(log: string, target: string): string {
  const base = target.replace(/_(32|64)$/, '');
  const lines = log.split('\n');
  const mine = lines.filter((l) => l.includes(`${base}.c:`) || l.includes(`/${target}]`) || l.includes(`-o ${target}`));
  const errors = mine.filter((l) => /error|undefined reference|cannot find/.test(l));
  const pick = errors.length ? errors : mine.length ? mine : lines.filter((l) => /error/i.test(l));
  return pick.slice(-6).join('\n') || 'not built (make said nothing about it)';
}

/** Build the selftests of the tree at `treeDir` (its `src`), cached by `treeId`. */
export async function buildSelftests(treeDir: string, treeId: string): Promise<SelftestBuild> {
  const t0 = Date.now();
  const src = treeDir;
  if (!existsSync(join(src, SELFTEST_DIR, 'Makefile')))
    throw new RigError('no-selftests', `${src} has no ${SELFTEST_DIR}/Makefile`, {
      fix: 'give a kernel tree that carries its selftests (a source package or a git tree, not headers only)',
    });
  const entry = await cached('selftests', selftestsKey(treeId), async (staging) => {
    info(`selftests: building ${SELFTEST_DIR} from ${src}`);
    const hdrBuild = join(staging, 'hdr-build');
    const headers = join(staging, 'usr');
    mkdirSync(hdrBuild, { recursive: true });
    await run('make', ['-C', src, `O=${hdrBuild}`, `INSTALL_HDR_PATH=${headers}`, 'headers_install'], {
      what: `headers_install of ${src}`,
      fix: 'see the make output; the tree must be a kernel source tree',
    });
    const out = join(staging, 'vm');
    mkdirSync(out, { recursive: true });
    const m = await tryRun('make', ['-C', join(src, SELFTEST_DIR), ...makeArgs(out, join(headers, 'include'))]);
    const log = m.stdout + '\n' + m.stderr;
    writeFileSync(join(staging, 'make.log'), log);
    const targets: SelftestBuild['targets'] = {};
    for (const t of SELFTEST_TARGETS)
      targets[t] = existsSync(join(out, t)) ? { built: true } : { built: false, error: targetErrors(log, t) };
    for (const s of SELFTEST_SCRIPTS)
      if (existsSync(join(src, SELFTEST_DIR, s))) copyFileSync(join(src, SELFTEST_DIR, s), join(out, s));
    rmSync(hdrBuild, { recursive: true, force: true });
    rmSync(headers, { recursive: true, force: true });
    const built = Object.values(targets).filter((x) => x.built).length;
    info(`selftests: ${built} of ${SELFTEST_TARGETS.length} built in ${Math.round((Date.now() - t0) / 1000)} s`);
    writeFileSync(join(staging, 'selftests.json'), JSON.stringify({ tree: treeId, targets }, null, 2) + '\n');
  });
  const meta = JSON.parse(readFileSync(join(entry.dir, 'selftests.json'), 'utf8')) as Pick<SelftestBuild, 'targets'>;
  return {
    dir: join(entry.dir, 'vm'),
    tree: treeId,
    targets: meta.targets,
    seconds: (Date.now() - t0) / 1000,
    hit: entry.hit,
  };
}
