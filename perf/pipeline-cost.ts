// `npm run perf:pipeline-cost`: what one entity-sample costs the whole pipeline, component by
// component, at a stated load (nodes × entities per node × interval), and how candidate schema
// changes (--variants, perf/pipeline-cost-variants.ts) move it. Prints a table (and --json); it is
// not a test. The method and the figures of this machine are in docs/cost.md.
//
// One run = one variant: a private influxd (fresh data dir, short cold durations so that the cache
// snapshots and the full compaction happen inside the run), a fresh topic on the broker, a real
// `strata processor` child (for `today`; perf/pipeline-cost-processor.ts, the same runtime with the
// variant applied to the pipeline's points, for the others), and the nodes' messages published
// from another process (perf/pipeline-cost-load.ts) whose CPU is billed to nobody. Windows:
//   processor, broker:  from the first message to the consumer group having committed the last;
//   influxd:            from the first message to the shard being fully compacted (one TSM file,
//                       WAL empty), after --full-cold of no writes: writes + snapshots + every
//                       compaction of that data, plus the idle seconds waiting for the last one.
// CPU = utime + stime from /proc/<pid>/stat (the whole process and its children). The variants
// run alternated (A B C A B C ...) --rounds times; each figure is the median of its rounds.
// The agent is measured once (its cost does not depend on the schema) by perf/agent.ts's machinery:
// real cgroups (entities - 1 of them, each with a process waking every 250 ms), the real
// collect path, the ticks published to the same broker.
//
//   npm run perf:pipeline-cost -- --nodes 50 --entities 21 --interval-ms 1000 --seconds 90 \
//     --variants today,zero-rates-skip --rounds 2 --json /tmp/cost.json
// Broker: a private Kafka (stack/kafka.ts, own data dir and ports) unless --brokers names one;
// then --broker-pid and --kafka-log-dir are needed for its CPU and segment sizes, and the
// figures include whatever else that broker serves at the time.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { createPipeline } from '../processors/pipeline.ts';
import type { Point } from '../schemas/point.ts';
import { type EncodedSegment, encodeSegments, newEncodeStats } from '../sinks/influxdb/line-protocol.ts';
import { influxQuery, influxReady, installInfluxdb } from '../stack/influxdb.ts';
import { type KafkaHandle, startKafka } from '../stack/kafka.ts';
import { descendants, freePort, spawnService, stopPid, waitUntilReady } from '../stack/util.ts';
import { round } from './cpu.ts';
import { costMessage, MESSAGE_KINDS, type MessageKind } from './pipeline-cost-messages.ts';
import { VARIANTS, variantNamed } from './pipeline-cost-variants.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '50' },
    entities: { type: 'string', default: '21' },
    'interval-ms': { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '90' },
    variants: { type: 'string', default: 'today,zero-rates-skip' },
    rounds: { type: 'string', default: '2' },
    messages: { type: 'string', default: 'recorded' },
    /** influxd [data] cache-snapshot-write-cold-duration and compact-full-write-cold-duration. */
    'snapshot-cold': { type: 'string', default: '5s' },
    'full-cold': { type: 'string', default: '10s' },
    brokers: { type: 'string' },
    'broker-pid': { type: 'string' },
    'kafka-log-dir': { type: 'string' },
    'agent-seconds': { type: 'string', default: '30' },
    'skip-agent': { type: 'boolean', default: false },
    json: { type: 'string' },
    'keep-dirs': { type: 'boolean', default: false },
    /**
     * How `today` runs: `cli` = the real `strata processor` command; `wrapper` = through
     * perf/pipeline-cost-processor.ts like the other variants (identity applied), so that the
     * processor figures of all variants come from the same launcher and wrapping.
     */
    processor: { type: 'string', default: 'cli' },
  },
});

