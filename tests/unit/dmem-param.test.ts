/** The rig's dmem= grammar: the forms the series accepts and the bad values it refuses. */
import t from 'tap';
import { checkDmemTokens, memparse, parseDmemParam } from '../../scenarios/dmem-param.js';

t.test('memparse like the kernel', async (t) => {
  t.equal(memparse('1G')!.value, 1n << 30n);
  t.equal(memparse('0x8000000')!.value, 128n << 20n);
  t.equal(memparse('128M@4G')!.rest, '@4G');
  t.equal(memparse('garbage'), undefined);
});

t.test('the forms of the series are accepted', async (t) => {
  t.same(parseDmemParam('1G'), { keepForKernel: false, size: 1n << 30n, addr: undefined, align: 128n << 20n });
  t.same(parseDmemParam('!1G'), { keepForKernel: true, size: 1n << 30n, addr: undefined, align: 128n << 20n });
  t.same(parseDmemParam('1G:1G').align, 1n << 30n);
  t.same(parseDmemParam('2G:1G@5G').addr, 5n << 30n);
  t.same(parseDmemParam('2G@5G').addr, 5n << 30n);
  t.same(parseDmemParam('256M').size, 256n << 20n);
});

t.test('bad values are rejected with the problem and the fix', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['100M', /size is not aligned to 134217728/],
    ['!1G@4G', /"!" .* cannot be combined with @addr/],
    ['1G@0', /addr is 0/],
    ['garbage', /the size is not a number/],
    ['0', /the size is 0/],
    ['1G:64M', /below the memory section size/],
    ['1G:384M', /not a power of two/],
    ['1G@100M', /addr is not aligned/],
    ['1Gx', /unknown indicator "x"/],
    ['1G@4G@5G', /addr is given twice/],
  ];
  for (const [v, re] of cases) t.throws(() => parseDmemParam(v), { kind: 'bad-dmem', message: re }, `dmem=${v}`);
  t.throws(() => checkDmemTokens(['console=ttyS0', 'dmem=100M']), { kind: 'bad-dmem', message: /dmem=100M/ });
  t.doesNotThrow(() => checkDmemTokens(['console=ttyS0', 'memmap=1G!4G', 'dmem=1G']));
});
