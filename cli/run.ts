// `strata run` (what `npm start` runs): the live per-layer view of this machine. See run/run.ts.
import { type Command, Option } from 'commander';
import type { RunOptions } from '../run/run.ts';
import { brokerList, duration, examples, oneOf, takeDeprecatedFlags, wholeNumber } from './flags.ts';

/** Flags as commander hands them over; `kafka` and `influx` are the deprecated spellings. */
type RunFlags = Omit<RunOptions, 'kafka' | 'influx'> & {
  brokers?: string | boolean;
  influxUrl?: string | boolean;
  kafka?: string | boolean;
  influx?: string | boolean;
};

export function registerRunCommand(program: Command): void {
  const cmd = program
    .command('run')
    .description(
      'live per-layer view of this machine (host, containers, VMs, guests, overhead, alerts): agent and processor in one process, no servers needed.\n' +
        'Settings: defaults < --config file (sections agent: and processor:) < env vars < flags.',
    )
    .option('-c, --config <file>', 'YAML/JSON config file (sections agent: and processor:)')
    .option(
      '--print-config',
      'print the resolved agent and processor configuration (secrets hidden) and where each key came from, then exit',
    )
    .option(
      '--interval <duration>',
      'tick interval, e.g. 500ms, 1s; a bare number is ms [env STRATA_INTERVAL; default 1s]',
      duration('interval', 10),
    )
    .option('--collectors <names>', 'comma-separated collectors to run [env STRATA_COLLECTORS]')
    .option(
      '--brokers [list]',
      'go through Kafka: publish ticks and consume them with the processor runtime [env KAFKA_BROKERS; default 127.0.0.1:19092 when bare]',
      brokerList(),
    )
    .option(
      '--influx-url [url]',
      'also write every point to InfluxDB [env INFLUX_URL; default http://127.0.0.1:18086 when bare]',
    )
    .option(
      '--influx-api <v2|v1>',
      'InfluxDB write API [env INFLUX_API; default v2]',
      oneOf('influx-api', ['v2', 'v1']),
    )
    .option('--influx-bucket <bucket>', 'v2 bucket (InfluxDB 1.8: db/rp) [env INFLUX_BUCKET; default strata]')
    .option('--influx-database <db>', 'v1 database [env INFLUX_DATABASE; default strata]')
    .option('--influx-token <token>', 'v2 token [env INFLUX_TOKEN]')
    .addOption(new Option('--kafka [brokers]', 'deprecated: --brokers').hideHelp())
    .addOption(new Option('--influx [url]', 'deprecated: --influx-url').hideHelp())
    .option(
      '--output <tty|ndjson>',
      'redrawn screen or one JSON object per tick [default: tty on a terminal, else ndjson]',
      oneOf('output', ['tty', 'ndjson']),
    )
    .option(
      '--quit-grace <duration>',
      'on q / Ctrl-C, how long pending writes and the agent get before the view exits [default 500ms]',
      duration('quit-grace'),
    )
    .option(
      '--metrics-listen <host:port>',
      'serve /metrics (Prometheus) here while running, e.g. 127.0.0.1:9466 [default: not served]',
    )
    .option(
      '--ticks <n>',
      'stop after n ticks [default 0 = until Ctrl-C]',
      wholeNumber('ticks', 0, undefined, '0 = until Ctrl-C'),
    )
    .action(async (given: RunFlags) => {
      const flags = takeDeprecatedFlags(given, [
        ['kafka', 'brokers', '--kafka', '--brokers'],
        ['influx', 'influxUrl', '--influx', '--influx-url'],
      ]);
      const { runLive } = await import('../run/run.ts');
      const { brokers, influxUrl, ...rest } = flags;
      await runLive({ ...rest, kafka: brokers, influx: influxUrl });
      process.exit(process.exitCode ?? 0); // kafkajs and the collectors may leave timers behind
    });
  examples(cmd, [
    ['npm start', 'this machine, live'],
    ['strata run --output ndjson --ticks 5 | jq .entities', 'five ticks as JSON'],
    ['strata run --brokers --influx-url', 'through the stack from `strata stack up`'],
    ['strata run -c strata.yaml --print-config', 'both resolved configs and where each key came from'],
  ]);
}
