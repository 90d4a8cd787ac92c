// The metric catalogue's shape: what one counter or gauge on the wire is, where the kernel keeps it,
// and what the processor writes for it. Each collector folder declares its own entries
// (`collectors/<name>/metrics.ts`), parsers emit through those entries' names, the processor
// derives its rate fields from them, and `npm run docs` generates docs/metrics.md and the field
// lists of docs/schema.md from them (modelled on OpenTelemetry's per-scraper metadata.yaml).
//
// It lives in schemas/ beside the wire format it describes: collectors and processors both import
// it, and it imports nothing.

/** Where a metric sits in an EntitySample: on the entity itself, or per device / per interface. */
export type MetricScope = 'entity' | 'device' | 'interface';

/** The layers of docs/overhead.md; a metric lists every layer whose entities carry it. */
export type MetricLayer = 'host' | 'container' | 'vm' | 'guest';

/**
 * Units as UCUM-style strings, OpenTelemetry's convention: `us`, `ms`, `ns`, `s`, `By`, `%`, `1`
 * (a dimensionless ratio), and annotations in braces for counts (`{op}`, `{packet}`, `{fault}`).
 */
export type MetricUnit = string;

/** What the processor writes for a counter: `field` = Δcounter ÷ Δt[s] × `scale`, in `unit`. */
export interface RateDerivation {
  readonly field: string;
  readonly unit: MetricUnit;
  readonly scale: number;
  readonly description: string;
}

/**
 * Counters only: a per-op latency the processor derives from this time counter and an ops counter
 * of the same instance: `field` = Δthis × `toMs` ÷ Δops, written only when Δops > 0.
 */
export interface LatencyDerivation {
  /** The wire name of the ops counter (e.g. `reads_completed_total`). */
  readonly ops: string;
  readonly field: string;
  /** Factor from this counter's unit to ms (1 for `_ms_total`, 1e-6 for `_ns_total`). */
  readonly toMs: number;
  readonly description: string;
}

export interface MetricSpec {
  /** The name on the wire (and, for gauges, the InfluxDB field). Units in the name (`_usec_total`). */
  readonly name: string;
  /** counter: monotonic, `_total`, turned into a rate by the processor; gauge: written as it is. */
  readonly kind: 'counter' | 'gauge';
  readonly unit: MetricUnit;
  readonly scope: MetricScope;
  readonly layers: readonly MetricLayer[];
  /**
   * The kernel file(s) and field it is read from, per variant: e.g.
   * `{ 'cgroup v2': 'cpu.stat usage_usec', 'cgroup v1': 'cpuacct.usage (ns ÷ 1000)' }`.
   */
  readonly sources: Readonly<Record<string, string>>;
  readonly description: string;
  /**
   * Counters only: the rate field the processor writes. `null`: no field of its own (the counter
   * only feeds a derived figure, e.g. `read_time_ms_total` → `read_latency_ms_per_op`).
   */
  readonly rate?: RateDerivation | null;
  /** Time counters only: the per-op latency derived from it (see LatencyDerivation). */
  readonly latency?: LatencyDerivation;
  /** Since when the kernel (or QEMU) provides it, when not always: e.g. `Linux 4.13`. */
  readonly since?: string;
}
