/**
 * What scenarios, their steps and the judge may use of a running guest: a narrow interface
 * under vm/guest.ts's Guest (which implements it), so that a scenario body can also run against
 * a scripted or replaying guest in a unit test. Adding a member here widens what every fake must
 * answer: keep it to what the scenarios call.
 */
import type { ConsoleWatcher } from './console-watch.js';
import type { Guest } from './guest.js';
import type { QmpClient } from './qmp.js';
import type { ExecOptions, ExecResult, SshSession } from './ssh.js';

export interface GuestHandle {
  /** Run a command in the guest (an argument array; SSH underneath). */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** The kernel's console as read so far: its lines and the reports recognised in it. */
  readonly console: Pick<ConsoleWatcher, 'reports' | 'lines' | 'settled' | 'firstCrash' | 'reading'>;
  /** The monitor (HMP and QMP commands), when the boot has one. */
  readonly qmp: Pick<QmpClient, 'hmp' | 'execute' | 'events' | 'waitEvent'> | undefined;
  /** File transfer into the guest, when it has SSH. */
  readonly ssh: Pick<SshSession, 'upload'> | undefined;
  /** The accelerator (its timeout scale) and the machine's name. */
  readonly opts: { accel: Guest['opts']['accel']; spec: Pick<Guest['opts']['spec'], 'name'> };
  /** Why the guest is no longer usable (a crash, an exit), or undefined. */
  failureReason(): Error | undefined;
  /** QEMU's exit code once it has exited. */
  readonly exitCode: number | null | undefined;
  stop(): Promise<void>;
}
