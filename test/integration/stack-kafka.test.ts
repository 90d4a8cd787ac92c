// A private Kafka through the stack API, as failure tests use it: stopped (and killed) and started
// again on the same data dir, it keeps its topics and messages; while it is down, clients fail.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, type KafkaHandle, kafkaReady, startKafka } from '../../stack/index.ts';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strata-stack-kafka-'));
let current: KafkaHandle | undefined;

afterAll(async () => {
  await current?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function produce(brokers: string, topic: string, value: string): Promise<void> {
  const producer = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: [{ key: 'node-1', value }] });
  } finally {
    await producer.disconnect();
  }
}

async function readAll(brokers: string, topic: string, expected: number): Promise<string[]> {
  const consumer = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).consumer({
    groupId: `reader-${Date.now()}`,
  });
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          values.push(message.value?.toString() ?? '');
          if (values.length >= expected) resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

describe('startKafka', () => {
  it('keeps topics and messages across stop, kill and restart on the same data dir', async () => {
    const options = {
      port: await freePort(),
      controllerPort: await freePort(),
      dataDir,
      topics: [{ topic: 'restart.probe', numPartitions: 2 }],
    };
    current = await startKafka(options);
    expect(current.brokers).toBe(`127.0.0.1:${options.port}`);
    await produce(current.brokers, 'restart.probe', 'before-stop');

    await current.stop();
    expect(await kafkaReady(current.brokers)).toBe(false);

    current = await startKafka(options);
    await produce(current.brokers, 'restart.probe', 'after-restart');

    await current.kill(); // a crash: no controlled shutdown
    expect(await kafkaReady(current.brokers)).toBe(false);

    current = await startKafka(options);
    const values = await readAll(current.brokers, 'restart.probe', 2);
    expect(values.sort()).toEqual(['after-restart', 'before-stop']);
    expect(current.rssBytes()).toBeGreaterThan(0);
  });
});
