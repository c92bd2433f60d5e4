/**
 * dmemfs-files: a file on dmemfs at each page size, mapped and touched. Proves the mapping size
 * by the fault count (smaps KernelPageSize only echoes the mount option), the data by reading
 * it back, the accounting by the pool's free count after unlink, and permissions by file mode.
 */
import { eq, is, within } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { dmemStats } from '../probes.js';
import { accessOutcome, FIRST_TOUCH_EXTRA, mapAndTouch, mountDmemfs, ONE_FAULT_PER_PAGE } from '../steps.js';
import { defineScenario, family, type Claim, type ScenarioContext } from '../types.js';

const PAGE_SIZES = [
  { name: '4K', bytes: 4096, shift: 12, touchMiB: 64 },
  { name: '2M', bytes: 2 << 20, shift: 21, touchMiB: 256 },
  { name: '1G', bytes: 1 << 30, shift: 30, touchMiB: 1024 },
] as const;
type PageSize = (typeof PAGE_SIZES)[number];

const PER_SIZE = [
  'mount',
  'dpage_shift',
  'faults',
  'data_verified',
  'smaps_kernel_page_kb',
  'dpages_used',
  'free_dpages_restored',
] as const;

const MEASUREMENTS = [
  ...family(PER_SIZE, ['4K', '2M', '1G']),
  'remount_as_2M_in_same_boot',
  'remount_as_1G_in_same_boot',
  'root_dir_mode_after_mount',
  'unprivileged_mode_0600',
  'unprivileged_mode_0666',
] as const;
type M = (typeof MEASUREMENTS)[number];

/** What each page size's measurements are held to: one fault and one dpage per page of the file. */
const perSizeClaims = (ps: PageSize): Partial<Record<M, Claim>> => {
  const pages = (ps.touchMiB * 1048576) / ps.bytes;
  return {
    [`mount_${ps.name}`]: { expect: is(true) },
    [`dpage_shift_${ps.name}`]: { expect: eq(ps.shift) },
    [`faults_${ps.name}`]: {
      unit: `faults for ${ps.touchMiB} MiB`,
      expect: within(pages, FIRST_TOUCH_EXTRA),
      why: ONE_FAULT_PER_PAGE,
    },
    [`data_verified_${ps.name}`]: { expect: is(true) },
    [`smaps_kernel_page_kb_${ps.name}`]: { unit: 'kB', expect: eq(ps.bytes / 1024) },
    [`dpages_used_${ps.name}`]: {
      unit: 'dpages',
      expect: eq(pages),
      why: 'every page of the file is one dpage taken from the pool',
    },
    // Held to the pool's free count at the start, a value of the run: the body gives it.
    [`free_dpages_restored_${ps.name}`]: { unit: 'dpages' },
  } satisfies Partial<Record<`${(typeof PER_SIZE)[number]}_${PageSize['name']}`, Claim>>;
};

export const dmemfsFiles = defineScenario({
  id: 'dmemfs-files',
  title: 'dmemfs at 4K, 2M and 1G: mmap faults per page, data intact, space returned, permissions',
  proves: `a file on dmemfs maps at the mounted page size (one fault per dpage: 64 MiB at 4K =
    16384, 256 MiB at 2M = 128, 1 GiB at 1G = 1), the data reads back intact, free dpages return
    to their start value after unlink, and file permissions govern an unprivileged user.`,
  needs: ['patched-kernel'],
  boots: ['dmem-1G-aligned', 'dmem-1G-aligned-2M', 'dmem-1G-aligned-1G'],
  measurements: MEASUREMENTS,
  claims: {
    ...PAGE_SIZES.reduce<Partial<Record<M, Claim>>>((all, ps) => ({ ...all, ...perSizeClaims(ps) }), {}),
    remount_as_2M_in_same_boot: {
      expect: is(true),
      why: 'the pool forgets its page size once every file is gone and the mount is undone (a finding)',
    },
    remount_as_1G_in_same_boot: {
      expect: is(true),
      why: 'the pool forgets its page size once every file is gone and the mount is undone (a finding)',
    },
    root_dir_mode_after_mount: {
      unit: 'octal',
      expect: is('0'),
      why: 'a finding: nobody but root can use a fresh mount until an admin runs chmod',
    },
    unprivileged_mode_0600: { expect: is('EACCES') },
    unprivileged_mode_0666: { expect: is(true) },
  },
  async run(ctx) {
    let g = await ctx.boot('dmem-1G-aligned');
    for (const ps of PAGE_SIZES) {
      const m = await mountSize(ctx, g, ps);
      g = m.guest; // a fresh boot replaced the guest, mounted or not
      ctx.measure(`mount_${ps.name}`, m.mounted);
      if (!m.mounted) continue;
      await mapOneSize(ctx, g, ps);
      if (ps.name === '4K') await permissions(ctx, g);
      await g.exec(['umount', '/mnt/dmem'], { check: true });
    }
  },
});

