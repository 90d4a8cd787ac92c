// Benchmark of `strata processor` against the real stack (npm run bench:processor). Prints figures
// only; nothing here is asserted. Targets (issue #4): ≤ 10 CPU-µs per entity-sample (≥ 100k
// entity-samples/s per core) and p99 ≤ 1 s from sample time to queryable in InfluxDB.
//
//   1. in-process: decode (JSON + schema) → pipeline → line protocol, CPU-µs per entity-sample;
//   2. end to end: a backlog in Kafka drained by the processor into InfluxDB, CPU-µs per
//      entity-sample of the whole process (kafkajs fetch, decode, pipeline, encode, HTTP, gzip);
//   3. latency: live ticks (ts = now) → Kafka → processor → InfluxDB, polled with InfluxQL until
//      each tick's rate series is queryable; p50/p99.
//
// Servers: KAFKA_BROKERS and INFLUX_URL (default: the `npx strata stack up` ports).
// Usage: npm run bench:processor [-- --nodes 20 --containers 20 --ticks 60 --live-ticks 20
//        --gzip-loopback --gzip-threshold 1000 --gzip-level 3 --kafka-compression agent|none --skip-in-process]
// Messages: the host sample of every node is a real one recorded on this machine
// (testdata/processor/agent-host-1s.ndjson) with its counters advancing; containers have the shape
// the cgroup collector emits (1 device, 1 interface each).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { KafkaConfig as AgentKafkaConfig } from '../agent/config.ts';
import { installGzipCodec } from '../lib/kafka-gzip.ts';
import { registry } from '../lib/metrics.ts';
import { createPipeline } from '../processors/pipeline.ts';
import { createProcessor, resolveProcessorConfig } from '../processors/runtime/index.ts';
import { decodeSampleMessage, type EntitySample, type SampleMessage } from '../schemas/sample.ts';
import {
  type EncodedSegment,
  encodeSegments,
  newEncodeStats,
  SegmentEncoder,
} from '../sinks/line-protocol.ts';
import type { Point } from '../sinks/point.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '20' },
    containers: { type: 'string', default: '20' },
    ticks: { type: 'string', default: '60' },
    'live-ticks': { type: 'string', default: '20' },
    'live-nodes': { type: 'string', default: '10' },
    'gzip-threshold': { type: 'string', default: '1000' },
    /** zlib level of the gzipped bodies (in-process figure and the sink: influxdb.gzipLevel). */
    'gzip-level': { type: 'string', default: '3' },
    /** influxdb.gzipLoopback: gzip also to a loopback InfluxDB (off by default, as in the processor). */
    'gzip-loopback': { type: 'boolean', default: false },
    'skip-in-process': { type: 'boolean', default: false },
    /** Overrides of kafka.maxBytesPerPartition and influxdb.batchSize for the end-to-end run. */
    'max-bytes-per-partition': { type: 'string' },
    'batch-size': { type: 'string' },
    /**
     * How the backlog is produced: `agent` (default) = as agents do, one gzipped record batch per
     * node per tick at the agent's default level, so the processor inflates each message as in
     * production; `none` = uncompressed, several messages per batch (the figures before 2026-12).
     */
    'kafka-compression': { type: 'string', default: 'agent' },
  },
});
if (!['agent', 'none'].includes(values['kafka-compression'] ?? '')) {
  process.stderr.write(
    `bench:processor: --kafka-compression accepts agent, none (got ${values['kafka-compression']})\n`,
  );
  process.exit(2);
}
const AGENT_LIKE = values['kafka-compression'] === 'agent';
const NODES = Number(values.nodes);
const CONTAINERS = Number(values.containers);
const TICKS = Number(values.ticks);
const LIVE_TICKS = Number(values['live-ticks']);
const LIVE_NODES = Number(values['live-nodes']);
const GZIP_LEVEL = Number(values['gzip-level']);
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
const INFLUX = process.env.INFLUX_URL ?? 'http://127.0.0.1:18086';

const recorded = fs
  .readFileSync(path.join(import.meta.dirname, '../testdata/processor/agent-host-1s.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as SampleMessage);
const host = recorded[0]?.samples[0] as EntitySample;

function grow(counters: Record<string, number>, t: number, k: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key in counters) out[key] = (counters[key] as number) + t * (k + 1) * 1000;
  return out;
}

function tick(prefix: string, node: number, t: number, ts: number): SampleMessage {
  const id = `${prefix}-${node}`;
  const samples: EntitySample[] = [
    {
      ...host,
      entity: { ...host.entity, id, name: id },
      ts,
      counters: grow(host.counters, t, 0),
      devices: Object.fromEntries(
        Object.entries(host.devices ?? {}).map(([d, m]) => [
          d,
          { counters: grow(m.counters, t, 1), gauges: m.gauges ?? {} },
        ]),
      ),
      interfaces: Object.fromEntries(
        Object.entries(host.interfaces ?? {}).map(([d, m]) => [d, { counters: grow(m.counters, t, 2) }]),
      ),
    },
  ];
  for (let c = 0; c < CONTAINERS; c++) {
    samples.push({
      entity: {
        layer: 'container',
        kind: 'docker',
        id: `${id}-c${c}`,
        name: `app-${c}`,
        labels: { image: 'busybox', cgroup_version: 'hybrid', cgroup_path: `/docker/${id}-c${c}` },
        parent: { layer: 'host', id },
      },
      ts,
      counters: {
        cpu_usage_usec_total: t * 10_000 * (c + 1),
        cpu_user_usec_total: t * 6000 * (c + 1),
        cpu_system_usec_total: t * 4000 * (c + 1),
        page_faults_total: t * 100,
        psi_io_some_usec_total: t * 1000,
        psi_io_full_usec_total: t * 500,
      },
      gauges: { memory_usage_bytes: 1e7, psi_io_some_avg10_pct: 0.1 },
      devices: {
        vda: {
          counters: {
            reads_completed_total: t * 10,
            writes_completed_total: t * 20 * (c % 3),
            read_bytes_total: t * 40960,
            written_bytes_total: t * 81920 * (c % 3),
          },
        },
      },
      interfaces: {
        eth0: {
          counters: {
            rx_bytes_total: t * 1e5,
            rx_packets_total: t * 100,
            tx_bytes_total: t * 5e4,
            tx_packets_total: t * 80,
          },
        },
      },
    });
  }
  return {
    v: 1,
    node: { id, hostname: id, labels: {} },
    ts,
    interval_ms: 1000,
    seq: t,
    agent: { version: 'bench', run_id: `${prefix}-r${node}` },
    samples,
  };
}

const cpuUs = (u: NodeJS.CpuUsage) => u.user + u.system;

/** Sum of a metric's samples named `sample` (e.g. a histogram's _count) in this process's registry. */
async function metricSum(name: string, sample = name): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => (v as { metricName?: string }).metricName === sample)
    .reduce((n, v) => n + v.value, 0);
}