const NODES = Number(values.nodes);
const ENTITIES = Number(values.entities);
const INTERVAL_MS = Number(values['interval-ms']);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const KIND = values.messages as MessageKind;
const NAMES = (values.variants ?? '').split(',').filter(Boolean);
const fail = (msg: string): never => {
  process.stderr.write(`perf:pipeline-cost: ${msg}\n`);
  process.exit(2);
};
if (!MESSAGE_KINDS.includes(KIND)) fail(`--messages accepts ${MESSAGE_KINDS.join(', ')}`);
for (const n of NAMES)
  if (!VARIANTS[n]) fail(`--variants: ${n}? accepted: ${Object.keys(VARIANTS).join(', ')}`);
for (const [k, v] of [
  ['nodes', NODES],
  ['entities', ENTITIES],
  ['interval-ms', INTERVAL_MS],
  ['seconds', SECONDS],
  ['rounds', ROUNDS],
] as const)
  if (!Number.isInteger(v) || v < 1) fail(`--${k} accepts a whole number ≥ 1`);
if (!['cli', 'wrapper'].includes(values.processor as string)) fail('--processor accepts cli, wrapper');
if (ENTITIES < 2) fail('--entities counts the host: at least 2');
if (values.brokers && (!values['broker-pid'] || !values['kafka-log-dir']))
  fail('--brokers needs --broker-pid and --kafka-log-dir (for its CPU and its segment sizes)');

const HERE = import.meta.dirname;
const ROOT = path.resolve(HERE, '..');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pipeline-cost-'));
const DB = 'cost';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(`perf:pipeline-cost: ${s}\n`);

// ---- CPU of other processes ---------------------------------------------------------------------
const TICK_US = 1e6 / 100; // USER_HZ

/** utime + stime (+ reaped children's) of pid and its live descendants, µs. */
function treeCpuUs(pid: number): number {
  let us = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      us += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_US;
    } catch {
      // ended between the listing and the read
    }
  }
  return us;
}

function dirBytes(dir: string, match: (f: string) => boolean = () => true): number {
  let n = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !match(e.name)) continue;
    n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

// ---- private influxd ------------------------------------------------------------------------------
interface Influx {
  pid: number;
  url: string;
  dir: string;
  stop(): Promise<void>;
}

async function startInflux(dir: string): Promise<Influx> {
  const influxd = await installInfluxdb();
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const rpc = await freePort();
  const q = (s: string) => JSON.stringify(s);
  // As stack/influxdb.ts configures the stack's influxd, plus the two cold durations: the defaults
  // (10 min, 4 h) would leave every snapshot and compaction of a short run outside its window.
  const config = path.join(dir, 'influxdb.conf');
  fs.writeFileSync(
    config,
    `reporting-disabled = true
bind-address = ${q(`127.0.0.1:${rpc}`)}
[meta]
  dir = ${q(path.join(dir, 'meta'))}
  retention-autocreate = true
  logging-enabled = false
[data]
  dir = ${q(path.join(dir, 'data'))}
  wal-dir = ${q(path.join(dir, 'wal'))}
  index-version = "inmem"
  query-log-enabled = false
  cache-max-memory-size = "256m"
  cache-snapshot-write-cold-duration = ${q(values['snapshot-cold'] as string)}
  compact-full-write-cold-duration = ${q(values['full-cold'] as string)}
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = ${q(`127.0.0.1:${port}`)}
  auth-enabled = false
  log-enabled = false
  flux-enabled = false
  pprof-enabled = false
[logging]
  level = "info"
  suppress-logo = true
`,
  );
  const logFile = path.join(dir, 'influxd.log');
  const url = `http://127.0.0.1:${port}`;
  const { pid } = spawnService(influxd, ['run', '-config', config], { logFile, detached: false });
  await waitUntilReady(`influxd (${url})`, () => influxReady(url), { pid, logFile, timeoutMs: 60_000 });
  await influxQuery(url, `CREATE DATABASE "${DB}"`, { method: 'POST' });
  return { pid, url, dir, stop: () => stopPid(pid, config, 20_000).then(() => {}) };
}

