/** Which kernels boot through PVH (a vmlinux, no decompressor) and which through their bzImage. */
import t from 'tap';
import { configHasPvh, pvhBootable } from '../../images/boot-image.js';

t.test('PVH only with CONFIG_PVH=y, and never with KASAN (it resets at once through PVH)', async (t) => {
  t.ok(configHasPvh('CONFIG_PVH=y\nCONFIG_SMP=y\n'));
  t.notOk(configHasPvh('# CONFIG_PVH is not set\n'));
  t.notOk(configHasPvh('CONFIG_PVH=y\nCONFIG_KASAN=y\n'), 'the debug variant boots its bzImage');
  t.ok(configHasPvh('CONFIG_PVH=y\n# CONFIG_KASAN is not set\n'));
});

t.test('DMEMFS_RIG_PVH=0 turns PVH off before the image is looked at', async (t) => {
  const was = process.env.DMEMFS_RIG_PVH;
  process.env.DMEMFS_RIG_PVH = '0';
  t.teardown(() => (was === undefined ? delete process.env.DMEMFS_RIG_PVH : (process.env.DMEMFS_RIG_PVH = was)));
  t.notOk(pvhBootable('CONFIG_PVH=y\n', '/nonexistent/vmlinux'));
});
