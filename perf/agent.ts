// `npm run perf:agent`: what the agent costs per entity-sample, with 1, 50 and 200 real cgroups.
//
// For each N: create /strata-bench/cg-0..N-1 in the v1 cpu, cpuacct, memory and blkio hierarchies
// and in the v2 (unified) one, with a sleeping process in each (so they are live cgroups with
// real files; with --load active each process wakes every 250 ms instead, so every container uses
// some CPU every tick and no per-container read can be saved as idle), then run the agent's real collect path (host + cgroup collectors, the message
// encoded and gzipped every tick as the Kafka output does, no network send) at 1 s ticks for ~20 s in a fresh child process, and report
// CPU (process.cpuUsage delta) per entity-sample and per tick, and RSS. Prints a table; it is not
// a test. Needs root (cgroup creation). Everything it created is removed at the end.
//
//   npm run perf:agent                          # N = 1, 50, 200, 20 s each, bundle and tsx rows
//   npm run perf:agent -- --no-tsx              # bundle rows only
//   npm run perf:agent -- --sizes 200 --seconds 30 --cpu-prof /tmp/prof   # + a V8 CPU profile of the window
//   npm run perf:agent -- --netns              # each cgroup's process in its own network namespace
//   npm run perf:agent -- --no-netdev           # cgroup collector without per-netns net/dev reads
//   BENCH_CHILD_OUT=/tmp/out npm run perf:agent -- --node-flags "--trace-gc"   # child stdout kept
//   npm run perf:agent -- --load active         # only the active rows (default: idle,active)
//   npm run perf:agent -- --gzip-level 6        # each tick gzipped at zlib level 6 (0: not compressed;
//                                               # default: the agent's kafka.gzipLevel, as deployed)
//   npm run perf:agent -- --warmup 45           # seconds before the window (default 10): V8 is
//                                                # still compiling the tick path at 1 Hz after 10 s
//   npm run perf:agent -- --kafka               # ticks really published (the agent's Kafka output,
//                                                # kafkajs compressing) to KAFKA_BROKERS (default the
//                                                # stack's), topic strata-bench-agent, created and
//                                                # deleted by the run: the whole agent's cost
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const BENCH_ROOT = 'strata-bench';
/**
 * The agent's deployed V8 flag: young-generation semi-spaces of at most 2 MB. V8 grows them to
 * 16 MB while the agent starts; at ≈ 1 MB/s of garbage the agent never needs that, and the
 * growth is what took the maximum RSS at 200 containers to 81–83 MB (76 with it; CPU unchanged).
 */
const AGENT_NODE_FLAGS = '--max-semi-space-size=2';
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'blkio'];
const BENCH_FIFO = '/tmp/strata-bench-agent.fifo';
/** --kafka: the topic the children publish to (created before, deleted after). */
const BENCH_TOPIC = 'strata-bench-agent';
/** --kafka: the brokers the children publish to (the parent's flag; the child gets them as its value). */
const KAFKA = process.argv.includes('--kafka')
  ? arg('kafka')?.startsWith('--') === false
    ? arg('kafka')
    : process.env.KAFKA_BROKERS || '127.0.0.1:19092'
  : undefined;

