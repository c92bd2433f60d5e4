/**
 * Debian packages through a private apt configuration that the rig writes itself: its own
 * sources list, lists and archive cache under the rig's cache directory. The host's apt
 * sources are never touched. apt checks the Release signature (Debian's archive keyring)
 * and the package hash; the rig checks the .deb's SHA256 against the index once more.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheRoot } from './paths.js';
import { fileSha256, lockKey } from './cache.js';
import { run } from './exec.js';
import { RigError } from './errors.js';
import { info, warn } from './log.js';

export interface AptSuite {
  uri: string;
  suite: string;
  components: string[];
}

export interface AptDistro {
  /** Name of the private configuration, e.g. "bullseye". */
  name: string;
  suites: AptSuite[];
}

const MIRROR = () => process.env.DMEMFS_RIG_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export function debianDistro(name: 'bookworm' | 'bullseye'): AptDistro {
  const m = MIRROR();
  if (name === 'bookworm') {
    return {
      name,
      suites: [
        { uri: m, suite: 'bookworm', components: ['main'] },
        { uri: m, suite: 'bookworm-updates', components: ['main'] },
        {
          uri: process.env.DMEMFS_RIG_DEBIAN_SECURITY ?? 'http://deb.debian.org/debian-security',
          suite: 'bookworm-security',
          components: ['main'],
        },
      ],
    };
  }
  return { name, suites: [{ uri: m, suite: 'bullseye', components: ['main'] }] };
}

export interface PackageInfo {
  name: string;
  version: string;
  sha256: string;
  size: number;
  filename: string;
}

export class PrivateApt {
  readonly dir: string;
  constructor(
    readonly distro: AptDistro,
    root = cacheRoot(),
  ) {
    this.dir = join(root, 'apt', distro.name);
  }

  private opts(): string[] {
    const d = this.dir;
    return [
      '-o',
      `Dir::Etc::SourceList=${join(d, 'sources.list')}`,
      '-o',
      `Dir::Etc::SourceParts=${join(d, 'sources.list.d')}`,
      '-o',
      `Dir::Etc::Preferences=${join(d, 'preferences')}`,
      '-o',
      `Dir::Etc::PreferencesParts=${join(d, 'preferences.d')}`,
      '-o',
      `Dir::State=${join(d, 'state')}`,
      '-o',
      `Dir::State::Lists=${join(d, 'state', 'lists')}`,
      '-o',
      `Dir::State::status=${join(d, 'state', 'status')}`,
      '-o',
      `Dir::Cache=${join(d, 'cache')}`,
      '-o',
      'Acquire::Languages=none',
      '-o',
      'APT::Sandbox::User=root',
      '-o',
      'Debug::NoLocking=true',
      '-o',
      'APT::Architecture=amd64',
      '-o',
      'APT::Architectures=amd64',
    ];
  }

  private writeConfig(): void {
    for (const sub of ['sources.list.d', 'preferences.d', 'state/lists/partial', 'cache/archives/partial'])
      mkdirSync(join(this.dir, sub), { recursive: true });
    const lines = this.distro.suites.map(
      (s) => `deb [signed-by=${KEYRING}] ${s.uri} ${s.suite} ${s.components.join(' ')}`,
    );
    // Another rig run may be reading these at this moment (seen: its apt-cache failed on a
    // half-written sources.list): each is replaced whole, and only when it changed.
    replaceIfChanged(join(this.dir, 'sources.list'), lines.join('\n') + '\n');
    replaceIfChanged(join(this.dir, 'preferences'), '');
    if (!existsSync(join(this.dir, 'state', 'status'))) replaceIfChanged(join(this.dir, 'state', 'status'), '');
  }

  private listsAgeHours(): number {
    const lists = join(this.dir, 'state', 'lists');
    if (!existsSync(lists)) return Infinity;
    const files = readdirSync(lists).filter(
      (f) => f.endsWith('Packages') || f.endsWith('Packages.lz4') || f.includes('_Packages'),
    );
    if (!files.length) return Infinity;
    const newest = Math.max(...files.map((f) => statSync(join(lists, f)).mtimeMs));
    return (Date.now() - newest) / 3600_000;
  }

