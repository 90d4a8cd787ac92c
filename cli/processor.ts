// `strata processor`: the Kafka consumer group that turns samples into InfluxDB points.
import { type Command, Option } from 'commander';
import { componentLogger } from '../lib/log.ts';
import { brokerList, examples, oneOf, takeDeprecatedFlags } from './flags.ts';

interface ProcessorCliFlags {
  config?: string;
  brokers?: string;
  clientId?: string;
  groupId?: string;
  samplesTopic?: string;
  influxApi?: string;
  influxUrl?: string;
  influxBucket?: string;
  influxDatabase?: string;
  influxToken?: string;
  metricsListen?: string;
  printConfig?: boolean;
  /** `1` (InfluxQL, also when given bare) or `2` (influx CLI + Flux tasks). */
  printInfluxSetup?: string | true;
  /** Deprecated spellings. */
  bucket?: string;
  database?: string;
  checkConfig?: boolean;
}

export function registerProcessorCommand(program: Command): void {
  const cmd = program
    .command('processor')
    .description(
      'consume samples from Kafka, compute rates / per-layer overhead / noisy neighbours, write InfluxDB.\n' +
        'Offsets are committed only after InfluxDB acknowledged the points (see docs/processor.md).\n' +
        'Settings: defaults < --config file (section processor:) < env vars < flags.',
    )
    .option('-c, --config <file>', 'YAML/JSON config file; settings under "processor:"')
    .option(
      '--print-config',
      'print the resolved configuration (secrets hidden) and where each key came from, then exit',
    )
    .option(
      '--print-influx-setup [1|2]',
      'print the retention policies and continuous queries (InfluxDB 1.x, the default) or the buckets and Flux tasks (2) of influxdb.retention, for an admin to run, then exit (docs/storage.md)',
      oneOf('print-influx-setup', ['1', '2']),
    )
    .addOption(new Option('--check-config', 'deprecated: --print-config').hideHelp())
    .option(
      '--brokers <list>',
      'Kafka bootstrap brokers host:port,... [env KAFKA_BROKERS; default 127.0.0.1:19092]',
      brokerList(),
    )
    .option('--client-id <id>', 'Kafka client id [env STRATA_KAFKA_CLIENT_ID; default strata-processor]')
    .option('--group-id <id>', 'consumer group [env STRATA_GROUP_ID; default strata-processor]')
    .option('--samples-topic <name>', 'samples topic [env STRATA_SAMPLES_TOPIC; default strata.samples]')
    .option(
      '--influx-api <v2|v1>',
      'InfluxDB write API [env INFLUX_API; default v2]',
      oneOf('influx-api', ['v2', 'v1']),
    )
    .option('--influx-url <url>', 'InfluxDB base URL [env INFLUX_URL; default http://127.0.0.1:18086]')
    .option(
      '--influx-bucket <bucket>',
      'v2 bucket; on InfluxDB 1.8 db or db/rp [env INFLUX_BUCKET; default strata]',
    )
    .option('--influx-database <db>', 'v1 database [env INFLUX_DATABASE; default strata]')
    .option('--influx-token <token>', 'v2 token [env INFLUX_TOKEN]')
    .addOption(new Option('--bucket <bucket>', 'deprecated: --influx-bucket').hideHelp())
    .addOption(new Option('--database <db>', 'deprecated: --influx-database').hideHelp())
    .option(
      '--metrics-listen <host:port>',
      'serve /metrics and /healthz here, "" to disable [env STRATA_METRICS_LISTEN; default 127.0.0.1:9465]',
    )
    .action(async (given: ProcessorCliFlags) => {
      const flags = takeDeprecatedFlags(given, [
        ['bucket', 'influxBucket', '--bucket', '--influx-bucket'],
        ['database', 'influxDatabase', '--database', '--influx-database'],
        ['checkConfig', 'printConfig', '--check-config', '--print-config'],
      ]);
      // Loaded lazily: `strata --help` must not pay for kafkajs and the InfluxDB client.
      const { loadProcessorConfig } = await import('../processor/config.ts');
      const { printConfig, printInfluxSetup, ...rest } = flags;
      const { config, sources } = loadProcessorConfig(rest);
      if (printInfluxSetup) {
        const { influxQlSetup, fluxSetup } = await import('../sinks/influxdb/retention.ts');
        process.stdout.write(
          printInfluxSetup === '2'
            ? fluxSetup(config.influxdb)
            : `${influxQlSetup(config.influxdb).join(';\n')};\n`,
        );
        return;
      }
      if (printConfig) {
        const { printableProcessorConfig } = await import('./print-config.ts');
        process.stdout.write(`${JSON.stringify(printableProcessorConfig(config, sources), null, 2)}\n`);
        return;
      }
      const { createProcessor } = await import('../processor/index.ts');
      const log = componentLogger('processor');
      const { brokerSourceOf } = await import('../lib/kafka/client.ts');
      // Kafka not there yet: said at once (brokers, where they came from), then waited for.
      const processor = createProcessor(config, { brokerSource: brokerSourceOf(sources) });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping');
        void processor.stop().finally(() => process.exit(process.exitCode ?? 0));
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      try {
        await processor.start();
      } catch (err) {
        await processor.stop().catch(() => {});
        throw err;
      }
      // Runs until a signal; kafkajs keeps the event loop alive.
      await new Promise<void>(() => {});
    });
  examples(
    cmd,
    [
      ['strata processor', 'consume from the local stack (strata stack up)'],
      [
        'strata processor --brokers k1:9092 --influx-url http://influx:8086 --influx-bucket strata',
        'a real cluster',
      ],
      ['strata processor -c strata.yaml --print-config', 'resolved settings and where each came from'],
      [
        'influx -execute "$(strata processor --print-influx-setup)"',
        'an admin creates the retention policies and continuous queries',
      ],
    ],
    'docs/processor.md',
  );
}
