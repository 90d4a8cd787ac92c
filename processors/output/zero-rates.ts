// `pipeline.output.zeroRates: skip`: a rate field whose value is 0 is written when it turns 0 (the
// first 0 after a value that was not, so that a graph drops to 0) and then once per
// idleHeartbeatMs; the zeros between are left out of the point. InfluxDB's CPU follows the field
// values written, and on a quiet fleet most rates are 0 most of the time (throttling without a
// quota, major faults, errors, drops, discards, `full` stalls): docs/cost.md measured −22 % influxd
// CPU per entity-sample. The price is on the reading side: an entity's rate is read as its sum over
// the bucket ÷ count("interval_seconds") with fill(0) instead of mean() (docs/schema.md, "When a
// point is written"); the generated dashboards read every rate so, in both modes.
//
// Runs after every stage (they read the figures, zeros included, from their views) on the points
// of the layer measurements. The state is per series, keyed by the point's tags object, which the
// rates stage keeps one of per entity and per device/interface while they live: a new agent run or
// a new series starts with every zero written, and a series the stage stops caching (past 4,096
// devices of one entity) simply has its zeros written.
import type { Point } from '../../schemas/point.ts';
import { MEASUREMENT } from '../rates/rates.ts';

const LAYER_MEASUREMENTS: ReadonlySet<string> = new Set(Object.values(MEASUREMENT));

/**
 * Rate fields, by the endings the processor reserves for them (schemas/sample.ts: a gauge may not
 * end so), plus the disk counters' rates named otherwise. Not `_ms_per_op`: a latency is written
 * only for ops > 0, so a 0 there is a measured 0 ms, not an idle interval.
 */
const RATE_ENDINGS = ['_per_second', '_cores', '_iops', '_stall_ratio'] as const;
const OTHER_RATES: ReadonlySet<string> = new Set(['utilization_ratio', 'avg_queue_depth']);

export function isRateField(name: string): boolean {
  if (OTHER_RATES.has(name)) return true;
  for (const e of RATE_ENDINGS) if (name.endsWith(e)) return true;
  return false;
}

export class ZeroRateFilter {
  /** Per series (its tags object): sample time of the last 0 written, per field now at 0. */
  private readonly zeroWrittenAt = new WeakMap<object, Map<string, number>>();
  /** Names already classified (a bounded set in practice: the catalogues' fields). */
  private readonly rateNames = new Map<string, boolean>();
  /** Field values left out (strata_processor_zero_rates_skipped_total). */
  skipped = 0;

  constructor(private readonly heartbeatMs: number) {}

  private isRate(name: string): boolean {
    let r = this.rateNames.get(name);
    if (r === undefined) {
      r = isRateField(name);
      if (this.rateNames.size < 10_000) this.rateNames.set(name, r);
    }
    return r;
  }

  /** Leaves repeated zero rates out of `points`, in place; a point left with no field goes. */
  apply(points: Point[]): void {
    let w = 0;
    for (let i = 0; i < points.length; i++) {
      const p = points[i]!;
      if (LAYER_MEASUREMENTS.has(p.measurement)) {
        const fields = this.filter(p);
        if (fields === undefined) continue; // nothing left to write
        if (fields !== p.fields)
          points[i] = { measurement: p.measurement, tags: p.tags, fields, timeMs: p.timeMs };
      }
      points[w++] = points[i]!;
    }
    points.length = w;
  }

  /** The point's fields without the zeros to skip: the same object when none is. */
  private filter(p: Point): Point['fields'] | undefined {
    let state = this.zeroWrittenAt.get(p.tags);
    let skip: string[] | undefined;
    const t = p.timeMs;
    for (const k in p.fields) {
      const v = p.fields[k];
      if (v !== 0) {
        if (state !== undefined && state.size > 0) state.delete(k);
        continue;
      }
      if (!this.isRate(k)) continue;
      if (state === undefined) {
        state = new Map();
        this.zeroWrittenAt.set(p.tags, state);
      }
      const at = state.get(k);
      // A time before the last written zero is a replay or a clock stepped back: written.
      if (at !== undefined && t >= at && t - at < this.heartbeatMs) {
        if (skip === undefined) skip = [];
        skip.push(k);
      } else state.set(k, t);
    }
    if (skip === undefined) return p.fields;
    this.skipped += skip.length;
    // A new object built key by key (a `delete` would leave V8 a slow dictionary-mode object).
    const out: Point['fields'] = {};
    let any = false;
    for (const k in p.fields) {
      if (skip.includes(k)) continue;
      out[k] = p.fields[k] as number | string | boolean;
      any = true;
    }
    return any ? out : undefined;
  }
}
