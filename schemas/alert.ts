// Alerts the processor emits (noisy neighbours, ...) on the alerts topic, keyed by node id.
import { z } from 'zod';

export const ALERT_SCHEMA_VERSION = 1 as const;

export const AlertEvent = z.strictObject({
  v: z.literal(ALERT_SCHEMA_VERSION),
  /** Stable for one incident: firing and resolved events share it. */
  id: z.string().min(1),
  name: z.string().min(1), // e.g. NoisyNeighborIO
  status: z.enum(['firing', 'resolved']),
  node: z.string().min(1),
  /** Bounded identifying labels (device, antagonist, victims...). */
  labels: z.record(z.string(), z.string()),
  /** Evidence, with units in the keys (antagonist_iops_share_ratio, victim_latency_increase_ratio...). */
  evidence: z.record(z.string(), z.number()),
  summary: z.string(),
  starts_at: z.number().int().nonnegative(),
  ends_at: z.number().int().nonnegative().optional(),
  /**
   * Resolved events: why it ended. `recovered` (the evidence was good for m windows) or
   * `node_silent` (the node stopped reporting and was evicted; nothing can be judged any more).
   */
  resolved_reason: z.string().min(1).optional(),
  /**
   * What to do (docs/overhead.md, "Remedy"): the cap on the antagonist's I/O that would give its
   * victims their baseline back, as the commands for its kind (cgroup v2 io.max, v1
   * blkio.throttle.*, docker run flags, libvirt/QEMU throttling), and the alternative of
   * scheduling the tenants apart. Absent when the antagonist was never seen by this processor.
   */
  remedy: z.string().min(1).optional(),
  /** Sample time of the tick that produced this event. */
  ts: z.number().int().nonnegative(),
});
export type AlertEvent = z.infer<typeof AlertEvent>;
