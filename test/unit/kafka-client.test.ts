// createKafka (lib/kafka/client.ts) is how the agent, the processor and `strata run` build their
// kafkajs client; building one installs strata's changes to kafkajs for the process: the
// request-queue idle fix and strata's gzip codec, with the agent's level and the processor's
// inflate bound. No broker needed: nothing connects. A file of its own: the patches are per process.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createKafka } from '../../lib/kafka/client.ts';
import { componentLogger, prettyLine } from '../../lib/log.ts';

const require = createRequire(import.meta.url);
const { CompressionCodecs, CompressionTypes } = require('kafkajs') as {
  CompressionCodecs: Record<
    number,
    () => { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> }
  >;
  CompressionTypes: { GZIP: number };
};

const base = { clientId: 't', brokers: ['127.0.0.1:9'], ssl: false, retry: { retries: 0 } };

describe('createKafka', () => {
  it('installs the idle fix and the gzip codec, with the level and the inflate bound it is given', async () => {
    const shipped = RequestQueue.prototype.scheduleCheckPendingRequests;
    const shippedGzip = CompressionCodecs[CompressionTypes.GZIP];
    const log = componentLogger('test');
    // As `strata run` does: the agent's client, then the processor's, in one process.
    createKafka({ ...base, configPath: 'agent.kafka', gzipLevel: 9, logs: 'debug' }, log);
    createKafka({ ...base, configPath: 'processor.kafka', maxInflatedBatchBytes: 1000, logs: 'warn' }, log);
    expect(RequestQueue.prototype.scheduleCheckPendingRequests).not.toBe(shipped);
    const codec = CompressionCodecs[CompressionTypes.GZIP];
    expect(codec).not.toBe(shippedGzip);
    const data = Buffer.from('x'.repeat(900));
    const gz = await codec!().compress({ buffer: data });
    expect(gz[8]).toBe(2); // gzip XFL 2: level 9, the agent's
    expect(await codec!().decompress(gz)).toEqual(data);
    // Past the processor's bound the codec refuses to inflate.
    await expect(codec!().decompress(zlib.gzipSync(Buffer.alloc(5000)))).rejects.toThrow();
  });
});

describe("kafkajs' log lines", () => {
  /** A logger like componentLogger's whose JSON lines are kept here. */
  function captured(component: string) {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'debug', base: { service: 'strata' } },
      { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
    ).child({ component });
    return { logger, lines };
  }

  it('under the "kafkajs" component the message does not say kafkajs again', () => {
    const { logger, lines } = captured('kafkajs');
    const kafka = createKafka({ ...base, configPath: 'processor.kafka', logs: 'warn' }, logger);
    kafka.logger().error('Connection error: connect ECONNREFUSED 127.0.0.1:1', { broker: '127.0.0.1:1' });
    kafka.logger().warn('Topic metadata is stale', {});
    expect(lines.map((l) => l.msg)).toEqual([
      'Connection error: connect ECONNREFUSED 127.0.0.1:1',
      'Topic metadata is stale',
    ]);
    expect(prettyLine(JSON.stringify({ ...lines[0], time: '2026-12-07T12:17:33.837Z' }))).toMatch(
      /^12:17:33 WARN {2}kafkajs: Connection error: connect ECONNREFUSED 127\.0\.0\.1:1 {2}/,
    );
  });

  it("under another component (the agent's) the message names kafkajs", () => {
    const { logger, lines } = captured('agent.kafka');
    const kafka = createKafka({ ...base, configPath: 'agent.kafka', logs: 'debug' }, logger);
    kafka.logger().error('Connection error: connect ECONNREFUSED 127.0.0.1:1', { broker: '127.0.0.1:1' });
    expect(lines.map((l) => l.msg)).toEqual(['kafkajs: Connection error: connect ECONNREFUSED 127.0.0.1:1']);
  });
});
