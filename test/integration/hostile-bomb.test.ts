// A gzip bomb on the samples topic, through a real `strata processor` child, real Kafka and
// InfluxDB: 400 KB of gzip inflating to 400 MiB sent between good ticks, and a 5 MiB message.
// The good ticks' points are all stored, exactly; the bomb's batch is skipped undecoded and
// dead-lettered (inflate_limit), the large message dead-lettered unparsed (message_too_large);
// the processor's peak RSS stays far below the bomb's size, it keeps consuming, and SIGTERM ends
// it cleanly with everything committed.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import kafkajs, { type KafkaMessage } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { SampleMessage } from '../../schemas/sample.ts';
import { freePort } from '../../stack/index.ts';
import {
  createTopic,
  expectedPoints,
  fanOutTicks,
  influxQl,
  kafkaClient,
  killChild,
  produceTick,
  spawnProcessor,
  storedPoints,
  testProducer,
  waitFor,
} from './processor.helpers.ts';

// kafkajs is CommonJS: its codec registry through the default export, as lib/kafka/gzip.ts.
const { CompressionCodecs, CompressionTypes } = kafkajs;
const brokers = inject('kafkaBrokers');
const influxUrl = inject('influxUrl');
const id = randomUUID().slice(0, 8);
const topic = `strata.samples.t-${id}`;
const dlqTopic = `strata.dlq.t-${id}`;
const groupId = `g-${id}`;
const db = `strata_t_${id}`;
const NODES = 3;
const BOMB_MIB = 400;
const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-bomb-'));
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) await killChild(c);
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** Zig-zag varint, as Kafka's records encode lengths and deltas. */
function varInt(n: number): Buffer {
  const out: number[] = [];
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/**
 * The compressed records of a batch holding one record whose value is `mib` MiB of zeros, gzipped
 * as a stream (the test never holds the inflated bytes): ≈ 400 KB for 400 MiB at level 9.
 */
async function gzipBomb(mib: number): Promise<Buffer> {
  const valueLen = mib << 20;
  // attributes, timestamp delta 0, offset delta 0, no key, the value's length; then the value,
  // then no headers.
  const head = Buffer.concat([Buffer.from([0, 0, 0]), varInt(-1), varInt(valueLen)]);
  const recordLen = head.length + valueLen + 1;
  const gz = zlib.createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((r) => gz.on('end', r));
  gz.write(Buffer.concat([varInt(recordLen), head]));
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) {
    if (!gz.write(zeros)) await new Promise((r) => gz.once('drain', r));
  }
  gz.end(Buffer.from([0]));
  await ended;
  return Buffer.concat(out);
}