interface ChildResult {
  entities: number;
  ticks: number;
  entitySamples: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  maxRssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  messageBytes: number;
  gzipBytes: number;
  gzipUsPerTick: number;
  timeouts: number;
  collectErrors: number;
  /** memory.stat reads saved as idle (per entity-sample, %). */
  memStatReusedPct: number;
  /** PSI file reads saved (cpu, io, memory), per container-sample (%, of 3 files). */
  psiReusedPct: [number, number, number];
  /** v1 blkio file pairs not re-read, per container-sample (%). */
  blkioReusedPct: number;
  load: string;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// ---------------------------------------------------------------- child: measure one N

async function child(): Promise<void> {
  const seconds = Number(arg('seconds') ?? 20);
  const [
    { Agent },
    { loadAgentConfig },
    { NullTransport },
    registry,
    { registry: prom, enableProcessMetrics },
    { gzipCodec },
    { KafkaTransport },
  ] = await Promise.all([
    import('../agent/agent.ts'),
    import('../agent/config.ts'),
    import('../agent/ndjson.ts'),
    import('../collectors/registry.ts'),
    import('../lib/metrics.ts'),
    import('../lib/kafka/gzip.ts'),
    import('../agent/kafka.ts'),
  ]);
  const { config, enabled } = loadAgentConfig({
    collectorSchemas: registry.collectorSchemas(),
    defaultCollectors: registry.defaultCollectors(),
    env: { STRATA_NODE_ID: 'bench-node' },
    flags: { interval: '1s', '(collectors)': 'host,cgroup' },
  });
  // Only the run's cgroups (plus whatever containers the machine runs); Docker API off so the
  // figure is the file-reading path alone.
  const collectors = config.collectors as Record<string, unknown>;
  collectors.cgroup = {
    include: [`/${BENCH_ROOT}/*`],
    docker: { enabled: false },
    network: !process.argv.includes('--no-netdev'),
  };
  collectors.host = { inventory: false };
  const gzipLevel = Number(arg('gzip-level') ?? config.kafka.gzipLevel);
  const compress = arg('gzip-level') === '0' ? undefined : gzipCodec(gzipLevel)();

  // Compresses each tick as the Kafka output does (kafkajs calls the same codec on the record
  // batch), so the figure is what a deployed agent spends; only the network send is left out.
  class LastValueTransport extends NullTransport {
    lastValue: Buffer | undefined;
    override async send(ticks: readonly { value: Buffer }[]): Promise<void> {
      this.lastValue = ticks[ticks.length - 1]?.value;
      if (compress) for (const t of ticks) await compress.compress({ buffer: t.value });
      await super.send(ticks as never);
    }
  }
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const m = await prom.getSingleMetric(name)?.get();
    const matches = (v: { labels: Partial<Record<string, string | number>> }) =>
      Object.entries(labels).every(([k, want]) => v.labels[k] === want);
    return (m?.values ?? []).filter(matches).reduce((s, v) => s + v.value, 0);
  };
  // As deployed (deploy/, docker-compose: /metrics on): the process metrics and their event-loop timer.
  enableProcessMetrics();
  // --kafka: the agent's own Kafka output, publishing for real (kafkajs runs the same codec).
  let transport:
    | LastValueTransport
    | (InstanceType<typeof KafkaTransport> & { lastValue?: Buffer; sent: number });
  if (KAFKA) {
    class CountingKafka extends KafkaTransport {
      sent = 0;
      lastValue: Buffer | undefined;
      override async send(ticks: readonly { value: Buffer }[]): Promise<void> {
        this.lastValue = ticks[ticks.length - 1]?.value;
        await super.send(ticks as never);
        this.sent += ticks.length;
      }
    }
    transport = new CountingKafka({ ...config.kafka, brokers: KAFKA.split(','), samplesTopic: BENCH_TOPIC });
  } else transport = new LastValueTransport();
  const agent = new Agent({ config, enabled, version: 'bench', transport });
  await agent.start();
  // Warm-up: the first ticks open files, run discovery and JIT (V8 compiles hot code in the first
  // ~10 s; with 3 s the fixed cost per tick reads twice as high); not part of the figure.
  await new Promise((r) => setTimeout(r, Number(arg('warmup') ?? 10) * 1000));
  // Entity-samples come from the agent's own counter: no bench work inside the measured window.
  const ticks0 = transport.sent;
  const samples0 = await metric('strata_agent_entity_samples_total');
  const reused0 = await metric('strata_collector_cgroup_memory_stat_reused_total');
  const psiReused = (r: string) => metric('strata_collector_cgroup_pressure_reused_total', { resource: r });
  const blkio0 = await metric('strata_collector_cgroup_blkio_reused_total');
  const psi0 = [await psiReused('cpu'), await psiReused('io'), await psiReused('memory')];
  // --cpu-prof: the profile covers the measured window only (steady state), not start-up and
  // warm-up, which --cpu-prof on the command line would mix in.
  const profileDir = arg('cpu-prof');
  const profiler = profileDir ? await startProfiler() : undefined;
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  if (profiler && profileDir) await profiler.stopInto(profileDir, `agent-${arg('entities')}.cpuprofile`);
  const ticks = transport.sent - ticks0;
  const entitySamples = (await metric('strata_agent_entity_samples_total')) - samples0;
  const mem = process.memoryUsage();
  await agent.stop(2000);

