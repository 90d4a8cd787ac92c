// Configuration of the guest collector (`collectors.guest` in the agent config).
import { z } from 'zod';
import { durationMs, parseConfig } from '../../lib/config.ts';

const StaticAgent = z.strictObject({
  /** The `vm` entity id this guest belongs to (what the vm collector reports for it). */
  vmId: z.string().min(1),
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
  fromVmCollector: z.boolean().default(true),
  /** Agent sockets given by hand (VMs whose command line strata cannot read). */
  agents: z.array(StaticAgent).default([]),
  /** A record larger than this is dropped and counted (bounds the per-VM buffer). */
  maxRecordBytes: z
    .number()
    .int()
    .min(4096)
    .default(1024 * 1024),
  /**
   * A header or END line longer than this is dropped and counted (reason header_too_long); the
   * decoder resyncs on the next header. The agent's lines are ≈ 40 bytes.
   */
  maxHeaderBytes: z.number().int().min(32).default(256),
  /**
   * Records decoded per second per guest (burst of the same size); the others are found, dropped
   * undecoded and counted (reason rate). The agent sends one a second.
   */
  maxRecordsPerSecond: z.number().int().positive().default(10),
  /**
   * Bytes read per second per guest; past it the socket is not read until the second is over, so
   * a flooding guest waits on its own virtio-serial writes instead of costing the host CPU.
   */
  maxBytesPerSecond: z
    .number()
    .int()
    .min(64 * 1024)
    .default(4 * 1024 * 1024),
  /** Problems (malformed lines) of one record reported and logged; the rest are only counted. */
  maxProblemsPerRecord: z.number().int().nonnegative().default(5),
  /** Devices, and interfaces, per entity (the guest and each of its containers); the rest are counted. */
  maxInstances: z.number().int().positive().default(64),
  /**
   * Instance names (devices, interfaces, containers) a guest may introduce per tick: a guest
   * inventing names every record cannot create series faster than this.
   */
  maxNewInstancesPerTick: z.number().int().positive().default(64),
  /**
   * Distinct instance names kept per guest: once reached, a new name is published only when one
   * unseen for instanceNameTtl makes room (series cardinality bound).
   */
  maxInstanceNames: z.number().int().positive().default(1024),
  /** How long an instance name the guest stopped reporting keeps its place in maxInstanceNames. */
  instanceNameTtl: durationMs.default(3_600_000),
  /**
   * Longest device, interface name or container cgroup path taken from a guest; longer names,
   * and names with control characters (ESC, C1, bidi overrides), are refused and counted.
   */
  maxNameLength: z.number().int().min(16).default(256),
  /** First reconnect delay after the socket closed or refused; doubles up to 30 s. */
  reconnectBackoff: durationMs.default(1000),
  /**
   * At start, wait up to this long for a first record from each guest, so the first tick (and
   * `strata agent --once`) already has the guest view. 0 = do not wait.
   */
  firstRecordWait: durationMs.default(1500),
  /**
   * Report (once, then count) a connected guest that sent no record for this long: the agent is not
   * running in the guest, the guest hangs, or another program holds the socket's single client slot.
   */
  silenceWarning: durationMs.default(10_000),
  /**
   * Publish the guest's containers (the cgroups the in-guest agent reports, cgroup v2 guests) as
   * `container` entities parented to the `guest` entity.
   */
  containers: z.boolean().default(true),
  /** At most this many containers per guest per record; the rest are counted as dropped. */
  maxContainers: z.number().int().positive().default(256),
  /** Upper bound on guests followed; more are ignored and counted. */
  maxGuests: z.number().int().positive().default(512),
});
export type GuestCollectorConfig = z.output<typeof GuestCollectorConfig>;

export function parseGuestConfig(input: unknown, where = 'collectors.guest'): GuestCollectorConfig {
  return parseConfig(GuestCollectorConfig, input ?? {}, where);
}
