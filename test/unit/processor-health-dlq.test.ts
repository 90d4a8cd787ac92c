// The processor's liveness verdict (health.ts) on a controlled clock, and the dead-letter path's
// bounds and Kafka error sorting (dead-letters.ts) on kafkajs' own error objects, wrapped the way
// its producer throws them.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { deadLetter, isPermanentKafkaError, kafkaErrorType } from '../../processor/dead-letters.ts';
import { Health } from '../../processor/health.ts';
import { HEADERS } from '../../schemas/sample.ts';

const require = createRequire(import.meta.url);
// kafkajs' protocol error table: the same objects its broker responses are turned into.
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): Error & { type: string; retriable: boolean };
};
type ErrorClass = new (e: unknown, options?: Record<string, unknown>) => Error;
const {
  KafkaJSProtocolError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSConnectionError,
} = require('kafkajs/src/errors.js') as {
  KafkaJSProtocolError: ErrorClass;
  KafkaJSNonRetriableError: ErrorClass;
  KafkaJSNumberOfRetriesExceeded: ErrorClass;
  KafkaJSConnectionError: ErrorClass;
};

describe('Health', () => {
  it('is healthy while idle or advancing, stalled once paused or lagging without progress past maxStall', () => {
    let now = 1_000_000;
    const h = new Health(3_000, () => now);
    h.assign([0, 1]);
    h.batch(0, 100, 110); // 10 behind
    h.offsets(1, 50, 50); // no lag
    expect(h.check().status).toBe(200);
    now += 2_000;
    h.progressed(0, 105);
    now += 2_000; // partition 0 advanced 2 s ago
    expect(h.check().status).toBe(200);
    now += 2_000; // 4 s without progress, 5 behind
    const stuck = h.check();
    expect(stuck.status).toBe(503);
    expect(stuck.body.reasons).toEqual(['partition 0: 5 messages behind, no progress for 4 s']);
    expect(stuck.body.partitions).toEqual([
      { partition: 0, lag: 5, secondsSinceProgress: 4 },
      { partition: 1, lag: 0, secondsSinceProgress: 0 },
    ]);
    h.progressed(0, 110);
    expect(h.check().status).toBe(200);
    // Paused: healthy until maxStall has passed, then 503 naming the cause.
    h.paused(true, 'influxdb: InfluxDB at http://x: down');
    now += 3_000;
    expect(h.check().status).toBe(200);
    now += 1;
    const paused = h.check();
    expect(paused.status).toBe(503);
    expect(paused.body.cause).toBe('influxdb: InfluxDB at http://x: down');
    h.paused(false);
    expect(h.check().status).toBe(200);
    // The lag keeps rising from the brokers' high watermark while nothing is committed.
    h.offsets(0, 140);
    expect(h.lag(0)).toBe(30);
    // A revoked partition is forgotten.
    h.assign([1]);
    expect(h.lag(0)).toBeUndefined();
  });
});

describe('dead letters', () => {
  it('cuts a value past maxValueBytes to a prefix and says so; a small one is kept whole', () => {
    const big = deadLetter('k', Buffer.alloc(5_000, 'a'), { [HEADERS.dlqReason]: 'not JSON' }, 1_024);
    expect(big.value?.length).toBe(1_024);
    expect(big.headers[HEADERS.dlqOriginalSize]).toBe('5000');
    expect(big.headers[HEADERS.dlqTruncated]).toBe('true');
    expect(big.headers[HEADERS.dlqReason]).toBe('not JSON');
    const small = deadLetter(null, Buffer.from('{}'), {}, 1_024);
    expect(small.value?.toString()).toBe('{}');
    expect(small.headers[HEADERS.dlqOriginalSize]).toBe('2');
    expect(small.headers[HEADERS.dlqTruncated]).toBeUndefined();
  });

  it('finds the broker error under kafkajs wrappers; permanent ones are told from retriable ones', () => {
    // As kafkajs' retrier rejects: a non-retriable error wrapped at once, a retriable one after
    // its retries (retry/index.js).
    const nonRetriable = (e: Error) => new KafkaJSNonRetriableError(e, { cause: e });
    const exhausted = (e: Error) =>
      new KafkaJSNumberOfRetriesExceeded(e, { retryCount: 5, retryTime: 5000, cause: e });
    const tooLarge = nonRetriable(new KafkaJSProtocolError(createErrorFromCode(10)));
    expect(kafkaErrorType(tooLarge)).toBe('MESSAGE_TOO_LARGE');
    expect(isPermanentKafkaError(tooLarge)).toBe(true);
    // A missing topic, after kafkajs' own retries.
    const unknown = exhausted(new KafkaJSProtocolError(createErrorFromCode(3)));
    expect(kafkaErrorType(unknown)).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(isPermanentKafkaError(unknown)).toBe(true);
    // A broker that is down is retried.
    const down = exhausted(new KafkaJSConnectionError('Connection error: ECONNREFUSED'));
    expect(isPermanentKafkaError(down)).toBe(false);
    expect(isPermanentKafkaError(new Error('broker not available'))).toBe(false);
  });
});