/**
 * CPU time (µs, user + system) of this process's threads, from /proc/self/task/<tid>/stat (Linux;
 * empty elsewhere): `main` and `other` (Node 20 leaves every thread named `node`: the others are
 * V8's helpers — concurrent JIT compiling, concurrent marking/sweeping — and libuv's pool, which
 * runs the gzip). BENCH_TIDS=1 splits `other` per thread (`t<tid - pid>`: V8's helpers have the
 * lowest numbers, libuv's pool threads start when the first gzip runs).
 */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  const tickUs = 1e6 / 100; // USER_HZ is 100 on Linux
  for (const tid of tids) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const close = stat.lastIndexOf(')');
    const name =
      tid === String(process.pid)
        ? 'main'
        : process.env.BENCH_TIDS
          ? `t${Number(tid) - process.pid}`
          : 'other';
    const f = stat.slice(close + 2).split(' ');
    const us = (Number(f[11]) + Number(f[12])) * tickUs;
    out.set(name, (out.get(name) ?? 0) + us);
  }
  return out;
}

/** Per-thread-name CPU-µs per entity-sample between two threadCpu() readings. */
function threadCpuPerSample(before: Map<string, number>, after: Map<string, number>, samples: number) {
  const out: Record<string, number> = {};
  for (const [name, us] of after) {
    const d = us - (before.get(name) ?? 0);
    if (d > 0) out[name] = round(d / samples);
  }
  return out;
}
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
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
    for (let n = 0; n < NODES; n++) wire.push(JSON.stringify(tick('bench', n, t, t0 + t * 1000)));
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
      // As the sink does (sinks/influxdb-v2/writer.ts encode): bodies of ≤ 5000 lines / 8 MiB.
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
  // As the runtime does it (processors/runtime eachBatch): per message decode → pipeline → encode
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
      const m = tick(`e2e-${id}`, n, t, t0 + t * 1000);
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
  if (values['batch-size']) config.influxdb.batchSize = Number(values['batch-size']);
  const processor = createProcessor(config);
  const batches0 = await metricSum(
    'strata_processor_batch_process_seconds',
    'strata_processor_batch_process_seconds_count',
  );
  const requests0 = await metricSum(
    'strata_sink_write_request_duration_seconds',
    'strata_sink_write_request_duration_seconds_count',
  );
  const threads0 = threadCpu();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await processor.start();
  for (;;) {
    const [c] = await admin.fetchOffsets({ groupId: `bench-${id}`, topics: [topic] });
    // A partition no node hashed to has end offset 0 and no committed offset (-1): done too.
    const done = c?.partitions.every((p) => {
      const e = end.find((x) => x.partition === p.partition)?.offset;
      return e === '0' || p.offset === e;
    });
    if (done) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const backlogUsage = process.cpuUsage(cpu0);
  const backlogCpu = cpuUs(backlogUsage);
  const backlogWall = performance.now() - wall0;
  const threads1 = threadCpu();
  const batches =
    (await metricSum(
      'strata_processor_batch_process_seconds',
      'strata_processor_batch_process_seconds_count',
    )) - batches0;
  const requests =
    (await metricSum(
      'strata_sink_write_request_duration_seconds',
      'strata_sink_write_request_duration_seconds_count',
    )) - requests0;
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
    note: 'includes processor start-up (group join) and the offset polling of this bench',
  };

  // Live: one tick per second, sample time = now; poll until each tick's CPU rates are queryable.
  const latencies: number[] = [];
  const prefix = `live-${id}`;
  for (let t = 0; t < LIVE_TICKS; t++) {
    const ts = Date.now();
    const msgs = [];
    for (let n = 0; n < LIVE_NODES; n++) {
      const m = tick(prefix, n, t, ts);
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
  await processor.stop();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  await influxQl(`DROP DATABASE "${db}"`);
  return {
    backlog,
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
  result.through_kafka_and_influxdb = await throughStack();
} catch (err) {
  result.through_kafka_and_influxdb = {
    error: `${(err as Error).message} (is the stack up? npx strata stack up)`,
  };
}
console.log(JSON.stringify(result, null, 2));
process.exit(0);