  /** apt-get update into the private lists (when missing, older than maxAgeHours, or forced). */
  async update(opts: { maxAgeHours?: number; force?: boolean } = {}): Promise<void> {
    this.writeConfig();
    if (!opts.force && this.listsAgeHours() < (opts.maxAgeHours ?? 24)) return;
    if (!existsSync(KEYRING)) {
      throw new RigError('missing-keyring', `${KEYRING} is missing: apt cannot verify Debian's archive`, {
        fix: 'run `npm run setup` (installs debian-archive-keyring)',
      });
    }
    // One update at a time across rig runs (apt runs without its own locks here); a run that
    // waited finds the lists fresh.
    const release = await lockKey('apt', `${this.distro.name}-update`, dirname(dirname(this.dir)));
    try {
      if (!opts.force && this.listsAgeHours() < (opts.maxAgeHours ?? 24)) return;
      info(
        `apt (${this.distro.name}): updating package lists from ${this.distro.suites.map((s) => s.suite).join(', ')}`,
      );
      await run('apt-get', [...this.opts(), '-q', 'update'], {
        what: `apt-get update (${this.distro.name})`,
        fix: "check that Debian's archive is reachable, or set DMEMFS_RIG_DEBIAN_MIRROR to a reachable mirror",
      });
    } finally {
      release();
    }
  }

  /** Candidate version and index data of a package (after update). */
  async show(name: string, version?: string): Promise<PackageInfo> {
    const spec = version ? `${name}=${version}` : name;
    let out: string;
    try {
      out = (await run('apt-cache', [...this.opts(), 'show', '--no-all-versions', spec])).stdout;
    } catch (e) {
      throw new RigError(
        'no-package',
        `Debian package ${spec} is not in ${this.distro.suites.map((s) => s.suite).join(', ')}`,
        {
          fix: version
            ? `the archive no longer carries ${version}; pick the version it has (apt-cache policy ${name})`
            : 'check the package name',
          cause: e,
        },
      );
    }
    const field = (f: string) => new RegExp(`^${f}: (.*)$`, 'm').exec(out)?.[1]?.trim();
    const info: PackageInfo = {
      name,
      version: field('Version') ?? '',
      sha256: field('SHA256') ?? '',
      size: Number(field('Size') ?? 0),
      filename: field('Filename') ?? '',
    };
    if (!info.version || !/^[0-9a-f]{64}$/.test(info.sha256))
      throw new RigError('apt-index', `apt index has no version/SHA256 for ${spec}`, { evidence: out.slice(0, 2000) });
    return info;
  }

  async closure(packages: string[]): Promise<ClosureEntry[]> {
    await this.update();
    // A simulated install against the private (empty) dpkg status lists the whole closure.
    const { stdout } = await run(
      'apt-get',
      [...this.opts(), '-q', '-s', '--no-install-recommends', 'install', ...packages],
      {
        what: `resolving the dependencies of ${packages.join(' ')}`,
        fix: 'check the package names against Debian bookworm',
      },
    );
    const inst = parseSimulatedInstall(stdout);
    if (!inst.length)
      throw new RigError('apt-index', `apt resolved nothing for ${packages.join(' ')}`, {
        evidence: stdout.slice(0, 2000),
      });
    const shown = parseShowRecords(
      (
        await run('apt-cache', [
          ...this.opts(),
          'show',
          '--no-all-versions',
          ...inst.map((e) => `${e.name}=${e.version}`),
        ])
      ).stdout,
    );
    return inst.map((e) => {
      const rec = shown.get(`${e.name}=${e.version}`);
      if (!rec) throw new RigError('apt-index', `the index has no SHA256 for ${e.name} ${e.version}`);
      return {
        name: e.name,
        version: e.version,
        sha256: rec.sha256,
        size: rec.size,
        file: `${e.name}_${e.version.replace(/:/g, '%3a')}_${e.arch}.deb`,
      };
    });
  }

