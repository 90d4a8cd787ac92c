// Drains the tick buffer into the output, oldest first, one batch in flight at a time (order).
// A failed batch stays in the buffer and is retried with backoff for as long as it takes: the
// agent never exits because its output is down. Outages are logged once (with the target) when
// they start and once when they end; in between only counters move.
import { errorMessage, StrataError } from '../lib/errors.ts';
import { type Logger, OnceLogger } from '../lib/log.ts';
import type { DropReason, Tick, TickBuffer } from './buffer.ts';
import { agentMetrics } from './metrics.ts';

export type RejectReason = 'too_large' | 'invalid_record';

/**
 * The output refused these ticks for good (e.g. Kafka MESSAGE_TOO_LARGE): retrying the same
 * bytes cannot succeed. The Publisher sends the batch again one tick at a time and drops (and
 * counts) only the ticks that are refused alone.
 */
export class RejectedError extends StrataError {
  constructor(
    message: string,
    readonly reason: RejectReason,
    /** The output's limit in bytes when it is known (the topic's max.message.bytes). */
    readonly limitBytes?: number,
    options: { cause?: unknown } = {},
  ) {
    super(message, { retriable: false, cause: options.cause });
  }
}

/** Where ticks go (Kafka, ndjson on stdout, nothing). */
export interface Transport {
  readonly name: string;
  /** Human description of the destination for logs ("kafka 127.0.0.1:9092 topic strata.samples"). */
  readonly target: string;
  /** Prepares the output. Must not throw because a server is down (send will retry). */
  start(): Promise<void>;
  /** Delivers the ticks in order or throws; nothing is considered sent on a throw. */
  send(ticks: readonly Tick[]): Promise<void>;
  /** Safe before start() and twice. */
  shutdown(): Promise<void>;
}

export interface PublisherOptions {
  batchMaxTicks: number;
  batchMaxBytes: number;
  /** First retry delay after a failure; doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class Publisher {
  private wakeUp?: () => void;
  private running?: Promise<void>;
  private stopping = false;
  private outageSince?: number;
  private outageMessage?: string;
  private backoff: number;
  /** Id range of the batch in flight, and drops that hit it (they count only if the send fails). */
  private inflight?: { first: number; last: number };
  private inflightDrops = new Map<DropReason, number>();
  /** After a rejected batch: ticks up to this id go out one at a time, to find the refused one. */
  private singleUntilId = -1;
  private readonly once: OnceLogger;
  private sleeper?: { timer: NodeJS.Timeout; resolve: () => void };

  constructor(
    private readonly buffer: TickBuffer,
    private readonly transport: Transport,
    private readonly opts: PublisherOptions,
    private readonly log: Logger,
  ) {
    this.backoff = opts.minBackoffMs ?? 250;
    this.once = new OnceLogger(log);
  }

  /** The buffer's onDrop: ticks evicted from the head, by id range. */
  noteDrop(first: number, last: number, reason: DropReason = 'bound'): void {
    let n = last - first + 1;
    if (this.inflight) {
      const lo = Math.max(first, this.inflight.first);
      const hi = Math.min(last, this.inflight.last);
      if (hi >= lo) {
        // Already handed to the output: a loss only if that send fails.
        this.inflightDrops.set(reason, (this.inflightDrops.get(reason) ?? 0) + hi - lo + 1);
        n -= hi - lo + 1;
      }
    }
    if (n > 0) countDrop(reason, n);
  }

