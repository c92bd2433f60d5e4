/**
 * Bad input: each gives one clear error naming the problem and the fix, a non-zero exit, and
 * loses nothing (no cache entry is written for it).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cacheRoot, projectRoot } from '../../core/paths.js';
import { chooseAccel } from '../../vm/accel.js';
import { fault, oneClearError } from '../helpers/faults.js';
import { fullOnly } from '../helpers/tier.js';
import { rigCli } from '../helpers/cli.js';
import { git, gitTree } from '../helpers/git-tree.js';
import { FULL_RUN_BUNDLE, ORIGINAL_MBOX, REBASED_MBOX, rawMessages } from '../helpers/fixtures.js';
import type { RunResults } from '../../core/results.js';

const tmp = mkdtempSync(join(tmpdir(), 'rig-bad-input-'));
/** A profile file as the test edits it: the fields it touches. */
type ProfileJson = { name: string; source: { sha256: string }; series?: unknown } & Record<string, unknown>;
const profile = (name: string, edit: (p: ProfileJson) => void): string => {
  const p = JSON.parse(readFileSync(join(projectRoot(), 'kernel', 'profiles', 'rfc-v2-debian.json'), 'utf8'));
  p.name = name;
  edit(p);
  const path = join(tmp, `${name}.json`);
  writeFileSync(path, JSON.stringify(p, null, 2));
  return path;
};

/** One error line naming the kind, one fix line, non-zero exit. */

/** The entries of the cache's tree, kernel and source stages, to show a refused input wrote none. */
const entries = () =>
  ['tree', 'kernel', 'source'].flatMap((d) =>
    existsSync(join(cacheRoot(), d)) ? readdirSync(join(cacheRoot(), d)).map((n) => `${d}/${n}`) : [],
  );

await fault(t, 'bad-input', 'a signature nobody knows, to bisect or to find the culprit of', async (st) => {
  for (const args of [
    ['bisect', '--signature', 'no-such-signature'],
    ['culprits', '--only', 'no-such-signature'],
  ])
    oneClearError(st, await rigCli(args), /\[unknown-signature\]/, /no known-failure signature "no-such-signature"/);
  oneClearError(
    st,
    await rigCli(['bisect', '--signature', 'vfio-get-dmem-pfn-null', '--scenario', 'reservation']),
    /\[usage\]/,
    /belongs to scenario vfio-pin, not reservation/,
  );
});

await fault(t, 'bad-input', 'a reproducer of what the given run did not reproduce, or of what has none', async (st) => {
  const bundle = join(tmp, 'vfio-fixed-bundle');
  mkdirSync(bundle, { recursive: true });
  const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
  for (const s of run.scenarios)
    for (const c of s.signatures)
      if (c.id === 'vfio-get-dmem-pfn-null') Object.assign(c, { reproduced: false, outcome: 'fixed' });
  writeFileSync(join(bundle, 'results.json'), JSON.stringify(run));
  const out = join(tmp, 'repro-out');
  oneClearError(
    st,
    await rigCli(['repro', 'vfio-get-dmem-pfn-null', '--bundle', bundle, '--out', out, '--prove']),
    /\[not-reproduced\]/,
    /signature vfio-get-dmem-pfn-null did not reproduce in .*vfio-fixed-bundle \(vfio-pin: fixed\)/,
  );
  oneClearError(
    st,
    await rigCli(['repro', 'kvm-dmem-4k', '--out', out]),
    /\[no-reproducer\]/,
    /signature kvm-dmem-4k has no standalone reproducer: it needs a second-level guest/,
  );
  oneClearError(st, await rigCli(['repro', 'no-such-signature', '--out', out]), /\[unknown-signature\]/, /no-such/);
  st.notOk(existsSync(out), 'nothing written for any of them');
});

