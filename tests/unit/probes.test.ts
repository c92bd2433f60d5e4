/**
 * Guest readers that must fail loudly instead of comparing nothing (a fake guest answers their
 * commands; the parsing and the rules are what is tested): a dmem debugfs file missing is an
 * error, and a victim's "timeout" counts only where the kernel logged the error for its page.
 */
import t from 'tap';
import { RigError } from '../../core/errors.js';
import { dmemStats } from '../../scenarios/probes.js';
import { injectionLogged, victimOutcome } from '../../scenarios/steps.js';
import type { Guest } from '../../vm/guest.js';

/** A guest whose every command prints `stdout`. */
const fake = (stdout: string) => ({ exec: async () => ({ code: 0, stdout, stderr: '' }) }) as unknown as Guest;

const ALL = [
  './registered_pages 524288',
  './total_dpages 512',
  './free_dpages 512',
  './dpage_shift 21',
  './region_num 3',
  './unaligned_pages 0',
  './node0/free_dpages 256',
  './node1/free_dpages 256',
].join('\n');

t.test('dmem debugfs: every documented file or an error naming the missing ones', async (t) => {
  const s = await dmemStats(fake(ALL));
  t.equal(s.registered_pages, 524288);
  t.equal(s.node(1, 'free_dpages'), 256);
  const without = ALL.split('\n')
    .filter((l) => !l.startsWith('./registered_pages'))
    .join('\n');
  await t.rejects(dmemStats(fake(without)), { kind: 'dmem-debugfs', message: /registered_pages/ });
  await t.rejects(dmemStats(fake('')), RigError, 'no debugfs at all');
});

t.test("a victim's timeout counts only for an injection the kernel logged", async (t) => {
  const ready = { event: 'ready', paddr: '0x240000000' };
  const final = { event: 'timeout' };
  t.equal(victimOutcome({ ready, final, logged: ['MCE 0x240000: handled by dmem'] }), 'timeout');
  t.equal(victimOutcome({ ready, final, logged: [] }), 'injection not logged', 'no line for the page: not delivered');
  t.equal(victimOutcome({ ready, final: { event: 'sigbus' }, logged: [] }), 'sigbus', 'a signal is its own evidence');
  t.equal(victimOutcome({ ready: undefined, final: undefined, logged: [] }), 'victim did not start');
  const log = [
    '[  44.26] Memory failure: 0x202c0e: recovery action for dirty LRU page: Recovered',
    '[  45.00] MCE 0x240000: handled by dmem',
    '[  46.00] Memory failure: 0x2400001: something else',
  ].join('\n');
  t.same(await injectionLogged(fake(log), '0x240000000'), ['MCE 0x240000: handled by dmem']);
  t.same(await injectionLogged(fake(log), '0x202c0e000'), [
    'Memory failure: 0x202c0e: recovery action for dirty LRU page: Recovered',
  ]);
  t.same(await injectionLogged(fake(log), '0x240000'), [], "another page's pfn is not this one's");
  t.same(await injectionLogged(fake(log), 'garbage'), [], 'no address, no line');
});
