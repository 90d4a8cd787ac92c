// `strata bench`: the seed papers' comparison (native vs container vs VM) as a command. Flags beat
// env vars beat defaults; everything is validated by bench/config.ts so errors name the flag.
import type { Command } from 'commander';
import { ConfigError } from '../lib/errors.ts';
import { redactConfig, redactUrl } from '../lib/redact.ts';
import { badFlag, wholeNumber } from './flags.ts';

interface BenchFlags {
  preset?: string;
  workload?: string;
  cmd?: string;
  layers?: string;
  repeats?: string;
  duration?: string;
  concurrent?: boolean;
  out?: string;
  influxUrl?: string;
  influxDatabase?: string;
  influxToken?: string;
  dockerHost?: string;
  image?: string;
  vmAccel?: string;
  vmMemoryMb?: string;
  vmNet?: string;
  ioSizeMb?: string;
  install?: boolean;
  progress?: string;
  html?: boolean;
  json?: boolean;
  printConfig?: boolean;
}

const HELP_AFTER = `
Workloads (--workload, comma-separated; Debian packages are installed on demand when root):
  cpu        sysbench cpu, primes up to 10000, 1 thread          throughput events/s, CPU µs per event
  memory     sysbench memory, 1 MiB blocks, 1 thread             MiB/s, CPU µs per MiB
  randio     fio 4 KiB random reads, O_DIRECT, libaio, QD 32     IOPS, latency µs p50/p99, CPU µs per I/O
  seqio      fio 1 MiB sequential reads, O_DIRECT, libaio, QD 8  MB/s, CPU µs per I/O
  net-bulk   iperf3 TCP bulk, server in the layer, client on host Gbit/s, CPU µs per MiB
  net-rr     sockperf TCP ping-pong, one request outstanding (netperf TCP_RR's measure)
             transactions/s, round trip µs p50/p99, CPU µs per transaction
  oltp       MariaDB in the layer, sysbench oltp_read_write (4 threads) on the host
             transactions/s, latency ms p50/p99, CPU µs per transaction
  redis      redis-server in the layer, redis-benchmark GET on the host with 1 and 50 connections
             requests/s, latency ms p50/p99, CPU µs per request
  --cmd "…"  any shell command instead: wall time and CPU per run

Layers (--layers, comma-separated, in order; native is the baseline of the overhead columns):
  native            host processes
  container         Docker (DOCKER_HOST), host network, I/O on the container's own filesystem
  container-nat     Docker, bridge network, server reached through a port published on 127.0.0.1
  container-volume  Docker, host network, I/O on a bind-mounted host directory
  container-nat-volume  Docker, NAT and a bind-mounted data directory (servers that keep data: oltp)
  vm                the test VM (stack/qemu.ts): QEMU, TCG or KVM, busybox guest with the host's
                    tools and their libraries bundled; I/O on a second virtio disk (cache=none);
                    network via a tap device + virtio-net (root) or QEMU user networking
A layer that cannot run (no Docker engine, no QEMU) is reported with the reason; the others run.

CPU per op = host CPU time of the work at that layer ÷ operations: native = the processes' own
/proc/PID/stat; container = the container's cgroup (cpuacct.usage / cpu.stat), plus docker-proxy for
NAT; vm = the QEMU process's /proc/PID/stat. Client-server workloads add the host-side client's CPU.

Output: a table on stdout; bench.json, runs.csv, summary.csv and report.html in --out; the
strata_bench measurement in InfluxDB with --influx-url. Details and a real run: docs/bench.md.

Presets (--preset; --workload, --layers, --vm-accel beside it win):
  felter     Felter et al. 2014's set: cpu,memory,randio,seqio,net-bulk,net-rr,redis,oltp on every
             layer, --vm-accel auto (KVM when the guest boots with it, else TCG)

Examples:
  strata bench --preset felter --vm-accel kvm
  strata bench --workload cpu --layers native,container --repeats 1 --duration 5s
  strata bench --workload redis,net-bulk --layers native,container,container-nat --concurrent
  strata bench --cmd "dd if=/dev/zero bs=64k count=20000 | gzip -c > /dev/null" --layers native,container,vm
`;

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      'run the same workload natively, in a container and in a VM; report throughput, latency, CPU per op and overhead vs native',
    )
    .option('--preset <name>', "felter: the paper's workloads on every layer (flags beside it win)")
    .option(
      '-w, --workload <names>',
      'cpu|memory|randio|seqio|net-bulk|net-rr|redis|oltp, comma-separated [default cpu]',
    )
    .option('--cmd <command>', 'benchmark any shell command instead of a built-in workload')
    .option(
      '-l, --layers <names>',
      'native,container,container-nat,container-volume,container-nat-volume,vm, comma-separated [default native,container,vm]',
    )
    .option('-r, --repeats <n>', 'runs per workload and layer; median and min–max reported [default 3]')
    .option('-d, --duration <duration>', 'length of one run, e.g. 5s, 1m [default 10s]')
    .option('--concurrent', 'run all layers at the same time (interference) instead of one after another')
    .option(
      '-o, --out <dir>',
      'directory for bench.json, runs.csv, summary.csv, report.html [default ./strata-bench-<run id>]',
    )
    .option('--influx-url <url>', 'also write the strata_bench measurement to InfluxDB [env INFLUX_URL]')
    .option('--influx-database <name>', 'InfluxDB database / bucket [env INFLUX_DATABASE; default strata]')
    .option('--influx-token <token>', 'InfluxDB token (v2 API auth) [env INFLUX_TOKEN]')
    .option(
      '--docker-host <url>',
      "Docker engine, unix:///path [env DOCKER_HOST; default the stack's engine]",
    )
    .option('--image <name>', 'busybox image for the container layers [default strata/busybox]')
    .option(
      '--vm-accel <accel>',
      'tcg|kvm|auto: QEMU accelerator (auto: KVM when it boots, else TCG) [default tcg]',
    )
    .option('--vm-memory-mb <mib>', 'guest RAM [default 512]')
    .option(
      '--vm-net <mode>',
      'tap|user|auto: guest network for net-bulk/net-rr/redis/oltp (auto: tap when root) [default auto]',
    )
    .option('--io-size-mb <mib>', 'file / disk size the I/O workloads read [default 256]')
    .option('--no-install', 'do not apt-get install missing workload tools; fail naming them')
    .option('--progress <mode>', 'bar|lines|none [default: bar on a terminal, lines otherwise]')
    .option('--no-html', 'skip the HTML report')
    .option('--json', 'print bench.json to stdout instead of the table')
    .option(
      '--print-config',
      'print the resolved settings (token hidden) and where each came from, then exit',
    )
    .addHelpText('after', HELP_AFTER)
    .action(async (flags: BenchFlags) => {
      await runBenchCommand(flags);
    });
}