  get inOutage(): boolean {
    return this.outageSince !== undefined;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** New tick in the buffer. */
  wake(): void {
    this.wakeUp?.();
  }

  /**
   * Stops the loop after trying, until `deadline` (ms since epoch), to send what is buffered.
   * Returns the number of ticks still buffered.
   */
  async stop(deadline: number): Promise<number> {
    const flushing = this.running;
    this.stopping = true;
    this.wake();
    if (flushing) {
      const left = Math.max(0, deadline - Date.now());
      await Promise.race([flushing, new Promise((r) => setTimeout(r, left).unref())]);
    }
    this.cancelSleep();
    return this.buffer.length;
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.buffer.length === 0) {
        if (this.stopping) return;
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
        });
        this.wakeUp = undefined;
        continue;
      }
      if (this.stopping && this.outageSince !== undefined) return; // no point hammering a dead output on exit
      let batch: Tick[];
      const waiting = this.buffer.length;
      try {
        batch = this.buffer.peek(this.opts.batchMaxTicks, this.opts.batchMaxBytes);
      } catch (err) {
        // Nothing readable here must end the drain loop (an unhandled rejection exits the agent).
        this.once.warn('peek', { err: errorMessage(err) }, 'cannot read the buffered ticks; retrying');
        if (this.stopping) return;
        await this.sleep(this.backoff);
        continue;
      }
      if (batch.length === 0) {
        // The head was unreadable spill records, dropped and counted: go on with the rest.
        if (this.buffer.length < waiting) continue;
        this.once.warn('empty-peek', { buffered_ticks: waiting }, 'the buffer returned no ticks; retrying');
        if (this.stopping) return;
        await this.sleep(this.backoff);
        continue;
      }
      if (batch[0]!.id <= this.singleUntilId) batch = batch.slice(0, 1);
      const first = batch[0]!.id;
      const last = batch[batch.length - 1]!.id;
      this.inflight = { first, last };
      this.inflightDrops.clear();
      try {
        await this.transport.send(batch);
        this.buffer.consume(last);
        let bytes = 0;
        for (const t of batch) bytes += t.value.length;
        agentMetrics.published.inc(batch.length);
        agentMetrics.publishedBytes.inc(bytes);
        agentMetrics.outputUp.set(1);
        this.recovered();
      } catch (err) {
        for (const [reason, n] of this.inflightDrops) countDrop(reason, n);
        this.inflight = undefined;
        if (err instanceof RejectedError) {
          this.rejected(err, batch);
          continue;
        }
        this.failed(err);
        if (this.stopping) return;
        await this.sleep(this.backoff);
        this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 5000);
      } finally {
        this.inflight = undefined;
        this.inflightDrops.clear();
        this.updateGauges();
      }
    }
  }

  /**
   * A refusal for good: a batch of several ticks is sent again one tick at a time (only some of
   * them may be refused, or only their sum); a single refused tick is dropped and counted, and
   * the buffer moves on to the next one at once (no backoff: the output is up).
   */
  private rejected(err: RejectedError, batch: readonly Tick[]): void {
    agentMetrics.publishErrors.inc({ reason: 'permanent' });
    const last = batch[batch.length - 1]!;
    if (batch.length > 1) {
      this.singleUntilId = last.id;
      return;
    }
    this.buffer.consume(last.id);
    agentMetrics.publishRejected.inc({ reason: err.reason });
    agentMetrics.outputUp.set(1); // the output answered: it is up, this tick is the problem
    this.recovered();
    this.once.warn(
      `rejected:${err.reason}`,
      {
        target: this.transport.target,
        reason: err.reason,
        seq: last.seq,
        ts: last.ts,
        tick_bytes: last.value.length,
        limit_bytes: err.limitBytes ?? null,
        err: err.message,
      },
      `${this.transport.name} refused a tick for good; dropped it (counted in strata_agent_publish_rejected_ticks_total) and moving on`,
    );
  }

  private failed(err: unknown): void {
    const reason = err instanceof StrataError && !err.retriable ? 'permanent' : 'retriable';
    agentMetrics.publishErrors.inc({ reason });
    agentMetrics.outputUp.set(0);
    const message = errorMessage(err);
    if (this.outageSince === undefined) this.outageSince = Date.now();
    // Once per outage, and again only if the cause changes (e.g. refused -> topic missing).
    if (message !== this.outageMessage) {
      this.outageMessage = message;
      this.log.error(
        { target: this.transport.target, err: message, buffered_ticks: this.buffer.length },
        `${this.transport.name} unavailable; buffering ticks (bounded) and retrying`,
      );
    }
  }

  private recovered(): void {
    this.backoff = this.opts.minBackoffMs ?? 250;
    if (this.outageSince === undefined) return;
    this.log.info(
      {
        target: this.transport.target,
        outage_ms: Date.now() - this.outageSince,
        buffered_ticks: this.buffer.length,
      },
      `${this.transport.name} available again; draining the buffer`,
    );
    this.outageSince = undefined;
    this.outageMessage = undefined;
  }

  /** Buffer gauges; also called per tick so an outage shows the buffer growing between attempts. */
  updateGauges(): void {
    agentMetrics.bufferTicks.set({ where: 'memory' }, this.buffer.memoryTicks);
    agentMetrics.bufferTicks.set({ where: 'spill' }, this.buffer.spillTicks);
    agentMetrics.bufferBytes.set({ where: 'memory' }, this.buffer.memoryBytes);
    agentMetrics.bufferBytes.set({ where: 'spill' }, this.buffer.spillBytes);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeper = undefined;
        resolve();
      }, ms);
      this.sleeper = { timer, resolve };
    });
  }

  private cancelSleep(): void {
    if (!this.sleeper) return;
    clearTimeout(this.sleeper.timer);
    this.sleeper.resolve();
    this.sleeper = undefined;
  }
}

function countDrop(reason: DropReason, n: number): void {
  if (reason === 'bound') agentMetrics.bufferDropped.inc(n);
  else
    agentMetrics.spillLostTicks.inc(
      { reason: reason === 'spill_write_error' ? 'write_error' : 'unreadable' },
      n,
    );
}
