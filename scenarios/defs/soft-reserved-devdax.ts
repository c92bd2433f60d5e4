/**
 * soft-reserved-devdax: the device-dax the reviewers proposed instead of dmemfs. On an EFI boot,
 * efi_fake_mem=1G@4G:0x40000 marks 1 GiB "specific purpose" (EFI_MEMORY_SP); the kernel keeps
 * it out of the page allocator as Soft Reserved, and dax_hmem makes it one dynamic dax region.
 * Its whole-size device is shrunk to nothing and two 256 MiB devices are carved out of it with
 * daxctl create-device, one per VM, each backing an L2 guest; the mapping, the modes, VFIO
 * and an injected MCE are measured the way the other columns are.
 */
import { eq, is, STRUCT_PAGE_KB_PER_GIB, within } from '../../core/results.js';
import type { GuestHandle as Guest } from '../../vm/guest-handle.js';
import { L2_MEASURES, measureL2 } from '../l2-steps.js';
import { memFreeKb, memTotalKb, memTotalOf } from '../probes.js';
import {
  bindEduToVfio,
  COLUMN_MEASURES,
  controlInjection,
  DEVICE_HAS_NO_POOL,
  measureColumns,
  modeChecks,
} from '../steps.js';
import { defineScenario, family, prefixed, type ScenarioContext } from '../types.js';

/** Where efi_fake_mem puts the soft-reserved range (scenarios/boots.ts). */
export const SOFT_RESERVED = { base: 4 * 2 ** 30, bytes: 2 ** 30 };
const MIB_256 = 256 * 2 ** 20;

const MEASUREMENTS = [
  'efi_boot',
  'soft_reserved_kb',
  'memtotal_kb',
  'hmem_region_found',
  'hmem_whole_device_resized_to_0',
  'hmem_devices_created',
  'hmem_struct_page_kb_per_gib',
  ...family(['hmem'], COLUMN_MEASURES),
  'hmem_unprivileged_mode_0600',
  'hmem_unprivileged_mode_0666',
  'hmem_vfio_dma_verified',
  ...prefixed('vm1_', L2_MEASURES),
  ...prefixed('vm2_', L2_MEASURES),
  'hmem_mce_signal',
  'hmem_mce_kernel_reports',
] as const;
type M = (typeof MEASUREMENTS)[number];

interface DaxDevice {
  chardev: string;
  size: number;
}

/** The scenario, with or without its second (Intel-vendor) boot for the MCE: `npm test` leaves it to `npm start`. */
export function softReservedWith(opts: { mceBoot: boolean }) {
  return defineScenario({
    id: 'soft-reserved-devdax',
    title: 'device-dax from soft-reserved memory (efi_fake_mem on an EFI boot), subdivided into one device per VM',
    proves: `the alternative the reviewers named: on a UEFI boot (OVMF, the kernel through its EFI
    stub) efi_fake_mem=1G@4G:0x40000 makes 1 GiB Soft Reserved; dax_hmem turns it into a dynamic
    dax region whose device daxctl shrinks to 0 and re-carves into two 256 MiB devices, one per
    VM. Each backs an L2 guest (MemTotal, KVM large pages), and the devices are measured like
    the other columns: faults, page size, data, struct-page cost, modes, VFIO, an injected MCE.`,
    needs: ['soft-reserved'],
    boots: ['efi-soft-reserved', 'efi-soft-reserved-mce'],
    measurements: MEASUREMENTS,
    async run(ctx) {
      const g = await ctx.boot('efi-soft-reserved');
      const devices = await subdivide(ctx, g, true);
      if (!devices) return;
      const [vm1, vm2] = devices;
      await measureColumns(ctx, g, [
        {
          col: 'hmem',
          argv: ['--file', vm1.chardev, '--align', '2M'],
          size: MIB_256,
          page: 2 << 20,
          noFreeCounter: DEVICE_HAS_NO_POOL,
        },
      ]);
      const files = { private: vm2.chardev, shared: vm2.chardev, restoreMode: '600' };
      await modeChecks(ctx, g, 'hmem', files, ['--size', '2M', '--align', '2M']);
      await vfio(ctx, g, vm2.chardev);
      for (const [prefix, dev] of [
        ['vm1_', vm1],
        ['vm2_', vm2],
      ] as const)
        await measureL2(ctx, g, {
          prefix,
          memMiB: 256,
          backend: { kind: 'file', path: dev.chardev, share: true, align: '2M' },
          pageBytes: 2 << 20,
        });
      const noMce = opts.mceBoot ? await ctx.unmet('mce-cpu') : 'run by npm start and the nightly (its own boot)';
      if (noMce) {
        for (const n of ['hmem_mce_signal', 'hmem_mce_kernel_reports'] as const) ctx.skipMeasure(n, noMce);
        return;
      }
      const m = await ctx.boot('efi-soft-reserved-mce');
      const again = await subdivide(ctx, m, false);
      if (again) await mce(ctx, m, again[0].chardev);
    },
  });
}