  const value = transport.lastValue ?? Buffer.alloc(0);
  // Kept for codec comparisons (bytes and CPU of gzip/lz4/zstd on a real tick).
  const keep = path.resolve(path.dirname(fileURLToPath(import.meta.url)), `tick-${arg('entities')}.json`);
  if (fs.existsSync(path.dirname(keep)) && keep.includes('.cache')) fs.writeFileSync(keep, value);
  const g0 = process.cpuUsage();
  let gz = Buffer.alloc(0);
  for (let i = 0; i < 20; i++) gz = zlib.gzipSync(value, { level: compress ? gzipLevel : 6 });
  const g = process.cpuUsage(g0);
  const result: ChildResult = {
    entities: Number(arg('entities')),
    ticks,
    entitySamples,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rssBytes: mem.rss,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    heapUsedBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    externalBytes: mem.external,
    messageBytes: value.length,
    gzipBytes: gz.length,
    gzipUsPerTick: (g.user + g.system) / 20,
    timeouts: await metric('strata_agent_collect_timeouts_total'),
    collectErrors: await metric('strata_agent_collect_errors_total'),
    memStatReusedPct:
      (100 * ((await metric('strata_collector_cgroup_memory_stat_reused_total')) - reused0)) /
      Math.max(1, entitySamples),
    psiReusedPct: [
      (100 * ((await psiReused('cpu')) - psi0[0]!)) / Math.max(1, entitySamples - ticks),
      (100 * ((await psiReused('io')) - psi0[1]!)) / Math.max(1, entitySamples - ticks),
      (100 * ((await psiReused('memory')) - psi0[2]!)) / Math.max(1, entitySamples - ticks),
    ],
    blkioReusedPct:
      (100 * ((await metric('strata_collector_cgroup_blkio_reused_total')) - blkio0)) /
      Math.max(1, entitySamples - ticks),
    load: arg('load') ?? 'idle',
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

/** Creates or deletes the --kafka topic; an unreachable Kafka ends the run with the address and the fix. */
async function benchTopic(brokers: string, action: 'create' | 'delete'): Promise<void> {
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const admin = new Kafka({
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  }).admin();
  try {
    await admin.connect();
    if (action === 'create') await admin.createTopics({ topics: [{ topic: BENCH_TOPIC, numPartitions: 1 }] });
    else await admin.deleteTopics({ topics: [BENCH_TOPIC] });
  } catch (err) {
    process.stderr.write(
      `perf:agent --kafka: Kafka at ${brokers} (${action} topic ${BENCH_TOPIC}): ${(err as Error).message}. ` +
        'Start the stack with `npx strata stack up`, or set KAFKA_BROKERS to running brokers.\n',
    );
    process.exit(2);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** A V8 CPU profile of this process through the inspector, started and stopped on demand. */
async function startProfiler(): Promise<{ stopInto(dir: string, file: string): Promise<void> }> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method: string) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, (err, result) => (err ? reject(err) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.start');
  return {
    async stopInto(dir, file) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      session.disconnect();
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, file), JSON.stringify(profile));
    },
  };
}

// ---------------------------------------------------------------- parent: cgroups + table

function v1Dir(controller: string, name: string): string {
  return `/sys/fs/cgroup/${controller}/${BENCH_ROOT}${name ? `/${name}` : ''}`;
}

function unifiedRoot(): string | undefined {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const m = mounts.map((l) => l.split(' ')).find((f) => f[f.indexOf('-') + 1] === 'cgroup2');
  return m?.[4];
}

