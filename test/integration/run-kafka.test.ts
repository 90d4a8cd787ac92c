// `strata run --brokers`: the same command through the real broker. The agent publishes its ticks to
// Kafka and the processor runtime (a consumer group of its own, starting at the end of the topic)
// feeds the view; in this mode nothing else connects the two, so figures on screen prove the trip.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const brokers = inject('kafkaBrokers');
const topic = `strata.samples.run-${randomUUID().slice(0, 8)}`;
const admin = new Kafka({
  clientId: 'run-kafka-test',
  brokers: [brokers],
  logLevel: logLevel.NOTHING,
}).admin();

beforeAll(async () => {
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
});

afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
});

describe('strata run --brokers', () => {
  it('shows rates computed from ticks that went through the broker', async () => {
    const run = spawnSync(
      process.execPath,
      [
        'bin/strata.js',
        'run',
        '--brokers',
        brokers,
        '--collectors',
        'host',
        '--output',
        'ndjson',
        '--ticks',
        '3',
      ],
      {
        env: { ...process.env, STRATA_SAMPLES_TOPIC: topic, STRATA_LOG_LEVEL: 'warn' },
        encoding: 'utf8',
        timeout: 90_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const frames = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { entities: { layer: string; cpuCores?: number }[] });
    expect(frames).toHaveLength(3);
    const host = frames[2]!.entities.find((e) => e.layer === 'host');
    expect(host?.cpuCores).toBeGreaterThan(0);

    // The ticks are on the topic, keyed by node id.
    const offsets = await admin.fetchTopicOffsets(topic);
    const total = offsets.reduce((a, o) => a + Number(o.high) - Number(o.low), 0);
    expect(total).toBeGreaterThanOrEqual(3);
  });
});