await fault(t, 'bad-input', 'report --mail on a bundle whose series names no mbox, or one not here', async (st) => {
  const run = JSON.parse(readFileSync(FULL_RUN_BUNDLE(), 'utf8')) as RunResults;
  const write = (name: string, origin: Record<string, unknown>) => {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'results.json'),
      JSON.stringify({ ...run, series: { ...run.series, name: 'unpinned-0', origin } }),
    );
    return dir;
  };
  const none = write('mail-no-mbox', { kind: 'git-range', path: '', sha256: '0'.repeat(64) });
  oneClearError(st, await rigCli(['report', '--mail', none]), /\[no-mbox\]/, /names no mbox for its series/);
  st.notOk(existsSync(join(none, 'mail')), 'no mail directory written');
  const gone = write('mail-mbox-gone', { kind: 'mbox', path: join(tmp, 'gone.mbox'), sha256: '0'.repeat(64) });
  oneClearError(st, await rigCli(['report', '--mail', gone]), /\[no-mbox\]/, /gone\.mbox is not here/);
});

await fault(t, 'bad-input', 'unknown profile', async (st) => {
  oneClearError(
    st,
    await rigCli(['run', '--profile', 'no-such-profile']),
    /\[unknown-profile\]/,
    /unknown profile "no-such-profile"/,
  );
});

await fault(t, 'bad-input', 'offline with a cache that holds no Debian kernel', async (st) => {
  const empty = mkdtempSync(join(tmp, 'empty-cache-'));
  const r = await rigCli(['boot', '--', 'true'], { env: { DMEMFS_RIG_OFFLINE: '1', DMEMFS_RIG_CACHE: empty } });
  oneClearError(st, r, /\[offline\]/, /DMEMFS_RIG_OFFLINE=1 and the cache holds no Debian kernel/);
  st.notMatch(r.stderr, /QEMU started/, 'no guest was started');
  st.same(
    readdirSync(empty).filter((d) => d !== 'apt'),
    [],
    'nothing was written to the cache',
  );
});

await fault(t, 'bad-input', 'bad dmem= values are refused before anything boots', async (st) => {
  for (const v of ['100M', '!1G@4G', '1G@0', 'garbage']) {
    const r = await rigCli(['boot', '--append', `dmem=${v}`, '--', 'true']);
    oneClearError(st, r, /\[bad-dmem\]/, /dmem=/);
    st.notMatch(r.stderr, /QEMU started/, `dmem=${v}: no guest was started`);
  }
});

await fault(t, 'bad-input', "a profile's own pinned series altered in place (the tamper check)", async (st) => {
  const msgs = rawMessages(readFileSync(REBASED_MBOX(), 'utf8'));
  const i = msgs.findIndex((m) => /Subject: \[RFC V2 5\.10\.223 07\/37\]/.test(m));
  msgs[i] = msgs[i]!.replace(/^\+(\s*)(\S)/m, '+$1/* damaged */ $2');
  const path = join(tmp, 'damaged.mbox');
  writeFileSync(path, msgs.join('\n'));
  const p = profile('tampered', (x) => {
    x.series = { name: 'rfc-v2-on-debian-5.10.223', mbox: path };
  });
  oneClearError(
    st,
    await rigCli(['kernel', 'build', '--profile', p]),
    /\[series-damaged\]/,
    /patch 7 \(dmem: trace core functions\) is altered/,
  );
});

await fault(t, 'bad-input', 'an mbox cut short: patches missing', async (st) => {
  const before = entries();
  const text = readFileSync(REBASED_MBOX(), 'utf8');
  const path = join(tmp, 'truncated.mbox');
  writeFileSync(path, text.slice(0, Math.floor(text.length / 2)));
  oneClearError(
    st,
    await rigCli(['kernel', 'build', '--series', path]),
    /\[series-incomplete\]/,
    /patches [\d, ]+ of 37 are missing/,
  );
  st.same(entries(), before, 'no cache entry written');
});

await fault(t, 'bad-input', 'an mbox that mixes two versions of the series', async (st) => {
  const before = entries();
  const rebased = rawMessages(readFileSync(REBASED_MBOX(), 'utf8'));
  const original = rawMessages(readFileSync(ORIGINAL_MBOX(), 'utf8'));
  const first = original.find((m) => /Subject: \[RFC V2 01\/37\]/.test(m))!;
  const mixed = [first, ...rebased.filter((m) => !/Subject: \[RFC V2 5\.10\.223 01\/37\]/.test(m))];
  const path = join(tmp, 'mixed.mbox');
  writeFileSync(path, mixed.join('\n'));
  const r = await rigCli(['kernel', 'build', '--series', path]);
  oneClearError(
    st,
    r,
    /\[series-mixed\]/,
    /mixes \[RFC V2 5\.10\.223\] and \[RFC V2\]|mixes \[RFC V2\] and \[RFC V2 5\.10\.223\]/,
  );
  st.match(r.stderr, /one version/, 'the fix says to keep one version');
  st.same(entries(), before, 'no cache entry written');
});