export const softReservedDevdax = softReservedWith({ mceBoot: true });

/** daxctl's JSON spans several lines (ctx.json reads the last line only): the whole stdout, parsed. */
async function json<T>(g: Guest, argv: string[]): Promise<{ value: T | undefined; text: string }> {
  const r = await g.exec(argv);
  const text = `${r.stdout}${r.stderr}`;
  try {
    return { value: JSON.parse(r.stdout) as T, text };
  } catch {
    return { value: undefined, text };
  }
}

/**
 * The EFI boot and its soft-reserved range, then the region's whole device resized to 0 and two
 * 256 MiB devices created in it; `measure` false on the second boot (only the devices are needed).
 */
async function subdivide(
  ctx: ScenarioContext<M>,
  g: Guest,
  measure: boolean,
): Promise<[DaxDevice, DaxDevice] | undefined> {
  const rec = measure ? ctx.measure : () => undefined;
  const efi = await g.exec(['test', '-d', '/sys/firmware/efi']);
  rec('efi_boot', efi.code === 0, { expect: is(true), why: 'OVMF started the kernel through its EFI stub' });
  const iomem = await g.exec(['grep', '-i', 'soft reserved', '/proc/iomem']);
  ctx.evidence('/proc/iomem: Soft Reserved', iomem.stdout);
  const kb = iomem.stdout
    .split('\n')
    .map((l) => /^\s*([0-9a-f]+)-([0-9a-f]+) : Soft Reserved/i.exec(l))
    .filter((x): x is RegExpExecArray => Boolean(x))
    .reduce((a, x) => a + (parseInt(x[2]!, 16) - parseInt(x[1]!, 16) + 1) / 1024, 0);
  rec('soft_reserved_kb', kb, { unit: 'kB', expect: eq(SOFT_RESERVED.bytes / 1024), why: 'efi_fake_mem=1G@4G' });
  rec('memtotal_kb', (await memTotalKb(g)).total, {
    unit: 'kB',
    expect: memTotalOf(5),
    why: 'of 6 GiB, the kernel keeps 5: Soft Reserved memory is not System RAM (less struct pages, fixed reservations)',
  });
  const regions = await json<Array<{ id: number; size: number; available_size?: number }>>(g, ['daxctl', 'list', '-R']);
  ctx.evidence('daxctl list -R', regions.text);
  const region = regions.value?.find((r) => r.size === SOFT_RESERVED.bytes);
  rec('hmem_region_found', Boolean(region), { expect: is(true), note: regions.text.slice(0, 200) });
  return region ? carve(ctx, g, region.id, rec) : undefined;
}

