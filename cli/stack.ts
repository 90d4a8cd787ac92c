// `strata stack up|down|status`: the development/CI stack (Kafka KRaft, InfluxDB 1.8, a Docker
// engine) on loopback. Progress goes to stderr; `up` and `status` print `export VAR=...` lines on
// stdout so `eval "$(strata stack up)"` points clients at the stack.
import type { Command } from 'commander';
import { StrataError } from '../lib/errors.ts';
import { examples } from './flags.ts';

interface CommonFlags {
  cacheDir?: string;
  dataDir?: string;
  only?: string;
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--only <services>', 'comma-separated subset of kafka,influxdb,docker [env STRATA_STACK_ONLY]')
    .option(
      '--data-dir <dir>',
      'state, logs and data of this stack [env STRATA_STACK_DIR; default <cache>/stack]',
    )
    .option(
      '--cache-dir <dir>',
      'installs: Kafka jars, influxd, Docker data root [env STRATA_CACHE_DIR; default ~/.cache/strata]',
    );
}

/** Each stack flag: the config key it sets and the variable it falls back to (stack/config.ts). */
const STACK_KEYS: Record<string, [key: string, envVar: string]> = {
  cacheDir: ['cacheDir', 'STRATA_CACHE_DIR'],
  dataDir: ['dataDir', 'STRATA_STACK_DIR'],
  only: ['only', 'STRATA_STACK_ONLY'],
  timeout: ['readyTimeoutMs', 'STRATA_STACK_TIMEOUT'],
  kafkaPort: ['kafka.port', 'STRATA_KAFKA_PORT'],
  kafkaControllerPort: ['kafka.controllerPort', 'STRATA_KAFKA_CONTROLLER_PORT'],
  kafkaVersion: ['kafka.version', 'STRATA_KAFKA_VERSION'],
  kafkaHeapMb: ['kafka.heapMb', 'STRATA_KAFKA_HEAP_MB'],
  influxPort: ['influxdb.port', 'STRATA_INFLUX_PORT'],
  influxRpcPort: ['influxdb.rpcPort', 'STRATA_INFLUX_RPC_PORT'],
  influxVersion: ['influxdb.version', 'STRATA_INFLUX_VERSION'],
  influxDatabase: ['influxdb.database', 'STRATA_INFLUX_DATABASE'],
  dockerImage: ['docker.image', 'STRATA_DOCKER_IMAGE'],
  dockerDataRoot: ['docker.dataRoot', 'STRATA_DOCKER_DATA_ROOT'],
};