  async downloadClosure(entries: ClosureEntry[]): Promise<Map<string, string>> {
    const archives = join(this.dir, 'cache', 'archives');
    const missing = entries.filter((e) => !existsSync(join(archives, e.file)));
    if (missing.length) {
      const mib = missing.reduce((a, e) => a + e.size, 0) / 1048576;
      info(`apt (${this.distro.name}): downloading ${missing.length} packages (${mib.toFixed(1)} MiB)`);
      const started = Date.now();
      await run(
        'apt-get',
        [
          ...this.opts(),
          '-qq',
          '--no-install-recommends',
          '--download-only',
          '-y',
          'install',
          ...missing.map((e) => `${e.name}=${e.version}`),
        ],
        {
          what: 'apt-get --download-only',
        },
      );
      info(`apt (${this.distro.name}): downloaded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    const out = new Map<string, string>();
    for (const e of entries) {
      const p = join(archives, e.file);
      await verifySha256(p, e.sha256, `${e.name} ${e.version}`);
      out.set(e.name, p);
    }
    return out;
  }

  /** The package a metapackage depends on first (linux-image-amd64 -> linux-image-6.1.0-NN-amd64). */
  async resolveDepends(name: string): Promise<string> {
    const out = (await run('apt-cache', [...this.opts(), 'depends', name])).stdout;
    const m = /Depends: ([a-z0-9][a-z0-9.+-]+)/.exec(out);
    if (!m) throw new RigError('apt-index', `${name} depends on nothing that apt names`, { evidence: out });
    return m[1]!;
  }

  /**
   * One package in this distro's archive directory: reused when a file of that name is there
   * and its SHA256 matches the index (an interrupted download never leaves one: download()
   * renames only after the check); otherwise downloaded. A mismatching file is replaced.
   */
  async fetch(pkg: PackageInfo): Promise<string> {
    const archives = join(this.dir, 'cache', 'archives');
    sweepDownloads(archives);
    const name = pkg.filename.split('/').pop() ?? '';
    const existing = name ? join(archives, name) : '';
    if (existing && existsSync(existing)) {
      if ((await fileSha256(existing)) === pkg.sha256) {
        info(`apt (${this.distro.name}): ${pkg.name} ${pkg.version} already downloaded (sha256 verified)`);
        return existing;
      }
      warn(`apt (${this.distro.name}): ${existing} does not match the index; downloading it again`);
      rmSync(existing, { force: true });
    }
    return this.download(pkg, archives);
  }

  /**
   * Download one package into destDir and verify its SHA256 against the signed index.
   * The file appears under its final name only after the check.
   */
  async download(pkg: PackageInfo, destDir: string): Promise<string> {
    mkdirSync(destDir, { recursive: true });
    const tmp = join(destDir, `.download-${process.pid}`);
    mkdirSync(tmp, { recursive: true });
    info(`apt (${this.distro.name}): downloading ${pkg.name} ${pkg.version} (${(pkg.size / 1048576).toFixed(1)} MiB)`);
    await run('apt-get', [...this.opts(), '-q', 'download', `${pkg.name}=${pkg.version}`], {
      cwd: tmp,
      what: `download of ${pkg.name}`,
    });
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) throw new RigError('download', `apt-get download produced no .deb for ${pkg.name}`);
    await verifySha256(join(tmp, deb), pkg.sha256, `${pkg.name} ${pkg.version}`);
    const final = join(destDir, deb);
    renameSync(join(tmp, deb), final);
    rmSync(tmp, { recursive: true, force: true });
    return final;
  }
}

export interface ClosureEntry {
  name: string;
  version: string;
  sha256: string;
  size: number;
  file: string;
}

/** Parse `apt-get -s install` lines: "Inst name (version origin [arch])". */
export function parseSimulatedInstall(text: string): Array<{ name: string; version: string; arch: string }> {
  const out: Array<{ name: string; version: string; arch: string }> = [];
  for (const line of text.split('\n')) {
    const m = /^Inst (\S+) \((\S+) .*\[(\w+)\]\)/.exec(line.trim());
    if (m) out.push({ name: m[1]!, version: m[2]!, arch: m[3]! });
  }
  return out;
}

/** "name=version" -> SHA256 and Size of each record of `apt-cache show` output. */
export function parseShowRecords(text: string): Map<string, { sha256: string; size: number }> {
  const out = new Map<string, { sha256: string; size: number }>();
  for (const rec of text.split(/\n\n+/)) {
    const f = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(rec)?.[1]?.trim();
    const name = f('Package');
    const version = f('Version');
    const sha = f('SHA256');
    if (name && version && sha) out.set(`${name}=${version}`, { sha256: sha, size: Number(f('Size') ?? 0) });
  }
  return out;
}

export interface ClosureOps {
  /** The full dependency closure of `packages` (nothing counts as installed), without recommends. */
  closure(packages: string[]): Promise<ClosureEntry[]>;
  /** Download a closure into the private archive cache; every file checked against its SHA256. */
  downloadClosure(entries: ClosureEntry[]): Promise<Map<string, string>>;
}

/** Check a file's SHA256; a mismatch is an error that names both hashes. */
export async function verifySha256(path: string, expected: string, what: string): Promise<void> {
  const got = await fileSha256(path);
  if (got !== expected.toLowerCase()) {
    throw new RigError('checksum-mismatch', `checksum mismatch for ${what}: expected sha256 ${expected}, got ${got}`, {
      fix: 'the download is damaged or was replaced; delete it and retry, or check the mirror',
    });
  }
}

/** Remove the temporary download directories of rig processes that no longer exist (interrupted downloads). */
export function sweepDownloads(dir: string): void {
  if (!existsSync(dir)) return;
  for (const n of readdirSync(dir)) {
    const m = /^\.download-(\d+)$/.exec(n);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) rmSync(join(dir, n), { recursive: true, force: true });
  }
}

/** Write `text` to `path` by rename (readers see the old file or the new one), unless it holds it already. */
export function replaceIfChanged(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
