// The processor's cost floor, stage by stage (run by `npm run perf:processor -- --floors`, one
// process per stage). It drains perf:processor's backlog topic with its own consumer group, through the
// processor's own Kafka settings, codec and code, but stops after a given stage:
//
//   kafka     fetch, inflate (lib/kafka/gzip.ts) and kafkajs' record decoding, offsets committed;
//   parse     + JSON.parse of each message;
//   decode    + the schema check (decodeSampleMessage: JSON.parse and fastSampleMessage);
//   pipeline  + rates, overhead and noisy-neighbor (createPipeline, one per partition);
//   encode    + line protocol into recycled bodies (SegmentEncoder, BodyPool), not written.
//
// The whole processor (perf:processor's end-to-end figure) adds the InfluxDB writes and the runtime's
// bookkeeping. Each stage's CPU is the whole process's (getrusage), over the steady part of the
// drain (after 25 % of the messages), so the differences between stages are what each one costs
// in place: its own work plus the garbage collection and JIT compiling it brings.
// Prints one JSON line. Usage: processor-floor.ts --topic T --stage S --messages N
//   [--samples-per-message K] (the `kafka` stage parses nothing: it counts K per message)
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { installGzipCodec } from '../lib/kafka/gzip.ts';
import { fixIdleRequestQueue } from '../lib/kafka/request-queue.ts';
import { resolveProcessorConfig } from '../processor/index.ts';
import { createPipeline } from '../processors/pipeline.ts';
import type { Pipeline } from '../processors/types.ts';
import { decodeSampleMessage } from '../schemas/sample.ts';
import { BodyPool } from '../sinks/influxdb/body-pool.ts';
import { type EncodedSegment, newEncodeStats, SegmentEncoder } from '../sinks/influxdb/line-protocol.ts';
import { cpuUs, round, threadCpu, threadCpuPerSample } from './cpu.ts';
import { FLOOR_STAGES, type FloorStage } from './processor-floor-stages.ts';

const { values } = parseArgs({
  options: {
    topic: { type: 'string' },
    stage: { type: 'string' },
    messages: { type: 'string' },
    'samples-per-message': { type: 'string', default: '1' },
  },
});
const stage = values.stage as FloorStage;
const total = Number(values.messages);
const perMessage = Number(values['samples-per-message']);
if (!values.topic || !FLOOR_STAGES.includes(stage) || !(total > 0) || !(perMessage > 0)) {
  process.stderr.write(
    `processor-floor: --topic, --messages (> 0) and --stage (${FLOOR_STAGES.join(', ')}) are required; ` +
      '--samples-per-message is > 0\n',
  );
  process.exit(2);
}
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
const config = resolveProcessorConfig({ metricsListen: '' }, { KAFKA_BROKERS: BROKERS });
const k = config.kafka;
const w = config.influxdb;
// As createProcessor does before it builds its client.
installGzipCodec();
fixIdleRequestQueue();
const kafka = new Kafka({ clientId: 'strata-bench-floor', brokers: [BROKERS], logLevel: logLevel.ERROR });
const consumer = kafka.consumer({
  groupId: `strata-bench-floor-${stage}-${process.pid}`,
  sessionTimeout: k.sessionTimeout,
  heartbeatInterval: k.heartbeatInterval,
  maxBytesPerPartition: k.maxBytesPerPartition,
  minBytes: k.minBytes,
  maxWaitTimeInMs: k.maxWaitTime,
});
const pipelines = new Map<number, Pipeline>();
const pool = new BodyPool();
const encoder = new SegmentEncoder(pool);

let seen = 0;
let samples = 0;
let steady: { samples: number; cpu: NodeJS.CpuUsage; threads: Map<string, number> } | undefined;
let finish!: () => void;
let fail!: (err: Error) => void;
const drained = new Promise<void>((resolve, reject) => {
  finish = resolve;
  fail = reject;
});
consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
await consumer.connect();
await consumer.subscribe({ topics: [values.topic], fromBeginning: true });
const cpu0 = process.cpuUsage();
await consumer.run({
  autoCommit: false,
  eachBatchAutoResolve: false,
  eachBatch: async ({ batch, resolveOffset }) => {
    if (batch.messages.length === 0) return;
    let pipeline = pipelines.get(batch.partition);
    if (!pipeline) {
      pipeline = createPipeline(config.pipeline as never);
      pipelines.set(batch.partition, pipeline);
    }
    const segments: EncodedSegment[] = [];
    if (stage === 'encode') encoder.begin(w.batchSize, w.maxBatchBytes, segments, newEncodeStats());
    for (const m of batch.messages) {
      if (stage === 'kafka') {
        samples += m.value ? 1 : 0; // counted as messages; scaled below
        continue;
      }
      if (stage === 'parse') {
        samples += (JSON.parse((m.value as Buffer).toString('utf8')) as { samples: unknown[] }).samples
          .length;
        continue;
      }
      const d = decodeSampleMessage(m.value);
      if (!d.ok) throw new Error(`offset ${m.offset}: ${d.reason}`);
      samples += d.message.samples.length;
      if (stage === 'decode') continue;
      const out = pipeline.handle(d.message);
      if (stage === 'encode') encoder.add(out.points);
    }
    if (stage === 'encode') {
      encoder.finish();
      for (const s of segments) pool.give(s.body);
    }
    seen += batch.messages.length;
    const last = batch.messages[batch.messages.length - 1]?.offset as string;
    resolveOffset(last);
    // As the runtime commits: each batch, explicitly.
    await consumer.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: String(Number(last) + 1) },
    ]);
    if (!steady && seen >= total / 4) steady = { samples, cpu: process.cpuUsage(), threads: threadCpu() };
    if (seen >= total) finish();
  },
});
await drained;
const all = process.cpuUsage(cpu0);
const threads = threadCpu();
const usage = steady ? process.cpuUsage(steady.cpu) : all;
await consumer.disconnect();
// `kafka` does not parse: every message of the backlog carries the same number of entity-samples.
const scale = stage === 'kafka' ? perMessage : 1;
const steadySamples = (samples - (steady?.samples ?? 0)) * scale;
console.log(
  JSON.stringify({
    stage,
    messages: seen,
    entity_samples: samples * scale,
    process_cpu_us_per_entity_sample: round(cpuUs(all) / (samples * scale)),
    steady_process_cpu_us_per_entity_sample: round(cpuUs(usage) / steadySamples),
    steady_thread_cpu_us_per_entity_sample: steady
      ? threadCpuPerSample(steady.threads, threads, steadySamples)
      : {},
  }),
);
process.exit(0);