/** One .tsm file per shard, no compaction temp file, WAL empty: the data is fully compacted. */
function compacted(dir: string): { done: boolean; tsm: number; walBytes: number } {
  const shards = path.join(dir, 'data', DB, 'autogen');
  let done = fs.existsSync(shards);
  let tsm = 0;
  if (done) {
    for (const s of fs.readdirSync(shards)) {
      const files = fs.readdirSync(path.join(shards, s));
      const n = files.filter((f) => f.endsWith('.tsm')).length;
      tsm += n;
      if (n !== 1 || files.some((f) => f.endsWith('.tmp'))) done = false;
    }
  }
  const walBytes = dirBytes(path.join(dir, 'wal', DB));
  return { done: done && walBytes === 0, tsm, walBytes };
}

// ---- the processor child --------------------------------------------------------------------------
async function scrape(port: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || !line) continue;
      const i = line.lastIndexOf(' ');
      const key = line.slice(0, i);
      const name = key.replace(/\{.*$/, '');
      out.set(key, Number(line.slice(i + 1)));
      if (key !== name) out.set(name, (out.get(name) ?? 0) + Number(line.slice(i + 1)));
    }
  } catch {
    // not listening yet
  }
  return out;
}

function startProcessor(variant: string, env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const args =
    variant === 'today' && values.processor === 'cli'
      ? [path.join(ROOT, 'bin/strata.js'), 'processor']
      : ['--import', 'tsx', path.join(HERE, 'pipeline-cost-processor.ts'), '--variant', variant];
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  return child;
}

// ---- what each variant writes, in-process -----------------------------------------------------------
/** Points, fields and line-protocol bytes per entity-sample of a variant, on the same messages. */
function shape(variant: string) {
  const { apply, pipeline: config } = variantNamed(variant);
  const pipeline = createPipeline(config);
  const ticks = Math.min(30, Math.round((SECONDS * 1000) / INTERVAL_MS));
  const t0 = 1_795_322_559_000;
  let samples = 0;
  let points = 0;
  let fields = 0;
  let strings = 0;
  let bytes = 0;
  const stats = newEncodeStats();
  for (let t = 0; t < ticks; t++) {
    const pts: Point[] = [];
    for (let n = 0; n < NODES; n++) {
      const m = costMessage(KIND, 'shape', n, t, t0 + t * INTERVAL_MS + n, ENTITIES, INTERVAL_MS);
      samples += m.samples.length;
      for (const p of apply(pipeline.handle(m).points)) pts.push(p);
    }
    for (const p of pts) {
      points++;
      for (const k in p.fields) {
        fields++;
        if (typeof p.fields[k] === 'string') strings++;
      }
    }
    const segments: EncodedSegment[] = [];
    encodeSegments(pts, 5000, 8_388_608, segments, stats);
    for (const s of segments) bytes += s.body.length + 1;
  }
  return {
    points: round(points / samples, 2),
    fields: round(fields / samples, 1),
    string_fields: round(strings / samples, 2),
    line_protocol_bytes: Math.round(bytes / samples),
    note: `${ticks} ticks of the same messages through createPipeline() + the variant + the line-protocol encoder, first tick (no rates yet) included as in the run`,
  };
}

// ---- one run ------------------------------------------------------------------------------------------
interface Broker {
  brokers: string;
  pid: number;
  logDir: string;
}

