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
  /**
   * The host block device backing each VM's disks, by VM name (entity name) → host kernel device
   * name, e.g. { "vm1": "sda" }. When known (here or via the vm entity label `host_device`), the
   * hypervisor's share of the added I/O latency is separated from the device's own latency.
   */
  vmBackingDevices: z.record(z.string(), z.string()).default({}),
  /**
   * Host interfaces whose packets are not the host's own traffic but a copy of a container's or
   * VM's (veth pairs, bridges, taps): excluded from the host's CPU-per-packet figure. Name prefixes.
   */
  hostVirtualInterfacePrefixes: z
    .array(z.string().min(1))
    .default(['lo', 'veth', 'docker', 'br-', 'tap', 'vnet', 'virbr', 'cni', 'flannel', 'cali', 'kube']),
});
export type OverheadConfig = z.output<typeof OverheadConfig>;
