import { dmemStats } from '../probes.js';
import { accessOutcome, mapAndTouch, mountDmemfs } from '../steps.js';
import type { ScenarioDefinition } from '../types.js';

const PAGE_SIZES = [
  { name: '4K', bytes: 4096, shift: 12, touchMiB: 64 },
  { name: '2M', bytes: 2 << 20, shift: 21, touchMiB: 256 },
  { name: '1G', bytes: 1 << 30, shift: 30, touchMiB: 1024 },
] as const;

export const dmemfsFiles: ScenarioDefinition = {
  id: 'dmemfs-files',
  title: 'dmemfs at 4K, 2M and 1G: mmap faults per page, data intact, space returned, permissions',
  proves:
    'a file on dmemfs maps at the mounted page size (one fault per dpage: 64 MiB at 4K = 16384, 256 MiB at 2M = 128, 1 GiB at 1G = 1), the data reads back intact, free dpages return to their start value after unlink, and file permissions govern an unprivileged user.',
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned', 'dmem-1G-aligned-2M', 'dmem-1G-aligned-1G'],
  async run(ctx) {
    let g = await ctx.boot('dmem-1G-aligned');
    for (const ps of PAGE_SIZES) {
      let m = await mountDmemfs(g, ps.name);
      // The pool takes its page size at the first mount; with every file gone and the previous
      // size unmounted, a new size mounts in the same boot (seen here). If not: a fresh boot.
      if (ps.name !== '4K')
        ctx.measure(
          `remount_as_${ps.name}_in_same_boot`,
          m.ok,
          '',
          undefined,
          m.err || 'after unlinking every file and unmounting the previous size',
        );
      if (!m.ok) {
        g = await ctx.boot(ps.name === '2M' ? 'dmem-1G-aligned-2M' : 'dmem-1G-aligned-1G');
        m = await mountDmemfs(g, ps.name);
      }
      ctx.measure(`mount_${ps.name}`, m.ok, '', { op: 'is', value: true }, m.err || undefined);
      if (!m.ok) continue;
      const start = await dmemStats(g);
      ctx.measure(`dpage_shift_${ps.name}`, start.dpage_shift ?? null, '', { op: 'eq', value: ps.shift });
      const bytes = ps.touchMiB * 1048576;
      const r = await mapAndTouch(ctx, g, ['--file', `/mnt/dmem/f${ps.name}`, '--create', '--size', String(bytes)]);
      ctx.evidence(`map-and-touch ${ps.name}`, JSON.stringify(r));
      const pages = bytes / ps.bytes;
      ctx.measure(
        `faults_${ps.name}`,
        r.minor_faults,
        `faults for ${ps.touchMiB} MiB`,
        { op: 'approx', value: pages, tolerance: pages > 10 ? 0.01 : 1 },
        `one per ${ps.name} dpage: ${pages}`,
      );
      ctx.measure(`data_verified_${ps.name}`, r.verified, '', { op: 'is', value: true });
      ctx.measure(
        `smaps_kernel_page_kb_${ps.name}`,
        r.kernel_page_size_kb,
        'kB',
        { op: 'eq', value: ps.bytes / 1024 },
        'only echoes the mount option (vm_ops), the fault count is the proof',
      );
      const used = await dmemStats(g);
      ctx.measure(`dpages_used_${ps.name}`, (start.free_dpages ?? 0) - (used.free_dpages ?? 0), 'dpages', {
        op: 'eq',
        value: pages,
      });
      await g.exec(['rm', '-f', `/mnt/dmem/f${ps.name}`], { check: true });
      const after = await dmemStats(g);
      ctx.measure(
        `free_dpages_restored_${ps.name}`,
        after.free_dpages ?? null,
        'dpages',
        { op: 'eq', value: start.free_dpages ?? -1 },
        'after unlink',
      );
      if (ps.name === '4K') {
        // The series creates the root directory without permission bits; an admin opens it up.
        const mode = await g.exec(['stat', '-c', '%a', '/mnt/dmem'], { check: true });
        ctx.measure(
          'root_dir_mode_after_mount',
          mode.stdout.trim(),
          'octal',
          undefined,
          'dmemfs has no mode= option; the root inode is created as S_IFDIR only',
        );
        await g.exec(['chmod', '755', '/mnt/dmem'], { check: true });
        await g.exec(
          [
            'sh',
            '-c',
            'truncate -s 64K /mnt/dmem/private && chmod 600 /mnt/dmem/private && truncate -s 64K /mnt/dmem/shared && chmod 666 /mnt/dmem/shared',
          ],
          { check: true },
        );
        const asUser = (file: string) => mapAndTouch(ctx, g, ['--file', file, '--size', '64K'], { unprivileged: true });
        const denied = await asUser('/mnt/dmem/private');
        ctx.measure('unprivileged_mode_0600', accessOutcome(denied), '', { op: 'is', value: 'EACCES' });
        const allowed = await asUser('/mnt/dmem/shared');
        ctx.measure('unprivileged_mode_0666', allowed.ok, '', { op: 'is', value: true });
        await g.exec(['rm', '-f', '/mnt/dmem/private', '/mnt/dmem/shared'], { check: true });
      }
      await g.exec(['umount', '/mnt/dmem'], { check: true });
    }
  },
};
