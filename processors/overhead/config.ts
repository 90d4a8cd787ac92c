// Thresholds of the overhead stage. Below them a ratio has too little work under it to mean
// anything, and no number is written (docs/overhead.md, "Idle and missing views").
import { z } from 'zod';

export const OverheadConfig = z.strictObject({
  /** Minimum guest busy CPU (cores, averaged over the interval) for hypervisor ÷ guest CPU ratios. */
  minGuestBusyCores: z.number().nonnegative().default(0.02),
  /** Minimum operations in the interval (per side) for per-op latency and amplification figures. */
  minOpsPerInterval: z.number().nonnegative().default(10),
  /** Minimum packets in the interval for per-packet figures and tap ÷ guest packet ratios. */
  minPacketsPerInterval: z.number().nonnegative().default(100),
  /** Minimum page faults in the interval (guest side) for hypervisor ÷ guest fault ratios. */
  minFaultsPerInterval: z.number().nonnegative().default(100),
  /**
   * How many ticks a vm view waits for its guest view (and vice versa): 1 = a guest view that
   * arrives one message late is still joined with the vm view of its own tick.
   */
  joinGraceTicks: z.number().int().min(0).max(4).default(1),
});
export type OverheadConfig = z.output<typeof OverheadConfig>;
