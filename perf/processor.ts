// Benchmark of `strata processor` against the real stack (npm run perf:processor). Prints figures
// only; nothing here is asserted. Targets: ≤ 10 CPU-µs per entity-sample (≥ 100k
// entity-samples/s per core) and p99 ≤ 1 s from sample time to queryable in InfluxDB.
//
//   1. in-process: decode (JSON + schema) → pipeline → line protocol, CPU-µs per entity-sample;
//   2. end to end: a backlog in Kafka drained by the processor into InfluxDB, CPU-µs per
//      entity-sample of the whole process (kafkajs fetch, decode, pipeline, encode, HTTP, gzip),
//      over the whole drain and over its steady state (after 25 % is committed);
//      with --floors, the same backlog drained again by processes that stop after each stage
//      (perf/processor-floor.ts): what each stage costs in place;
//   3. sustained: --sustained-nodes agents at 1 Hz from another process (processor-load.ts), as a
//      deployed processor sees them: CPU per entity-sample, batches and requests per second, GC;
//   4. latency: live ticks (ts = now) → Kafka → processor → InfluxDB, polled with InfluxQL until
//      each tick's rate series is queryable; p50/p99.
//
// Servers: KAFKA_BROKERS and INFLUX_URL (default: the `npx strata stack up` ports).
// Usage: npm run perf:processor [-- --nodes 20 --containers 20 --ticks 60 --live-ticks 20
//        --sustained-nodes 300 --sustained-seconds 40 --min-bytes N --max-wait MS
//        --gzip-loopback --gzip-threshold 1000 --gzip-level 3 --kafka-compression agent|none
//        --floors [--floors-runs 3] --skip-in-process --skip-stack]
// Messages: perf/processor-messages.ts (a real recorded host sample per node, with its counters
// advancing, and containers of the shape the cgroup collector emits; sample times jittered).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { KafkaConfig as AgentKafkaConfig } from '../agent/config.ts';
import { installGzipCodec } from '../lib/kafka/gzip.ts';
import { registry } from '../lib/metrics.ts';
import { createProcessor, resolveProcessorConfig } from '../processor/index.ts';
import { createPipeline } from '../processors/pipeline.ts';
import type { Point } from '../schemas/point.ts';
import { decodeSampleMessage, type SampleMessage } from '../schemas/sample.ts';
import {
  type EncodedSegment,
  encodeSegments,
  newEncodeStats,
  SegmentEncoder,
} from '../sinks/influxdb/line-protocol.ts';
import { cpuUs, round, threadCpu, threadCpuPerSample } from './cpu.ts';
import { FLOOR_STAGES } from './processor-floor-stages.ts';
import { jitteredTs, tick } from './processor-messages.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '20' },
    containers: { type: 'string', default: '20' },
    ticks: { type: 'string', default: '60' },
    'live-ticks': { type: 'string', default: '20' },
    'live-nodes': { type: 'string', default: '10' },
    /** Sustained phase: this many agents at 1 Hz (another process) for this long; 0 s skips it. */
    'sustained-nodes': { type: 'string', default: '300' },
    'sustained-seconds': { type: 'string', default: '40' },
    'gzip-threshold': { type: 'string', default: '1000' },
    /** zlib level of the gzipped bodies (in-process figure and the sink: influxdb.gzipLevel). */
    'gzip-level': { type: 'string', default: '3' },
    /** influxdb.gzipLoopback: gzip also to a loopback InfluxDB (off by default, as in the processor). */
    'gzip-loopback': { type: 'boolean', default: false },
    'skip-in-process': { type: 'boolean', default: false },
    /** After the backlog drain: drain it again stopping after each stage (perf/processor-floor.ts). */
    floors: { type: 'boolean', default: false },
    /** Rounds of the floors (each round runs every stage once, in order); medians are reported. */
    'floors-runs': { type: 'string', default: '3' },
    /** Only the in-process figures (no Kafka, no InfluxDB). */
    'skip-stack': { type: 'boolean', default: false },
    /** Overrides of kafka.maxBytesPerPartition and influxdb.batchSize for the end-to-end run. */
    'max-bytes-per-partition': { type: 'string' },
    /** Overrides of kafka.minBytes and kafka.maxWaitTime (ms). */
    'min-bytes': { type: 'string' },
    'max-wait': { type: 'string' },
    'batch-size': { type: 'string' },
    /**
     * How the backlog is produced: `agent` (default) = as agents do, one gzipped record batch per
     * node per tick at the agent's default level, so the processor inflates each message as in
     * production; `none` = uncompressed, several messages per batch (a lighter load than production's).
     */
    'kafka-compression': { type: 'string', default: 'agent' },
  },
});
if (!['agent', 'none'].includes(values['kafka-compression'] ?? '')) {
  process.stderr.write(
    `perf:processor: --kafka-compression accepts agent, none (got ${values['kafka-compression']})\n`,
  );
  process.exit(2);
}
const AGENT_LIKE = values['kafka-compression'] === 'agent';
const NODES = Number(values.nodes);
const CONTAINERS = Number(values.containers);
const TICKS = Number(values.ticks);
const LIVE_TICKS = Number(values['live-ticks']);
const LIVE_NODES = Number(values['live-nodes']);
const SUSTAINED_NODES = Number(values['sustained-nodes']);
const SUSTAINED_SECONDS = Number(values['sustained-seconds']);
const FLOOR_RUNS = Number(values['floors-runs']);
if (!Number.isInteger(FLOOR_RUNS) || FLOOR_RUNS < 1) {
  process.stderr.write(
    `perf:processor: --floors-runs accepts a whole number ≥ 1 (got ${values['floors-runs']})\n`,
  );
  process.exit(2);
}
/** Seconds of the sustained phase left out of its figures (JIT, heap growth, consumer catch-up). */
const SUSTAINED_WARMUP_S = 10;
const GZIP_LEVEL = Number(values['gzip-level']);
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
const INFLUX = process.env.INFLUX_URL ?? 'http://127.0.0.1:18086';

