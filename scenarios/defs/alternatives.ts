/**
 * The comparison columns other than dmemfs, measured the way dmemfs-files measures dmemfs:
 * hugetlbfs 2M and 1G and anonymous memory. device-dax is alternatives-devdax.ts.
 */
import { COLUMN_MEASURES, measureColumns, modeChecks } from '../steps.js';
import { defineScenario, family } from '../types.js';

const HUGE_FREE = (size: string) => `/sys/kernel/mm/hugepages/hugepages-${size}/free_hugepages`;
/** The unprivileged-open checks, by file mode (alternatives-devdax takes the same). */
export const MODES = ['unprivileged_mode_0600', 'unprivileged_mode_0666'] as const;

export const alternatives = defineScenario({
  id: 'alternatives',
  title: 'the same mapping on hugetlbfs 2M and 1G, device-dax and anonymous memory',
  proves: `the comparison columns: faults for the size mapped, the page size in smaps, intact data
    and free pages back after unlink on hugetlbfs (2M, 1G), file modes for an unprivileged user on
    hugetlbfs, and anonymous memory (THP on), to set beside dmemfs 4K/2M/1G.`,
  needs: [],
  boots: ['alternatives'],
  measurements: [
    ...family(['hugetlbfs_2M', 'hugetlbfs_1G', 'anonymous'], COLUMN_MEASURES),
    ...family(['hugetlbfs_2M'], MODES),
  ],
  async run(ctx) {
    const g = await ctx.boot('alternatives');
    await measureColumns(ctx, g, [
      {
        col: 'hugetlbfs_2M',
        argv: ['--file', '/dev/hugepages/alt'],
        size: 256 << 20,
        page: 2 << 20,
        freeCounter: HUGE_FREE('2048kB'),
      },
      {
        col: 'hugetlbfs_1G',
        argv: ['--file', '/mnt/huge1g/alt'],
        size: 1 << 30,
        page: 1 << 30,
        prepare: ['sh', '-c', 'mkdir -p /mnt/huge1g && mount -t hugetlbfs -o pagesize=1G none /mnt/huge1g'],
        freeCounter: HUGE_FREE('1048576kB'),
      },
      {
        col: 'anonymous',
        argv: ['--anon'],
        size: 64 << 20,
        page: 4096,
        recordOnly: true,
        noFreeCounter: 'n/a: anonymous memory has no file to unlink and no pool of its own to count',
      },
    ]);
    // File modes on hugetlbfs: root's files, mapped by the unprivileged user.
    await g.exec(
      [
        'sh',
        '-c',
        'map-and-touch --file /dev/hugepages/priv --create --size 2M >/dev/null && ' +
          'map-and-touch --file /dev/hugepages/pub --create --size 2M >/dev/null',
      ],
      { check: true },
    );
    const files = { private: '/dev/hugepages/priv', shared: '/dev/hugepages/pub' };
    await modeChecks(ctx, g, 'hugetlbfs_2M', files, ['--size', '2M']);
    await g.exec(['rm', '-f', '/dev/hugepages/priv', '/dev/hugepages/pub']);
  },
});
