import { DEVDAX_PREPARE } from './l2-alternatives.js';
import { measureColumns } from '../steps.js';
import type { ScenarioDefinition } from '../types.js';

/** The alternatives, measured like dmemfs in dmemfs-files: faults per size mapped, page size, data. */
export const alternatives: ScenarioDefinition = {
  id: 'alternatives',
  title: 'the same mapping on hugetlbfs 2M and 1G, device-dax and anonymous memory',
  proves:
    'the comparison columns: faults for the size mapped, the page size in smaps and intact data on hugetlbfs (2M, 1G) and anonymous memory (THP on), to set beside dmemfs 4K/2M/1G.',
  needs: [],
  boots: ['alternatives'],
  async run(ctx) {
    const g = await ctx.boot('alternatives');
    await measureColumns(ctx, g, [
      { col: 'hugetlbfs_2M', argv: ['--file', '/dev/hugepages/alt'], size: 256 << 20, page: 2 << 20 },
      { col: 'hugetlbfs_1G', argv: ['--file', '/mnt/huge1g/alt'], size: 1 << 30, page: 1 << 30, prepare: ['sh', '-c', 'mkdir -p /mnt/huge1g && mount -t hugetlbfs -o pagesize=1G none /mnt/huge1g'] },
      { col: 'anonymous', argv: ['--anon'], size: 64 << 20, page: 4096 },
    ]);
  },
};

export const alternativesDevdax: ScenarioDefinition = {
  id: 'alternatives-devdax',
  title: 'the same mapping on device-dax (memmap=1G!4G as a devdax namespace)',
  proves: 'the device-dax column: faults for 256 MiB, the page size in smaps and intact data through /dev/dax0.0 at its 2 MiB alignment.',
  needs: ['fs-dax'],
  boots: ['alternatives'],
  async run(ctx) {
    const g = await ctx.boot('alternatives');
    await measureColumns(ctx, g, [
      { col: 'devdax', argv: ['--file', '/dev/dax0.0', '--align', '2M'], size: 256 << 20, page: 2 << 20, prepare: DEVDAX_PREPARE },
    ]);
  },
};
