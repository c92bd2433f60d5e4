/**
 * Programs written elsewhere, as data: the peer tools' outcomes from their words, the command
 * lines (no shell, the target put in), the fuzzer's seed and its count of calls; and the
 * scenarios' wiring on a scripted guest (a fake for argument building; the real runs are npm
 * test's short cases and npm start's): an outcome other than the data's fails its check.
 */
import t from 'tap';
import {
  FUZZ,
  PEER_CASES,
  PEER_TARGETS,
  peerArgv,
  peerOutcome,
  trinityArgv,
  trinityCalls,
} from '../../scenarios/peers.js';
import { fuzzSeed } from '../../scenarios/defs/fuzz-dmemfs.js';
import { peerTools, peerToolsWith } from '../../scenarios/defs/peer-tools.js';

const OUTCOME = /^(pass|(fail|timeout|report): .+)$/;

t.test('every case is held on each of its targets to a well-formed outcome, with why', async (t) => {
  for (const c of PEER_CASES)
    for (const [target, held] of Object.entries(c.outcomes)) {
      t.ok((PEER_TARGETS as readonly string[]).includes(target), `${c.id}: ${target} is a target`);
      t.match(held!.outcome, OUTCOME, `${c.id}_${target}: ${held!.outcome}`);
      t.ok(held!.because.length > 20, `${c.id}_${target}: says why`);
    }
  t.same(
    [...peerTools.measurements].sort(),
    PEER_CASES.flatMap((c) => Object.keys(c.outcomes).map((x) => `${c.id}_${x}`)).sort(),
    'the measurements are the data’s cases on their targets',
  );
  const one = peerToolsWith({ cases: ['memtester'], targets: ['dmemfs_2M'] });
  t.same(one.measurements, ['memtester_dmemfs_2M']);
  t.same(one.boots, ['peers-2M'], 'no 4K boot when nothing runs at 4K');
});

t.test('outcomes from what the tools say', async (t) => {
  t.equal(peerOutcome(0, 'anything'), 'pass');
  t.equal(
    peerOutcome(1, 'fio: pid=431, err=14/file:io_u.c:1845, func=io_u error, error=Bad address\n'),
    'fail: io_u error: Bad address',
  );
  t.equal(
    peerOutcome(2, 'stress-ng: fail:  [612] stackmmap: mmap failed, errno=19 (No such device)\n'),
    'fail: stackmmap: mmap failed, errno=19 (No such device)',
  );
  t.equal(peerOutcome(1, 'mmap: Invalid argument\n'), 'fail: mmap: Invalid argument');
  t.equal(
    peerOutcome(3, 'stress-ng: fail:  [248] tlb-shootdown: ftruncate to 16384 bytes on /mnt/d/tmp-248-0/f-41 failed\n'),
    'fail: tlb-shootdown: ftruncate to 16384 bytes on FILE failed',
    'pids and temporary names taken out: the same failure reads the same in every run',
  );
  t.equal(
    peerOutcome(1, 'can not mmap non-char device /m/f\n\nUsage: ...'),
    'fail: memtester: -d is not a character device',
  );
  t.equal(peerOutcome(1, 'fio: pid=136, got signal=11\n3;fio-3.33;peer;0;22'), 'fail: fio killed by signal 11');
  t.equal(peerOutcome(135, ''), 'fail: killed by signal 7');
  t.equal(peerOutcome(3, 'weird\n'), 'fail: exit 3: weird');
});

t.test('command lines: the file and mount put in, trinity unprivileged with its seed', async (t) => {
  const mt = PEER_CASES.find((c) => c.id === 'memtester')!;
  t.same(peerArgv(mt, '/m/f', '/m'), ['memtester', '-p', '0', '-d', '/m/f', '4M', '1']);
  const fio = PEER_CASES.find((c) => c.id === 'fio_direct')!;
  t.ok(peerArgv(fio, '/m/buf', '/m').includes('--iomem=mmapshared:/m/buf'));
  t.ok(peerArgv(fio, '/m/buf', '/m').includes('--direct=1'));
  const a = trinityArgv('/mnt/fuzz', 7, 30, '/run/l');
  t.same(a.slice(0, 2), ['setpriv', '--reuid=65534'], 'not root (trinity refuses it)');
  t.same(a.slice(a.indexOf('-s', 6), a.indexOf('-s', 6) + 2), ['-s', '7'], 'the seed');
  t.same(a.slice(a.indexOf('-V'), a.indexOf('-V') + 2), ['-V', '/mnt/fuzz'], 'the victims');
  t.equal(a.filter((x) => x === '-c').length, FUZZ.syscalls.length, 'one -c per call');
  t.ok(a.includes('INT') && a.includes('30'), 'stopped with SIGINT after its time, so it says what it ran');
});

t.test('the fuzzer: the calls it says it made; the seed from the environment or the data', async (t) => {
  t.equal(trinityCalls('Ran 1200 syscalls. Successes: 3\n...Ran 4821 syscalls. Successes: 9'), 4821);
  t.equal(trinityCalls('nothing'), null, 'a run that said nothing made no counted call');
  t.equal(fuzzSeed({}), FUZZ.seed);
  t.equal(fuzzSeed({ DMEMFS_RIG_FUZZ_SEED: '42' }), 42);
  t.throws(() => fuzzSeed({ DMEMFS_RIG_FUZZ_SEED: 'x1' }), /DMEMFS_RIG_FUZZ_SEED=x1 is not a seed/);
  t.throws(() => fuzzSeed({ DMEMFS_RIG_FUZZ_SEED: '-1' }), /not a seed/);
});
