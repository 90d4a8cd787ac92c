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
import { parseDuration } from '../lib/config.ts';
import { ConfigError, ConnectionError, errorMessage } from '../lib/errors.ts';
import { brokerSourceOf } from '../lib/kafka/client.ts';
import { componentLogger, OnceLogger, rootLogger } from '../lib/log.ts';
import { parseListen, serveMetrics } from '../lib/metrics.ts';
import { redactUrl } from '../lib/redact.ts';
import { loadProcessorConfig } from '../processor/config.ts';
import { createPipeline } from '../processors/pipeline.ts';
import type { Point } from '../schemas/point.ts';
import { createInfluxSink } from '../sinks/influxdb/index.ts';
import type { Sink, WriteResult } from '../sinks/types.ts';
import { MemoryTransport } from './memory-transport.ts';
import { Screen } from './screen.ts';
import { SinkHealth } from './status.ts';
import { LiveView, render } from './view.ts';
import { WriteQueue } from './write-queue.ts';

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
  /** How long quitting waits for pending writes (and the agent's flush): a duration, default 500ms. */
  quitGrace?: string;
  /** Serve /metrics (Prometheus) on this host:port while running; default: not served. */
  metricsListen?: string;
}

const OUTPUTS = ['tty', 'ndjson'];
/** What `q` / Ctrl-C give pending writes and the agent's flush before the view exits. */
export const DEFAULT_QUIT_GRACE = '500ms';

