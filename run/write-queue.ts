// The InfluxDB writes of `strata run` without Kafka: one tick's points per write, in order, with a
// bounded number waiting. When InfluxDB is slower than the ticks (or hangs), whole ticks beyond the
// bound are dropped: shown in the status line and counted on /metrics, never queued without end.
import { errorMessage } from '../lib/errors.ts';
import type { OnceLogger } from '../lib/log.ts';
import { counter } from '../lib/metrics.ts';
import type { Point } from '../schemas/point.ts';
import type { Sink } from '../sinks/types.ts';
import type { SinkHealth } from './status.ts';

/** Ticks waiting for InfluxDB; beyond it whole ticks are dropped and counted. */
export const MAX_PENDING_TICKS = 120;

const droppedTicks = counter(
  'strata_run_influx_dropped_ticks_total',
  `Ticks strata run did not write to InfluxDB because ${MAX_PENDING_TICKS} writes were already waiting`,
);

export class WriteQueue {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sink: Sink<Point>,
    private readonly health: SinkHealth,
    private readonly once: OnceLogger,
    private readonly max = MAX_PENDING_TICKS,
  ) {}

  /** Queues one tick's points; false when the queue is full and the tick was dropped. */
  offer(points: readonly Point[]): boolean {
    const h = this.health;
    if (h.pending >= this.max) {
      h.dropped++;
      droppedTicks.inc();
      return false;
    }
    h.pending++;
    this.chain = this.chain
      .then(() => this.sink.write(points))
      .then(
        (r) => h.ok(r.written),
        (err: unknown) => {
          h.failed(err);
          this.once.warn('influx-write', { err: errorMessage(err) }, 'InfluxDB write failed');
        },
      )
      .finally(() => {
        h.pending--;
      });
    return true;
  }

  /** Settles when every queued write has. */
  drained(): Promise<unknown> {
    return this.chain;
  }
}
