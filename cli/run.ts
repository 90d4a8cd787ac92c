// `strata run` (what `npm start` runs): the live per-layer view of this machine. See run/run.ts.
import type { Command } from 'commander';
import type { RunOptions } from '../run/run.ts';

/** The options of runLive as commander hands them over (--ticks still a string). */
type RunFlags = Omit<RunOptions, 'ticks'> & { ticks?: string };

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(
      'live per-layer view of this machine (host, containers, VMs, guests, overhead, alerts): agent and processor in one process, no servers needed',
    )
    .option('-c, --config <file>', 'YAML/JSON config file (sections agent: and processor:)')
    .option('--interval <duration>', 'tick interval, e.g. 500ms, 1s [env STRATA_INTERVAL; default 1s]')
    .option('--collectors <names>', 'comma-separated collectors to run [env STRATA_COLLECTORS]')
    .option(
      '--kafka [brokers]',
      'go through Kafka: publish ticks and consume them with the processor runtime [brokers default: env KAFKA_BROKERS, else 127.0.0.1:19092]',
    )
    .option(
      '--influx [url]',
      'also write every point to InfluxDB [url default: env INFLUX_URL, else http://127.0.0.1:18086]',
    )
    .option('--influx-api <v2|v1>', 'InfluxDB write API [env INFLUX_API; default v2]')
    .option('--influx-bucket <bucket>', 'v2 bucket (InfluxDB 1.8: db/rp) [env INFLUX_BUCKET; default strata]')
    .option('--influx-token <token>', 'v2 token [env INFLUX_TOKEN]')
    .option(
      '--output <tty|ndjson>',
      'redrawn screen or one JSON object per tick [default: tty on a terminal, else ndjson]',
    )
    .option('--ticks <n>', 'stop after n ticks [default 0 = until Ctrl-C]')
    .addHelpText(
      'after',
      '\nExamples:\n  npm start                                   # this machine, live\n  strata run --output ndjson --ticks 5 | jq .entities\n  strata run --kafka --influx                 # through the stack from `strata stack up`',
    )
    .action(async (flags: RunFlags) => {
      const { runLive } = await import('../run/run.ts');
      const ticks =
        flags.ticks === undefined ? undefined : /^\d+$/.test(flags.ticks) ? Number(flags.ticks) : Number.NaN;
      await runLive({ ...flags, ticks });
      process.exit(process.exitCode ?? 0); // kafkajs and the collectors may leave timers behind
    });
}
