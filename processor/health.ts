// What /healthz says about a processor, and the consumer lag it is judged on.
//
// A processor that is alive but stuck (a batch retried forever, a consumer that stopped fetching)
// must not look healthy: a liveness probe that restarts it, or an alert on it, is the only way
// anyone hears of it. So /healthz answers 503, with a JSON body saying why, when
// - the samples topic has been paused (a delivery failing) for longer than health.maxStall, or
// - a partition with lag (high watermark > next offset to process) has not advanced for longer
//   than health.maxStall.
// A partition without lag counts as advancing: an idle fleet is healthy.
//
// Lag per partition is high watermark − next offset to process (the committed offset once a batch
// is committed). High watermarks come with each fetched batch and, every health.lagInterval, from
// the brokers (the runtime's refresh), so the gauge keeps rising while the processor is stuck
// instead of reading the value of the last committed batch.
import { gauge } from '../lib/metrics.ts';

const lagGauge = gauge(
  'strata_processor_consumer_lag_messages',
  'Messages behind the high watermark per assigned partition: high watermark minus the next offset to process, kept current while stuck.',
  ['partition'],
);

interface PartitionProgress {
  /** Latest known high watermark (offset of the next message to be produced). */
  high: number;
  /** Next offset to process; undefined until a batch or the group's committed offset says it. */
  next: number | undefined;
  /** When it last advanced, or was seen without lag (ms since epoch). */
  lastProgress: number;
}

export interface HealthReport {
  /** 200 or 503. */
  status: number;
  body: {
    status: 'ok' | 'stalled';
    maxStallSeconds: number;
    /** Why it is stalled (empty when ok). */
    reasons: string[];
    pausedSeconds?: number;
    /** The failing delivery that paused the partitions, as last seen. */
    cause?: string;
    partitions: { partition: number; lag: number | null; secondsSinceProgress: number }[];
  };
}

export class Health {
  private readonly parts = new Map<number, PartitionProgress>();
  private pausedSince: number | undefined;
  private cause: string | undefined;

  constructor(
    private readonly maxStallMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The assignment changed: partitions no longer ours are forgotten, new ones start their clock. */
  assign(partitions: Iterable<number>): void {
    const mine = new Set(partitions);
    for (const p of this.parts.keys()) {
      if (!mine.has(p)) {
        this.parts.delete(p);
        lagGauge.remove({ partition: String(p) });
      }
    }
    for (const p of mine) {
      if (!this.parts.has(p)) this.parts.set(p, { high: 0, next: undefined, lastProgress: this.now() });
    }
  }

  partitions(): number[] {
    return [...this.parts.keys()];
  }

  /** Whether the next offset of any assigned partition is still unknown (read the committed ones). */
  needsCommitted(): boolean {
    for (const st of this.parts.values()) if (st.next === undefined) return true;
    return false;
  }

  /** A batch arrived: its first offset is the next to process (unless known), its high watermark the lag's top. */
  batch(partition: number, firstOffset: number, highWatermark: number): void {
    const st = this.parts.get(partition);
    if (!st) return;
    st.high = Math.max(st.high, highWatermark);
    st.next ??= firstOffset;
    this.publish(partition, st);
  }

  /** Everything before `nextOffset` is processed (committed, or re-read for warm-up). */
  progressed(partition: number, nextOffset: number): void {
    const st = this.parts.get(partition);
    if (!st) return;
    st.next = Math.max(st.next ?? 0, nextOffset);
    st.high = Math.max(st.high, st.next);
    st.lastProgress = this.now();
    this.publish(partition, st);
  }

  /** From the brokers: the high watermark, and the committed offset when the next one is unknown. */
  offsets(partition: number, high: number, committed?: number): void {
    const st = this.parts.get(partition);
    if (!st) return;
    st.high = Math.max(st.high, high);
    if (st.next === undefined && committed !== undefined) st.next = committed;
    this.publish(partition, st);
  }

  paused(on: boolean, cause?: string): void {
    if (on) {
      this.pausedSince ??= this.now();
      if (cause !== undefined) this.cause = cause;
    } else {
      this.pausedSince = undefined;
      this.cause = undefined;
    }
  }

  lag(partition: number): number | undefined {
    const st = this.parts.get(partition);
    return st?.next === undefined ? undefined : Math.max(0, st.high - st.next);
  }

  check(): HealthReport {
    const now = this.now();
    const reasons: string[] = [];
    const body: HealthReport['body'] = {
      status: 'ok',
      maxStallSeconds: this.maxStallMs / 1000,
      reasons,
      partitions: [],
    };
    if (this.pausedSince !== undefined) {
      const paused = now - this.pausedSince;
      body.pausedSeconds = Math.round(paused / 100) / 10;
      body.cause = this.cause;
      if (paused > this.maxStallMs) {
        reasons.push(`partitions paused for ${body.pausedSeconds} s: ${this.cause ?? 'delivery failing'}`);
      }
    }
    for (const [p, st] of [...this.parts].sort((a, b) => a[0] - b[0])) {
      const lag = this.lag(p);
      // Nothing to do is progress: an idle partition never turns unhealthy.
      if (lag === 0) st.lastProgress = now;
      const since = now - st.lastProgress;
      body.partitions.push({
        partition: p,
        lag: lag ?? null,
        secondsSinceProgress: Math.round(since / 100) / 10,
      });
      if (lag !== undefined && lag > 0 && since > this.maxStallMs) {
        reasons.push(`partition ${p}: ${lag} messages behind, no progress for ${Math.round(since / 1000)} s`);
      }
    }
    if (reasons.length > 0) body.status = 'stalled';
    return { status: reasons.length > 0 ? 503 : 200, body };
  }

  private publish(partition: number, st: PartitionProgress): void {
    if (st.next === undefined) return;
    const lag = Math.max(0, st.high - st.next);
    if (lag === 0) st.lastProgress = this.now();
    lagGauge.set({ partition: String(partition) }, lag);
  }
}