const FLAG_OF: Record<string, string> = {
  workloads: '--workload',
  cmd: '--cmd',
  layers: '--layers',
  repeats: '--repeats',
  durationMs: '--duration',
  outDir: '--out',
  influxUrl: '--influx-url (INFLUX_URL)',
  influxDatabase: '--influx-database',
  dockerHost: '--docker-host (DOCKER_HOST)',
  image: '--image',
  vmAccel: '--vm-accel',
  vmMemoryMb: '--vm-memory-mb',
  vmNet: '--vm-net',
  ioSizeMb: '--io-size-mb',
};

function intFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  return wholeNumber(flag.replace(/^--/, ''), 1)(value);
}

function listFlag(
  value: string | undefined,
  flag: string,
  accepted: readonly string[],
): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((i) => !accepted.includes(i));
  if (bad.length || !items.length) {
    throw new ConfigError(
      `${flag}: ${bad.length ? `unknown value(s) ${bad.map((b) => JSON.stringify(b)).join(', ')}` : 'empty list'}; ` +
        `accepted: ${accepted.join(', ')} (comma-separated, e.g. ${flag} ${accepted.slice(0, 2).join(',')})`,
    );
  }
  return items;
}

function oneOf(value: string | undefined, flag: string, accepted: readonly string[]): string | undefined {
  if (value === undefined || accepted.includes(value)) return value;
  throw new ConfigError(`${flag}: "${value}" is not accepted; use one of ${accepted.join(', ')}`);
}

