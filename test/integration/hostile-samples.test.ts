// Hostile or broken agents on the real stack (Kafka → in-process processor → InfluxDB 1.8): samples
// dated 2200, 1970 (ts = 0) and ts = 9e15, a gauge named like the entity_id string field, and two
// agents sharing one node id, mixed into the real ticks of good nodes. The good messages' points
// are all stored, exactly; the bad ones are dead-lettered with their reason code; the entity whose
// sample was dated 2200 keeps getting its rates; both agents of the shared node id get theirs.
import { randomUUID } from 'node:crypto';
import type { Consumer } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { createProcessor, type ProcessorRuntime, resolveProcessorConfig } from '../../processor/index.ts';
import { HEADERS, type SampleMessage } from '../../schemas/sample.ts';
import {
  createTopic,
  expectedPoints,
  fanOutTicks,
  influxQl,
  kafkaClient,
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

let processor: ProcessorRuntime | undefined;
let dlqConsumer: Consumer | undefined;

afterAll(async () => {
  await processor?.stop();
  await dlqConsumer?.disconnect();
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
});

async function metric(name: string, label?: [string, string]): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => !label || v.labels[label[0]] === label[1])?.value ?? 0;
}

/** A copy of a message with every time set to `ts` (or moved by `shift`) and optionally edited. */
function variant(m: SampleMessage, time: { ts?: number; shift?: number }, edit?: (c: SampleMessage) => void) {
  const c = structuredClone(m);
  const at = (t: number) => time.ts ?? t + (time.shift ?? 0);
  c.ts = at(c.ts);
  for (const s of c.samples) if (s.ts !== undefined) s.ts = at(s.ts);
  edit?.(c);
  return c;
}

const Y2200 = Date.UTC(2200, 0, 1);

