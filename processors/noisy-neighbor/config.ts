// Noisy-neighbor I/O detection settings (docs/overhead.md, "Noisy neighbours").
import { z } from 'zod';
import { durationMs } from '../../lib/config.ts';

export const NoisyNeighborConfig = z.strictObject({
  /** Turn detection off (no alerts, no state). */
  enabled: z.boolean().default(true),
  /** Ticks per evaluation window: figures are averaged over a window before any decision. */
  windowTicks: z.number().int().positive().default(5),
  /** Windows a tenant must have seen before its baseline is trusted (warm-up). */
  warmupWindows: z.number().int().nonnegative().default(4),
  /** EWMA weight of a new window in the baseline (mean and variance of stall / latency). */
  baselineAlpha: z.number().gt(0).lte(1).default(0.2),
  /** A tenant is a victim when its window value exceeds baseline mean + zThreshold × sd ... */
  zThreshold: z.number().positive().default(3),
  /** ... and baseline mean × ratioThreshold ... */
  ratioThreshold: z.number().gte(1).default(2),
  /** ... and rises by at least this much io stall (stalled s per s) ... */
  minStallIncreaseRatio: z.number().nonnegative().default(0.05),
  /**
   * ... or its per-op latency rises by at least this many ms per op (with the same z and ratio
   * tests). Per-op latency: QMP time per op for VMs; ms stalled on I/O (PSI) per op issued for
   * containers.
   */
  minLatencyIncreaseMs: z.number().nonnegative().default(0.25),
  /** Minimum ops a tenant issues in a window for its per-op latency to be judged at all. */
  minTenantOpsPerWindow: z.number().nonnegative().default(10),
  /** Floor on the baseline standard deviation, so a perfectly steady baseline does not fire on noise. */
  minStallSd: z.number().nonnegative().default(0.01),
  /** A tenant whose share of the device's IOPS or bytes over the window reaches this dominates it. */
  dominantShare: z.number().gt(0).lte(1).default(0.5),
  /** Minimum device operations per window (all tenants) for any decision: an idle device accuses no one. */
  minDeviceOpsPerWindow: z.number().nonnegative().default(50),
  /** Windows of per-tick history kept for the antagonist's correlation evidence. */
  evidenceWindows: z.number().int().positive().default(6),
  /** Fire after this many consecutive bad windows... */
  fireAfterWindows: z.number().int().positive().default(2),
  /** ... and resolve after this many consecutive good ones (and no sooner than episodeGap, below). */
  resolveAfterWindows: z.number().int().positive().default(3),
  /**
   * Episode gap (sample time): an open incident resolves only once no window has been bad for this
   * long, so an antagonist that comes back within it (a backup, a compaction, a batch job working in
   * bursts) continues the same incident — same id, one Alertmanager alert, one Grafana region —
   * marked intermittent with its duty cycle. The price: an incident resolves max(resolveAfterWindows
   * windows, this) after its last bad window instead of resolveAfterWindows windows. 0: off.
   * "2m", "30s" or ms.
   */
  episodeGap: durationMs.default(120_000),
  /**
   * Remedy in every alert: the suggested cap on the antagonist's I/O is the rate at which its victim
   * would be back at this multiple of its baseline (per-op latency, else stall), from the
   * antagonist's utilisation ρ of the device's measured capacity and an M/G/1 queue:
   * ρ'/(1 − ρ') = ρ/(1 − ρ) × (target − 1)·baseline ÷ (now − baseline), cap = rate × ρ'/ρ; tightened
   * from the evidence under the cap while the incident stays open (docs/overhead.md, "Remedy").
   */
  remedyTargetRatio: z.number().gt(1).default(1.5),
  /**
   * Host device name → "major:minor" for the remedy's cgroup lines (io.max, blkio.throttle.*), e.g.
   * { vda: "254:0" }. Samples name devices, not numbers: without an entry the line reads the number
   * on the node itself ($(cat /sys/class/block/<dev>/dev)).
   */
  deviceNumbers: z.record(z.string(), z.string().regex(/^\d+:\d+$/, 'major:minor')).default({}),
  /** Bound on tenants tracked per node (containers and VMs); beyond it new ones are ignored, counted. */
  maxTenantsPerNode: z.number().int().positive().default(2000),
});
export type NoisyNeighborConfig = z.output<typeof NoisyNeighborConfig>;