/** Kafka batches processed and InfluxDB write requests made so far by the processor in this process. */
async function processorIo(): Promise<{ batches: number; requests: number }> {
  return {
    batches: await metricSum(
      'strata_processor_batch_process_seconds',
      'strata_processor_batch_process_seconds_count',
    ),
    requests: await metricSum(
      'strata_sink_write_request_duration_seconds',
      'strata_sink_write_request_duration_seconds_count',
    ),
  };
}
const diffIo = (a: { batches: number; requests: number }, b: { batches: number; requests: number }) => ({
  batches: a.batches - b.batches,
  requests: a.requests - b.requests,
});

/** Sum of a metric's samples named `sample` (e.g. a histogram's _count) in this process's registry. */
async function metricSum(name: string, sample = name): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => (v as { metricName?: string }).metricName === sample)
    .reduce((n, v) => n + v.value, 0);
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

interface QueryResult {
  results?: { series?: { values?: unknown[][] }[] }[];
}

async function influxQl(q: string, db?: string): Promise<QueryResult> {
  const params = new URLSearchParams({ q, epoch: 'ms' });
  if (db) params.set('db', db);
  const res = await fetch(`${INFLUX}/query`, { method: 'POST', body: params });
  return (await res.json()) as QueryResult;
}

// ---- 1. in-process --------------------------------------------------------------------------
function inProcess() {
  const t0 = 1_795_322_559_000;
  const wire: string[] = [];
  for (let t = 0; t < TICKS; t++)
    for (let n = 0; n < NODES; n++)
      wire.push(JSON.stringify(tick('bench', n, t, jitteredTs(t0, n, t), CONTAINERS)));
  // Streamed one tick (all nodes) at a time, as the processor sees batches, each phase timed on
  // its own; nothing is kept beyond a tick (retaining every line would bill the GC to encoding).
  const run = () => {
    const pipeline = createPipeline();
    const stats = newEncodeStats();
    let decodeUs = 0;
    let pipeUs = 0;
    let encUs = 0;
    let gzipUs = 0;
    let samples = 0;
    let points = 0;
    let bytes = 0;
    let gz = 0;
    for (let i = 0; i < wire.length; i += NODES) {
      const batch = wire.slice(i, i + NODES);
      let c = process.cpuUsage();
      const decoded: SampleMessage[] = [];
      for (const w of batch) {
        const d = decodeSampleMessage(w);
        if (!d.ok) throw new Error(d.reason);
        decoded.push(d.message);
      }
      decodeUs += cpuUs(process.cpuUsage(c));
      c = process.cpuUsage();
      const pts: Point[] = [];
      for (const m of decoded) for (const p of pipeline.handle(m).points) pts.push(p);
      pipeUs += cpuUs(process.cpuUsage(c));
      c = process.cpuUsage();
      // As the sink does (sinks/influxdb/writer.ts encode): bodies of ≤ 5000 lines / 8 MiB.
      const segments: EncodedSegment[] = [];
      const lines = encodeSegments(pts, 5000, 8_388_608, segments, stats);
      encUs += cpuUs(process.cpuUsage(c));
      c = process.cpuUsage();
      for (const s of segments) gz += gzipSync(s.body, { level: GZIP_LEVEL }).length;
      gzipUs += cpuUs(process.cpuUsage(c));
      for (const m of decoded) samples += m.samples.length;
      points += lines;
      for (const s of segments) bytes += s.body.length + 1;
    }
    return { decodeUs, pipeUs, encUs, gzipUs, samples, points, bytes, gz };
  };
  // As the runtime does it (processor eachBatch): per message decode → pipeline → encode
  // into the batch's bodies, so each message's objects die young; one CPU figure per tick.
  const wireBytes = wire.map((w) => Buffer.from(w, 'utf8'));
  const streamed = () => {
    const pipeline = createPipeline();
    const stats = newEncodeStats();
    const encoder = new SegmentEncoder();
    let us = 0;
    let samples = 0;
    for (let i = 0; i < wireBytes.length; i += NODES) {
      const c = process.cpuUsage();
      const segments: EncodedSegment[] = [];
      encoder.begin(5000, 8_388_608, segments, stats);
      for (let j = i; j < i + NODES && j < wireBytes.length; j++) {
        const d = decodeSampleMessage(wireBytes[j]);
        if (!d.ok) throw new Error(d.reason);
        samples += d.message.samples.length;
        encoder.add(pipeline.handle(d.message).points);
      }
      encoder.finish();
      us += cpuUs(process.cpuUsage(c));
    }
    return us / samples;
  };
  run(); // JIT warm-up
  streamed();
  const r = [run(), run(), run()].sort(
    (a, b) => a.decodeUs + a.pipeUs + a.encUs - (b.decodeUs + b.pipeUs + b.encUs),
  )[1]!;
  const total = r.decodeUs + r.pipeUs + r.encUs;
  const streamedUs = [streamed(), streamed(), streamed()].sort((a, b) => a - b)[1]!;
  return {
    messages: wire.length,
    entity_samples: r.samples,
    points: r.points,
    line_protocol_bytes_per_point: round(r.bytes / r.points, 1),
    decode_cpu_us_per_entity_sample: round(r.decodeUs / r.samples),
    pipeline_cpu_us_per_entity_sample: round(r.pipeUs / r.samples),
    encode_cpu_us_per_entity_sample: round(r.encUs / r.samples),
    gzip_cpu_us_per_entity_sample: round(r.gzipUs / r.samples),
    gzip_level: GZIP_LEVEL,
    gzip_ratio: round(r.bytes / r.gz, 1),
    total_cpu_us_per_entity_sample: round(total / r.samples),
    note: 'total = decode + pipeline + encode, each stage over a whole tick (gzip, HTTP and Kafka fetch are in the end-to-end figure)',
    entity_samples_per_cpu_second: Math.round(r.samples / (total / 1e6)),
    streamed_cpu_us_per_entity_sample: round(streamedUs),
    streamed_note:
      'decode → pipeline → encode per message from Buffers, as the runtime does (objects die young)',
    streamed_entity_samples_per_cpu_second: Math.round(1e6 / streamedUs),
  };
}