async function runOnce(variant: string, round_: number, broker: Broker) {
  const id = `${variant.replace(/[^a-z]/g, '')}-${round_}-${Date.now().toString(36)}`;
  const topic = `strata.cost.${id}`;
  const influx = await startInflux(path.join(WORK, `influx-${id}`));
  const kafka = new Kafka({
    clientId: 'strata-bench-cost',
    brokers: [broker.brokers],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [topic, `${topic}.dlq`, `${topic}.alerts`].map((t) => ({
      topic: t,
      numPartitions: 6,
      replicationFactor: 1,
    })),
    waitForLeaders: true,
  });
  const metricsPort = await freePort();
  const groupId = `cost-${id}`;
  const proc = startProcessor(
    variant,
    {
      KAFKA_BROKERS: broker.brokers,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_DLQ_TOPIC: `${topic}.dlq`,
      STRATA_ALERTS_TOPIC: `${topic}.alerts`,
      STRATA_GROUP_ID: groupId,
      INFLUX_URL: influx.url,
      INFLUX_BUCKET: DB,
      STRATA_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      STRATA_LOG_LEVEL: 'warn',
    },
    path.join(WORK, `processor-${id}.log`),
  );
  try {
    // Joined and assigned before the first message, so that group join is outside the window.
    const joinBy = Date.now() + 90_000;
    while (((await scrape(metricsPort)).get('strata_processor_assigned_partitions') ?? 0) < 6) {
      if (proc.exitCode !== null)
        throw new Error(`processor exited ${proc.exitCode} (${WORK}/processor-${id}.log)`);
      if (Date.now() > joinBy) throw new Error('processor not assigned the 6 partitions within 90 s');
      await sleep(250);
    }
    const pid = proc.pid as number;
    const c0 = { proc: treeCpuUs(pid), broker: treeCpuUs(broker.pid), influx: treeCpuUs(influx.pid) };
    const w0 = performance.now();
    const load = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(HERE, 'pipeline-cost-load.ts'),
        ...['--brokers', broker.brokers, '--topic', topic, '--prefix', `n${round_}`],
        ...['--nodes', String(NODES), '--entities', String(ENTITIES)],
        ...['--interval-ms', String(INTERVAL_MS), '--seconds', String(SECONDS), '--messages', KIND],
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    load.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number>((r) => load.on('exit', (c) => r(c ?? 1)));
    if (code !== 0) throw new Error(`pipeline-cost-load exited ${code}`);
    const produced = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
      produced: number;
      entity_samples: number;
      late_slots: number;
    };
    const end = await admin.fetchTopicOffsets(topic);
    const drainBy = Date.now() + 120_000;
    for (;;) {
      const [c] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const done = c?.partitions.every((p) => {
        const e = end.find((x) => x.partition === p.partition)?.offset;
        return e === '0' || p.offset === e;
      });
      if (done) break;
      if (Date.now() > drainBy) throw new Error('processor did not commit the last offsets within 120 s');
      await sleep(100);
    }
    const c1 = { proc: treeCpuUs(pid), broker: treeCpuUs(broker.pid), influx: treeCpuUs(influx.pid) };
    const w1 = performance.now();
    const metrics = await scrape(metricsPort);
    // influxd: until the data is fully compacted (or the limit: then said so).
    const fullCold = parseDuration(values['full-cold'] as string);
    const compactBy = Date.now() + fullCold + 180_000;
    let state = compacted(influx.dir);
    let stable = 0;
    while (Date.now() < compactBy) {
      state = compacted(influx.dir);
      stable = state.done ? stable + 1 : 0;
      if (stable >= 2 && performance.now() - w1 >= fullCold) break;
      await sleep(1000);
    }
    const c2 = treeCpuUs(influx.pid);
    const w2 = performance.now();
    const card = await influxQuery(influx.url, `SHOW SERIES EXACT CARDINALITY ON "${DB}"`);
    const series = (card.results?.[0]?.series ?? []).reduce((n, s) => n + Number(s.values?.[0]?.[0] ?? 0), 0);
    const samples = produced.entity_samples;
    const okMessages = metrics.get('strata_processor_messages_total{result="ok"}') ?? 0;
    const written = metrics.get('strata_sink_points_written_total') ?? 0;
    const kafkaBytes = topicLogBytes(broker.logDir, topic);
    const dataBytes = dirBytes(path.join(influx.dir, 'data', DB));
    const r = {
      variant,
      round: round_,
      entity_samples: samples,
      messages: produced.produced,
      messages_processed_ok: okMessages,
      late_slots: produced.late_slots,
      processor_window_s: round((w1 - w0) / 1000, 1),
      influxd_window_s: round((w2 - w0) / 1000, 1),
      compacted: state.done,
      tsm_files: state.tsm,
      cpu_us_per_entity_sample: {
        broker: round((c1.broker - c0.broker) / samples),
        processor: round((c1.proc - c0.proc) / samples),
        influxd: round((c2 - c0.influx) / samples),
        influxd_writes_window: round((c1.influx - c0.influx) / samples),
        influxd_after_drain: round((c2 - c1.influx) / samples),
      },
      kafka_bytes: round(kafkaBytes / samples, 1),
      points_written: round(written / samples, 2),
      series,
      series_per_entity: round(series / (NODES * ENTITIES), 2),
      disk_bytes: round(dataBytes / samples, 1),
    };
    log(
      `${variant} round ${round_}: ${samples} entity-samples, influxd ${r.cpu_us_per_entity_sample.influxd} µs, processor ${r.cpu_us_per_entity_sample.processor} µs, broker ${r.cpu_us_per_entity_sample.broker} µs, disk ${r.disk_bytes} B, compacted ${state.done}`,
    );
    return r;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    await influx.stop();
    await admin.deleteTopics({ topics: [topic, `${topic}.dlq`, `${topic}.alerts`] }).catch(() => {});
    await admin.disconnect();
    if (!values['keep-dirs']) fs.rmSync(influx.dir, { recursive: true, force: true });
  }
}

