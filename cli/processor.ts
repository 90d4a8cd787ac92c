// `strata processor`: the Kafka consumer group that turns samples into InfluxDB points.
import type { Command } from 'commander';
import { componentLogger } from '../lib/log.ts';

export function registerProcessorCommand(program: Command): void {
  program
    .command('processor')
    .description(
      'consume samples from Kafka, compute rates / per-layer overhead / noisy neighbours, write InfluxDB.\n' +
        'Offsets are committed only after InfluxDB acknowledged the points (see docs/processor.md).\n' +
        'Settings: defaults < --config file (section processor:) < env vars < flags.',
    )
    .option('-c, --config <file>', 'YAML/JSON config file; its `processor:` section is read')
    .option('--brokers <list>', 'Kafka bootstrap brokers, comma-separated (env KAFKA_BROKERS)')
    .option('--group-id <id>', 'consumer group (env STRATA_GROUP_ID; default strata-processor)')
    .option('--samples-topic <topic>', 'samples topic (env STRATA_SAMPLES_TOPIC; default strata.samples)')
    .option('--influx-api <v2|v1>', 'InfluxDB write API (env INFLUX_API; default v2)')
    .option('--influx-url <url>', 'InfluxDB base URL (env INFLUX_URL; default http://127.0.0.1:18086)')
    .option('--bucket <bucket>', 'v2 bucket; on InfluxDB 1.8 db or db/rp (env INFLUX_BUCKET; default strata)')
    .option('--database <db>', 'v1 database (env INFLUX_DATABASE; default strata)')
    .option('--metrics-listen <host:port>', 'serve /metrics here, "" to disable (env STRATA_METRICS_LISTEN)')
    .option('--check-config', 'print the resolved config (secrets masked) and exit')
    .action(async (flags: Record<string, string | boolean | undefined>) => {
      // Loaded lazily: `strata --help` must not pay for kafkajs and the InfluxDB client.
      const { resolveProcessorConfig, createProcessor } = await import('../processors/runtime/index.ts');
      const config = resolveProcessorConfig({
        config: flags.config as string | undefined,
        brokers: flags.brokers as string | undefined,
        groupId: flags.groupId as string | undefined,
        samplesTopic: flags.samplesTopic as string | undefined,
        influxApi: flags.influxApi as string | undefined,
        influxUrl: flags.influxUrl as string | undefined,
        bucket: flags.bucket as string | undefined,
        database: flags.database as string | undefined,
        metricsListen: flags.metricsListen as string | undefined,
      });
      if (flags.checkConfig) {
        const { redactConfig } = await import('../lib/redact.ts');
        // Secrets masked wherever they are: token/password keys and URLs (INFLUX_URL with user:pass@, webhook ?token=).
        const masked = redactConfig(config);
        if (masked.influxdb.token) masked.influxdb.token = '***';
        if (masked.influxdb.password) masked.influxdb.password = '***';
        if (masked.kafka.sasl) masked.kafka.sasl.password = '***';
        process.stdout.write(`${JSON.stringify(masked, null, 2)}\n`);
        return;
      }
      const log = componentLogger('processor');
      const processor = createProcessor(config);
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
}
