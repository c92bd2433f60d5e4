/** Accelerator choice: KVM only with vmx/svm in the host CPU and a usable /dev/kvm, else TCG with scaled timeouts. */
import t from 'tap';
import { cpuVirtFlags, decideAccel, TCG_TIMEOUT_SCALE, withKernelSlowdown } from '../../vm/accel.js';

const kvmOk = { ok: true, why: '/dev/kvm opens read-write' };
const kvmNo = { ok: false, why: '/dev/kvm: ENOENT' };

t.test('cpu flags from /proc/cpuinfo', async (t) => {
  t.same(cpuVirtFlags('processor\t: 0\nflags\t\t: fpu vme sse2 vmx ept\nprocessor : 1\nflags : fpu vmx\n'), ['vmx']);
  t.same(cpuVirtFlags('flags : fpu sse2 svm npt\n'), ['svm']);
  t.same(cpuVirtFlags('flags : fpu sse2 hypervisor\n'), []);
});

t.test('KVM only with vmx/svm and a usable /dev/kvm', async (t) => {
  t.equal(decideAccel({ cpuFlags: ['vmx'], kvmDevice: kvmOk }).accel, 'kvm');
  const noFlags = decideAccel({ cpuFlags: [], kvmDevice: kvmOk });
  t.equal(noFlags.accel, 'tcg', '/dev/kvm alone does not count');
  t.match(noFlags.reason, /neither vmx nor svm/);
  t.equal(noFlags.timeoutScale, TCG_TIMEOUT_SCALE);
  t.equal(decideAccel({ cpuFlags: ['svm'], kvmDevice: kvmNo }).accel, 'tcg');
});

t.test('overrides', async (t) => {
  t.equal(decideAccel({ cpuFlags: ['vmx'], kvmDevice: kvmOk, requested: 'tcg' }).accel, 'tcg');
  t.throws(
    () => decideAccel({ cpuFlags: [], kvmDevice: kvmOk, requested: 'kvm' }),
    /KVM was requested but is not usable/,
  );
  t.throws(() => decideAccel({ cpuFlags: [], kvmDevice: kvmOk, requested: 'hvf' }), /unknown accelerator/);
  t.equal(decideAccel({ cpuFlags: [], kvmDevice: kvmNo, requested: 'auto' }).accel, 'tcg');
});

t.test('a slower kernel stretches the timeouts of either accelerator, and says so', async (t) => {
  const kvm = decideAccel({ cpuFlags: ['svm'], kvmDevice: kvmOk });
  const tcg = decideAccel({ cpuFlags: [], kvmDevice: kvmOk });
  const k = withKernelSlowdown(kvm, 3, 'profile x-debug');
  t.equal(k.accel, 'kvm', 'the accelerator is unchanged');
  t.equal(k.timeoutScale, 3);
  t.match(k.reason, /; timeouts x3 \(profile x-debug\)$/);
  t.equal(withKernelSlowdown(tcg, 3, 'd').timeoutScale, TCG_TIMEOUT_SCALE * 3);
  t.equal(withKernelSlowdown(tcg, undefined, 'd'), tcg, 'no factor: the same choice');
  t.equal(withKernelSlowdown(tcg, 1, 'd'), tcg);
});
