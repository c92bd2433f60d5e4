/**
 * l2-alternatives: the alternatives to a dmemfs-backed guest, run the way nested-guest runs the
 * dmemfs one: an L2 on a device-dax namespace and one on a hugetlbfs 2M file.
 */
import { is } from '../../core/results.js';
import { L2_MEASURES, measureL2 } from '../l2-steps.js';
import { defineScenario, prefixed } from '../types.js';

/** The device-dax namespace over memmap=1G!4G, struct pages in RAM (as in alternatives-devdax). */
export const DEVDAX_PREPARE = [
  'sh',
  '-c',
  'test -c /dev/dax0.0 || ndctl create-namespace -f -e namespace0.0 --mode=devdax --map=mem',
];

type L2Backend = 'devdax' | 'hugetlbfs_2M' | 'anonymous';
const ALL_BACKENDS: readonly L2Backend[] = ['devdax', 'hugetlbfs_2M', 'anonymous'];

/**
 * The scenario with the L2 guests on `backends` only (npm test keeps device-dax, the alternative
 * the reviewers named); the others' measurements are skips that say where they run.
 */
export const l2AlternativesWith = (backends: readonly L2Backend[]) =>
  defineScenario({
    id: 'l2-alternatives',
    title:
      'L2 guests on device-dax, on hugetlbfs 2M and on anonymous memory, measured like the dmemfs L2 of nested-guest',
    proves: `the alternatives to a dmemfs-backed guest, run the same way: a devdax namespace (ndctl
    create-namespace -m devdax over memmap=1G!4G; whether daxctl create-device can subdivide it is
    recorded), a hugetlbfs file and plain anonymous memory each back a 256 MiB L2 that reports its
    MemTotal and touches 64 MiB; with KVM in L1, KVM's large-page counter says whether each was
    mapped with huge pages.`,
    needs: ['fs-dax'],
    boots: ['alternatives'],
    measurements: [
      'devdax_device',
      'daxctl_create_device_256M',
      ...prefixed('devdax_', L2_MEASURES),
      ...prefixed('hugetlbfs_2M_', L2_MEASURES),
      ...prefixed('anonymous_', L2_MEASURES),
    ],
    async run(ctx) {
      const g = await ctx.boot('alternatives');
      const ns = await g.exec(DEVDAX_PREPARE);
      ctx.evidence('devdax namespace', `${ns.stdout}${ns.stderr}`);
      const dev = await g.exec(['sh', '-c', 'test -c /dev/dax0.0 && echo present']);
      ctx.measure('devdax_device', /present/.test(dev.stdout), { expect: is(true) });
      // Subdivision: a namespace's dax region is static in 5.10 (only soft-reserved "hmem"
      // regions are dynamic): the refusal is the finding, held to its errno.
      const sub = await g.exec(['daxctl', 'create-device', '-r', '0', '-s', '256M']);
      ctx.evidence('daxctl create-device -r 0 -s 256M', `${sub.stdout}${sub.stderr}`);
      ctx.measure('daxctl_create_device_256M', sub.code === 0 ? 'created' : `refused (exit ${sub.code})`, {
        expect: is('refused (exit 228)'),
        why: "-ENOSPC: the namespace's dax0.0 spans its whole static region, so nothing is left to subdivide",
        note: `${sub.stdout}${sub.stderr}`.trim().replace(/\n/g, '; ').slice(0, 200),
      });
      const list = await g.exec(['daxctl', 'list', '-R', '-D']);
      ctx.evidence('daxctl list -R -D', list.stdout);
      for (const b of ALL_BACKENDS.filter((x) => !backends.includes(x)))
        for (const n of prefixed(`${b}_`, L2_MEASURES)) ctx.skipMeasure(n, 'run by npm start and the nightly');
      if (backends.includes('devdax'))
        await measureL2(ctx, g, {
          prefix: 'devdax_',
          memMiB: 256,
          backend: { kind: 'file', path: '/dev/dax0.0', share: true, align: '2M' },
          pageBytes: 2 << 20,
        });
      if (backends.includes('hugetlbfs_2M')) {
        await measureL2(ctx, g, {
          prefix: 'hugetlbfs_2M_',
          memMiB: 256,
          backend: { kind: 'file', path: '/dev/hugepages/l2-ram', share: true, align: '2M' },
          pageBytes: 2 << 20,
        });
        await g.exec(['rm', '-f', '/dev/hugepages/l2-ram']);
      }
      // Plain anonymous memory (QEMU's default RAM backend, which it madvises for THP).
      // QEMU madvises guest RAM for THP (on in this kernel): 2 MiB pages where the allocator has them.
      if (backends.includes('anonymous'))
        await measureL2(ctx, g, { prefix: 'anonymous_', memMiB: 256, backend: { kind: 'ram' }, pageBytes: 2 << 20 });
    },
  });

export const l2Alternatives = l2AlternativesWith(ALL_BACKENDS);