// ---- 2 + 3. through Kafka and InfluxDB ------------------------------------------------------
async function throughStack() {
  const id = randomUUID().slice(0, 8);
  const topic = `strata.bench.${id}`;
  const db = `strata_bench_${id}`;
  const kafka = new Kafka({ clientId: 'strata-bench', brokers: [BROKERS], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: 6, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  await influxQl(`CREATE DATABASE "${db}"`);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // The agent's codec and default level (agent.kafka.gzipLevel); the processor in this process
  // inflates with the same codec, as `strata processor` installs it.
  installGzipCodec(AgentKafkaConfig.parse({}).gzipLevel);

  // Backlog: all ticks in Kafka before the processor starts.
  const t0 = Date.now() - TICKS * 1000 - 120_000;
  let samples = 0;
  for (let t = 0; t < TICKS; t++) {
    const msgs = [];
    for (let n = 0; n < NODES; n++) {
      const m = tick(`e2e-${id}`, n, t, jitteredTs(t0, n, t), CONTAINERS);
      samples += m.samples.length;
      msgs.push({ key: m.node.id, value: JSON.stringify(m) });
    }
    if (AGENT_LIKE) {
      // One send per node: each agent's tick is its own gzipped record batch, as in production.
      await Promise.all(
        msgs.map((msg) => producer.send({ topic, compression: CompressionTypes.GZIP, messages: [msg] })),
      );
    } else await producer.send({ topic, messages: msgs });
  }
  const end = await admin.fetchTopicOffsets(topic);
  const config = resolveProcessorConfig(
    { metricsListen: '' },
    {
      KAFKA_BROKERS: BROKERS,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_DLQ_TOPIC: `strata.dlq.bench-${id}`,
      STRATA_ALERTS_TOPIC: `strata.alerts.bench-${id}`,
      STRATA_GROUP_ID: `bench-${id}`,
      INFLUX_URL: INFLUX,
      INFLUX_BUCKET: db,
    },
  );
  config.influxdb.gzipThreshold = Number(values['gzip-threshold']);
  config.influxdb.gzipLevel = GZIP_LEVEL;
  config.influxdb.gzipLoopback = values['gzip-loopback'];
  if (values['max-bytes-per-partition'])
    config.kafka.maxBytesPerPartition = Number(values['max-bytes-per-partition']);
  if (values['min-bytes']) config.kafka.minBytes = Number(values['min-bytes']);
  if (values['max-wait']) config.kafka.maxWaitTime = Number(values['max-wait']);
  if (values['batch-size']) config.influxdb.batchSize = Number(values['batch-size']);
  const processor = createProcessor(config);
  const io0 = await processorIo();
  const threads0 = threadCpu();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await processor.start();
  // Steady state: from the first poll that sees ≥ 25 % of the backlog committed to the end, so
  // group join, JIT compilation and heap growth (one-offs of a processor that runs for days) are
  // out of that figure. Every message carries the same number of entity-samples.
  const totalMessages = end.reduce((s, p) => s + Number(p.offset), 0);
  let steady: { cpu: NodeJS.CpuUsage; threads: Map<string, number>; committed: number } | undefined;
  for (;;) {
    const [c] = await admin.fetchOffsets({ groupId: `bench-${id}`, topics: [topic] });
    // A partition no node hashed to has end offset 0 and no committed offset (-1): done too.
    const done = c?.partitions.every((p) => {
      const e = end.find((x) => x.partition === p.partition)?.offset;
      return e === '0' || p.offset === e;
    });
    if (done) break;
    const committed = c?.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0) ?? 0;
    if (!steady && committed >= totalMessages / 4)
      steady = { cpu: process.cpuUsage(), threads: threadCpu(), committed };
    await new Promise((r) => setTimeout(r, 50));
  }
  const steadyUsage = steady && process.cpuUsage(steady.cpu);
  const steadyThreads = steady && threadCpu();
  const backlogUsage = process.cpuUsage(cpu0);
  const backlogCpu = cpuUs(backlogUsage);
  const backlogWall = performance.now() - wall0;
  const threads1 = threadCpu();
  const { batches, requests } = diffIo(await processorIo(), io0);
  const backlog = {
    messages: TICKS * NODES,
    entity_samples: samples,
    process_cpu_us_per_entity_sample: round(backlogCpu / samples),
    entity_samples_per_cpu_second: Math.round(samples / (backlogCpu / 1e6)),
    user_cpu_us_per_entity_sample: round(backlogUsage.user / samples),
    system_cpu_us_per_entity_sample: round(backlogUsage.system / samples),
    wall_seconds: round(backlogWall / 1000),
    /** 10 ms resolution per thread (/proc ticks): ±0.4 µs per thread at 25k entity-samples. */
    thread_cpu_us_per_entity_sample: threadCpuPerSample(threads0, threads1, samples),
    kafka_batches: batches,
    messages_per_kafka_batch: round((TICKS * NODES) / batches, 1),
    influxdb_write_requests: requests,
    entity_samples_per_write_request: round(samples / requests, 1),
    note: 'includes processor start-up (group join) and the offset polling of this run',
  };
  const steadySamples = steady ? (totalMessages - steady.committed) * (CONTAINERS + 1) : 0;
  const steadyState =
    steady && steadyUsage && steadyThreads && steadySamples > 0
      ? {
          entity_samples: steadySamples,
          process_cpu_us_per_entity_sample: round(cpuUs(steadyUsage) / steadySamples),
          entity_samples_per_cpu_second: Math.round(steadySamples / (cpuUs(steadyUsage) / 1e6)),
          thread_cpu_us_per_entity_sample: threadCpuPerSample(steady.threads, steadyThreads, steadySamples),
          note: 'from the first offset poll with ≥ 25 % of the backlog committed to the end: no group join, less JIT warm-up',
        }
      : 'backlog drained before the first poll saw 25 % committed (use more --ticks)';

  const floors = values.floors
    ? await stageFloors(topic, totalMessages, steadyState)
    : 'skipped (--floors runs them)';

  // Live: one tick per second, sample time = now; poll until each tick's CPU rates are queryable.
  const latencies: number[] = [];
  const prefix = `live-${id}`;
  for (let t = 0; t < LIVE_TICKS; t++) {
    const ts = Date.now();
    const msgs = [];
    for (let n = 0; n < LIVE_NODES; n++) {
      const m = tick(prefix, n, t, ts, CONTAINERS);
      msgs.push({ key: m.node.id, value: JSON.stringify(m) });
    }
    if (AGENT_LIKE) {
      await Promise.all(
        msgs.map((msg) => producer.send({ topic, compression: CompressionTypes.GZIP, messages: [msg] })),
      );
    } else await producer.send({ topic, messages: msgs });
    if (t === 0) {
      await new Promise((r) => setTimeout(r, 1000));
      continue; // the first tick has no rates
    }
    for (;;) {
      const r = await influxQl(
        `SELECT count(cpu_cores) FROM strata_host WHERE time = ${ts}ms AND layer = 'host' AND device = '' AND interface = ''`,
        db,
      );
      const count = Number(r.results?.[0]?.series?.[0]?.values?.[0]?.[1] ?? 0);
      if (count >= LIVE_NODES) {
        latencies.push(Date.now() - ts);
        break;
      }
      if (Date.now() - ts > 30_000) {
        latencies.push(Number.POSITIVE_INFINITY);
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, ts + 1000 - Date.now())));
  }
  const sustained = SUSTAINED_SECONDS > SUSTAINED_WARMUP_S ? await sustainedLoad(topic, id) : 'skipped';
  await processor.stop();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  await influxQl(`DROP DATABASE "${db}"`);
  return {
    backlog,
    steady_state: steadyState,
    floors,
    sustained,
    live: {
      nodes: LIVE_NODES,
      entity_samples_per_tick: LIVE_NODES * (CONTAINERS + 1),
      ticks_measured: latencies.length,
      sample_to_queryable_ms_p50: pct(latencies, 50),
      sample_to_queryable_ms_p99: pct(latencies, 99),
      sample_to_queryable_ms_max: Math.max(...latencies),
      note: 'poll granularity ~5 ms + one InfluxQL round trip; includes the Kafka produce',
    },
  };
}