/** The region's whole device disabled and destroyed, then two 256 MiB devices created in it. */
async function carve(
  ctx: ScenarioContext<M>,
  g: Guest,
  id: number,
  rec: ScenarioContext<M>['measure'] | (() => undefined),
): Promise<[DaxDevice, DaxDevice] | undefined> {
  const region = { id };
  // The region's first device spans it: disabled and resized to 0, its struct pages go back.
  const before = await memFreeKb(g);
  const shrink = await g.exec([
    'sh',
    '-c',
    'daxctl disable-device "$1"; daxctl destroy-device "$1"',
    'shrink',
    `dax${region.id}.0`,
  ]);
  ctx.evidence(`daxctl disable-device, destroy-device dax${region.id}.0`, `${shrink.stdout}${shrink.stderr}`);
  const freed = (await memFreeKb(g)) - before;
  const after = await json<Array<{ id: number; available_size?: number }>>(g, ['daxctl', 'list', '-R']);
  ctx.evidence('daxctl list -R (after)', after.text);
  const available = after.value?.find((r) => r.id === region.id)?.available_size ?? 0;
  rec('hmem_whole_device_resized_to_0', available === SOFT_RESERVED.bytes, {
    expect: is(true),
    why: 'the whole region is free for new devices',
    note: `available ${available} bytes; MemFree +${freed} kB`,
  });
  const made: DaxDevice[] = [];
  const beforeCreate = await memFreeKb(g);
  for (let i = 0; i < 2; i++) {
    const c = await json<DaxDevice | DaxDevice[]>(g, [
      'daxctl',
      'create-device',
      '-r',
      String(region.id),
      '-s',
      '256M',
    ]);
    ctx.evidence(`daxctl create-device -r ${region.id} -s 256M (${i + 1})`, c.text);
    const dev = Array.isArray(c.value) ? c.value[0] : c.value;
    if (dev?.chardev) made.push({ chardev: `/dev/${dev.chardev.replace(/^\/dev\//, '')}`, size: dev.size });
  }
  const used = beforeCreate - (await memFreeKb(g));
  rec('hmem_devices_created', made.length, {
    expect: eq(2),
    why: 'a soft-reserved (hmem) region is dynamic: devices are carved out of it on demand',
    note: made.map((d) => d.chardev).join(', '),
  });
  rec('hmem_struct_page_kb_per_gib', Math.round((used * SOFT_RESERVED.bytes) / (2 * MIB_256)), {
    unit: 'kB/GiB',
    expect: within(STRUCT_PAGE_KB_PER_GIB, 2048),
    why:
      'each device gets struct pages in RAM when it is created: 64 B per 4 KiB page (16384 kB/GiB); MemFree ' +
      'also moves by what else the guest frees or allocates meanwhile (16336 to 16920 measured on a quiet host, ' +
      '15352 to 16968 with npm test two guests at once: the processes of the SSH commands in between exit), ' +
      'inside 2048; no struct pages (0), half or double them fall far outside',
    note: `MemFree fell ${used} kB while two 256 MiB devices were created`,
  });
  return made.length === 2 ? [made[0]!, made[1]!] : undefined;
}

/** The DMA round trip through edu on one device. */
async function vfio(ctx: ScenarioContext<M>, g: Guest, chardev: string): Promise<void> {
  const edu = await bindEduToVfio(g);
  ctx.evidence('bind edu to vfio-pci', edu.evidence);
  if (!edu.bdf || !edu.bound) {
    ctx.skipMeasure('hmem_vfio_dma_verified', `edu not bound to vfio-pci: ${edu.evidence.slice(0, 120)}`);
    return;
  }
  const dma = await ctx.json<{ steps?: Array<{ step: string; ok: boolean }> }>(g, [
    ...['vfio-dma', '--device', edu.bdf, '--file', chardev, '--size', '2M', '--align', '2M'],
  ]);
  ctx.evidence(`vfio-dma on ${chardev}`, JSON.stringify(dma));
  ctx.measure('hmem_vfio_dma_verified', dma.steps?.find((s) => s.step === 'bytes_verified')?.ok ?? false, {
    expect: is(true),
  });
}

/** The injected MCE at a page of one device, on the Intel-vendor boot. */
async function mce(ctx: ScenarioContext<M>, g: Guest, chardev: string): Promise<void> {
  const v = await controlInjection(ctx, g, {
    label: chardev,
    file: chardev,
    size: '2M',
    tag: 'hmem',
    log: /Memory failure|mce:|dax/i,
    accept: (pa) => pa >= SOFT_RESERVED.base && pa < SOFT_RESERVED.base + SOFT_RESERVED.bytes,
    timeoutS: 30,
    extra: ['--align', '2M'],
  });
  ctx.measure('hmem_mce_signal', v.event, {
    expect: is('timeout'),
    why:
      'measured: the process reading the poisoned device-dax page gets no SIGBUS in 30 s, as on the static ' +
      'namespace (mce-dmemfs control_devdax_sigbus), while hugetlbfs gets one; "timeout" counts only where ' +
      'the kernel logged the error for that page ("recovery action for dax page")',
    note: v.note,
    evidence: v.logged.join('\n'),
  });
  ctx.measure('hmem_mce_kernel_reports', v.reports.length, {
    unit: 'reports',
    expect: eq(0),
    why: 'measured: a poisoned device-dax page is recovered without a WARNING or trace',
    note: v.reports.map((r) => r.title).join('; ') || 'none',
    reports: v.reports,
  });
}