/** DOCKER_HOST, else the engine of a running `strata stack`, else the system socket. */
async function defaultDockerHost(): Promise<string | undefined> {
  if (process.env.DOCKER_HOST) return process.env.DOCKER_HOST;
  try {
    const { resolveStackConfig, readState } = await import('../stack/index.ts');
    const state = readState(resolveStackConfig({}).dataDir);
    return state.services.docker?.address;
  } catch {
    return undefined;
  }
}

async function runBenchCommand(flags: BenchFlags): Promise<void> {
  const [{ BenchConfig, LAYER_NAMES, WORKLOADS, VM_ACCELS, PRESETS }, { parseConfig, parseDuration }] =
    await Promise.all([import('../bench/config.ts'), import('../lib/config.ts')]);
  if (flags.cmd !== undefined && flags.workload !== undefined) {
    throw new ConfigError(
      '--cmd and --workload exclude each other; pass one (--cmd runs your command as the workload)',
    );
  }
  const presetName = oneOf(flags.preset, '--preset', Object.keys(PRESETS)) as
    | keyof typeof PRESETS
    | undefined;
  if (presetName && flags.cmd !== undefined) {
    throw new ConfigError('--cmd and --preset exclude each other; a preset is a set of built-in workloads');
  }
  const preset = presetName ? PRESETS[presetName] : undefined;
  const influxUrl = flags.influxUrl ?? (process.env.INFLUX_URL || undefined);
  const dockerHostFlag = flags.dockerHost ?? process.env.DOCKER_HOST;
  const input = {
    workloads: listFlag(flags.workload, '--workload', WORKLOADS) ?? preset?.workloads.slice(),
    cmd: flags.cmd,
    layers: listFlag(flags.layers, '--layers', LAYER_NAMES) ?? preset?.layers.slice(),
    repeats: intFlag(flags.repeats, '--repeats'),
    durationMs: flags.duration === undefined ? undefined : parseDuration(flags.duration, '--duration'),
    concurrent: flags.concurrent,
    outDir: flags.out,
    influxUrl,
    influxDatabase: flags.influxDatabase ?? (process.env.INFLUX_DATABASE || undefined),
    influxToken: flags.influxToken ?? (process.env.INFLUX_TOKEN || undefined),
    dockerHost: flags.dockerHost ?? (await defaultDockerHost()),
    image: flags.image,
    vmAccel: oneOf(flags.vmAccel, '--vm-accel', VM_ACCELS) ?? preset?.vmAccel,
    vmMemoryMb: intFlag(flags.vmMemoryMb, '--vm-memory-mb'),
    vmNet: oneOf(flags.vmNet, '--vm-net', ['tap', 'user', 'auto']),
    ioSizeMb: intFlag(flags.ioSizeMb, '--io-size-mb'),
    install: flags.install,
    progress:
      oneOf(flags.progress, '--progress', ['bar', 'lines', 'none']) ??
      (process.stderr.isTTY ? 'bar' : 'lines'),
  };
  if (input.durationMs !== undefined && (input.durationMs < 1000 || input.durationMs > 3_600_000)) {
    const bare = /^\d+(\.\d+)?$/.test(String(flags.duration).trim());
    throw badFlag(
      'duration',
      'a duration from 1s to 1h such as 5s',
      String(flags.duration),
      bare && input.durationMs < 1000
        ? `a bare number is milliseconds: did you mean ${flags.duration}s?`
        : '',
    );
  }
  let config: import('../bench/config.ts').BenchConfig;
  try {
    config = parseConfig(
      BenchConfig,
      Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
      'bench',
    );
  } catch (err) {
    // Name the flag the user typed, not the config key behind it.
    if (err instanceof ConfigError) {
      let msg = err.message;
      for (const [key, flag] of Object.entries(FLAG_OF)) msg = msg.replaceAll(`bench.${key}`, flag);
      throw new ConfigError(msg.replace('invalid configuration in bench:', 'invalid strata bench flags:'));
    }
    throw err;
  }
  if (flags.printConfig) {
    // Where each setting came from: a flag, an environment variable, the preset, the running stack.
    const sources: Record<string, string> = {};
    const fromFlag: [keyof BenchFlags, string, string?][] = [
      ['workload', 'workloads'],
      ['cmd', 'cmd'],
      ['layers', 'layers'],
      ['repeats', 'repeats'],
      ['duration', 'durationMs'],
      ['out', 'outDir'],
      ['influxUrl', 'influxUrl', 'INFLUX_URL'],
      ['influxDatabase', 'influxDatabase', 'INFLUX_DATABASE'],
      ['influxToken', 'influxToken', 'INFLUX_TOKEN'],
      ['dockerHost', 'dockerHost', 'DOCKER_HOST'],
      ['image', 'image'],
      ['vmAccel', 'vmAccel'],
      ['vmMemoryMb', 'vmMemoryMb'],
      ['vmNet', 'vmNet'],
      ['ioSizeMb', 'ioSizeMb'],
    ];
    for (const [flag, key, envVar] of fromFlag) {
      if (flags[flag] !== undefined)
        sources[key] = `flag --${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      else if (envVar && process.env[envVar]) sources[key] = `env ${envVar}`;
    }
    if (presetName) {
      for (const key of ['workloads', 'layers', 'vmAccel'] as const) {
        if (!sources[key] && config[key] !== undefined) sources[key] = `flag --preset ${presetName}`;
      }
    }
    if (!dockerHostFlag && config.dockerHost) sources.dockerHost = 'the running strata stack';
    const shown = redactConfig(config);
    if (shown.influxToken) shown.influxToken = '***';
    process.stdout.write(`${JSON.stringify({ config: shown, sources }, null, 2)}\n`);
    return;
  }
  const [{ runBench }, { renderTable }, { writeFiles, writeInflux }, { renderHtml }] = await Promise.all([
    import('../bench/runner.ts'),
    import('../bench/report/table.ts'),
    import('../bench/report/files.ts'),
    import('../bench/report/html.ts'),
  ]);
  const result = await runBench(config);
  const outDir = result.config.outDir!;
  const files = await writeFiles(result, outDir);
  if (flags.html !== false) {
    const fs = await import('node:fs/promises');
    const path = await import('node:path');
    files.html = path.join(outDir, 'report.html');
    await fs.writeFile(files.html, await renderHtml(result));
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(renderTable(result));
  process.stderr.write(`\nwrote ${Object.values(files).join(', ')}\n`);
  if (config.influxUrl) {
    const n = await writeInflux(result, {
      url: config.influxUrl,
      database: config.influxDatabase,
      ...(config.influxToken ? { token: config.influxToken } : {}),
    });
    process.stderr.write(
      `wrote ${n} strata_bench points to ${redactUrl(config.influxUrl)} (database ${config.influxDatabase})\n`,
    );
  }
  if (result.aborted) {
    process.stderr.write('strata bench: interrupted; the files hold the runs that finished\n');
    process.exitCode = 130;
    return;
  }
  const okRuns = result.runs.filter((r) => r.ok).length;
  if (okRuns === 0) {
    process.stderr.write('strata bench: no run succeeded (see the notes above)\n');
    process.exitCode = 1;
  }
}
