// `strata run`: agent and processor in one process, and a live per-layer view of this machine.
// - default: agent -> MemoryTransport -> pipeline -> view (no servers needed);
// - --influx-url: the pipeline's points are also written to InfluxDB (same sink as the processor);
// - --brokers: agent -> Kafka -> processor runtime (a consumer group of its own) -> view (+ InfluxDB),
//   i.e. the full pipeline, with this terminal as one more consumer of its output.
// On a terminal the view is redrawn every tick; otherwise one JSON object per tick (NDJSON).

import { Agent } from '../agent/agent.ts';
import { loadAgentConfig } from '../agent/config.ts';
import { VERSION } from '../cli/version.ts';
import { COLLECTORS, collectorSchemas, defaultCollectors } from '../collectors/registry.ts';
import { ConfigError, ConnectionError, errorMessage } from '../lib/errors.ts';
import { componentLogger, OnceLogger, rootLogger } from '../lib/log.ts';
import { redactUrl } from '../lib/redact.ts';
import { loadProcessorConfig } from '../processor/config.ts';
import { createPipeline } from '../processors/pipeline.ts';
import type { Point } from '../schemas/point.ts';
import { createInfluxSink } from '../sinks/influxdb/index.ts';
import type { Sink, WriteResult } from '../sinks/types.ts';
import { MemoryTransport } from './memory-transport.ts';
import { LiveView, render } from './view.ts';

export interface RunOptions {
  config?: string;
  interval?: string;
  collectors?: string;
  /** Kafka brokers (comma list); true = KAFKA_BROKERS or the stack's default. */
  kafka?: string | boolean;
  /** InfluxDB URL; true = INFLUX_URL or the stack's default. */
  influx?: string | boolean;
  influxApi?: string;
  influxBucket?: string;
  influxDatabase?: string;
  influxToken?: string;
  /** tty (redrawn screen) or ndjson; default: tty when stdout is a terminal. */
  output?: string;
  /** Stop after this many ticks (scripts, tests); 0 = until Ctrl-C. */
  ticks?: number;
  /** Print both resolved configs (agent and processor side) and exit. */
  printConfig?: boolean;
}

const OUTPUTS = ['tty', 'ndjson'];
/** Points waiting for InfluxDB in the no-Kafka mode; beyond it whole ticks are dropped and counted. */
const MAX_PENDING_TICKS = 120;