/** Where each explicitly set stack setting came from (the --print-config shape); the rest are defaults. */
function stackSources(flags: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [flagKey, [key, envVar]] of Object.entries(STACK_KEYS)) {
    if (flags[flagKey] !== undefined)
      out[key] = `flag --${flagKey.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    else if (process.env[envVar]) out[key] = `env ${envVar}`;
  }
  return out;
}

const progress = (line: string) => process.stderr.write(`strata stack: ${line}\n`);

export function registerStackCommand(program: Command): void {
  const stack = program
    .command('stack')
    .description('run the development/CI stack on 127.0.0.1: Kafka (KRaft), InfluxDB 1.8, a Docker engine');
  examples(
    stack,
    [
      ['eval "$(strata stack up)"', 'start everything, point this shell at it'],
      ['strata stack up --only kafka', 'Kafka alone'],
      ['strata stack status', 'what runs, where, with how much memory'],
      ['strata stack down --purge', 'stop and delete the data'],
    ],
    'docs/stack.md',
  );

  addCommonOptions(
    stack
      .command('up')
      .description('install on first use (minutes), start what is not running, wait until ready')
      .option('--kafka-port <port>', 'Kafka client port [env STRATA_KAFKA_PORT; default 19092]')
      .option(
        '--kafka-controller-port <port>',
        'KRaft controller port [env STRATA_KAFKA_CONTROLLER_PORT; default 19093]',
      )
      .option('--kafka-version <version>', 'kafka_2.13 version from Maven Central [env STRATA_KAFKA_VERSION]')
      .option('--kafka-heap-mb <mib>', 'Kafka JVM -Xmx in MiB [env STRATA_KAFKA_HEAP_MB; default 512]')
      .option('--influx-port <port>', 'InfluxDB HTTP port [env STRATA_INFLUX_PORT; default 18086]')
      .option('--influx-rpc-port <port>', 'InfluxDB RPC port [env STRATA_INFLUX_RPC_PORT; default 18088]')
      .option(
        '--influx-version <version>',
        'InfluxDB 1.x version built with go install [env STRATA_INFLUX_VERSION]',
      )
      .option(
        '--influx-database <name>',
        'database created on up [env STRATA_INFLUX_DATABASE; default strata]',
      )
      .option('--docker-image <name>', 'image imported from busybox-static [env STRATA_DOCKER_IMAGE]')
      .option(
        '--docker-data-root <dir>',
        'dockerd --data-root [env STRATA_DOCKER_DATA_ROOT; default <cache>/docker]',
      )
      .option('--timeout <seconds>', 'readiness timeout per service [env STRATA_STACK_TIMEOUT; default 180]')
      .option('--print-config', 'print the resolved settings and where each came from, then exit'),
  ).action(async (flags: CommonFlags & Record<string, string | boolean | undefined>) => {
    const { resolveStackConfig, stackUp, stackEnv } = await import('../stack/index.ts');
    const { printConfig, ...rest } = flags;
    const config = resolveStackConfig(rest as Record<string, string | undefined>);
    if (printConfig) {
      process.stdout.write(`${JSON.stringify({ config, sources: stackSources(rest) }, null, 2)}\n`);
      return;
    }
    const result = await stackUp(config, { progress });
    printStatus(result.status);
    if (result.started.length === 0) progress('everything requested was already running');
    printEnv(stackEnv(result.status));
  });
  examples(stack.commands.find((c) => c.name() === 'up')!, [
    ['eval "$(strata stack up)"', 'start everything, point this shell at it'],
    ['strata stack up --only kafka,influxdb', 'no Docker engine'],
    ['strata stack up --kafka-port 29092 --influx-port 28086', 'beside servers on the default ports'],
  ]);

  addCommonOptions(
    stack
      .command('down')
      .description('stop what `stack up` started (state file + PID check); nothing else')
      .option(
        '--purge',
        'also delete the stack data dir (Kafka topics, InfluxDB data); installs stay cached',
      ),
  ).action(async (flags: CommonFlags & { purge?: boolean }) => {
    const { resolveStackConfig, stackDown } = await import('../stack/index.ts');
    const config = resolveStackConfig(flags);
    const stopped = await stackDown(config, { progress, purge: flags.purge });
    progress(stopped.length ? `stopped ${stopped.join(', ')}` : 'nothing was running');
  });
  examples(stack.commands.find((c) => c.name() === 'down')!, [
    ['strata stack down', 'stop what stack up started; data and installs stay'],
    ['strata stack down --purge', 'also delete Kafka topics and InfluxDB data'],
  ]);

  addCommonOptions(
    stack
      .command('status')
      .description('each service: running or not, address, PID, memory; exit 1 if one is down'),
  ).action(async (flags: CommonFlags) => {
    const { resolveStackConfig, stackStatus, stackEnv } = await import('../stack/index.ts');
    const config = resolveStackConfig(flags);
    const status = (await stackStatus(config)).filter((s) => config.only.includes(s.service));
    printStatus(status);
    printEnv(stackEnv(status));
    const down = status.filter((s) => s.state !== 'running' || !s.healthy);
    if (down.length) {
      throw new StrataError(`not running or not answering: ${down.map((s) => s.service).join(', ')}`);
    }
  });
  examples(stack.commands.find((c) => c.name() === 'status')!, [
    ['strata stack status', 'what runs, where, with how much memory; exit 1 if one is down'],
    ['eval "$(strata stack status)"', 'point this shell at a running stack'],
  ]);
}

function printStatus(
  status: readonly {
    service: string;
    state: string;
    address?: string;
    pid?: number;
    rssBytes?: number;
    healthy?: boolean;
    logFile?: string;
  }[],
): void {
  for (const s of status) {
    const health = s.state === 'running' ? (s.healthy ? 'ready' : 'NOT ANSWERING') : s.state;
    const rss = s.rssBytes !== undefined ? `${Math.round(s.rssBytes / 1024 / 1024)} MiB` : '-';
    process.stderr.write(
      `  ${s.service.padEnd(9)} ${health.padEnd(13)} ${(s.address ?? '-').padEnd(48)} pid ${String(s.pid ?? '-').padEnd(8)} rss ${rss}` +
        (s.logFile ? `  log ${s.logFile}` : '') +
        '\n',
    );
  }
}

function printEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) process.stdout.write(`export ${k}=${v}\n`);
}
