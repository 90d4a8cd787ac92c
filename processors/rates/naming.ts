// How a raw counter name (docs/metrics.md) becomes the name of its rate field (docs/schema.md):
// looked up in the collectors' metric catalogues (collectors/*/metrics.ts), built into one Map at
// load. The hot path does one Map lookup per counter.
//
// A counter no catalogue declares (a newer agent's, a guest's, a renamed one) keeps the generic
// rule `<name without _total>_per_second`, scale 1, so nothing is lost: it is written as a plain
// per-second rate until its entry is added.
import { CPU_ALL as PROC_CPU_ALL, CPU_BUSY as PROC_CPU_BUSY } from '../../collectors/host/metrics.ts';
import type { MetricSpec } from '../../schemas/catalogue.ts';
import { COUNTER_FIELD_CLASH, CPU_CORES_FIELD } from '../../schemas/sample.ts';
import { ALL_CATALOGUES } from './catalogues.ts';

/** Layers whose `cpu_cores` the rates stage sums from the CPU buckets (rates.ts deriveEntity). */
const DERIVED_CPU_CORES_LAYERS: ReadonlySet<string> = new Set(['host', 'guest']);

/** rate field = Δcounter ÷ Δt[s] × scale. `field` null: the counter only feeds a derived figure. */
export interface RateSpec {
  readonly field: string | null;
  readonly scale: number;
}

/** Per-op latency: Δtime ÷ Δops, in ms (ns counters ×1e-6), emitted only when Δops > 0. */
export interface LatencySpec {
  readonly time: string;
  readonly ops: string;
  readonly field: string;
  readonly toMs: number;
}

/**
 * Name → rate, and every latency pair, from the catalogues. Throws on two entries disagreeing, and
 * on a rate field the processor writes itself (an identity tag or a derived figure: the decoder
 * relies on this instead of looking each counter up).
 */
export function buildNaming(catalogues: readonly (readonly MetricSpec[])[]): {
  rates: Map<string, RateSpec>;
  latencies: LatencySpec[];
} {
  const rates = new Map<string, RateSpec>();
  const latencies = new Map<string, LatencySpec>();
  for (const cat of catalogues) {
    for (const m of cat) {
      if (m.kind !== 'counter') continue;
      const spec: RateSpec = m.rate
        ? { field: m.rate.field, scale: m.rate.scale }
        : { field: null, scale: 0 };
      if (spec.field === CPU_CORES_FIELD && m.layers.some((l) => DERIVED_CPU_CORES_LAYERS.has(l))) {
        throw new Error(
          `metric catalogue: the rate field of ${m.name}, ${spec.field}, is derived by the processor on ${[...DERIVED_CPU_CORES_LAYERS].join(' and ')} points`,
        );
      }
      if (spec.field !== null && COUNTER_FIELD_CLASH.has(spec.field)) {
        throw new Error(
          `metric catalogue: the rate field of ${m.name}, ${spec.field}, is written by the processor itself`,
        );
      }
      const had = rates.get(m.name);
      // One name is one meaning on the wire, whichever collector sends it (the processor cannot
      // tell them apart): two catalogues giving it different rates is a bug in one of them.
      if (had !== undefined && (had.field !== spec.field || had.scale !== spec.scale)) {
        throw new Error(`metric catalogues disagree on the rate of ${m.name}: ${had.field} vs ${spec.field}`);
      }
      rates.set(m.name, spec);
      if (m.latency) {
        const l = { time: m.name, ops: m.latency.ops, field: m.latency.field, toMs: m.latency.toMs };
        latencies.set(`${l.time}/${l.ops}`, l);
      }
    }
  }
  return { rates, latencies: [...latencies.values()] };
}

const NAMING = buildNaming(ALL_CATALOGUES);

/** The generic rule for a counter no catalogue declares. */
export function genericRateSpec(counter: string): RateSpec {
  const base = counter.endsWith('_total') ? counter.slice(0, -'_total'.length) : counter;
  return { field: `${base}_per_second`, scale: 1 };
}

/** The rate of a counter: its catalogue entry's, else the generic rule. */
export function computeRateSpec(counter: string): RateSpec {
  return NAMING.rates.get(counter) ?? genericRateSpec(counter);
}

const unknown = new Map<string, RateSpec>();
const UNKNOWN_LIMIT = 10_000; // names outside the catalogues are rare; a flood of odd names is not cached

export function rateSpec(counter: string): RateSpec {
  let spec = NAMING.rates.get(counter) ?? unknown.get(counter);
  if (spec === undefined) {
    spec = genericRateSpec(counter);
    if (unknown.size < UNKNOWN_LIMIT) unknown.set(counter, spec);
  }
  return spec;
}

/**
 * Gauges agents older than schema version 3 send that the processor does not write: the kernel's
 * PSI avg10 averages, which the `psi_*_stall_ratio` rate of the exact interval replaces
 * (docs/schema.md, "What changed in version 3"). Current agents no longer read or send them.
 */
export const OLDER_AGENT_GAUGES_NOT_WRITTEN: readonly string[] = (['cpu', 'io', 'memory'] as const).flatMap(
  (r) => (['some', 'full'] as const).map((k) => `psi_${r}_${k}_avg10_pct`),
);

/** The same, for the rates stage's per-gauge check. */
export const NOT_STORED: ReadonlySet<string> = new Set(OLDER_AGENT_GAUGES_NOT_WRITTEN);

/** Every latency pair the catalogues declare (time counter / ops counter → `*_latency_ms_per_op`). */
export const LATENCIES: readonly LatencySpec[] = NAMING.latencies;

/** /proc/stat CPU counters that are work (guest/guest_nice are already inside user/nice). */
export const CPU_BUSY: readonly string[] = PROC_CPU_BUSY.map((m) => m.name);
/** All /proc/stat time buckets that partition CPU time (busy + idle + iowait + steal). */
export const CPU_ALL: readonly string[] = PROC_CPU_ALL.map((m) => m.name);
