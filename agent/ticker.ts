// Wall-clock-aligned ticks: a tick's time is a multiple of the interval since the epoch, so every
// node's ticks line up (ts = the aligned time, deterministic, the InfluxDB point time), whatever
// moment each agent started.

/** The first aligned tick time strictly after `now`. */
export function nextAlignedTick(now: number, intervalMs: number): number {
  return Math.floor(now / intervalMs) * intervalMs + intervalMs;
}

/** The latest aligned tick time at or before `now`. */
export function currentAlignedTick(now: number, intervalMs: number): number {
  return Math.floor(now / intervalMs) * intervalMs;
}

export interface TickerOptions {
  intervalMs: number;
  /** Runs one tick; the ticker never starts another while this one is pending. */
  onTick: (ts: number) => Promise<void>;
  /** Called with the number of tick times that were not run (overlap or a stalled process). */
  onSkip: (count: number, reason: 'overlap' | 'stall') => void;
  now?: () => number;
}

export class Ticker {
  private timer?: NodeJS.Timeout;
  private nextTs = 0;
  private running?: Promise<void>;
  private stopped = true;
  private readonly now: () => number;

  constructor(private readonly opts: TickerOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.nextTs = nextAlignedTick(this.now(), this.opts.intervalMs);
    this.schedule();
  }

  /** Stops scheduling and waits for the tick in progress, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, this.nextTs - this.now()));
  }

  private fire(): void {
    const { intervalMs } = this.opts;
    // Timers may fire a little early (clock adjustments) or very late (a stalled process). Run the
    // latest due tick time; earlier ones that were missed are counted, never run late in a burst.
    const due = Math.max(this.nextTs, currentAlignedTick(this.now(), intervalMs));
    const missed = (due - this.nextTs) / intervalMs;
    if (missed > 0) this.opts.onSkip(missed, 'stall');
    this.nextTs = due + intervalMs;
    if (this.running) {
      this.opts.onSkip(1, 'overlap');
    } else {
      const run: Promise<void> = this.opts
        .onTick(due)
        .catch(() => {}) // onTick handles its own errors; never an unhandled rejection here
        .finally(() => {
          if (this.running === run) this.running = undefined;
        });
      this.running = run;
    }
    this.schedule();
  }
}