function topicLogBytes(logDir: string, topic: string): number {
  let n = 0;
  for (const d of fs.readdirSync(logDir)) {
    if (d.startsWith(`${topic}-`) && /^\d+$/.test(d.slice(topic.length + 1)))
      n += dirBytes(path.join(logDir, d), (f) => f.endsWith('.log'));
  }
  return n;
}

function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(s);
  if (!m) fail(`duration ${s}: use e.g. 500ms, 10s, 1m`);
  const n = Number(m?.[1]);
  return m?.[2] === 'ms' ? n : m?.[2] === 's' ? n * 1000 : n * 60_000;
}

// ---- the agent --------------------------------------------------------------------------------------
async function agentCost(brokers: string) {
  if (values['skip-agent']) return 'skipped (--skip-agent)';
  if (process.getuid?.() !== 0) return 'skipped: perf/agent.ts creates cgroups and needs root';
  const outFile = path.join(WORK, 'agent-child.json');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(HERE, 'agent.ts'),
      ...['--sizes', String(ENTITIES - 1), '--load', 'active', '--no-tsx'],
      ...['--seconds', values['agent-seconds'] as string, '--kafka', brokers],
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, BENCH_CHILD_OUT: outFile } },
  );
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? 1)));
  if (code !== 0) return `perf/agent.ts exited ${code}`;
  const r = JSON.parse(fs.readFileSync(outFile, 'utf8').trim().split('\n').pop() ?? '{}') as {
    entitySamples: number;
    cpuUserUs: number;
    cpuSystemUs: number;
    maxRssBytes: number;
  };
  return {
    cpu_us_per_entity_sample: round((r.cpuUserUs + r.cpuSystemUs) / r.entitySamples),
    entity_samples: r.entitySamples,
    max_rss_mb: round(r.maxRssBytes / 1e6, 1),
    note: `perf/agent.ts: host + ${ENTITIES - 1} real cgroups (a process waking every 250 ms in each), bundled agent, 1 s ticks published to Kafka, ${values['agent-seconds']} s after its warm-up`,
  };
}

// ---- main ---------------------------------------------------------------------------------------------
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