/** /proc/PID/status VmHWM (peak resident set) in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]) * 1024;
}

describe('gzip bomb on the samples topic', () => {
  it('is skipped and dead-lettered with bounded memory; the good ticks are all stored; SIGTERM commits', async () => {
    await createTopic(brokers, topic, 1);
    await createTopic(brokers, dlqTopic, 1);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const ticks = fanOutTicks(`bomb-${id}`, NODES, Date.now() - 60_000);
    const expected = expectedPoints(ticks);
    const half = Math.floor(ticks.length / 2);
    const bomb = await gzipBomb(BOMB_MIB);
    // A tick of another node, padded to 5 MiB with whitespace: still valid JSON, so only the size
    // bound keeps it out (it would otherwise add that node's points).
    const big = fanOutTicks(`big-${id}`, 1, Date.now() - 60_000)[0] as SampleMessage[];
    const bigValue = Buffer.concat([Buffer.from(JSON.stringify(big[0])), Buffer.alloc(5 << 20, 0x20)]);

    const metricsPort = await freePort();
    const log = path.join(dir, 'processor.log');
    const child = spawnProcessor(
      {
        KAFKA_BROKERS: brokers,
        STRATA_SAMPLES_TOPIC: topic,
        STRATA_DLQ_TOPIC: dlqTopic,
        STRATA_ALERTS_TOPIC: '',
        STRATA_GROUP_ID: groupId,
        INFLUX_URL: influxUrl,
        INFLUX_BUCKET: db,
        STRATA_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      },
      log,
    );
    children.push(child);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));

    const producer = testProducer(brokers);
    await producer.connect();
    try {
      for (let t = 0; t < half; t++) await produceTick(producer, topic, ticks[t] ?? []);
      // The bomb: kafkajs' producer with a gzip codec that hands over the prepared stream, so one
      // record batch of one 400 MiB record reaches the broker (which validates it as any batch).
      const saved = CompressionCodecs[CompressionTypes.GZIP];
      CompressionCodecs[CompressionTypes.GZIP] = () => ({
        compress: async () => bomb,
        decompress: async () => {
          throw new Error('not used');
        },
      });
      try {
        await producer.send({
          topic,
          acks: -1,
          compression: CompressionTypes.GZIP,
          messages: [{ key: 'bomb', value: 'replaced by the codec' }],
        });
      } finally {
        CompressionCodecs[CompressionTypes.GZIP] = saved;
      }
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: [{ key: big[0]?.node.id ?? 'big', value: bigValue }],
      });
      // The processor is past the bomb once both dead letters are out; then the rest of the ticks.
      await waitFor(
        'the processor to dead-letter the bomb and the large message',
        async () => ((await dlqMessages()).length >= 2 ? true : undefined),
        90_000,
      );
      for (let t = half; t < ticks.length; t++) await produceTick(producer, topic, ticks[t] ?? []);
    } finally {
      await producer.disconnect();
    }

    const stored = await waitFor(
      `${expected.size} points`,
      async () => {
        const s = await storedPoints(influxUrl, db);
        return s.size >= expected.size ? s : undefined;
      },
      90_000,
    );
    expect(stored.size).toBe(expected.size);
    expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());

    const letters = await dlqMessages();
    expect(letters).toHaveLength(2);
    const [bombLetter, bigLetter] = letters as [KafkaMessage, KafkaMessage];
    const h = (m: KafkaMessage, k: string) => m.headers?.[k]?.toString();
    expect(h(bombLetter, 'strata-dlq-reason-code')).toBe('inflate_limit');
    expect(h(bombLetter, 'strata-dlq-reason')).toMatch(
      /^inflate_limit: record batch at offsets (\d+)-\1 \(1 records, \d+ bytes of gzip\) inflates past kafka.maxInflatedBatchBytes \(33554432\)/,
    );
    expect(h(bombLetter, 'strata-dlq-source-topic')).toBe(topic);
    expect(h(bombLetter, 'strata-dlq-source-partition')).toBe('0');
    expect(h(bombLetter, 'strata-dlq-source-offset')).toBe(String(half * NODES));
    expect(h(bombLetter, 'strata-dlq-source-offsets')).toBe(`${half * NODES}-${half * NODES}`);
    expect(h(bombLetter, 'strata-dlq-original-size')).toBe(String(bomb.length));
    // The compressed records' first 64 KiB, byte for byte.
    expect(bombLetter.value).toEqual(bomb.subarray(0, 64 * 1024));
    expect(h(bigLetter, 'strata-dlq-reason-code')).toBe('message_too_large');
    expect(h(bigLetter, 'strata-dlq-source-offset')).toBe(String(half * NODES + 1));
    expect(h(bigLetter, 'strata-dlq-original-size')).toBe(String(bigValue.length));
    expect(bigLetter.value).toEqual(bigValue.subarray(0, 64 * 1024));

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^strata_processor_oversized_batches_total 1$/m);
    expect(metrics).toMatch(/^strata_processor_dlq_messages_total\{reason_kind="inflate_limit"\} 1$/m);
    expect(metrics).toMatch(/^strata_processor_dlq_messages_total\{reason_kind="message_too_large"\} 1$/m);
    expect(metrics).toMatch(
      new RegExp(`^strata_processor_messages_total\\{result="ok"\\} ${ticks.length * NODES}$`, 'm'),
    );

    // Peak resident memory of the real processor over the whole run: the bomb inflates to
    // 400 MiB; the processor stops at the 32 MiB bound.
    const peak = peakRss(child.pid as number);
    expect(peak).toBeLessThan(512 * 1024 * 1024);
    const logText = readFileSync(log, 'utf8');
    expect(logText).toContain('too large to decode: sent to the dead-letter topic');

    // SIGTERM within a Kubernetes-like grace of 30 s; else SIGKILL, which the exit code shows.
    child.kill('SIGTERM');
    const grace = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(grace);
    expect(child.signalCode).toBeNull();
    expect(child.exitCode).toBe(0);
    const admin = kafkaClient(brokers).admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const [end] = await admin.fetchTopicOffsets(topic);
      // Every record, the bomb's and the large message's included, is committed.
      expect(committed?.partitions[0]?.offset).toBe(end?.high);
      expect(Number(end?.high)).toBe(ticks.length * NODES + 2);
    } finally {
      await admin.disconnect();
    }
    console.log(
      `hostile-bomb: bomb ${bomb.length} B gzip → ${BOMB_MIB} MiB; processor peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`,
    );
  });
});

/** Every record of the dead-letter topic so far, in offset order. */
async function dlqMessages(): Promise<KafkaMessage[]> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  let high: number;
  try {
    const [end] = await admin.fetchTopicOffsets(dlqTopic);
    high = Number(end?.high ?? 0);
  } finally {
    await admin.disconnect();
  }
  if (high === 0) return [];
  const consumer = kafkaClient(brokers).consumer({ groupId: `dlq-reader-${randomUUID()}` });
  const got: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: dlqTopic, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message);
          if (got.length >= high) resolve();
        },
      });
    });
    await Promise.race([done, new Promise((r) => setTimeout(r, 20_000))]);
  } finally {
    await consumer.disconnect();
  }
  return got;
}
