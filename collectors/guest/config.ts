// Configuration of the guest collector (`collectors.guest` in the agent config).
import { z } from 'zod';
import { durationMs, parseConfig } from '../../lib/config.ts';

const StaticAgent = z.strictObject({
  /** The `vm` entity id this guest belongs to (what the vm collector reports for it). */
  vm_id: z.string().min(1),
  /** Host unix socket of the VM's virtio-serial port the in-guest agent writes to. */
  socket: z.string().min(1),
  /** Name shown on dashboards; default the vm id. */
  name: z.string().optional(),
});

export const GuestCollectorConfig = z.strictObject({
  /** Turns the collector off (no `guest` entities). */
  enabled: z.boolean().default(true),
  /**
   * Follow the agent sockets of the VMs the vm collector found (from each QEMU command line:
   * `-device virtserialport,chardev=X,name=strata.agent` + `-chardev socket,id=X,path=...`).
   */
  from_vm_collector: z.boolean().default(true),
  /** Agent sockets given by hand (VMs whose command line strata cannot read). */
  agents: z.array(StaticAgent).default([]),
  /** A record larger than this is dropped and counted (bounds the per-VM buffer). */
  max_record_bytes: z
    .number()
    .int()
    .min(4096)
    .default(1024 * 1024),
  /** First reconnect delay after the socket closed or refused; doubles up to 30 s. */
  reconnect_backoff: durationMs.default(1000),
  /**
   * At start, wait up to this long for a first record from each guest, so the first tick (and
   * `strata agent --once`) already has the guest view. 0 = do not wait.
   */
  first_record_wait: durationMs.default(1500),
  /**
   * Report (once, then count) a connected guest that sent no record for this long: the agent is not
   * running in the guest, the guest hangs, or another program holds the socket's single client slot.
   */
  silence_warning: durationMs.default(10_000),
  /**
   * Publish the guest's containers (the cgroups the in-guest agent reports, cgroup v2 guests) as
   * `container` entities parented to the `guest` entity.
   */
  containers: z.boolean().default(true),
  /** At most this many containers per guest per record; the rest are counted as dropped. */
  max_containers: z.number().int().positive().default(256),
  /** Upper bound on guests followed; more are ignored and counted. */
  max_guests: z.number().int().positive().default(512),
});
export type GuestCollectorConfig = z.output<typeof GuestCollectorConfig>;

export function parseGuestConfig(input: unknown, where = 'collectors.guest'): GuestCollectorConfig {
  return parseConfig(GuestCollectorConfig, input ?? {}, where);
}
