// End to end through the real stack: real agent ticks → Kafka → processor (in-process) → InfluxDB,
// with malformed messages mixed in that must all land in the dead-letter topic.
import { randomUUID } from 'node:crypto';
import type { Consumer } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { createProcessor, type ProcessorRuntime, resolveProcessorConfig } from '../../processor/index.ts';
import { HEADERS } from '../../schemas/sample.ts';
import {
  createTopic,
  expectedPoints,
  expectStoredAsExpected,
  fanOutTicks,
  influxQl,
  kafkaClient,
  produceTick,
  seriesTimes,
  storedPoints,
  testProducer,
  waitFor,
  waitForStored,
} from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const influxUrl = inject('influxUrl');
const id = randomUUID().slice(0, 8);
const topic = `strata.samples.t-${id}`;
const dlqTopic = `strata.dlq.t-${id}`;
const db = `strata_t_${id}`;
const NODES = 6;

let processor: ProcessorRuntime | undefined;
let processorV1: ProcessorRuntime | undefined;
let dlqConsumer: Consumer | undefined;

afterAll(async () => {
  await processor?.stop();
  await processorV1?.stop();
  await influxQl(influxUrl, `DROP DATABASE "${db}_v1"`).catch(() => {});
  await dlqConsumer?.disconnect();
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
});

async function dlqCount(kind: string): Promise<number> {
  const m = await registry.getSingleMetric('strata_processor_dlq_messages_total')?.get();
  return m?.values.find((v) => v.labels.reason_kind === kind)?.value ?? 0;
}

