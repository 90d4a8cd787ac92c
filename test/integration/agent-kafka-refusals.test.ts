// Kafka refusals that retrying cannot fix, against the stack's real broker: a topic whose
// max.message.bytes (set per topic with the admin client) is smaller than one tick. The agent's
// real Kafka output (KafkaTransport + Publisher) drops that tick, counts it, names its size and the
// limit in one log line, and delivers the ticks around it: exact seqs in Kafka.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { Agent } from '../../agent/agent.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { agentMetrics } from '../../agent/metrics.ts';
import { collectorSchemas, defaultCollectors } from '../../collectors/registry.ts';
import type { Accumulator, Collector } from '../../collectors/types.ts';
import { rootLogger } from '../../lib/log.ts';
import { validateSampleMessage } from '../../schemas/sample.ts';

/** `entities` entity samples per tick; their random ids keep gzip from shrinking a big tick under the limit. */
class SizedCollector implements Collector {
  readonly name = 'sized';
  entities = 1;
  async gather(acc: Accumulator): Promise<void> {
    for (let i = 0; i < this.entities; i++) {
      const id = randomUUID();
      acc.add({
        entity: { layer: 'container', kind: 'container', id, name: id, labels: {} },
        counters: { cpu_usage_usec_total: i },
        gauges: {},
      });
    }
  }
}

async function rejectedTotal(): Promise<number> {
  const m = await agentMetrics.publishRejected.get();
  return m.values.find((v) => v.labels.reason === 'too_large')?.value ?? 0;
}

describe('agent: Kafka refusals for good', () => {
  it('a tick larger than the topic max.message.bytes is dropped and counted; the next ticks are delivered', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = `strata.agent-too-large.${randomUUID().slice(0, 8)}`;
    const limit = 20_000;
    const kafka = new Kafka({
      clientId: 'strata-refusal-test',
      brokers: [brokers],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: String(limit) }],
        },
      ],
      waitForLeaders: true,
    });

    const { config, enabled } = loadAgentConfig({
      collectorSchemas: collectorSchemas(),
      defaultCollectors: defaultCollectors(),
      env: { KAFKA_BROKERS: brokers, STRATA_SAMPLES_TOPIC: topic, STRATA_INTERVAL: '1s' },
      flags: { '(collectors)': 'host' },
    });
    const sized = new SizedCollector();
    const lines: string[] = [];
    const log = rootLogger.child({ component: 'test' });
    const warn = log.warn.bind(log);
    log.warn = ((obj: unknown, msg?: string) => {
      lines.push(`${msg} ${JSON.stringify(obj)}`);
      warn(obj as object, msg);
    }) as typeof log.warn;
    const agent = new Agent({
      config,
      enabled,
      version: 'test',
      collectors: [sized],
      node: { id: `too-large-${randomUUID().slice(0, 6)}`, hostname: 'h', labels: {} },
      log,
    });
    const before = await rejectedTotal();
    await agent.init();
    agent.publisher.start();
    const ts0 = 1_795_000_000_000;
    // seq 0 small, seq 1 of 2000 entities (≈ 300 KB, ≈ 90 KB gzip), then 3 small ones, queued
    // together so the big one also travels in a batch with small ones.
    for (const [i, n] of [1, 2000, 1, 1, 1].entries()) {
      sized.entities = n;
      await agent.tick(ts0 + i * 1000);
    }
    for (let i = 0; i < 200 && agent.buffer.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(agent.buffer.length).toBe(0);
    expect(await rejectedTotal()).toBe(before + 1);
    // A second big tick: dropped too, logged only once.
    sized.entities = 2000;
    await agent.tick(ts0 + 5000);
    sized.entities = 1;
    await agent.tick(ts0 + 6000);
    for (let i = 0; i < 200 && agent.buffer.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await rejectedTotal()).toBe(before + 2);
    const { unsent } = await agent.stop(5000);
    expect(unsent).toBe(0);

    const refused = lines.filter((l) => l.includes('refused a tick for good'));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toContain(`max.message.bytes ${limit}`);
    expect(refused[0]).toMatch(/"tick_bytes":\d{6}/);
    expect(refused[0]).toContain(`"limit_bytes":${limit}`);

    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const total = ends.reduce((n, e) => n + Number(e.high), 0);
    expect(total).toBe(5);
    const seqs: number[] = [];
    const consumer = kafka.consumer({ groupId: `strata-refusal-test-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          const m = validateSampleMessage(JSON.parse(message.value!.toString('utf8')));
          if (!m.ok) throw new Error(m.reason);
          seqs.push(m.message.seq);
          if (seqs.length >= total) resolve();
        },
      });
    });
    await consumer.disconnect();
    expect(seqs).toEqual([0, 2, 3, 4, 6]);
  });
});
