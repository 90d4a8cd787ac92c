// How a raw counter name (docs/metrics.md) becomes the name of its rate field (docs/schema.md).
// Computed once per distinct counter name and cached: the hot path only does a Map lookup.

/** rate field = Δcounter ÷ Δt[s] × scale. `field` null: the counter only feeds a derived figure. */
export interface RateSpec {
  readonly field: string | null;
  readonly scale: number;
}

const cache = new Map<string, RateSpec>();
const CACHE_LIMIT = 10_000; // names come from a fixed catalogue; a flood of odd names is not cached

export function rateSpec(counter: string): RateSpec {
  let spec = cache.get(counter);
  if (spec === undefined) {
    spec = computeRateSpec(counter);
    if (cache.size < CACHE_LIMIT) cache.set(counter, spec);
  }
  return spec;
}

/**
 * The naming rules, in order:
 * - `psi_<res>_<some|full>_usec_total` → `psi_<res>_<some|full>_stall_ratio` (stalled s per s)
 * - `cpu_*_usec_total`, `vcpu_usec_total` → `cpu_*_cores`, `vcpu_cores` (CPU s per s)
 * - other `*_usec_total` → `*_seconds_per_second`
 * - `io_time_ms_total` → `utilization_ratio` (busy s per s, /proc/diskstats io_ticks)
 * - `weighted_io_time_ms_total` → `avg_queue_depth` (ms of waiting per ms)
 * - other `*_time_ms_total`, `*_time_ns_total` → no field: they give `*_latency_ms_per_op`
 * - `<op>s_completed_total` → `<op>_iops`
 * - `*_bytes_total` → `*_bytes_per_second`
 * - other `*_total` → `*_per_second`
 */
export function computeRateSpec(counter: string): RateSpec {
  if (!counter.endsWith('_total')) return { field: `${counter}_per_second`, scale: 1 };
  const base = counter.slice(0, -'_total'.length);
  if (base.endsWith('_usec')) {
    const b = base.slice(0, -'_usec'.length);
    if (b.startsWith('psi_')) return { field: `${b}_stall_ratio`, scale: 1e-6 };
    if (b.startsWith('cpu_') || b === 'vcpu') return { field: `${b}_cores`, scale: 1e-6 };
    return { field: `${b}_seconds_per_second`, scale: 1e-6 };
  }
  if (base === 'io_time_ms') return { field: 'utilization_ratio', scale: 1e-3 };
  if (base === 'weighted_io_time_ms') return { field: 'avg_queue_depth', scale: 1e-3 };
  if (base.endsWith('_time_ms') || base.endsWith('_time_ns')) return { field: null, scale: 0 };
  if (base.endsWith('_completed')) {
    const ops = base.slice(0, -'_completed'.length); // reads, writes, discards, flushes
    const op = ops.endsWith('hes') ? ops.slice(0, -2) : ops.endsWith('s') ? ops.slice(0, -1) : ops;
    return { field: `${op}_iops`, scale: 1 };
  }
  return { field: `${base}_per_second`, scale: 1 };
}

/** Per-op latency: Δtime ÷ Δops, in ms (ns counters ×1e-6), emitted only when Δops > 0. */
export interface LatencySpec {
  readonly time: string;
  readonly ops: string;
  readonly field: string;
  readonly toMs: number;
}

export const LATENCIES: readonly LatencySpec[] = [
  { time: 'read_time_ms_total', ops: 'reads_completed_total', field: 'read_latency_ms_per_op', toMs: 1 },
  { time: 'write_time_ms_total', ops: 'writes_completed_total', field: 'write_latency_ms_per_op', toMs: 1 },
  {
    time: 'discard_time_ms_total',
    ops: 'discards_completed_total',
    field: 'discard_latency_ms_per_op',
    toMs: 1,
  },
  { time: 'flush_time_ms_total', ops: 'flushes_completed_total', field: 'flush_latency_ms_per_op', toMs: 1 },
  { time: 'read_time_ns_total', ops: 'reads_completed_total', field: 'read_latency_ms_per_op', toMs: 1e-6 },
  {
    time: 'write_time_ns_total',
    ops: 'writes_completed_total',
    field: 'write_latency_ms_per_op',
    toMs: 1e-6,
  },
  {
    time: 'flush_time_ns_total',
    ops: 'flushes_completed_total',
    field: 'flush_latency_ms_per_op',
    toMs: 1e-6,
  },
];

/** /proc/stat CPU fields that are work (guest/guest_nice are already inside user/nice). */
export const CPU_BUSY = [
  'cpu_user_usec_total',
  'cpu_nice_usec_total',
  'cpu_system_usec_total',
  'cpu_irq_usec_total',
  'cpu_softirq_usec_total',
] as const;
/** All /proc/stat time buckets that partition CPU time (busy + idle + iowait + steal). */
export const CPU_ALL = [
  ...CPU_BUSY,
  'cpu_idle_usec_total',
  'cpu_iowait_usec_total',
  'cpu_steal_usec_total',
] as const;