export async function runLive(opts: RunOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = componentLogger('run');
  const output = opts.output ?? (process.stdout.isTTY ? 'tty' : 'ndjson');
  if (!OUTPUTS.includes(output)) {
    throw new ConfigError(`--output: "${output}" is not an output; accepted: ${OUTPUTS.join(', ')}`);
  }
  const graceMs = parseDuration(opts.quitGrace ?? DEFAULT_QUIT_GRACE, '--quit-grace');
  const ticksLimit = opts.ticks ?? 0;
  if (!Number.isInteger(ticksLimit) || ticksLimit < 0) {
    throw new ConfigError(`--ticks: "${opts.ticks}" must be a whole number ≥ 0 (0 = until Ctrl-C)`);
  }
  if (opts.metricsListen) parseListen(opts.metricsListen, '--metrics-listen'); // a usage error, before anything starts
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
      // Quitting must not wait for an outage to drain: the agent's flush gets the quit grace.
      shutdownTimeout: opts.quitGrace ?? DEFAULT_QUIT_GRACE,
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

  // The view is about now: a write retried for longer than two ticks is stale, and its failure
  // is worth showing. Set processor.influxdb.maxRetryTime to keep the processor's own bound.
  if (!processorSources.has('influxdb.maxRetryTime')) {
    processorConfig.influxdb.maxRetryTime = Math.min(
      processorConfig.influxdb.maxRetryTime,
      Math.max(2_000, 2 * config.interval),
    );
  }
  const view = new LiveView(Math.max(5_000, config.interval * 5));
  let influxSink: Sink<Point> | undefined;
  let health: SinkHealth | undefined;
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
    health = new SinkHealth(`InfluxDB ${redactUrl(influxUrl)}`);
  }

  let ticksSeen = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const once = new OnceLogger(log);
  const queue = influxSink && health ? new WriteQueue(influxSink, health, once) : undefined;
  const screen = output === 'tty' ? new Screen() : undefined;
  const graceS = `${graceMs / 1000} s`;
  let quitting = false;

  const frame = (status?: string) =>
    render(view, {
      node: agent.identity?.id.slice(0, 12) ?? '?',
      intervalMs: config.interval,
      mode: brokers ? `via Kafka ${brokers}` : 'in-process',
      width: process.stdout.columns,
      height: process.stdout.rows,
      status:
        status ??
        health?.line() ??
        (brokers
          ? 'view only: the processor side writes nothing (--influx-url also writes to InfluxDB)'
          : undefined),
      statusAlarm: status === undefined && health?.failing === true,
      quitHint: health ? `q quit (writes get ${graceS})` : 'q quit',
    });
  const draw = () => {
    if (screen) screen.draw(frame());
    else process.stdout.write(`${JSON.stringify(view.snapshot())}\n`);
  };

  const showPoints = (points: readonly Point[]) => {
    if (points.length === 0) return; // e.g. the first tick of an entity, or a warm-up batch
    view.update(points);
    if (quitting) return;
    draw();
    ticksSeen++;
    if (ticksLimit > 0 && ticksSeen >= ticksLimit) resolveDone();
  };

  let runtime: { start(): Promise<void>; stop(): Promise<void> } | undefined;
  let agent: Agent;
  if (brokers) {
    const { createProcessor } = await import('../processor/index.ts');
    const sink = new ViewSink(showPoints, influxSink, health);
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
      // No broker reachable: said at once, naming where the list came from, and `run` stops.
      { sink, brokerSource: brokerSourceOf(sources), waitForKafka: false },
    );
    agent = new Agent({ config, enabled, version: VERSION });
  } else {
    const pipeline = createPipeline(processorConfig.pipeline as never);
    const transport = new MemoryTransport((message) => {
      const out = pipeline.handle(message);
      showPoints(out.points);
      if (queue && out.points.length > 0) queue.offer(out.points);
    });
    agent = new Agent({ config, enabled, version: VERSION, transport });
  }

  const quit = () => {
    if (quitting) {
      // A second q / Ctrl-C: no more waiting. The exit handler puts the terminal back.
      process.exit(130);
    }
    quitting = true;
    resolveDone();
  };
  let closeMetrics: (() => Promise<void>) | undefined;
  if (opts.metricsListen) {
    try {
      closeMetrics = await serveMetrics(opts.metricsListen);
    } catch (err) {
      throw new ConfigError(
        `--metrics-listen: cannot serve /metrics on "${opts.metricsListen}" (${errorMessage(err)}); pass a free host:port`,
      );
    }
  }
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
  screen?.enter(quit, () => draw());
  let runtimeStarted = false;
  try {
    await runtime?.start();
    runtimeStarted = true;
    await agent.start();
    screen?.draw(
      `strata run: sampling ${enabled.join(', ')} every ${config.interval / 1000}s; the first figures need two ticks...`,
    );
    await done;
  } finally {
    process.off('SIGINT', quit);
    process.off('SIGTERM', quit);
    // Quit within the grace: the agent, the processor side and pending writes each get what is
    // left of it; what is still pending then is abandoned, and said so.
    const deadline = Date.now() + graceMs;
    const left = () => Math.max(0, deadline - Date.now());
    if (screen && (health?.pending ?? 0) > 0) {
      screen.draw(frame(`quitting: waiting up to ${graceS} for ${health!.pending} pending writes`));
    }
    await within(
      left(),
      agent!.stop(left()).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'agent stop failed')),
    );
    await within(
      left(),
      (runtimeStarted ? runtime : undefined)
        ?.stop()
        .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'processor stop failed')),
    );
    await within(left(), queue?.drained());
    await within(
      left(),
      influxSink?.close().catch(() => {}),
    );
    await within(
      left(),
      closeMetrics?.().catch(() => {}),
    );
    const last = screen ? frame() : '';
    screen?.restore(last);
    if (health && (health.pending > 0 || health.failing)) {
      process.stderr.write(
        `strata run: ${health.line()}${health.pending > 0 ? ` (abandoned after the ${graceS} grace, --quit-grace)` : ''}\n`,
      );
    }
    await new Promise<void>((r) => rootLogger.flush(() => r()));
  }
}

/** Resolves when `p` settles or after `ms`, whichever comes first. */
function within(ms: number, p: Promise<unknown> | undefined): Promise<void> {
  if (p === undefined) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => {}),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]).finally(() => clearTimeout(timer));
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
    /** Where a failed write is reported, for the status line (the runtime retries it). */
    private readonly health?: SinkHealth,
  ) {}
  async start(): Promise<void> {
    await this.inner?.start();
  }
  async write(points: readonly Point[]): Promise<WriteResult> {
    let result: WriteResult;
    try {
      result = this.inner
        ? await this.inner.write(points)
        : { written: points.length, rejected: 0, unencodable: 0 };
    } catch (err) {
      this.health?.failed(err);
      throw err;
    }
    this.health?.ok(result.written);
    this.show(points);
    return result;
  }
  async close(): Promise<void> {
    await this.inner?.close();
  }
}
