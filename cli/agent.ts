// `strata agent`: samples this node every tick and publishes to Kafka (or prints NDJSON).
// Flags override env vars, which override the config file (docs/agent.md lists them all).
import { type Command, Option } from 'commander';
import { ConfigError } from '../lib/errors.ts';

/** Numeric flags stay strings when not numeric, so validation names the flag and the expected type. */
const num = (v: string): number | string => (/^\d+$/.test(v.trim()) ? Number(v) : v);

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
  topic?: string;
  clientId?: string;
  compression?: string;
  gzipLevel?: number | string;
  bufferMaxTicks?: number | string;
  bufferMaxBytes?: number | string;
  spillFile?: string;
  spillMaxBytes?: number | string;
  metricsListen?: string;
  shutdownTimeout?: string;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description(
      'sample this node (host, containers, VMs, guests) every tick and publish one message per tick to Kafka',
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
    .option('--interval <duration>', 'tick interval, e.g. 500ms, 1s [env STRATA_INTERVAL; default 1s]')
    .option(
      '--collect-timeout <duration>',
      'per-collector time budget per tick [env STRATA_COLLECT_TIMEOUT; default 80% of interval]',
    )
    .option('--collectors <names>', 'comma-separated collectors to run [env STRATA_COLLECTORS]')
    .addOption(
      new Option('--output <kind>', 'where ticks go [env STRATA_OUTPUT; default kafka]').choices([
        'kafka',
        'ndjson',
      ]),
    )
    .option(
      '--brokers <list>',
      'Kafka bootstrap brokers host:port,... [env KAFKA_BROKERS; default 127.0.0.1:19092, as strata stack up]',
    )
    .option('--topic <name>', 'samples topic [env STRATA_SAMPLES_TOPIC; default strata.samples]')
    .option('--client-id <id>', 'Kafka client id [env STRATA_KAFKA_CLIENT_ID; default strata-agent]')
    .addOption(
      new Option(
        '--compression <codec>',
        'Kafka batch compression [env STRATA_KAFKA_COMPRESSION; default gzip]',
      ).choices(['gzip', 'lz4', 'zstd', 'none']),
    )
    .option(
      '--gzip-level <1-9>',
      'zlib level when compression is gzip (Kafka: compression.gzip.level) [env STRATA_KAFKA_GZIP_LEVEL; default 1]',
      num,
    )
    .option(
      '--buffer-max-ticks <n>',
      'ticks buffered in memory during an outage [env STRATA_BUFFER_MAX_TICKS; default 3600]',
      num,
    )
    .option(
      '--buffer-max-bytes <n>',
      'bytes buffered in memory [env STRATA_BUFFER_MAX_BYTES; default 64 MiB]',
      num,
    )
    .option('--spill-file <path>', 'overflow buffer on disk, kept across restarts [env STRATA_SPILL_FILE]')
    .option(
      '--spill-max-bytes <n>',
      'bound of the spill file [env STRATA_SPILL_MAX_BYTES; default 256 MiB]',
      num,
    )
    .option('--metrics-listen <addr>', 'serve Prometheus /metrics on host:port [env STRATA_METRICS_LISTEN]')
    .option(
      '--shutdown-timeout <duration>',
      'flush budget on SIGINT/SIGTERM [env STRATA_SHUTDOWN_TIMEOUT; default 5s]',
    )
    .addHelpText(
      'after',
      '\nEvery key, env var and default: docs/agent.md. Example:\n  strata agent --once --output ndjson | jq .samples[0].entity',
    )
    .action(async (flags: AgentFlags) => {
      await runAgent(flags);
    });
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
      'kafka.brokers': flags.brokers
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      'kafka.topic': flags.topic,
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
    const { redactConfig } = await import('../lib/redact.ts');
    // Secrets masked wherever they are: the SASL password and credentials inside URLs (DOCKER_HOST).
    const shown = redactConfig(config);
    if (shown.kafka.sasl) shown.kafka.sasl.password = '(hidden)';
    process.stdout.write(
      `${JSON.stringify({ config: shown, enabledCollectors: enabled, sources: Object.fromEntries(sources) }, null, 2)}\n`,
    );
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
    try {
      await agent.once();
    } finally {
      const { unsent } = await agent.stop();
      await closeMetrics?.();
      if (unsent > 0) process.exitCode = 1;
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