let kafkaHandle: KafkaHandle | undefined;
let broker: Broker;
const started = new Date().toISOString();
const load0 = os.loadavg();
try {
  if (values.brokers) {
    broker = {
      brokers: values.brokers,
      pid: Number(values['broker-pid']),
      logDir: values['kafka-log-dir'] as string,
    };
  } else {
    log('starting a private Kafka (stack/kafka.ts)');
    const dataDir = path.join(WORK, 'kafka');
    kafkaHandle = await startKafka({
      port: await freePort(),
      controllerPort: await freePort(),
      dataDir,
      heapMb: 512,
    });
    broker = { brokers: kafkaHandle.brokers, pid: kafkaHandle.pid, logDir: path.join(dataDir, 'kraft-logs') };
  }
  log('agent: perf/agent.ts');
  const agent = await agentCost(broker.brokers);
  const runs: Awaited<ReturnType<typeof runOnce>>[] = [];
  for (let r = 1; r <= ROUNDS; r++)
    for (const v of NAMES) {
      log(
        `${v} round ${r}/${ROUNDS}: ${NODES} nodes × ${ENTITIES} entities every ${INTERVAL_MS} ms for ${SECONDS} s`,
      );
      runs.push(await runOnce(v, r, broker));
    }
  const load1 = os.loadavg();
  const perVariant: Record<string, Record<string, unknown>> = {};
  for (const v of NAMES) {
    const rs = runs.filter((x) => x.variant === v);
    const cpu = (k: keyof (typeof rs)[number]['cpu_us_per_entity_sample']) => ({
      median: round(median(rs.map((x) => x.cpu_us_per_entity_sample[k]))),
      range: [
        Math.min(...rs.map((x) => x.cpu_us_per_entity_sample[k])),
        Math.max(...rs.map((x) => x.cpu_us_per_entity_sample[k])),
      ],
    });
    const med = (k: 'kafka_bytes' | 'points_written' | 'series' | 'series_per_entity' | 'disk_bytes') =>
      round(median(rs.map((x) => x[k])), 2);
    perVariant[v] = {
      describe: VARIANTS[v]?.describe,
      cpu_us_per_entity_sample: {
        broker: cpu('broker'),
        processor: cpu('processor'),
        influxd: cpu('influxd'),
        influxd_writes_window: cpu('influxd_writes_window'),
        influxd_after_drain: cpu('influxd_after_drain'),
      },
      kafka_bytes: med('kafka_bytes'),
      points_written: med('points_written'),
      series: med('series'),
      series_per_entity: med('series_per_entity'),
      disk_bytes_after_compaction: med('disk_bytes'),
      all_compacted: rs.every((x) => x.compacted),
      shape: shape(v),
    };
  }
  const agentUs = typeof agent === 'object' ? agent.cpu_us_per_entity_sample : undefined;
  const result = {
    load: {
      nodes: NODES,
      entities_per_node: ENTITIES,
      interval_ms: INTERVAL_MS,
      seconds: SECONDS,
      entity_samples_per_second: round((NODES * ENTITIES * 1000) / INTERVAL_MS, 1),
      messages: KIND,
    },
    rounds: ROUNDS,
    broker: values.brokers
      ? `${values.brokers} (shared: its other traffic is in its figure)`
      : 'private Kafka',
    influxd: `private influxd 1.8 per run, cache-snapshot-write-cold-duration ${values['snapshot-cold']}, compact-full-write-cold-duration ${values['full-cold']}`,
    machine: {
      cpus: os.cpus().length,
      loadavg_start: load0.map((x) => round(x)),
      loadavg_end: load1.map((x) => round(x)),
    },
    started,
    agent,
    variants: perVariant,
    runs,
    sizing: Object.fromEntries(
      NAMES.map((v) => {
        const us =
          (perVariant[v]?.cpu_us_per_entity_sample as { influxd: { median: number } } | undefined)?.influxd
            .median ?? Number.NaN;
        // cores = nodes × entities per node ÷ interval (s) × CPU-s per entity-sample
        const cores = (intervalS: number) => round((100 * ENTITIES * us) / 1e6 / intervalS, 3);
        return [v, { influxd_cores_per_100_nodes_1s: cores(1), influxd_cores_per_100_nodes_10s: cores(10) }];
      }),
    ),
  };
  printTable(result, agentUs);
  if (values.json) fs.writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await kafkaHandle?.stop();
  if (!values['keep-dirs']) fs.rmSync(WORK, { recursive: true, force: true });
}
process.exit(0);

