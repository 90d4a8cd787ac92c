// Configuration of the host collector (`collectors.host` in the agent config).
import { z } from 'zod';
import { parseConfig } from '../../lib/config.ts';

const NameFilter = z.strictObject({
  /**
   * Globs of names to report. Empty (default) = the built-in rule: for disks whole disks only (no
   * partitions, loop*, ram*, zram*, dm-*); for interfaces every interface. When set, it replaces
   * the built-in rule (so `["sd*"]` reports partitions too).
   */
  include: z.array(z.string().min(1)).default([]),
  /** Globs of names never reported, applied after `include`. */
  exclude: z.array(z.string().min(1)).default([]),
});

export const HostCollectorConfig = z.strictObject({
  /** Turns the collector off (the agent then sends no `host` entity). */
  enabled: z.boolean().default(true),
  /** Node id override; else STRATA_NODE_ID, else HOST_ETC/machine-id, else the hostname. */
  nodeId: z.string().min(1).optional(),
  /** /proc/diskstats devices. */
  disks: NameFilter.default({ include: [], exclude: [] }),
  /** /proc/net/dev interfaces. Default excludes `lo`. */
  interfaces: NameFilter.default({ include: [], exclude: ['lo'] }),
  /** Read /proc/pressure/* (PSI). Turned off automatically when the kernel has no PSI. */
  pressure: z.boolean().default(true),
  /**
   * Read KSM's state and effect (HOST_SYS/kernel/mm/ksm/*) and ksmd's CPU once per tick. Nothing is
   * read on kernels without KSM (no /sys/kernel/mm/ksm).
   */
  ksm: z.boolean().default(true),
  /** Collect inventory labels (cpu model, cores, OS, virtualization) once at start via systeminformation. */
  inventory: z.boolean().default(true),
});
export type HostCollectorConfig = z.output<typeof HostCollectorConfig>;

export function parseHostConfig(input: unknown, where = 'collectors.host'): HostCollectorConfig {
  return parseConfig(HostCollectorConfig, input ?? {}, where);
}
