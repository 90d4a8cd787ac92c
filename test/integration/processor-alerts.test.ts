// The Kafka alerts sink against the real broker: events keyed by node, JSON that validates against
// schemas/alert.ts, acknowledged before send() resolves.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { AlertEvent } from '../../schemas/alert.ts';
import { HEADERS } from '../../schemas/sample.ts';
import { ALERT_HEADERS, KafkaAlertsConfig, KafkaAlertsSink } from '../../sinks/kafka-alerts/index.ts';
import { createTopic, kafkaClient, testProducer, waitFor } from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const topic = `strata.alerts.t-${randomUUID().slice(0, 8)}`;
const producer = testProducer(brokers);
const consumer = kafkaClient(brokers).consumer({ groupId: `alerts-reader-${topic}` });

afterAll(async () => {
  await producer.disconnect();
  await consumer.disconnect();
});

const firing = AlertEvent.parse({
  v: 1,
  id: 'nn-node-a-vda-1',
  name: 'NoisyNeighborIO',
  status: 'firing',
  node: 'node-a',
  labels: { device: 'vda', antagonist: 'fio', victims: 'redis' },
  evidence: { antagonist_iops_share_ratio: 0.9 },
  summary: 'fio dominates vda',
  starts_at: 1_795_322_559_000,
  ts: 1_795_322_569_000,
});

describe('kafka-alerts sink', () => {
  it('publishes alert events keyed by node, in order, valid against the alert schema', async () => {
    await createTopic(brokers, topic, 3);
    await producer.connect();
    const sink = new KafkaAlertsSink(KafkaAlertsConfig.parse({ topic }), producer);
    const resolved = {
      ...firing,
      status: 'resolved' as const,
      ends_at: 1_795_322_659_000,
      ts: 1_795_322_659_000,
    };
    const other = { ...firing, id: 'nn-node-b-vda-1', node: 'node-b' };
    expect(await sink.write([firing, other])).toEqual({ written: 2, rejected: 0, unencodable: 0 });
    expect(await sink.write([resolved], { topic: 'strata.samples', partition: 3 })).toEqual({
      written: 1,
      rejected: 0,
      unencodable: 0,
    });

    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const got: { key: string; partition: number; event: AlertEvent; headers: Record<string, string> }[] = [];
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        got.push({
          key: String(message.key),
          partition,
          event: AlertEvent.parse(JSON.parse(String(message.value))),
          headers,
        });
      },
    });
    await waitFor('3 alert events', async () => (got.length >= 3 ? true : undefined), 30_000);
    const nodeA = got.filter((g) => g.key === 'node-a');
    expect(nodeA.map((g) => g.event.status)).toEqual(['firing', 'resolved']);
    expect(new Set(nodeA.map((g) => g.partition)).size).toBe(1);
    expect(nodeA[1]?.event).toEqual(resolved);
    expect(got.find((g) => g.key === 'node-b')?.event.id).toBe('nn-node-b-vda-1');
    expect(got[0]?.headers[HEADERS.contentType]).toBe('application/json');
    expect(got[0]?.headers[HEADERS.schemaVersion]).toBe('1');
    // The samples partition the event was computed from (read back by a new owner of it).
    expect(nodeA[1]?.headers[ALERT_HEADERS.sourceTopic]).toBe('strata.samples');
    expect(nodeA[1]?.headers[ALERT_HEADERS.sourcePartition]).toBe('3');
    expect(nodeA[0]?.headers[ALERT_HEADERS.sourcePartition]).toBeUndefined();
  });
});