function printTable(
  result: {
    variants: Record<string, Record<string, unknown>>;
    load: Record<string, unknown>;
    machine: unknown;
    sizing: Record<string, Record<string, number>>;
  },
  agentUs: number | undefined,
) {
  const pad = (s: string | number | undefined, w: number) => String(s ?? '-').padStart(w);
  const L = result.load;
  const lines = [
    `strata pipeline cost: ${L.nodes} nodes × ${L.entities_per_node} entities every ${L.interval_ms} ms for ${L.seconds} s (${L.messages} messages), ${ROUNDS} round(s) alternated; machine ${JSON.stringify(result.machine)}`,
    '',
    `${pad('variant', 22)} ${pad('agent µs', 9)} ${pad('broker µs', 10)} ${pad('proc µs', 8)} ${pad('influxd µs', 11)} ${pad('(writes', 8)} ${pad('+after)', 8)} ${pad('kafka B', 8)} ${pad('LP B', 6)} ${pad('points', 7)} ${pad('fields', 7)} ${pad('strings', 8)} ${pad('series/ent', 10)} ${pad('disk B', 7)} ${pad('cores/100n 1s', 13)} ${pad('10s', 6)}`,
  ];
  const base = result.variants.today;
  for (const [v, r] of Object.entries(result.variants)) {
    const c = r.cpu_us_per_entity_sample as Record<string, { median: number }>;
    const s = r.shape as {
      points: number;
      fields: number;
      string_fields: number;
      line_protocol_bytes: number;
    };
    lines.push(
      `${pad(v, 22)} ${pad(agentUs, 9)} ${pad(c.broker?.median, 10)} ${pad(c.processor?.median, 8)} ${pad(c.influxd?.median, 11)} ${pad(c.influxd_writes_window?.median, 8)} ${pad(c.influxd_after_drain?.median, 8)} ${pad(r.kafka_bytes as number, 8)} ${pad(s.line_protocol_bytes, 6)} ${pad(s.points, 7)} ${pad(s.fields, 7)} ${pad(s.string_fields, 8)} ${pad(r.series_per_entity as number, 10)} ${pad(r.disk_bytes_after_compaction as number, 7)} ${pad(result.sizing[v]?.influxd_cores_per_100_nodes_1s, 13)} ${pad(result.sizing[v]?.influxd_cores_per_100_nodes_10s, 6)}`,
    );
  }
  if (base) {
    lines.push('', 'vs today (median of rounds):');
    const bc = base.cpu_us_per_entity_sample as Record<string, { median: number }>;
    const bs = base.shape as Record<string, number>;
    for (const [v, r] of Object.entries(result.variants)) {
      if (v === 'today') continue;
      const c = r.cpu_us_per_entity_sample as Record<string, { median: number }>;
      const s = r.shape as Record<string, number>;
      const pct = (a: number, b: number) => `${b ? round((100 * (a - b)) / b, 1) : 0} %`;
      lines.push(
        `  ${v}: influxd ${pct(c.influxd!.median, bc.influxd!.median)}, processor ${pct(c.processor!.median, bc.processor!.median)}, lines ${pct(s.points!, bs.points!)}, fields ${pct(s.fields!, bs.fields!)}, LP bytes ${pct(s.line_protocol_bytes!, bs.line_protocol_bytes!)}, disk ${pct(r.disk_bytes_after_compaction as number, base.disk_bytes_after_compaction as number)}, series ${pct(r.series as number, base.series as number)}`,
      );
    }
  }
  lines.push(
    '',
    'µs = CPU-µs (utime+stime from /proc) per entity-sample. influxd = from the first message to the data fully compacted (writes window + after the drain: snapshots, compactions, idle wait).',
    "broker/processor = from the first message to the last offset committed. kafka B = bytes of the topic's log segments (gzipped record batches). LP B, points, fields, strings = line protocol per entity-sample, in-process on the same messages.",
    "series/ent = SHOW SERIES EXACT CARDINALITY ÷ (nodes × entities). disk B = the database's data dir after the full compaction ÷ entity-samples. cores/100n = 100 × entities × influxd µs ÷ interval.",
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
