// Hostile input through the real stack: messages that cannot be read must reach the dead-letter
// topic without holding up the good ones behind them, on any partition.
// - A 5 MB non-JSON value (gzip-compressed, as agents send) on a samples topic that accepts it:
//   its dead letter is cut to dlq.maxValueBytes (the DLQ keeps the broker's 1 MiB default) with
//   its original size in a header, and every good message before and after it is written.
// - A rolling upgrade: one agent already publishes `v: 2` (large ticks, 100 of them) next to
//   `v: 1` agents: every `v: 1` point is written, every `v: 2` message is in the DLQ once.
import { randomBytes, randomUUID } from 'node:crypto';
import { CompressionTypes, type Producer } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { createProcessor, type ProcessorRuntime, resolveProcessorConfig } from '../../processor/index.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Pipeline } from '../../processors/types.ts';
import { AlertEvent } from '../../schemas/alert.ts';
import { HEADERS, type SampleMessage } from '../../schemas/sample.ts';
import {
  expectedPoints,
  fanOutTicks,
  influxQl,
  kafkaClient,
  storedPoints,
  testProducer,
  waitFor,
} from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const influxUrl = inject('influxUrl');
const id = randomUUID().slice(0, 8);
const processors: ProcessorRuntime[] = [];
const databases: string[] = [];

afterAll(async () => {
  for (const p of processors) await p.stop();
  for (const db of databases) await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
});

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

async function metricSum(name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

/** `bytes` characters that are not JSON and that gzip cannot shrink much (base64 of random bytes). */
function hostileValue(bytes: number): string {
  return `not json ${randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64')}`.slice(0, bytes);
}

/** A samples topic whose records may be up to 8 MiB (the broker's default is 1 MiB). */
async function createLargeTopic(topic: string, numPartitions: number): Promise<void> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: String(8 << 20) }],
        },
      ],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/** Gzip-compressed, as the agents publish. */
async function sendGzip(producer: Producer, topic: string, messages: SampleMessage[]): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    compression: CompressionTypes.GZIP,
    messages: messages.map((m) => ({
      key: m.node.id,
      value: JSON.stringify(m),
      headers: { [HEADERS.schemaVersion]: String(m.v), [HEADERS.contentType]: 'application/json' },
    })),
  });
}

interface Record_ {
  key: string;
  size: number;
  value: Buffer;
  headers: Record<string, string>;
}

/** Every record of `topic`, read from the beginning until `count` arrived (and 1 s more, to see duplicates). */
async function readTopic(topic: string, count: number): Promise<Record_[]> {
  const consumer = kafkaClient(brokers).consumer({ groupId: `reader-${randomUUID()}` });
  await consumer.connect();
  const got: Record_[] = [];
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        const value = message.value ?? Buffer.alloc(0);
        got.push({ key: String(message.key), size: value.length, value, headers });
      },
    });
    await waitFor(
      `${count} records in ${topic}`,
      async () => (got.length >= count ? true : undefined),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    await consumer.disconnect();
  }
  return got;
}

async function committedAtEnd(topic: string, groupId: string): Promise<void> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    await waitFor(
      'committed offsets at the end of every partition',
      async () => {
        const [c] = await admin.fetchOffsets({ groupId, topics: [topic] });
        const ok =
          c?.partitions.length === ends.length &&
          c.partitions.every((p) => {
            const end = ends.find((e) => e.partition === p.partition)?.offset;
            // A partition no node hashed to has nothing to commit.
            return p.offset === end || (end === '0' && p.offset === '-1');
          });
        return ok ? true : undefined;
      },
      30_000,
    );
  } finally {
    await admin.disconnect();
  }
}

function startProcessor(topic: string, dlqTopic: string, groupId: string, db: string): ProcessorRuntime {
  const p = createProcessor(
    resolveProcessorConfig(
      { metricsListen: '' },
      {
        KAFKA_BROKERS: brokers,
        STRATA_SAMPLES_TOPIC: topic,
        STRATA_DLQ_TOPIC: dlqTopic,
        STRATA_ALERTS_TOPIC: '',
        STRATA_GROUP_ID: groupId,
        INFLUX_URL: influxUrl,
        INFLUX_BUCKET: db,
      },
    ),
  );
  processors.push(p);
  return p;
}

