// The agent's Kafka output installs the kafkajs idle-loop fix
// (lib/kafka/request-queue.ts) before it creates its client: building it is enough, no
// broker needed. Without it every connection spins a 1 ms timer (≈ 40 ms of CPU per second).
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';
import { describe, expect, it } from 'vitest';
import { KafkaConfig } from '../../agent/config.ts';
import { KafkaTransport } from '../../agent/kafka.ts';

describe('kafkajs idle-loop fix', () => {
  it('is installed by the agent’s Kafka output', () => {
    const shipped = RequestQueue.prototype.scheduleCheckPendingRequests;
    new KafkaTransport(KafkaConfig.parse({ brokers: ['127.0.0.1:9'] }));
    expect(RequestQueue.prototype.scheduleCheckPendingRequests).not.toBe(shipped);
  });
});
