// `strata agent`: samples this node every tick and publishes to Kafka (or prints NDJSON).
// Flags override env vars, which override the config file (docs/agent.md lists them all).
import { type Command, Option } from 'commander';
import { ConfigError } from '../lib/errors.ts';
import { brokerList, duration, examples, oneOf, takeDeprecatedFlags, wholeNumber } from './flags.ts';

interface AgentFlags {
  config?: string;
  once?: boolean;
  printConfig?: boolean;
  nodeId?: string;
  interval?: string;
  collectTimeout?: string;
  collectors?: string;
  output?: string;
  brokers?: string;
  samplesTopic?: string;
  /** Deprecated spelling of --samples-topic. */
  topic?: string;
  clientId?: string;
  compression?: string;
  gzipLevel?: number;
  bufferMaxTicks?: number;
  bufferMaxBytes?: number;
  spillFile?: string;
  spillMaxBytes?: number;
  metricsListen?: string;
  shutdownTimeout?: string;
}

export function registerAgentCommand(program: Command): void {
  const cmd = program
    .command('agent')
    .description(
      'sample this node (host, containers, VMs, guests) every tick and publish one message per tick to Kafka.\n' +
        'Settings: defaults < --config file (section agent:) < env vars < flags.',
    )
    .option('-c, --config <file>', 'YAML/JSON config file; settings under "agent:"')
    .option('--once', 'sample one tick, output it, exit (the first tick carries counters only)')
    .option(
      '--print-config',
      'print the resolved configuration (secrets hidden) and where each key came from, then exit',
    )
    .option(
      '--node-id <id>',
      'node id, the Kafka key [env STRATA_NODE_ID; default machine-id, else hostname]',
    )
    .option(
      '--interval <duration>',
      'tick interval, e.g. 500ms, 1s; a bare number is ms [env STRATA_INTERVAL; default 1s]',
      duration('interval', 10),
    )
    .option(
      '--collect-timeout <duration>',
      'per-collector time budget per tick [env STRATA_COLLECT_TIMEOUT; default 80% of interval]',
      duration('collect-timeout', 1),
    )
    .option('--collectors <names>', 'comma-separated collectors to run [env STRATA_COLLECTORS]')
    .option(
      '--output <kind>',
      'where ticks go: kafka or ndjson [env STRATA_OUTPUT; default kafka]',
      oneOf('output', ['kafka', 'ndjson']),
    )
    .option(
      '--brokers <list>',
      'Kafka bootstrap brokers host:port,... [env KAFKA_BROKERS; default 127.0.0.1:19092]',
      brokerList(),
    )
    .option('--samples-topic <name>', 'samples topic [env STRATA_SAMPLES_TOPIC; default strata.samples]')
    .addOption(new Option('--topic <name>', 'deprecated: --samples-topic').hideHelp())
    .option('--client-id <id>', 'Kafka client id [env STRATA_KAFKA_CLIENT_ID; default strata-agent]')
    .option(
      '--compression <codec>',
      'Kafka batch compression: gzip, lz4, zstd, none [env STRATA_KAFKA_COMPRESSION; default gzip]',
      oneOf('compression', ['gzip', 'lz4', 'zstd', 'none']),
    )
    .option(
      '--gzip-level <1-9>',
      'zlib level when compression is gzip (Kafka: compression.gzip.level) [env STRATA_KAFKA_GZIP_LEVEL; default 1]',
      wholeNumber('gzip-level', 1, 9),
    )
    .option(
      '--buffer-max-ticks <n>',
      'ticks buffered in memory during an outage [env STRATA_BUFFER_MAX_TICKS; default 3600]',
      wholeNumber('buffer-max-ticks', 1),
    )
    .option(
      '--buffer-max-bytes <n>',
      'bytes buffered in memory [env STRATA_BUFFER_MAX_BYTES; default 64 MiB]',
      wholeNumber('buffer-max-bytes', 1),
    )
    .option('--spill-file <path>', 'overflow buffer on disk, kept across restarts [env STRATA_SPILL_FILE]')
    .option(
      '--spill-max-bytes <n>',
      'bound of the spill file [env STRATA_SPILL_MAX_BYTES; default 256 MiB]',
      wholeNumber('spill-max-bytes', 1),
    )
    .option('--metrics-listen <addr>', 'serve Prometheus /metrics on host:port [env STRATA_METRICS_LISTEN]')
    .option(
      '--shutdown-timeout <duration>',
      'flush budget on SIGINT/SIGTERM [env STRATA_SHUTDOWN_TIMEOUT; default 5s]',
      duration('shutdown-timeout'),
    )
    .action(async (flags: AgentFlags) => {
      await runAgent(takeDeprecatedFlags(flags, [['topic', 'samplesTopic', '--topic', '--samples-topic']]));
    });
  examples(
    cmd,
    [
      ['strata agent --once --output ndjson | jq .samples[0].entity', 'one tick on stdout'],
      ['strata agent --brokers k1:9092,k2:9092 --interval 5s', 'publish to a cluster every 5 s'],
      ['strata agent -c strata.yaml --print-config', 'resolved settings and where each came from'],
    ],
    'docs/agent.md',
  );
}