async function waitForPoints(db: string, expected: Map<string, unknown>, what: string) {
  return waitFor(
    `${expected.size} points ${what}`,
    async () => {
      const s = await storedPoints(influxUrl, db);
      return s.size >= expected.size ? s : undefined;
    },
    90_000,
  );
}

describe('hostile messages and the dead-letter topic', () => {
  it('5 MB and 3 MB non-JSON values are dead-lettered truncated; good messages before and after it on every partition are written', async () => {
    const topic = `strata.samples.big-${id}`;
    const dlqTopic = `strata.dlq.big-${id}`;
    const groupId = `g-big-${id}`;
    const db = `strata_big_${id}`;
    databases.push(db);
    await createLargeTopic(topic, 3);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const NODES = 3;
    const ticks = fanOutTicks(`big-${id}`, NODES, Date.now() - 60_000);
    const producer = testProducer(brokers);
    await producer.connect();
    for (let t = 0; t < 8; t++) await sendGzip(producer, topic, ticks[t] ?? []);
    // Base64 of random bytes: gzip cannot shrink them below the DLQ's 1 MiB. 5 MiB and 3 MiB
    // (the latter within kafka.maxMessageBytes, so it is parsed and found not to be JSON), on the
    // partitions of two real nodes.
    const bigs = [
      { key: ticks[0]?.[0]?.node.id as string, value: hostileValue(5 * 1024 * 1024) },
      { key: ticks[0]?.[1]?.node.id as string, value: hostileValue(3 * 1024 * 1024) },
    ];
    for (const b of bigs) {
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: [{ key: b.key, value: b.value, headers: { origin: 'hostile' } }],
      });
    }
    for (let t = 8; t < 16; t++) await sendGzip(producer, topic, ticks[t] ?? []);

    const dlqBefore = await metricSum('strata_processor_dlq_messages_total');
    const failedBefore = await metricSum('strata_processor_dlq_failed_total');
    const processor = startProcessor(topic, dlqTopic, groupId, db);
    await processor.start();

    // Every good message of the first 16 ticks, before and after the big one, on all partitions.
    const first = expectedPoints(ticks.slice(0, 16));
    const stored = await waitForPoints(db, first, 'of the first 16 ticks');
    expect([...stored.keys()].sort()).toEqual([...first.keys()].sort());

    const dead = await readTopic(dlqTopic, bigs.length);
    expect(dead.map((d) => d.key).sort()).toEqual(bigs.map((b) => b.key).sort());
    for (const b of bigs) {
      const d = dead.find((x) => x.key === b.key) as Record_;
      // Cut to at most dlq.maxValueBytes (256 KiB), a prefix of the original, whose size is kept.
      expect(d.size).toBeGreaterThan(0);
      expect(d.size).toBeLessThanOrEqual(256 * 1024);
      expect(b.value.startsWith(d.value.toString('latin1'))).toBe(true);
      expect(d.headers[HEADERS.dlqOriginalSize]).toBe(String(b.value.length));
      expect(d.headers[HEADERS.dlqTruncated]).toBe('true');
      expect(d.headers[HEADERS.dlqReason]).toBeTruthy();
      expect(d.headers[HEADERS.dlqSourceTopic]).toBe(topic);
      expect(d.headers.origin).toBe('hostile');
    }
    expect(await metricSum('strata_processor_dlq_messages_total')).toBe(dlqBefore + bigs.length);
    expect(await metricSum('strata_processor_dlq_failed_total')).toBe(failedBefore);

    // Still consuming afterwards: the last ticks arrive and are written too.
    for (let t = 16; t < ticks.length; t++) await sendGzip(producer, topic, ticks[t] ?? []);
    await producer.disconnect();
    const all = expectedPoints(ticks);
    const end = await waitForPoints(db, all, 'of all ticks');
    expect([...end.keys()].sort()).toEqual([...all.keys()].sort());
    const cpu = await influxQl(
      influxUrl,
      `SELECT count(cpu_cores) FROM strata_host WHERE device = '' AND interface = ''`,
      db,
    );
    expect(cpu.results?.[0]?.series?.[0]?.values[0]?.[1]).toBe(NODES * (ticks.length - 1));
    await committedAtEnd(topic, groupId);
    expect(await metric('strata_processor_paused')).toBe(0);
  });

  it('a rolling upgrade: every v: 1 point is written, every one of 100 v: 2 messages is dead-lettered once', async () => {
    const topic = `strata.samples.v2-${id}`;
    const dlqTopic = `strata.dlq.v2-${id}`;
    const groupId = `g-v2-${id}`;
    const db = `strata_v2_${id}`;
    databases.push(db);
    await createLargeTopic(topic, 3);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const ticks = fanOutTicks(`v1-${id}`, 3, Date.now() - 60_000);
    // The upgraded agent: a future schema, on a busier node (24 entities a tick, ~40 KB of JSON).
    const upgraded = fanOutTicks(`v2-${id}`, 1, Date.now() - 60_000).map((t) => t[0] as SampleMessage);
    const V2 = 100;
    const v2Messages = Array.from({ length: V2 }, (_, i) => {
      const base = structuredClone(upgraded[i % upgraded.length] as SampleMessage);
      const samples = Array.from({ length: 24 }, (_, c) =>
        c === 0
          ? base.samples[0]
          : { ...structuredClone(base.samples[0]), entity: { ...base.samples[0]?.entity, id: `c-${c}` } },
      );
      return { ...base, v: 2, seq: i, samples, topology: { numa: [0, 1] } } as unknown as SampleMessage;
    });
    const producer = testProducer(brokers);
    await producer.connect();
    let sent = 0;
    for (const [t, tick] of ticks.entries()) {
      await sendGzip(producer, topic, tick);
      const n = t === ticks.length - 1 ? V2 - sent : Math.floor(V2 / ticks.length);
      await sendGzip(producer, topic, v2Messages.slice(sent, sent + n));
      sent += n;
    }
    await producer.disconnect();
    expect(sent).toBe(V2);

    const versionBefore = await metric('strata_processor_dlq_messages_total', {
      reason_kind: 'schema_version',
    });
    const failedBefore = await metricSum('strata_processor_dlq_failed_total');
    const processor = startProcessor(topic, dlqTopic, groupId, db);
    await processor.start();

    const expected = expectedPoints(ticks);
    const stored = await waitForPoints(db, expected, 'of the v: 1 agents');
    expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, p] of expected) {
      const row = stored.get(key) as Record<string, unknown>;
      for (const [f, v] of Object.entries((p as { fields: Record<string, unknown> }).fields)) {
        if (typeof v === 'number' && !Number.isFinite(v)) continue;
        expect(row[f], `${key} ${f}`).toEqual(v);
      }
    }

    const dead = await readTopic(dlqTopic, V2);
    expect(dead).toHaveLength(V2);
    const seqs = dead
      .map((d) => (JSON.parse(d.value.toString('utf8')) as { seq: number }).seq)
      .sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: V2 }, (_, i) => i));
    for (const d of dead) {
      expect(d.headers[HEADERS.dlqReason]).toMatch(/unsupported schema version 2/);
      expect(d.headers[HEADERS.dlqTruncated]).toBeUndefined();
      expect(Number(d.headers[HEADERS.dlqOriginalSize])).toBe(d.size);
    }
    expect(await metric('strata_processor_dlq_messages_total', { reason_kind: 'schema_version' })).toBe(
      versionBefore + V2,
    );
    expect(await metricSum('strata_processor_dlq_failed_total')).toBe(failedBefore);
    await committedAtEnd(topic, groupId);
    expect(await metric('strata_processor_paused')).toBe(0);
  });
  it("a gauge named like an existing string field: that node's lines are dead-lettered (influx_rejected), every other point is written", async () => {
    const topic = `strata.samples.conflict-${id}`;
    const dlqTopic = `strata.dlq.conflict-${id}`;
    const groupId = `g-conflict-${id}`;
    const db = `strata_conflict_${id}`;
    databases.push(db);
    await createLargeTopic(topic, 2);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const start = Date.now() - 60_000;
    const ticks = fanOutTicks(`conflict-${id}`, 3, start);
    // Node 2 reports a gauge that another writer made a string field of strata_host.
    const odd = ticks[0]?.[2]?.node.id as string;
    for (const tick of ticks) {
      const m = tick[2] as SampleMessage;
      (m.samples[0] as { gauges: Record<string, number> }).gauges.hostile_gauge = 1;
    }
    const seed = await fetch(`${influxUrl}/write?db=${db}&precision=ms`, {
      method: 'POST',
      body: `strata_host,node=someone-else hostile_gauge="a string" ${start}`,
    });
    expect(seed.status).toBe(204);
    const producer = testProducer(brokers);
    await producer.connect();
    for (const tick of ticks) await sendGzip(producer, topic, tick);
    await producer.disconnect();

    const rejectedBefore = await metric('strata_processor_dlq_messages_total', {
      reason_kind: 'influx_rejected',
    });
    const processor = startProcessor(topic, dlqTopic, groupId, db);
    await processor.start();

    const all = expectedPoints(ticks);
    const refusedKeys = [...all.entries()]
      .filter(([, p]) => p.measurement === 'strata_host' && 'hostile_gauge' in p.fields)
      .map(([k]) => k);
    expect(refusedKeys).toHaveLength(ticks.length); // one host line of node 2 per tick
    const expected = new Map([...all].filter(([k]) => !refusedKeys.includes(k)));
    // + 1: the seed point.
    const stored = await waitForPoints(
      db,
      new Map<string, unknown>([...expected, ['seed', {}]]),
      'of the other lines',
    );
    stored.delete([...stored.keys()].find((k) => k.includes('someone-else')) as string);
    expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());

    const dead = await readTopic(dlqTopic, refusedKeys.length);
    expect(dead).toHaveLength(refusedKeys.length);
    for (const d of dead) {
      expect(d.value.toString('utf8')).toMatch(new RegExp(`^strata_host,.*node=${odd}[, ].*hostile_gauge=1`));
      expect(d.headers[HEADERS.dlqReason]).toMatch(/^influx_rejected: .*field type conflict/);
      expect(d.headers[HEADERS.dlqReasonCode]).toBe('influx_rejected');
      expect(d.headers[HEADERS.dlqSourceTopic]).toBe(topic);
    }
    expect(await metric('strata_processor_dlq_messages_total', { reason_kind: 'influx_rejected' })).toBe(
      rejectedBefore + refusedKeys.length,
    );
    await committedAtEnd(topic, groupId);
    expect(await metric('strata_processor_paused')).toBe(0);
  });
  it('a dead-letter topic that refuses records: too-large requests are split, records it can never take are counted, nothing stalls', async () => {
    const topic = `strata.samples.smalldlq-${id}`;
    const dlqTopic = `strata.dlq.smalldlq-${id}`;
    const groupId = `g-smalldlq-${id}`;
    const db = `strata_smalldlq_${id}`;
    databases.push(db);
    await createLargeTopic(topic, 2);
    // A DLQ whose records may be at most 4000 bytes (compressed record batch).
    const admin = kafkaClient(brokers).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic: dlqTopic,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: '4000' }],
        },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const ticks = fanOutTicks(`smalldlq-${id}`, 3, Date.now() - 60_000);
    // 12 small bad messages (~1 KB with headers each: only a few fit one 4000-byte request) and
    // 3 of 20 KB that fit none, on a real node's partition.
    const small = Array.from({ length: 12 }, (_, i) => ({ key: `small-${i}`, value: hostileValue(600) }));
    const large = Array.from({ length: 3 }, (_, i) => ({ key: `large-${i}`, value: hostileValue(20_000) }));
    const producer = testProducer(brokers);
    await producer.connect();
    for (let t = 0; t < 10; t++) await sendGzip(producer, topic, ticks[t] ?? []);
    await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: [...small, ...large],
    });
    for (let t = 10; t < ticks.length; t++) await sendGzip(producer, topic, ticks[t] ?? []);
    await producer.disconnect();

    const tooLargeBefore = await metric('strata_processor_dlq_failed_total', { reason: 'message_too_large' });
    const processor = startProcessor(topic, dlqTopic, groupId, db);
    await processor.start();

    const expected = expectedPoints(ticks);
    const stored = await waitForPoints(db, expected, 'around the refused dead letters');
    expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
    await committedAtEnd(topic, groupId);
    const dead = await readTopic(dlqTopic, small.length);
    expect(dead.map((d) => d.key).sort()).toEqual(small.map((m) => m.key).sort());
    expect(await metric('strata_processor_dlq_failed_total', { reason: 'message_too_large' })).toBe(
      tooLargeBefore + large.length,
    );
    expect(await metric('strata_processor_paused')).toBe(0);
  });
  it('an alerts topic that refuses every event: the events are counted as failed, the points written, nothing stalls', async () => {
    const topic = `strata.samples.alerts-${id}`;
    const alertsTopic = `strata.alerts.small-${id}`;
    const groupId = `g-alerts-${id}`;
    const db = `strata_alerts_${id}`;
    databases.push(db);
    await createLargeTopic(topic, 2);
    const admin = kafkaClient(brokers).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic: alertsTopic,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: '100' }],
        },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const ticks = fanOutTicks(`alerts-${id}`, 2, Date.now() - 60_000);
    const producer = testProducer(brokers);
    await producer.connect();
    for (const tick of ticks) await sendGzip(producer, topic, tick);
    await producer.disconnect();

    // The real pipeline, plus one alert event per message (no recording of an incident needed).
    const withAlerts = (): Pipeline => {
      const inner = createPipeline();
      const handle = inner.handle.bind(inner);
      inner.handle = (m) => {
        const out = handle(m);
        const alert = AlertEvent.parse({
          v: 1,
          id: `test-${m.node.id}-${m.seq}`,
          name: 'NoisyNeighborIO',
          status: 'firing',
          node: m.node.id,
          labels: { device: 'vda', antagonist: 'fio', victims: 'redis' },
          evidence: { antagonist_iops_share_ratio: 0.9 },
          summary: 'a test alert larger than the alerts topic takes',
          starts_at: m.ts,
          ts: m.ts,
        });
        return { ...out, alerts: [...out.alerts, alert] };
      };
      return inner;
    };
    const failedBefore = await metric('strata_processor_alerts_failed_total', {
      reason: 'message_too_large',
    });
    const config = resolveProcessorConfig(
      { metricsListen: '' },
      {
        KAFKA_BROKERS: brokers,
        STRATA_SAMPLES_TOPIC: topic,
        STRATA_DLQ_TOPIC: `strata.dlq.alerts-${id}`,
        STRATA_ALERTS_TOPIC: alertsTopic,
        STRATA_GROUP_ID: groupId,
        INFLUX_URL: influxUrl,
        INFLUX_BUCKET: db,
      },
    );
    config.kafka.incidentLookback = 0; // nothing to read back from a topic that holds nothing
    const processor = createProcessor(config, { createPipeline: withAlerts });
    processors.push(processor);
    await processor.start();

    const expected = expectedPoints(ticks);
    const stored = await waitForPoints(db, expected, 'with every alert refused');
    expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
    await committedAtEnd(topic, groupId);
    const messages = ticks.reduce((n, t) => n + t.length, 0);
    expect(await metric('strata_processor_alerts_failed_total', { reason: 'message_too_large' })).toBe(
      failedBefore + messages,
    );
    expect(await metric('strata_processor_paused')).toBe(0);
  });
});