/**
 * The process in each bench cgroup. idle: `sleep`, never runs. active: bash waking every 250 ms
 * (a read with a timeout on a FIFO nobody writes: no fork per wake), so each container's CPU time
 * moves every tick at a negligible cost to the machine.
 */
function tenant(load: string, fifo: string): ChildProcess {
  const cmd =
    load === 'idle'
      ? ['sleep', '3600']
      : ['bash', '-c', `exec 3<>${fifo}; while :; do read -t 0.25 -u 3; n=$((n+1)); done`];
  // --netns: each tenant in a network namespace of its own (as Docker containers are), so the
  // agent also reads its /proc/PID/net/dev every tick (only `lo` in it here).
  if (process.argv.includes('--netns')) cmd.unshift('unshare', '--net', '--');
  return spawn(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
}

function createCgroups(n: number, sleepers: ChildProcess[], load = 'idle'): string[] {
  const created: string[] = [];
  const v2 = unifiedRoot();
  const roots = [
    ...V1_CONTROLLERS.map((c) => v1Dir(c, '')).filter((d) => fs.existsSync(path.dirname(d))),
    ...(v2 ? [`${v2}/${BENCH_ROOT}`] : []),
  ];
  for (const r of roots) fs.mkdirSync(r, { recursive: true });
  for (let i = 0; i < n; i++) {
    const dirs = roots.map((r) => `${r}/cg-${i}`);
    for (const d of dirs) fs.mkdirSync(d, { recursive: true });
    const sleeper = tenant(load, BENCH_FIFO);
    sleepers.push(sleeper);
    for (const d of dirs) {
      try {
        fs.writeFileSync(`${d}/cgroup.procs`, String(sleeper.pid));
      } catch (err) {
        // A process can be in a v2 leaf only if no v1 controller conflicts; log and go on.
        process.stderr.write(`perf:agent: cannot move pid into ${d}: ${(err as Error).message}\n`);
      }
    }
    created.push(...dirs);
  }
  return roots;
}

async function removeCgroups(roots: string[], sleepers: ChildProcess[]): Promise<void> {
  for (const s of sleepers) s.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  for (const root of roots) {
    if (!fs.existsSync(root)) continue;
    for (const d of fs.readdirSync(root)) {
      const p = `${root}/${d}`;
      if (!fs.statSync(p).isDirectory()) continue;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          fs.rmdirSync(p);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // the killed sleeper is still exiting
        }
      }
    }
    try {
      fs.rmdirSync(root);
    } catch (err) {
      process.stderr.write(`perf:agent: could not remove ${root}: ${(err as Error).message}\n`);
    }
  }
}

/**
 * Each N runs twice: from an esbuild bundle of this file run by plain node (the same options as
 * `npm run build`'s dist/strata.mjs, which production runs: Dockerfile, systemd units), and from
 * the sources under tsx (how `strata agent` runs in a clone), whose ESM loader thread adds ≈ 40 MB
 * RSS and some CPU that are not the agent's.
 */
async function bundle(): Promise<string | undefined> {
  const self = fileURLToPath(import.meta.url);
  const out = path.resolve(path.dirname(self), '../node_modules/.cache/strata-bench/agent.mjs');
  try {
    const esbuild = await import('esbuild'); // installed with tsx
    await esbuild.build({
      entryPoints: [self],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external', // node_modules load natively, from next to the bundle
      outfile: out,
      logLevel: 'warning',
    });
    return out;
  } catch (err) {
    process.stderr.write(
      `perf:agent: no esbuild bundle (${(err as Error).message}); measuring under tsx only\n`,
    );
    return undefined;
  }
}