describe('hostile samples on the real stack', () => {
  it('dead-letters out-of-window times and reserved names, keeps every good point, heals and splits a shared node id', async () => {
    await createTopic(brokers, topic, 3);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const start = Date.now() - 60_000;
    const good = fanOutTicks(`hostile-${id}`, 2, start); // good[t] = [node-0, node-1]
    const clone = fanOutTicks(`clone-${id}`, 1, start).map((t) => t[0]!);
    const n = good.length;
    const [node0, node1] = [good[0]![0]!.node.id, good[0]![1]!.node.id];
    const cloneId = clone[0]!.node.id;

    // In production order, per tick: the two good nodes, then the two agents of the cloned
    // machine (one node id, two run_ids, the second reading 400 ms later).
    const stream: { msg: SampleMessage; bad?: string }[] = [];
    for (let t = 0; t < n; t++) {
      stream.push({ msg: good[t]![0]! }, { msg: good[t]![1]! });
      stream.push({ msg: variant(clone[t]!, {}, (c) => (c.agent.run_id = 'clone-a')) });
      stream.push({ msg: variant(clone[t]!, { shift: 400 }, (c) => (c.agent.run_id = 'clone-b')) });
      if (t === 5) {
        stream.push({ msg: variant(good[t]![0]!, { ts: Y2200 }), bad: 'timestamp_out_of_window' });
        stream.push({ msg: variant(good[t]![0]!, { ts: 0 }), bad: 'timestamp_out_of_window' });
        stream.push({ msg: variant(good[t]![0]!, { ts: 9e15 }), bad: 'timestamp_out_of_window' });
        stream.push({
          msg: variant(good[t]![1]!, { shift: 300 }, (c) => {
            (c.samples[0]!.gauges as Record<string, number>).entity_id = 5;
          }),
          bad: 'reserved_name',
        });
      }
    }
    const expected = expectedPoints(stream.filter((s) => !s.bad).map((s) => [s.msg]));

    const before = {
      window: await metric('strata_processor_dlq_messages_total', ['reason_kind', 'timestamp_out_of_window']),
      reserved: await metric('strata_processor_dlq_messages_total', ['reason_kind', 'reserved_name']),
      conflicts: await metric('strata_processor_node_id_conflicts_total'),
    };
    const producer = testProducer(brokers);
    await producer.connect();
    for (const s of stream) {
      await producer.send({
        topic,
        acks: -1,
        messages: [{ key: s.msg.node.id, value: JSON.stringify(s.msg), headers: { bad: s.bad ?? '' } }],
      });
    }
    await producer.disconnect();

    processor = createProcessor(
      resolveProcessorConfig(
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
      ),
    );
    await processor.start();

    const stored = await waitForStored(influxUrl, db, expected);
    await new Promise((r) => setTimeout(r, 1000)); // would reveal extra points
    expect([...(await storedPoints(influxUrl, db)).keys()].sort()).toEqual([...expected.keys()].sort());
    expect(stored.size).toBe(expected.size);

    // Host CPU rates per node: every tick but the first; the entity whose sample was dated 2200
    // keeps its rates after it; each agent of the shared node id has its own.
    const rates = await influxQl(
      influxUrl,
      `SELECT count(cpu_cores) FROM strata_host WHERE device = '' AND interface = '' GROUP BY "node"`,
      db,
    );
    const byNode = Object.fromEntries(
      (rates.results?.[0]?.series ?? []).map((s) => [s.tags?.node, s.values[0]?.[1]]),
    );
    expect(byNode).toEqual({ [node0]: n - 1, [node1]: n - 1, [cloneId]: 2 * (n - 1) });
    const after5 = await influxQl(
      influxUrl,
      `SELECT count(cpu_cores) FROM strata_host WHERE "node" = '${node0}' AND time > ${good[5]![0]!.ts}ms`,
      db,
    );
    expect(after5.results?.[0]?.series?.[0]?.values[0]?.[1]).toBe(n - 6);
    // Nothing stored outside the window.
    const outside = await influxQl(
      influxUrl,
      `SELECT count(*) FROM strata_host, strata_entity WHERE time < '2000-01-01T00:00:00Z' OR time > now() + 1h`,
      db,
    );
    expect(outside.results?.[0]?.series ?? []).toEqual([]);

    // The four bad messages are in the DLQ, once each, with their reason code and reason.
    dlqConsumer = kafkaClient(brokers).consumer({ groupId: `dlq-reader-${id}` });
    await dlqConsumer.connect();
    await dlqConsumer.subscribe({ topics: [dlqTopic], fromBeginning: true });
    const got: Record<string, string>[] = [];
    await dlqConsumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = { key: String(message.key) };
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        got.push(headers);
      },
    });
    await waitFor('4 dead letters', async () => (got.length >= 4 ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 1000)); // would reveal duplicates
    expect(got.map((h) => [h.key, h[HEADERS.dlqReasonCode]]).sort()).toEqual(
      [
        [node0, 'timestamp_out_of_window'],
        [node0, 'timestamp_out_of_window'],
        [node0, 'timestamp_out_of_window'],
        [node1, 'reserved_name'],
      ].sort(),
    );
    for (const h of got) expect(h[HEADERS.dlqReasonCode]).toBe(h.bad);
    const reasons = got.map((h) => h[HEADERS.dlqReason]).sort();
    expect(reasons.filter((r) => /^ts: 7258118400000 \(2200-01-01/.test(r!))).toHaveLength(1);
    expect(reasons.filter((r) => /^ts: 0 \(1970-01-01/.test(r!))).toHaveLength(1);
    expect(reasons.filter((r) => /^ts: 9000000000000000 /.test(r!))).toHaveLength(1);
    expect(reasons.filter((r) => /^samples\.0\.gauges\.entity_id: reserved name/.test(r!))).toHaveLength(1);
    expect(
      (await metric('strata_processor_dlq_messages_total', ['reason_kind', 'timestamp_out_of_window'])) -
        before.window,
    ).toBe(3);
    expect(
      (await metric('strata_processor_dlq_messages_total', ['reason_kind', 'reserved_name'])) -
        before.reserved,
    ).toBe(1);
    expect((await metric('strata_processor_node_id_conflicts_total')) - before.conflicts).toBe(1);
  });
});