async function runAgent(flags: AgentFlags): Promise<void> {
  const [{ loadAgentConfig }, registry, { Agent }, { VERSION }, { serveMetrics, enableProcessMetrics }, log] =
    await Promise.all([
      import('../agent/config.ts'),
      import('../collectors/registry.ts'),
      import('../agent/agent.ts'),
      import('./version.ts'),
      import('../lib/metrics.ts'),
      import('../lib/log.ts'),
    ]);
  const { config, enabled, sources } = loadAgentConfig({
    collectorSchemas: registry.collectorSchemas(),
    defaultCollectors: registry.defaultCollectors(),
    configFile: flags.config,
    flags: {
      nodeId: flags.nodeId,
      interval: flags.interval,
      collectTimeout: flags.collectTimeout,
      '(collectors)': flags.collectors,
      output: flags.output,
      'kafka.brokers': flags.brokers?.split(','),
      'kafka.samplesTopic': flags.samplesTopic,
      'kafka.clientId': flags.clientId,
      'kafka.compression': flags.compression,
      'kafka.gzipLevel': flags.gzipLevel,
      'buffer.maxTicks': flags.bufferMaxTicks,
      'buffer.maxBytes': flags.bufferMaxBytes,
      'buffer.spillFile': flags.spillFile,
      'buffer.maxSpillBytes': flags.spillMaxBytes,
      metricsListen: flags.metricsListen,
      shutdownTimeout: flags.shutdownTimeout,
    },
  });

  if (flags.printConfig) {
    const { printableAgentConfig } = await import('./print-config.ts');
    process.stdout.write(`${JSON.stringify(printableAgentConfig(config, enabled, sources), null, 2)}\n`);
    return;
  }
  if (enabled.length === 0) {
    throw new ConfigError(
      `agent.collectors: no collector enabled; accepted: ${registry.COLLECTORS.map((c) => c.name).join(', ')}`,
    );
  }

  const agentLog = log.componentLogger('agent');
  const agent = new Agent({ config, enabled, version: VERSION, log: agentLog });
  let closeMetrics: (() => Promise<void>) | undefined;
  if (config.metricsListen) {
    enableProcessMetrics();
    closeMetrics = await serveMetrics(config.metricsListen);
  }

  if (flags.once) {
    // The publisher retries a failed send with backoff, as it says in the log: --once gives it
    // the shutdown timeout to get the tick out before giving up.
    const deadline = Date.now() + config.shutdownTimeout;
    try {
      await agent.once();
      while (agent.buffer.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      const { unsent, persisted } = await agent.stop(Math.max(0, deadline - Date.now()));
      await closeMetrics?.();
      if (unsent > 0) {
        process.exitCode = 1;
        process.stderr.write(
          `strata: agent --once: the tick was not sent to ${agent.transport.target} after retrying for ` +
            `${config.shutdownTimeout / 1000} s (--shutdown-timeout); ` +
            (persisted > 0
              ? `kept in the spill file ${config.buffer.spillFile} for the next run\n`
              : 'it is lost; --spill-file <path> keeps unsent ticks for the next run\n'),
        );
      }
    }
    return;
  }

  await agent.start();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        agentLog.warn({ signal }, 'second signal: exiting without flushing');
        process.exit(130);
      }
      stopping = true;
      agentLog.info({ signal, timeout_ms: config.shutdownTimeout }, 'stopping: flushing buffered ticks');
      void agent
        .stop()
        .then(async ({ unsent, persisted }) => {
          await closeMetrics?.();
          agentLog.info({ unsent_ticks: unsent, persisted_to_spill: persisted }, 'agent stopped');
        })
        .catch((err: unknown) => agentLog.error({ err: String(err) }, 'error while stopping'))
        .finally(() => {
          process.exitCode = 0;
          resolve();
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // kafkajs may leave timers behind; flush the logs and leave.
  log.rootLogger.flush(() => process.exit(0));
}
