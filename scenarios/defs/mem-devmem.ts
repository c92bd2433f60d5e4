import { KB_PER_GIB, memTotalKb } from '../probes.js';
import { accessOutcome, mapAndTouch } from '../steps.js';
import type { ScenarioDefinition } from '../types.js';

export const memDevmem: ScenarioDefinition = {
  id: 'mem-devmem',
  title: '"mem=X plus /dev/mem": who may map the memory above mem=, and at what page size',
  proves:
    'the alternative a reviewer asked about: with mem=4G on two 3 GiB nodes (the kernel keeps the 2 GiB below 4G) the RAM above the limit is mappable through /dev/mem by root only (an unprivileged user is refused whatever the file system says), only in 4 KiB pages set up at mmap time, with no allocator: the caller picks physical offsets itself. dmemfs, by contrast, gives per-file permissions, 2M/1G pages and an allocator that takes memory back (dmemfs-files).',
  needs: [],
  boots: ['mem-4G'],
  async run(ctx) {
    const g = await ctx.boot('mem-4G');
    const total = await memTotalKb(g);
    ctx.measure('memtotal_kb', total.total, 'kB', { op: 'le', value: 4 * KB_PER_GIB });
    // mem= caps the highest address, not the size: q35 puts 2 GiB below 4G and 4 GiB from 4G
    // up, so the kernel keeps 2 GiB and [4G, 8G) is left to /dev/mem.
    const offset = String(6 * 2 ** 30);
    const root = await mapAndTouch(ctx, g, [
      '--file',
      '/dev/mem',
      '--offset',
      offset,
      '--size',
      '64M',
      '--align',
      '4K',
    ]);
    ctx.evidence('root maps /dev/mem above mem=', JSON.stringify(root));
    ctx.measure('root_map_ok', root.ok, '', { op: 'is', value: true }, root.error);
    ctx.measure('root_data_verified', root.verified ?? null, '', { op: 'is', value: true });
    ctx.measure(
      'devmem_kernel_page_kb',
      root.kernel_page_size_kb ?? null,
      'kB',
      { op: 'eq', value: 4 },
      'remap_pfn_range: 4 KiB pages only',
    );
    ctx.measure(
      'devmem_faults_64mib',
      root.minor_faults ?? null,
      'faults',
      undefined,
      'dmemfs at 4K: 16384 for the same size (one per page, on demand)',
    );
    const user = await mapAndTouch(
      ctx,
      g,
      ['--file', '/dev/mem', '--offset', offset, '--size', '4K', '--align', '4K'],
      { unprivileged: true },
    );
    ctx.measure('unprivileged_devmem', accessOutcome(user), '', { op: 'is', value: 'EACCES' });
    await g.exec(['chmod', '666', '/dev/mem'], { check: true });
    const asUser = await mapAndTouch(
      ctx,
      g,
      ['--file', '/dev/mem', '--offset', offset, '--size', '4K', '--align', '4K'],
      { unprivileged: true },
    ).finally(() => g.exec(['chmod', '640', '/dev/mem']));
    ctx.evidence('uid 1000, /dev/mem chmod 666', JSON.stringify(asUser));
    ctx.measure(
      'unprivileged_devmem_even_mode_666',
      asUser.ok ? 'allowed' : `${asUser.step ?? '?'}: ${asUser.errno_name ?? '?'}`,
      '',
      undefined,
      '/dev/mem needs CAP_SYS_RAWIO beyond the file mode',
    );
  },
};
