// One tick's collection: every collector gathers concurrently, each into its own accumulator,
// each bounded by the collect timeout. A collector that is late is left out of this tick (its
// late samples are ignored: the accumulator is sealed) and is not called again until its
// previous gather has settled, so a collector stuck on a hung file system never piles up calls.
import type { Accumulator, Collector } from '../collectors/types.ts';
import { errorCode, errorMessage } from '../lib/errors.ts';
import { type Logger, OnceLogger } from '../lib/log.ts';
import type { EntitySample } from '../schemas/sample.ts';
import { agentMetrics } from './metrics.ts';

/** Collects one collector's samples and errors for one tick; ignores everything once sealed. */
export class TickAccumulator implements Accumulator {
  readonly samples: EntitySample[] = [];
  errors = 0;
  sealed = false;
  constructor(
    readonly collector: string,
    private readonly once: OnceLogger,
  ) {}

  add(sample: EntitySample): void {
    if (!this.sealed) this.samples.push(sample);
  }

  error(source: string, key: string, err: unknown): void {
    this.errors++;
    agentMetrics.collectErrors.inc({ collector: this.collector });
    this.once.warn(
      `${this.collector}:${key}`,
      { collector: this.collector, source, code: errorCode(err), err: errorMessage(err) },
      'collection error',
    );
  }
}

export interface GatherOutcome {
  samples: EntitySample[];
  /** Per collector: samples added, or why none were. */
  perCollector: Record<string, { samples: number; status: 'ok' | 'timeout' | 'busy' | 'failed' }>;
}

export class Gatherer {
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly once: OnceLogger;

  constructor(
    private readonly collectors: readonly Collector[],
    private readonly timeoutMs: number,
    log: Logger,
  ) {
    this.once = new OnceLogger(log);
  }

  async gather(): Promise<GatherOutcome> {
    const perCollector: GatherOutcome['perCollector'] = {};
    const accs = new Map<string, TickAccumulator>();
    const runs = this.collectors.map(async (c) => {
      if (this.pending.has(c.name)) {
        // Still busy with an earlier tick: skip it rather than stacking calls.
        agentMetrics.collectTimeouts.inc({ collector: c.name });
        perCollector[c.name] = { samples: 0, status: 'busy' };
        return;
      }
      const acc = new TickAccumulator(c.name, this.once);
      accs.set(c.name, acc);
      const started = performance.now();
      const run = c.gather(acc).then(
        () => 'ok' as const,
        (err: unknown) => {
          agentMetrics.collectFailures.inc({ collector: c.name });
          this.once.warn(
            `${c.name}:gather`,
            { collector: c.name, code: errorCode(err), err: errorMessage(err) },
            'collector failed as a whole; its samples are missing from this tick',
          );
          return 'failed' as const;
        },
      );
      this.pending.set(c.name, run);
      run.finally(() => {
        this.pending.delete(c.name);
        agentMetrics.collectSeconds.observe({ collector: c.name }, (performance.now() - started) / 1000);
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
      });
      const status = await Promise.race([run, timeout]);
      clearTimeout(timer);
      acc.sealed = true;
      if (status === 'timeout') {
        agentMetrics.collectTimeouts.inc({ collector: c.name });
        this.once.warn(
          `${c.name}:timeout`,
          { collector: c.name, timeout_ms: this.timeoutMs },
          'collector exceeded collectTimeout; its samples are left out of this tick',
        );
        perCollector[c.name] = { samples: 0, status };
        acc.samples.length = 0;
        return;
      }
      perCollector[c.name] = { samples: acc.samples.length, status };
      if (acc.samples.length) agentMetrics.entitySamples.inc({ collector: c.name }, acc.samples.length);
    });
    await Promise.all(runs);
    // Keep the configured collector order in the message, whatever order they finished in.
    const samples: EntitySample[] = [];
    for (const c of this.collectors) {
      const acc = accs.get(c.name);
      if (acc && perCollector[c.name]?.status !== 'timeout') samples.push(...acc.samples);
    }
    return { samples, perCollector };
  }

  /** Waits (bounded) for gathers still running, e.g. before collectors shut down. */
  async settle(timeoutMs: number): Promise<void> {
    if (!this.pending.size) return;
    await Promise.race([
      Promise.allSettled([...this.pending.values()]),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
  }
}