describe('strata processor end to end (Kafka → pipeline → InfluxDB, DLQ)', () => {
  it('stores exactly the expected points and dead-letters every malformed message', async () => {
    await createTopic(brokers, topic, 3);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const ticks = fanOutTicks(`e2e-${id}`, NODES, Date.now() - 60_000);
    const expected = expectedPoints(ticks);

    const producer = testProducer(brokers);
    await producer.connect();
    const malformed = [
      { key: 'bad-1', value: 'this is not json {', kind: 'not_json' },
      { key: 'bad-2', value: JSON.stringify({ ...ticks[0]?.[0], v: 2 }), kind: 'schema_version' },
      { key: 'bad-3', value: JSON.stringify({ ...ticks[0]?.[0], samples: undefined }), kind: 'schema' },
      { key: 'bad-4', value: JSON.stringify([1, 2, 3]), kind: 'schema' },
    ];
    const before = {
      not_json: await dlqCount('not_json'),
      schema_version: await dlqCount('schema_version'),
      schema: await dlqCount('schema'),
    };
    for (const [t, tick] of ticks.entries()) {
      await produceTick(producer, topic, tick);
      // Malformed messages in the middle of the stream, on the partitions of real nodes' keys too.
      if (t === 5) {
        await producer.send({
          topic,
          messages: malformed.map((m) => ({ key: m.key, value: m.value, headers: { origin: 'test' } })),
        });
      }
    }
    await producer.disconnect();

    const config = resolveProcessorConfig(
      { metricsListen: '' },
      {
        KAFKA_BROKERS: brokers,
        STRATA_SAMPLES_TOPIC: topic,
        STRATA_DLQ_TOPIC: dlqTopic,
        STRATA_ALERTS_TOPIC: `strata.alerts.t-${id}`,
        STRATA_GROUP_ID: `g-${id}`,
        INFLUX_URL: influxUrl,
        INFLUX_BUCKET: db,
      },
    );
    processor = createProcessor(config);
    await processor.start();

    const stored = await waitForStored(influxUrl, db, expected);
    expectStoredAsExpected(stored, expected);
    // InfluxQL counts: every node has a CPU rate for every tick but the first (19 ticks → 18).
    const n = ticks.length;
    const cpu = await influxQl(
      influxUrl,
      `SELECT count(cpu_cores) FROM strata_host WHERE device = '' AND interface = ''`,
      db,
    );
    expect(cpu.results?.[0]?.series?.[0]?.values[0]?.[1]).toBe(NODES * (n - 1));
    expect(await seriesTimes(influxUrl, db, 'strata_overhead')).toEqual({
      times: NODES * (n - 1),
      duplicates: 0,
    });

    // Every malformed message is in the DLQ, once, with its reason and where it came from.
    dlqConsumer = kafkaClient(brokers).consumer({ groupId: `dlq-reader-${id}` });
    await dlqConsumer.connect();
    await dlqConsumer.subscribe({ topics: [dlqTopic], fromBeginning: true });
    const got: { key: string; value: string; headers: Record<string, string> }[] = [];
    await dlqConsumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        got.push({ key: String(message.key), value: String(message.value), headers });
      },
    });
    await waitFor('4 DLQ messages', async () => (got.length >= malformed.length ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 1000)); // would reveal duplicates
    expect(got.map((g) => g.key).sort()).toEqual(malformed.map((m) => m.key).sort());
    for (const m of malformed) {
      const g = got.find((x) => x.key === m.key);
      expect(g?.value).toBe(m.value);
      expect(g?.headers.origin).toBe('test');
      expect(g?.headers[HEADERS.dlqReason]).toBeTruthy();
      expect(g?.headers[HEADERS.dlqSourceTopic]).toBe(topic);
      expect(Number(g?.headers[HEADERS.dlqSourceOffset])).toBeGreaterThanOrEqual(0);
    }
    expect(got.find((g) => g.key === 'bad-1')?.headers[HEADERS.dlqReason]).toMatch(/^not JSON/);
    expect(got.find((g) => g.key === 'bad-2')?.headers[HEADERS.dlqReason]).toMatch(
      /unsupported schema version 2/,
    );
    expect(got.find((g) => g.key === 'bad-3')?.headers[HEADERS.dlqReason]).toMatch(/^samples:/);
    expect(await dlqCount('not_json')).toBe(before.not_json + 1);
    expect(await dlqCount('schema_version')).toBe(before.schema_version + 1);
    expect(await dlqCount('schema')).toBe(before.schema + 2);

    // Offsets committed up to the end of every partition: nothing left to replay.
    const admin = kafkaClient(brokers).admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    const committed = await waitFor(
      'committed offsets at the end',
      async () => {
        const [c] = await admin.fetchOffsets({ groupId: `g-${id}`, topics: [topic] });
        const ok = c?.partitions.every(
          (p) => p.offset === ends.find((e) => e.partition === p.partition)?.offset,
        );
        return ok ? c : undefined;
      },
      15_000,
    );
    await admin.disconnect();
    expect(committed.partitions).toHaveLength(3);
  });

  it('writes through the v1 API (/write, database created at start) just the same', async () => {
    const v1Topic = `${topic}.v1`;
    await createTopic(brokers, v1Topic, 2);
    const ticks = fanOutTicks(`v1-${id}`, 3, Date.now() - 60_000);
    const expected = expectedPoints(ticks);
    const producer = testProducer(brokers);
    await producer.connect();
    for (const tick of ticks) await produceTick(producer, v1Topic, tick);
    await producer.disconnect();
    processorV1 = createProcessor(
      resolveProcessorConfig(
        { metricsListen: '' },
        {
          KAFKA_BROKERS: brokers,
          STRATA_SAMPLES_TOPIC: v1Topic,
          STRATA_DLQ_TOPIC: dlqTopic,
          STRATA_ALERTS_TOPIC: '',
          STRATA_GROUP_ID: `g1-${id}`,
          INFLUX_API: 'v1',
          INFLUX_URL: influxUrl,
          INFLUX_DATABASE: `${db}_v1`,
        },
      ),
    );
    await processorV1.start();
    const stored = await waitFor(
      `${expected.size} points via /write`,
      async () => {
        const s = await storedPoints(influxUrl, `${db}_v1`);
        return s.size >= expected.size ? s : undefined;
      },
      60_000,
    );
    expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
  });
});