function runChild(
  n: number,
  load: string,
  seconds: number,
  bundled: string | undefined,
  cpuProf?: string,
  v8Flags: string[] = [],
): Promise<ChildResult & { mode: string }> {
  const self = fileURLToPath(import.meta.url);
  // As deployed (deploy/: systemd ExecStart, NODE_OPTIONS in the DaemonSet and docker-compose).
  const nodeArgs = [AGENT_NODE_FLAGS, ...v8Flags, ...(bundled ? [] : ['--import', 'tsx'])];
  const c = spawn(
    process.execPath,
    [
      ...nodeArgs,
      bundled ?? self,
      '--child',
      '--entities',
      String(n),
      '--seconds',
      String(seconds),
      '--load',
      load,
      ...(process.argv.includes('--no-netdev') ? ['--no-netdev'] : []),
      ...(arg('warmup') !== undefined ? ['--warmup', arg('warmup')!] : []),
      ...(arg('gzip-level') !== undefined ? ['--gzip-level', arg('gzip-level')!] : []),
      ...(cpuProf ? ['--cpu-prof', cpuProf] : []),
      ...(KAFKA ? ['--kafka', KAFKA] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STRATA_LOG_LEVEL: 'error' } },
  );
  let out = '';
  let err = '';
  c.stdout.on('data', (d) => (out += d));
  c.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    c.on('exit', (code) => {
      if (process.env.BENCH_CHILD_OUT) fs.writeFileSync(process.env.BENCH_CHILD_OUT, out);
      if (code !== 0) reject(new Error(`bench child for N=${n} exited ${code}: ${err.slice(-2000)}`));
      else
        resolve({
          ...(JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult),
          mode: (bundled ? 'node' : 'tsx') + (v8Flags.length ? '*' : '') + (KAFKA ? '+kafka' : ''),
        });
    });
  });
}

