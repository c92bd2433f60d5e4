/** Accelerator choice: KVM only with vmx/svm in the host CPU and a usable /dev/kvm, else TCG with scaled timeouts. */
import t from 'tap';
import {
  cpuVirtFlags,
  decideAccel,
  NESTED_KVM_TIMEOUT_SCALE,
  runsInVm,
  TCG_TIMEOUT_SCALE,
  withKernelSlowdown,
} from '../../vm/accel.js';
import { NESTED_KVM_ARTIFACTS } from '../../vm/crash-patterns.js';

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

t.test('KVM inside a virtual machine is nested KVM: stretched timeouts, said; TCG in a VM is plain TCG', async (t) => {
  const cpuinfo = 'processor\t: 0\nflags\t\t: fpu vme svm hypervisor lahf_lm\n';
  t.ok(runsInVm(cpuinfo), 'the "hypervisor" flag marks a guest');
  t.notOk(runsInVm('flags\t\t: fpu vme svm\n'), 'bare metal has none');
  const nested = decideAccel({ cpuFlags: cpuVirtFlags(cpuinfo), kvmDevice: kvmOk, hypervisor: runsInVm(cpuinfo) });
  t.equal(nested.accel, 'kvm', 'still KVM');
  t.equal(nested.nested, true);
  t.equal(nested.timeoutScale, NESTED_KVM_TIMEOUT_SCALE);
  t.match(nested.reason, /svm and \/dev\/kvm opens read-write; this host is itself a virtual machine \(nested KVM\)/);
  const bare = decideAccel({ cpuFlags: ['svm'], kvmDevice: kvmOk, hypervisor: false });
  t.same([bare.timeoutScale, bare.nested], [1, undefined], 'bare-metal KVM: unscaled');
  const forced = decideAccel({ cpuFlags: ['svm'], kvmDevice: kvmOk, hypervisor: true, requested: 'kvm' });
  t.equal(forced.timeoutScale, NESTED_KVM_TIMEOUT_SCALE, 'forced KVM in a VM is nested too');
  const tcg = decideAccel({ cpuFlags: [], kvmDevice: kvmOk, hypervisor: true });
  t.same([tcg.accel, tcg.timeoutScale, tcg.nested], ['tcg', TCG_TIMEOUT_SCALE, undefined], 'TCG in a VM: TCG');
});

t.test('nested KVM tolerates the hypervisor artifacts it lists, and only those', async (t) => {
  const title = 'WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c:606 fpu__init_system_xstate+0x85a/0xb19';
  t.ok(
    NESTED_KVM_ARTIFACTS.some((a) => a.title.test(title)),
    'the XSAVE size warning seen under nested SVM',
  );
  for (const other of [
    'WARNING: CPU: 1 PID: 7 at mm/dmem.c:200 dmem_alloc_pages+0x10/0x20',
    'BUG: kernel NULL pointer dereference, address: 0000000000000000',
  ])
    t.notOk(
      NESTED_KVM_ARTIFACTS.some((a) => a.title.test(other)),
      `not: ${other.slice(0, 40)}`,
    );
});
