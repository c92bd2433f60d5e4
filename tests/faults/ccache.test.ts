/**
 * A damaged ccache, for real (ccache 4 and gcc, as the kernel build calls them): results and
 * manifests with bytes changed after they were written, a ccache SIGKILLed mid-compile, and a
 * file where the ccache directory should be. The first two cost a recompile and never a wrong
 * object; the third would fail every compile of a kernel build, so the build goes without
 * ccache (kernel/build.ts withUsableCcache) and says so. The rig's own ccache is never touched.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { run, tryRun } from '../../core/exec.js';
import { ccacheProblem, detectToolchain, withUsableCcache, type BuildRequest } from '../../kernel/build.js';
import { fault } from '../helpers/faults.js';
import { gone } from '../helpers/process.js';

const tmp = mkdtempSync(join(tmpdir(), 'rig-ccache-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const cc = (await detectToolchain('gcc')).cc;

/** A C file that takes gcc a while at -O2 (for the kill), and its object built without ccache. */
const src = join(tmp, 'big.c');
writeFileSync(
  src,
  Array.from(
    { length: 1200 },
    (_, i) => `int f${i}(int x) { int s = 0; for (int k = 0; k < x; k++) s += (k * ${i}) ^ (s >> 3); return s; }`,
  ).join('\n') + '\n',
);
const compile = (env: NodeJS.ProcessEnv, out: string) =>
  tryRun('ccache', [cc, '-O2', '-c', src, '-o', out], { env: { ...process.env, ...env } });
await run(cc, ['-O2', '-c', src, '-o', join(tmp, 'direct.o')]);
const direct = readFileSync(join(tmp, 'direct.o'));

function files(dir: string, suffix: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) walk(join(d, e.name));
      else if (suffix.test(e.name)) out.push(join(d, e.name));
  };
  walk(dir);
  return out;
}

const stats = async (dir: string) =>
  Object.fromEntries(
    (await run('ccache', ['--print-stats'], { env: { ...process.env, CCACHE_DIR: dir } })).stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'))
      .map(([k, v]) => [k, Number(v)]),
  ) as Record<string, number>;

await fault(
  t,
  'fault',
  'ccache results and manifests damaged after they were written: recompiled, never a wrong object',
  async (st) => {
    const dir = join(tmp, 'damaged');
    const env = { CCACHE_DIR: dir };
    st.equal((await compile(env, join(tmp, 'first.o'))).ok, true, 'first compile through a fresh ccache');
    const entries = files(dir, /[RM]$/);
    st.ok(entries.length >= 2, `${entries.length} result and manifest files written`);
    // A byte changed in the middle of each, and one file cut in half.
    for (const f of entries) {
      const b = readFileSync(f);
      b[b.length >> 1] ^= 0xff;
      writeFileSync(f, b);
    }
    writeFileSync(entries[0]!, readFileSync(entries[0]!).subarray(0, statSync(entries[0]!).size >> 1));
    const before = await stats(dir);
    const again = await compile(env, join(tmp, 'again.o'));
    st.equal(again.ok, true, `the compile after the damage succeeds: ${again.stderr.slice(0, 300)}`);
    st.ok(readFileSync(join(tmp, 'again.o')).equals(direct), 'its object is byte for byte the one gcc makes alone');
    const after = await stats(dir);
    st.equal((after.cache_miss ?? 0) - (before.cache_miss ?? 0), 1, 'counted as a miss: compiled again, not served');
    st.equal(await ccacheProblem(cc, { ...process.env, ...env }), undefined, "the rig's probe finds it usable");
    const third = await compile(env, join(tmp, 'third.o'));
    st.ok(
      third.ok && readFileSync(join(tmp, 'third.o')).equals(direct),
      'and the entry written again serves a good object',
    );
  },
);

await fault(t, 'fault', 'a ccache SIGKILLed mid-compile: nothing half-written is ever served', async (st) => {
  const dir = join(tmp, 'killed');
  const p = spawn('ccache', [cc, '-O2', '-c', src, '-o', join(tmp, 'killed.o')], {
    env: { ...process.env, CCACHE_DIR: dir },
    detached: true,
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 400));
  process.kill(-p.pid!, 'SIGKILL');
  st.ok(await gone(p.pid!, 5000), 'the killed ccache and its compiler are gone');
  st.same(existsSync(dir) ? files(dir, /R$/) : [], [], 'killed before it stored a result');
  const r = await compile({ CCACHE_DIR: dir }, join(tmp, 'after-kill.o'));
  st.equal(r.ok, true, r.stderr.slice(0, 300));
  st.ok(readFileSync(join(tmp, 'after-kill.o')).equals(direct), 'the next compile makes the right object');
  st.equal(await ccacheProblem(cc, { ...process.env, CCACHE_DIR: dir }), undefined, 'and the ccache is usable');
});

await fault(
  t,
  'fault',
  'a file where the ccache directory should be: the build goes without ccache, and says so',
  async (st) => {
    const notDir = join(tmp, 'not-a-dir');
    writeFileSync(notDir, 'not a directory\n');
    const env = { ...process.env, CCACHE_DIR: notDir };
    const problem = await ccacheProblem(cc, env);
    st.type(problem, 'string', `the probe says why: ${problem}`);
    st.notOk(
      (await compile({ CCACHE_DIR: notDir }, join(tmp, 'x.o'))).ok,
      'a compile through it fails (what make would hit)',
    );
    const req = { toolchain: { cc, version: 'gcc', ccache: true } } as BuildRequest;
    const used = await withUsableCcache(req, env);
    st.equal(used.toolchain.ccache, false, 'the build request goes without ccache');
    st.equal(
      req.toolchain.ccache,
      true,
      'the request given is unchanged (and so is the build key, which has no ccache in it)',
    );
    st.same(
      await withUsableCcache(req, { ...process.env, CCACHE_DIR: join(tmp, 'fresh') }),
      req,
      'a usable ccache is kept',
    );
    st.equal(readFileSync(notDir, 'utf8'), 'not a directory\n', 'the file is left as it was');
  },
);