async function parent(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('perf:agent creates cgroups and needs root; run it as root\n');
    process.exit(2);
  }
  const sizes = (arg('sizes') ?? '1,50,200').split(',').map(Number);
  const loads = (arg('load') ?? 'idle,active').split(',');
  for (const l of loads) {
    if (l !== 'idle' && l !== 'active') {
      process.stderr.write(`perf:agent: --load ${l}: accepted values are idle, active (comma-separated)\n`);
      process.exit(2);
    }
  }
  if (!fs.existsSync(BENCH_FIFO)) spawnSync('mkfifo', [BENCH_FIFO]);
  const seconds = Number(arg('seconds') ?? 20);
  const cpuProf = arg('cpu-prof');
  const nodeFlags = arg('node-flags')?.split(' ').filter(Boolean) ?? [];
  const bundled = await bundle();
  const rows: (ChildResult & { mode: string })[] = [];
  const largest = Math.max(...sizes);
  if (KAFKA) await benchTopic(KAFKA, 'create');
  for (const load of loads) {
    for (const n of sizes) {
      const sleepers: ChildProcess[] = [];
      let roots: string[] = [];
      // Interrupted (Ctrl-C, timeout): the tenant processes and cgroups go too, not only on success.
      const onSignal = () => {
        void removeCgroups(roots, sleepers).finally(() => process.exit(130));
      };
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      try {
        roots = createCgroups(n, sleepers, load);
        process.stderr.write(
          `perf:agent: N=${n} (${load}): ${n} cgroups created, sampling for ${seconds} s...\n`,
        );
        rows.push(await runChild(n, load, seconds, bundled, cpuProf, nodeFlags));
        if (bundled && !process.argv.includes('--no-tsx')) {
          process.stderr.write(`perf:agent: N=${n} (${load}) again under tsx...\n`);
          rows.push(await runChild(n, load, seconds, undefined));
        }
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
        await removeCgroups(roots, sleepers);
      }
    }
  }
  if (KAFKA) await benchTopic(KAFKA, 'delete');
  const pad = (s: string | number, w: number) => String(s).padStart(w);
  const output = KAFKA ? `published to Kafka ${KAFKA} topic ${BENCH_TOPIC}` : 'no-op output';
  const lines = [
    `strata agent collect path: host + cgroup collectors, 1 s ticks, ${arg('warmup') ?? 10} s warm-up then ${seconds} s per row, ${output} (${new Date().toISOString()})`,
    '',
    `${pad('run', 5)} ${pad('load', 6)} ${pad('cgroups', 8)} ${pad('ticks', 6)} ${pad('samples/tick', 12)} ${pad('µs CPU/sample', 14)} ${pad('user', 5)} ${pad('sys', 5)} ${pad('ms CPU/tick', 12)} ${pad('%core', 6)} ${pad('RSS MB', 7)} ${pad('maxRSS MB', 9)} ${pad('msg KB', 7)} ${pad('gzip KB', 8)} ${pad('gzip ms', 8)} ${pad('timeouts', 8)} ${pad('errors', 6)} ${pad('memstat %', 10)} ${pad('psi % cpu/io/mem', 16)} ${pad('blkio %', 7)}`,
  ];
  for (const r of rows) {
    const cpuUs = r.cpuUserUs + r.cpuSystemUs;
    lines.push(
      `${pad(r.mode, 5)} ${pad(r.load, 6)} ${pad(r.entities, 8)} ${pad(r.ticks, 6)} ${pad((r.entitySamples / Math.max(1, r.ticks)).toFixed(1), 12)} ${pad((cpuUs / Math.max(1, r.entitySamples)).toFixed(1), 14)} ${pad((r.cpuUserUs / Math.max(1, r.entitySamples)).toFixed(0), 5)} ${pad((r.cpuSystemUs / Math.max(1, r.entitySamples)).toFixed(0), 5)} ${pad((cpuUs / Math.max(1, r.ticks) / 1000).toFixed(2), 12)} ${pad(((cpuUs / (seconds * 1e6)) * 100).toFixed(2), 6)} ${pad((r.rssBytes / 1e6).toFixed(1), 7)} ${pad((r.maxRssBytes / 1e6).toFixed(1), 9)} ${pad((r.messageBytes / 1024).toFixed(1), 7)} ${pad((r.gzipBytes / 1024).toFixed(1), 8)} ${pad((r.gzipUsPerTick / 1000).toFixed(2), 8)} ${pad(r.timeouts, 8)} ${pad(r.collectErrors, 6)} ${pad(r.memStatReusedPct.toFixed(0), 10)} ${pad(r.psiReusedPct.map((v) => v.toFixed(0)).join('/'), 16)} ${pad(r.blkioReusedPct.toFixed(0), 7)}`,
    );
  }
  lines.push(
    '',
    'µs CPU/sample = process CPU (user+sys) over the window ÷ entity-samples (host + cgroups), user and sys its two parts; target ≤ 50 µs and ≤ 80 MB RSS at 200.',
    "Each tick is gzipped inside the window as kafkajs does before sending (--gzip-level, default the agent's kafka.gzipLevel); gzip KB/ms = one tick at that level, measured apart.",
    "load idle = a sleeping process per cgroup; active = one waking every 250 ms (CPU time moves every tick). memstat % = memory.stat reads saved as idle, per entity-sample; psi % = cpu/io/memory.pressure reads saved (the system-wide PSI still), blkio % = v1 blkio file pairs saved (the root's counters still), per container-sample.",
    `Every row runs node ${AGENT_NODE_FLAGS}, as deployed; extra node flags for a row: --node-flags "--trace-gc" (marked *).`,
    'run node = the agent code bundled with esbuild (as `npm run build` bundles dist/strata.mjs: node_modules external), run by plain node, as production runs; tsx = from the TypeScript sources, as `strata agent` runs in a clone. --no-tsx skips the tsx rows.',
    `memory at the largest N: ${rows
      .filter((r) => r.entities === largest)
      .map(
        (r) =>
          `${r.mode}: heap used ${(r.heapUsedBytes / 1e6).toFixed(1)} MB of ${(r.heapTotalBytes / 1e6).toFixed(1)} MB, external ${(r.externalBytes / 1e6).toFixed(1)} MB`,
      )
      .join('; ')}`,
    'gzip = kafkajs-equivalent gzip of one whole tick (the Kafka transport compresses batches of ticks the same way).',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  if (cpuProf) process.stdout.write(`CPU profiles in ${cpuProf} (open in Chrome DevTools)\n`);
}

if (process.argv.includes('--child')) await child();
else await parent();