await fault(t, 'bad-input', 'a Message-Id where the archive cannot be reached', async (st) => {
  const before = entries();
  const r = await rigCli(['kernel', 'tree', '--series', '<cover.1607332046.git.yuleixzhang@tencent.com>'], {
    env: { DMEMFS_RIG_ARCHIVE_URL: 'http://127.0.0.1:9/{messageId}/t.mbox.gz' },
  });
  oneClearError(st, r, /\[network\]/, /cover\.1607332046\.git\.yuleixzhang@tencent\.com/);
  st.match(r.stderr, /--series FILE/, 'the fix names the offline alternatives: an mbox file ...');
  st.match(r.stderr, /PATH:BASE\.\.HEAD/, '... or a git range');
  st.same(entries(), before, 'no cache entry written');
});

await fault(t, 'bad-input', 'a git range that is not linear (a merge in it)', async (st) => {
  const before = entries();
  const dir = gitTree(['f1'], join(tmp, 'nonlinear'));
  git(dir, 'checkout', '-q', '-b', 'side', 'base');
  writeFileSync(join(dir, 'side.c'), 'int side;\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'side');
  git(dir, 'checkout', '-q', 'main');
  git(dir, 'merge', '-q', '--no-edit', 'side');
  const r = await rigCli(['kernel', 'tree', '--series', `${dir}:base..main`]);
  oneClearError(st, r, /\[nonlinear-range\]/, /not linear: it holds merge [0-9a-f]{12}/);
  st.match(r.stderr, /rebase/, 'the fix says to rebase the range');
  st.same(entries(), before, 'no cache entry written');
});

await fault(t, 'bad-input', 'a git range in a tree with uncommitted changes', async (st) => {
  const before = entries();
  const dir = gitTree(['f1', 'f2'], join(tmp, 'dirty'));
  writeFileSync(join(dir, 'f1.c'), 'int f1 = 1;\n');
  const r = await rigCli(['kernel', 'tree', '--series', `${dir}:base..HEAD`]);
  oneClearError(st, r, /\[dirty-tree\]/, /uncommitted changes/);
  st.equal(git(dir, 'status', '--porcelain'), 'M f1.c', 'the tree is untouched');
  st.same(entries(), before, 'no cache entry written');
});

await fault(t, 'bad-input', 'a series that no longer applies (the original mail on 5.10.223)', async (st) => {
  const p = profile('original-on-debian', (x) => {
    x.series = { name: 'rfc-v2', mbox: ORIGINAL_MBOX() };
  });
  const r = await rigCli(['kernel', 'tree', '--profile', p]);
  oneClearError(st, r, /\[(apply|patch)[a-z-]*\]/, /12/);
  st.match(
    r.stderr + r.stdout,
    /mm: export mempolicy interfaces|dmem: introduce mempolicy support/,
    'the failing patch is named',
  );
});

await fault(t, 'bad-input', 'a source archive whose hash does not match the pin', async (st) => {
  const p = profile('wrong-hash', (x) => {
    x.source.sha256 = '0'.repeat(64);
  });
  const r = await rigCli(['kernel', 'tree', '--profile', p]);
  oneClearError(st, r, /\[checksum-mismatch\]/, /sha256/);
});

await fault(t, 'bad-input', 'a missing host tool (QEMU)', async (st) => {
  const r = await rigCli(['boot', '--', 'true'], { env: { DMEMFS_RIG_QEMU: '/nonexistent/qemu-system-x86_64' } });
  oneClearError(st, r, /\[(qemu-spawn|missing-tool)\]/, /qemu-system-x86_64/);
  st.match(r.stderr, /setup/, 'the fix names the setup step');
});

await fault(t, 'bad-input', 'too little memory for the requested guest', async (st) => {
  const r = await rigCli(['boot', '--node-mib', String(512 * 1024), '--', 'true']);
  oneClearError(st, r, /\[host-memory\]/, /needs \d+ MiB of guest RAM; the host has \d+ MiB available/);
});

const isRoot = process.getuid?.() === 0;
await fault(
  t,
  'bad-input',
  'too little disk for the cache',
  async (st) => {
    const small = join(tmp, 'small-cache');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', small]);
    try {
      const r = await rigCli(['kernel', 'tree'], { env: { DMEMFS_RIG_CACHE: small } });
      oneClearError(st, r, /\[disk-space\]/, /needs about \d+ MiB free in .*small-cache.*only \d+ MiB are free/);
      st.same(
        readdirSync(join(small, 'source')).filter((n) => !n.startsWith('.')),
        [],
        'no entry was started',
      );
    } finally {
      execFileSync('umount', [small]);
    }
  },
  { skip: isRoot ? false : 'mounting a small tmpfs needs root' },
);

const hasKvm = chooseAccel().kvmUsable;
await fault(
  t,
  'bad-input',
  'no KVM when --accel kvm is forced',
  async (st) => {
    oneClearError(
      st,
      await rigCli(['accel', '--accel', 'kvm']),
      /\[no-kvm\]/,
      /KVM was requested but is not usable here/,
    );
  },
  { skip: hasKvm ? 'this host has usable KVM' : false },
);

await fault(t, 'bad-input', 'a port taken between the probe and QEMU: the guest boots on another one', async (st) => {
  // The port is really taken: a listener on 127.0.0.1 holds it, and the rig is handed it first
  // (what happens when another process binds the probed port before QEMU does).
  const net = await import('node:net');
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const busy = (srv.address() as { port: number }).port;
  const { freeLoopbackPort } = await import('../../vm/ports.js');
  const { bootFirstGuest, prepareFirstGuest } = await import('../../runner/first-guest.js');
  const { chooseAccel } = await import('../../vm/accel.js');
  const handed: number[] = [];
  const pickPort = async () => {
    const p = handed.length === 0 ? busy : await freeLoopbackPort();
    handed.push(p);
    return p;
  };
  const g = await bootFirstGuest(await prepareFirstGuest(), chooseAccel(), { pickPort, name: 'busy-port' });
  try {
    const port = g.opts.spec.forwards.find((f) => f.guestPort === 22)?.hostPort;
    st.equal(handed[0], busy, 'the first port handed to QEMU was the busy one');
    st.ok(handed.length >= 2, `QEMU could not bind it and the rig took another (${handed.join(', ')})`);
    st.not(port, busy, `the guest's SSH forward is on ${port}, not the busy ${busy}`);
    const r = await g.exec(['true']);
    st.equal(r.code, 0, 'and the guest answers over it');
  } finally {
    await g.stop();
    srv.close();
  }
});

await fault(
  t,
  'bad-input',
  'a bisect with nothing to find: both ends agree',
  async (st) => {
    // 37/37 adds only documentation: prefixes 36 and 37 build the same kernel code, and the
    // scenario passes on both. The ends are judged first; the bisect stops there.
    const out = join(tmp, 'bisect');
    const r = await rigCli([
      'bisect',
      '--scenario',
      'reservation-bad-values',
      '--good',
      '36',
      '--bad',
      '37',
      '--out',
      out,
    ]);
    oneClearError(st, r, /\[bisect-nothing\]/, /prefix 36 and prefix 37 agree \(pass\)/);
    st.match(r.stderr, /--good K/, 'the fix says what to change');
    const staging = (d: string) =>
      existsSync(join(cacheRoot(), d, '.staging')) ? readdirSync(join(cacheRoot(), d, '.staging')) : [];
    st.same([...staging('tree'), ...staging('kernel')], [], 'no half-written tree or kernel entry');
  },
  { skip: fullOnly('the refusal is unit-tested (bisect-search.test); bisect.test runs a real bisect') },
);

t.teardown(() => {
  if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
});