// ---- 2b. floors (--floors): the same backlog drained again, stopping after each stage -----------
// One fresh process per stage (perf/processor-floor.ts), so that no stage inherits another's JIT
// or heap. The step from one stage to the next is what that stage costs in place, GC and JIT
// included; from `encode` to the whole processor (steady state above) is the InfluxDB writes and
// the runtime's bookkeeping.
async function stageFloors(topic: string, messages: number, whole: unknown) {
  const here = path.dirname(new URL(import.meta.url).pathname);
  // Each stage's steady figure, one per round; rounds go through all stages in turn, so that the
  // machine's drift over minutes spreads over every stage instead of landing on one.
  const runs = new Map<string, number[]>(FLOOR_STAGES.map((s) => [s, []]));
  const last: Record<string, unknown> = {};
  for (let pass = 0; pass < FLOOR_RUNS; pass++) {
    for (const stage of FLOOR_STAGES) {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(here, 'processor-floor.ts'),
          '--topic',
          topic,
          '--stage',
          stage,
          '--messages',
          String(messages),
          '--samples-per-message',
          String(CONTAINERS + 1),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let text = '';
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
      });
      const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? 1)));
      if (code !== 0) return { error: `processor-floor --stage ${stage} exited with ${code}` };
      const r = JSON.parse(text.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      runs.get(stage)?.push(r.steady_process_cpu_us_per_entity_sample as number);
      last[stage] = r;
    }
  }
  const wholeUs =
    typeof whole === 'object' && whole !== null
      ? (whole as { process_cpu_us_per_entity_sample: number }).process_cpu_us_per_entity_sample
      : undefined;
  const median: Record<string, number> = {};
  const range: Record<string, [number, number]> = {};
  const steps: Record<string, number> = {};
  let prev = 0;
  for (const stage of FLOOR_STAGES) {
    const xs = runs.get(stage) ?? [];
    median[stage] = pct(xs, 50);
    range[stage] = [Math.min(...xs), Math.max(...xs)];
    steps[stage] = round(median[stage] - prev);
    prev = median[stage];
  }
  if (wholeUs !== undefined) steps['influxdb writes and runtime'] = round(wholeUs - prev);
  return {
    runs: FLOOR_RUNS,
    steady_cpu_us_per_entity_sample_after_each_stage: median,
    range_cpu_us_per_entity_sample_after_each_stage: range,
    step_cpu_us_per_entity_sample: steps,
    last_run: last,
    note: 'steady part (after 25 % of the messages) of a drain stopping after each stage, one process each, median of --floors-runs rounds; the steps are between medians, the last one the whole processor (steady_state) minus encode',
  };
}

