// Configuration of the vm collector (`collectors.vm` in the agent config).
import { z } from 'zod';
import { durationMs, parseConfig } from '../../lib/config.ts';

/**
 * Where QMP sockets are looked for. `*` and `?` match within one path segment.
 * - /run/strata/qmp/*.sock: the convention for VMs started for strata (and strata's test VM);
 * - /var/run/qemu-server/*.qmp: Proxmox VE (one per VM, named <vmid>.qmp);
 * - /var/lib/libvirt/qemu/domain-*\/monitor.sock: libvirt. libvirtd keeps its monitor connection
 *   open and QEMU serves one client per socket, so this only works if libvirtd is not connected;
 *   give libvirt guests a second QMP socket instead (docs/vm.md shows the <qemu:commandline> lines).
 */
export const DEFAULT_QMP_SOCKETS = [
  '/run/strata/qmp/*.sock',
  '/var/run/qemu-server/*.qmp',
  '/var/lib/libvirt/qemu/domain-*/monitor.sock',
];

export const VmCollectorConfig = z.strictObject({
  /** Turns the collector off (no `vm` entities, and the guest collector finds no agent sockets). */
  enabled: z.boolean().default(true),
  /** Globs of QMP unix sockets (see DEFAULT_QMP_SOCKETS). Replaces the defaults when set. */
  qmpSockets: z.array(z.string().min(1)).default(DEFAULT_QMP_SOCKETS),
  /** Time allowed for one QMP command; a VM that does not answer is skipped for this tick. */
  commandTimeout: durationMs.default(1000),
  /** How often the socket globs are expanded again (new and removed VMs). */
  discoveryInterval: durationMs.default(10_000),
  /**
   * Balloon `guest-stats-polling-interval` set once per connection, in seconds (0 leaves it as is).
   * The guest driver then refreshes its fault and free-memory figures this often.
   */
  balloonPollingInterval: z.number().int().nonnegative().default(1),
  /** Name of the virtio-serial port the in-guest agent writes to (found in the QEMU command line). */
  guestAgentPort: z.string().min(1).default('strata.agent'),
  /**
   * Read each hypervisor's /proc/PID/smaps_rollup (Pss, anonymous, file, KSM) and ksm_stat. Off:
   * VmRSS alone (memory overhead then counts KSM-merged pages whole; docs/overhead.md §2.4).
   */
  smapsRollup: z.boolean().default(true),
  /**
   * How often the memory figures that move slowly are read per VM: smaps_rollup and QMP
   * `query-balloon`; the ticks in between repeat the last ones. smaps_rollup walks the process's
   * page tables: ≈ 1.8 ms of CPU per read for a 192 MiB TCG test VM (docs/vm.md, Cost), where the
   * rest of a VM's tick costs a few hundred µs.
   */
  memoryInterval: durationMs.default(10_000),
  /** Upper bound on VMs followed; more are ignored and counted (bounded state). */
  maxVms: z.number().int().positive().default(512),
});
export type VmCollectorConfig = z.output<typeof VmCollectorConfig>;

export function parseVmConfig(input: unknown, where = 'collectors.vm'): VmCollectorConfig {
  return parseConfig(VmCollectorConfig, input ?? {}, where);
}