export async function runLive(opts: RunOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = componentLogger('run');
  const output = opts.output ?? (process.stdout.isTTY ? 'tty' : 'ndjson');
  if (!OUTPUTS.includes(output)) {
    throw new ConfigError(`--output: "${output}" is not an output; accepted: ${OUTPUTS.join(', ')}`);
  }
  const ticksLimit = opts.ticks ?? 0;
  if (!Number.isInteger(ticksLimit) || ticksLimit < 0) {
    throw new ConfigError(`--ticks: "${opts.ticks}" must be a whole number ≥ 0 (0 = until Ctrl-C)`);
  }
  // A bare --brokers goes through Kafka with the brokers of the agent's layers (config file,
  // KAFKA_BROKERS, else the stack's); the processor side then uses the very same brokers and topic.
  const viaKafka = Boolean(opts.kafka);
  const brokerFlag = typeof opts.kafka === 'string' && opts.kafka ? opts.kafka : undefined;
  const influxUrl =
    opts.influx === true ? env.INFLUX_URL || 'http://127.0.0.1:18086' : opts.influx || undefined;

  const { config, enabled, sources } = loadAgentConfig({
    collectorSchemas: collectorSchemas(),
    defaultCollectors: defaultCollectors(),
    configFile: opts.config,
    env,
    flags: {
      interval: opts.interval,
      '(collectors)': opts.collectors,
      output: viaKafka ? 'kafka' : 'ndjson',
      'kafka.brokers': brokerFlag?.split(',').map((s) => s.trim()),
      // The view must not wait minutes for an outage to drain.
      shutdownTimeout: '2s',
    },
  });
  const brokers = viaKafka ? config.kafka.brokers.join(',') : undefined;
  if (enabled.length === 0) {
    throw new ConfigError(
      `--collectors: none enabled; accepted: ${COLLECTORS.map((c) => c.name).join(', ')}`,
    );
  }

  // The processor side reads the same env and flags as `strata processor`.
  const { config: processorConfig, sources: processorSources } = loadProcessorConfig(
    {
      config: opts.config,
      brokers,
      samplesTopic: viaKafka ? config.kafka.samplesTopic : undefined,
      influxUrl,
      influxApi: opts.influxApi,
      influxBucket: opts.influxBucket,
      influxDatabase: opts.influxDatabase,
      influxToken: opts.influxToken,
      groupId: undefined,
      metricsListen: '',
    },
    env,
  );
  if (opts.printConfig) {
    const { printableAgentConfig, printableProcessorConfig } = await import('../cli/print-config.ts');
    const both = {
      agent: printableAgentConfig(config, enabled, sources),
      processor: printableProcessorConfig(processorConfig, processorSources),
    };
    process.stdout.write(`${JSON.stringify(both, null, 2)}\n`);
    return;
  }

  const view = new LiveView(Math.max(5_000, config.interval * 5));
  const notes: string[] = [];
  let influxSink: Sink<Point> | undefined;
  if (influxUrl) {
    influxSink = createInfluxSink(processorConfig.influxdb);
    try {
      await influxSink.start(); // fails fast, naming the server and how to start it
    } catch (err) {
      // The sink's hint names the processor's INFLUX_URL / --influx-url; `run` takes --influx-url [url].
      if (!(err instanceof ConnectionError)) throw err;
      throw new ConnectionError(
        `InfluxDB is not reachable at ${redactUrl(influxUrl)} (${errorMessage(err.cause ?? err)}). ` +
          'Start the local stack with `npx strata stack up`, or pass --influx-url <url> with the address of a ' +
          'running InfluxDB (a bare --influx-url uses env INFLUX_URL, else http://127.0.0.1:18086).',
        { cause: err },
      );
    }
    notes.push(`writing to InfluxDB at ${redactUrl(influxUrl)}`);
  }

  let ticksSeen = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const once = new OnceLogger(log);
  let dropped = 0;
  let pending = 0;
  let chain: Promise<unknown> = Promise.resolve();

  const draw = () => {
    const extra = [...notes];
    if (dropped > 0)
      extra.push(`InfluxDB too slow: ${dropped} ticks not written (bounded queue of ${MAX_PENDING_TICKS})`);
    if (output === 'tty') {
      const screen = render(view, {
        node: agent.identity?.id.slice(0, 12) ?? '?',
        intervalMs: config.interval,
        mode: brokers ? `via Kafka ${brokers}` : 'in-process',
        width: process.stdout.columns,
        notes: extra.length ? ['', ...extra] : [],
      });
      process.stdout.write(`\x1b[H\x1b[2J${screen}\n`);
    } else {
      process.stdout.write(`${JSON.stringify(view.snapshot())}\n`);
    }
    ticksSeen++;
    if (ticksLimit > 0 && ticksSeen >= ticksLimit) resolveDone();
  };

  const showPoints = (points: readonly Point[]) => {
    if (points.length === 0) return; // e.g. the first tick of an entity, or a warm-up batch
    view.update(points);
    draw();
  };

  let runtime: { start(): Promise<void>; stop(): Promise<void> } | undefined;
  let agent: Agent;
  if (brokers) {
    const { createProcessor } = await import('../processor/index.ts');
    const sink = new ViewSink(showPoints, influxSink);
    runtime = createProcessor(
      {
        ...processorConfig,
        // A group of its own that starts at the end of the topic: this view is about now, and
        // must not replay the fleet's history or take partitions from the real processors.
        kafka: {
          ...processorConfig.kafka,
          groupId: `strata-run-${process.pid}-${Date.now()}`,
          fromBeginning: false,
        },
      },
      { sink },
    );
    agent = new Agent({ config, enabled, version: VERSION });
  } else {
    const pipeline = createPipeline(processorConfig.pipeline as never);
    const transport = new MemoryTransport((message) => {
      const out = pipeline.handle(message);
      showPoints(out.points);
      if (influxSink && out.points.length > 0) {
        if (pending >= MAX_PENDING_TICKS) {
          dropped++;
          return;
        }
        pending++;
        const sink = influxSink;
        chain = chain
          .then(() => sink.write(out.points))
          .catch((err: unknown) =>
            once.warn('influx-write', { err: errorMessage(err) }, 'InfluxDB write failed'),
          )
          .finally(() => {
            pending--;
          });
      }
    });
    agent = new Agent({ config, enabled, version: VERSION, transport });
  }

  if (output === 'tty') process.stdout.write('\x1b[?25l'); // hide the cursor while redrawing
  const restoreTerminal = () => {
    if (output === 'tty') process.stdout.write('\x1b[?25h\n');
  };
  const onSignal = () => resolveDone();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await runtime?.start();
    await agent.start();
    if (output === 'tty') {
      process.stdout.write(
        `\x1b[H\x1b[2Jstrata run: sampling ${enabled.join(', ')} every ${config.interval / 1000}s; the first figures need two ticks...\n`,
      );
    }
    await done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await agent!.stop().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'agent stop failed'));
    await runtime
      ?.stop()
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'processor stop failed'));
    await chain;
    await influxSink?.close();
    restoreTerminal();
    await new Promise<void>((r) => rootLogger.flush(() => r()));
  }
}

/**
 * The processor runtime's sink in `--kafka` mode: writes on to InfluxDB when configured, then
 * shows the points once they are acknowledged. It takes points, not encoded batches (it is no
 * EncodingSink), so the runtime hands it the pipeline's points and the InfluxDB sink behind it
 * encodes them itself; without InfluxDB every point counts as written once shown.
 */
export class ViewSink implements Sink<Point> {
  readonly name = 'view';
  constructor(
    private readonly show: (points: readonly Point[]) => void,
    private readonly inner?: Sink<Point>,
  ) {}
  async start(): Promise<void> {
    await this.inner?.start();
  }
  async write(points: readonly Point[]): Promise<WriteResult> {
    const result = this.inner
      ? await this.inner.write(points)
      : { written: points.length, rejected: 0, unencodable: 0 };
    this.show(points);
    return result;
  }
  async close(): Promise<void> {
    await this.inner?.close();
  }
}