// ---- 4. sustained: agents at 1 Hz, as in production -------------------------------------------
// The backlog drain above measures throughput, but a deployed processor sees each node once a
// second: fetches bring a few messages rather than full batches (so per-batch costs weigh more),
// state lives across seconds, and 300 nodes' entities no longer fit the CPU caches as the
// backlog's 20 do (docs/processor.md "Cost"). Here a separate process plays SUSTAINED_NODES
// agents at 1 Hz (sample time = now) while this process runs the processor; the figures cover the
// seconds after SUSTAINED_WARMUP_S, with the messages counted by strata_processor_messages_total.
async function sustainedLoad(topic: string, id: string) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'processor-load.ts'),
      '--brokers',
      BROKERS,
      '--topic',
      topic,
      '--prefix',
      `sustained-${id}`,
      '--nodes',
      String(SUSTAINED_NODES),
      '--containers',
      String(CONTAINERS),
      '--seconds',
      String(SUSTAINED_SECONDS),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? 1)));
  const okMessages = async () => {
    const { values: vs } = (await registry.getSingleMetric('strata_processor_messages_total')?.get()) ?? {
      values: [],
    };
    return vs.filter((v) => v.labels.result === 'ok').reduce((n, v) => n + v.value, 0);
  };
  // The child connects, then starts on the next whole second + 1 s.
  await new Promise((r) => setTimeout(r, (SUSTAINED_WARMUP_S + 3) * 1000));
  // Main-thread pauses by kind: NODE_PERFORMANCE_GC_MINOR = 1 (scavenge), MAJOR = 4 (mark-compact);
  // INCREMENTAL (8, marking steps) and WEAKCB (16) are counted with the mark-compacts they serve.
  const gc = { minorMs: 0, majorMs: 0, minor: 0, major: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === 1) {
        gc.minor++;
        gc.minorMs += e.duration;
      } else {
        if (kind === 4) gc.major++;
        gc.majorMs += e.duration;
      }
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const m0 = await okMessages();
  const io0 = await processorIo();
  const threads0 = threadCpu();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const code = await exited;
  const usage = process.cpuUsage(cpu0);
  const threads1 = threadCpu();
  const wall = (performance.now() - wall0) / 1000;
  // Let the last ticks through before counting (their CPU is in the window already or negligible).
  await new Promise((r) => setTimeout(r, 500));
  const messages = (await okMessages()) - m0;
  const { batches, requests } = diffIo(await processorIo(), io0);
  obs.disconnect();
  if (code !== 0) return { error: `processor-load exited with ${code}` };
  const samples = messages * (CONTAINERS + 1);
  const load = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { late_ticks?: number };
  return {
    nodes: SUSTAINED_NODES,
    entity_samples_per_second: Math.round(samples / wall),
    measured_seconds: round(wall, 1),
    entity_samples: samples,
    process_cpu_us_per_entity_sample: round(cpuUs(usage) / samples),
    entity_samples_per_cpu_second: Math.round(samples / (cpuUs(usage) / 1e6)),
    cpu_share_of_one_core: round(cpuUs(usage) / 1e6 / wall, 3),
    thread_cpu_us_per_entity_sample: threadCpuPerSample(threads0, threads1, samples),
    gc_main_thread_pause_us_per_entity_sample: {
      scavenge: round((gc.minorMs * 1000) / samples),
      mark_compact: round((gc.majorMs * 1000) / samples),
      scavenges: gc.minor,
      mark_compacts: gc.major,
    },
    kafka_batches_per_second: round(batches / wall, 1),
    messages_per_kafka_batch: round(messages / batches, 1),
    influxdb_write_requests_per_second: round(requests / wall, 1),
    load_late_slots: load.late_ticks,
    note: `${SUSTAINED_NODES} agents × (1 host + ${CONTAINERS} containers) at 1 Hz from another process; the first ${SUSTAINED_WARMUP_S} s left out`,
  };
}

const result: Record<string, unknown> = {
  nodes: NODES,
  containers_per_node: CONTAINERS,
  gzip_threshold_bytes: Number(values['gzip-threshold']),
  gzip_level: GZIP_LEVEL,
  gzip_loopback: values['gzip-loopback'],
  ticks: TICKS,
  in_process: values['skip-in-process'] ? 'skipped' : inProcess(),
};
try {
  if (!values['skip-stack']) result.through_kafka_and_influxdb = await throughStack();
} catch (err) {
  result.through_kafka_and_influxdb = {
    error: `${(err as Error).message} (is the stack up? npx strata stack up)`,
  };
}
console.log(JSON.stringify(result, null, 2));
process.exit(0);