/**
 * Mount at `ps`. The pool takes its page size at the first mount; with every file gone and the
 * previous size unmounted, a new size mounts in the same boot (seen here). If not: a fresh boot,
 * which is the guest from then on, whether it mounts or not (a kernel without dmemfs mounts none:
 * a bisect's early prefixes).
 */
async function mountSize(ctx: ScenarioContext<M>, g: Guest, ps: PageSize): Promise<{ guest: Guest; mounted: boolean }> {
  let m = await mountDmemfs(g, ps.name);
  if (ps.name !== '4K')
    ctx.measure(`remount_as_${ps.name}_in_same_boot`, m.ok, {
      note: m.err || 'after unlinking every file and unmounting the previous size',
    });
  if (m.ok) return { guest: g, mounted: true };
  if (ps.name === '4K') {
    ctx.evidence('mount at 4K', m.err);
    return { guest: g, mounted: false };
  }
  const fresh = await ctx.boot(ps.name === '2M' ? 'dmem-1G-aligned-2M' : 'dmem-1G-aligned-1G');
  m = await mountDmemfs(fresh, ps.name);
  if (!m.ok) ctx.evidence(`mount at ${ps.name} on a fresh boot`, m.err);
  return { guest: fresh, mounted: m.ok };
}

async function mapOneSize(ctx: ScenarioContext<M>, g: Guest, ps: PageSize): Promise<void> {
  const start = await dmemStats(g);
  ctx.measure(`dpage_shift_${ps.name}`, start.dpage_shift);
  const bytes = ps.touchMiB * 1048576;
  const r = await mapAndTouch(ctx, g, ['--file', `/mnt/dmem/f${ps.name}`, '--create', '--size', String(bytes)]);
  ctx.evidence(`map-and-touch ${ps.name}`, JSON.stringify(r));
  const pages = bytes / ps.bytes;
  ctx.measure(`faults_${ps.name}`, r.minor_faults, { note: `one per ${ps.name} dpage: ${pages}` });
  ctx.measure(`data_verified_${ps.name}`, r.verified);
  ctx.measure(`smaps_kernel_page_kb_${ps.name}`, r.kernel_page_size_kb, {
    note: 'only echoes the mount option (vm_ops), the fault count is the proof',
  });
  const used = await dmemStats(g);
  ctx.measure(`dpages_used_${ps.name}`, start.free_dpages - used.free_dpages);
  await g.exec(['rm', '-f', `/mnt/dmem/f${ps.name}`], { check: true });
  const after = await dmemStats(g);
  ctx.measure(`free_dpages_restored_${ps.name}`, after.free_dpages, {
    expect: eq(start.free_dpages),
    note: 'after unlink',
  });
}

/** The series creates the root directory without permission bits; an admin opens it up. */
async function permissions(ctx: ScenarioContext<M>, g: Guest): Promise<void> {
  const mode = await g.exec(['stat', '-c', '%a', '/mnt/dmem'], { check: true });
  ctx.measure('root_dir_mode_after_mount', mode.stdout.trim(), {
    note: 'dmemfs has no mode= option; the root inode is created as S_IFDIR only',
  });
  await g.exec(['chmod', '755', '/mnt/dmem'], { check: true });
  await g.exec(
    [
      'sh',
      '-c',
      'truncate -s 64K /mnt/dmem/private && chmod 600 /mnt/dmem/private && ' +
        'truncate -s 64K /mnt/dmem/shared && chmod 666 /mnt/dmem/shared',
    ],
    { check: true },
  );
  const asUser = (file: string) => mapAndTouch(ctx, g, ['--file', file, '--size', '64K'], { unprivileged: true });
  const denied = await asUser('/mnt/dmem/private');
  ctx.measure('unprivileged_mode_0600', accessOutcome(denied));
  const allowed = await asUser('/mnt/dmem/shared');
  ctx.measure('unprivileged_mode_0666', allowed.ok);
  await g.exec(['rm', '-f', '/mnt/dmem/private', '/mnt/dmem/shared'], { check: true });
}
