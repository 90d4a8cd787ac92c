// Dead letters: copies of what the processor cannot use (unreadable messages, lines InfluxDB
// refused) produced to the dead-letter topic. The DLQ is the one place a bad input must never
// block the good ones behind it, so everything here is bounded:
// - a value (and key) is cut to dlq.maxValueBytes, with headers giving the original size and that
//   it was cut: a 5 MB message the samples topic accepted still fits the DLQ's 1 MiB default;
// - records are gzip-compressed and sent in requests of at most dlq.maxRequestBytes (before gzip);
//   a request the broker still finds too large is split in halves;
// - an error that cannot succeed on retry (too large, invalid record, unknown topic after kafkajs'
//   own retries, authorization) gives the records up at once; other errors are retried for
//   dlq.maxAttempts rounds, then given up. Given up = counted in
//   strata_processor_dlq_failed_total{reason} and logged once with the Kafka error; the batch's
//   offsets are still committed, since the loss is counted and a stall would lose more.
import { CompressionTypes, type Producer } from 'kafkajs';
import { ConnectionError, errorMessage } from '../lib/errors.ts';
import type { OnceLogger } from '../lib/log.ts';
import { counter } from '../lib/metrics.ts';
import { HEADERS } from '../schemas/sample.ts';

export interface DeadLetter {
  key: Buffer | string | null;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
}

export interface DeadLetterLimits {
  maxValueBytes: number;
  maxRequestBytes: number;
  maxAttempts: number;
}

const failedTotal = counter(
  'strata_processor_dlq_failed_total',
  'Dead letters the dead-letter topic did not take, given up (the batch is committed anyway), by reason: the Kafka error type (message_too_large, unknown_topic_or_partition...) or retries_exhausted.',
  ['reason'],
);
const truncatedTotal = counter(
  'strata_processor_dlq_truncated_total',
  'Dead letters whose value or key was cut to dlq.maxValueBytes.',
);

/** Kafka error types no retry can fix (kafkajs' protocol error `type`). */
const PERMANENT = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TOPIC_EXCEPTION',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'POLICY_VIOLATION',
]);
/** Of those, the ones a smaller request may avoid. */
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * The Kafka protocol error type behind a kafkajs error, if any. kafkajs wraps the broker's error
 * (KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded) with the original as `cause`.
 */
export function kafkaErrorType(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether a produce error can never succeed by sending the same records again. */
export function isPermanentKafkaError(err: unknown): boolean {
  const type = kafkaErrorType(err);
  return type !== undefined && PERMANENT.has(type);
}

/** The error as the log should name it: "MESSAGE_TOO_LARGE: The request included...". */
export function describeKafkaError(err: unknown): string {
  const type = kafkaErrorType(err);
  const msg = errorMessage(err);
  return type && !msg.includes(type) ? `${type}: ${msg}` : msg;
}

/**
 * A dead letter of `value` whose size is bounded by `maxValueBytes` (value and key each); the
 * original size is always in a header, and `strata-dlq-truncated: true` says it was cut. The cut
 * value is a copy, so the (possibly huge) original can be collected with its batch.
 */
export function deadLetter(
  key: Buffer | string | null,
  value: Buffer | null,
  headers: Record<string, string | Buffer>,
  maxValueBytes: number,
): DeadLetter {
  const size = value?.length ?? 0;
  let truncated = false;
  let v = value;
  if (v && v.length > maxValueBytes) {
    v = Buffer.from(v.subarray(0, maxValueBytes));
    truncated = true;
  }
  let k = key;
  if (k !== null && Buffer.byteLength(k) > maxValueBytes) {
    k = Buffer.from(Buffer.from(k).subarray(0, maxValueBytes));
    truncated = true;
  }
  if (truncated) truncatedTotal.inc();
  return {
    key: k,
    value: v,
    headers: {
      ...headers,
      [HEADERS.dlqOriginalSize]: String(size),
      ...(truncated ? { [HEADERS.dlqTruncated]: 'true' } : {}),
    },
  };
}

/** Bytes a record takes in a request before compression (plus a little framing). */
function recordBytes(r: DeadLetter): number {
  let n = 64 + (r.key === null ? 0 : Buffer.byteLength(r.key)) + (r.value?.length ?? 0);
  for (const [k, v] of Object.entries(r.headers)) n += k.length + Buffer.byteLength(v);
  return n;
}

/** One batch's dead letters on their way: requests still to send, rounds tried. */
export interface DeadLetterJob {
  requests: DeadLetter[][];
  attempts: number;
  /** Records given up (counted in strata_processor_dlq_failed_total). */
  failed: number;
}

export class DeadLetterProducer {
  constructor(
    private readonly producer: Producer,
    readonly topic: string,
    private readonly limits: DeadLetterLimits,
    private readonly once: OnceLogger,
  ) {}

  /** Groups the records into requests of at most maxRequestBytes (a larger record goes alone). */
  job(letters: readonly DeadLetter[]): DeadLetterJob {
    const requests: DeadLetter[][] = [];
    let cur: DeadLetter[] = [];
    let bytes = 0;
    for (const r of letters) {
      const n = recordBytes(r);
      if (cur.length > 0 && bytes + n > this.limits.maxRequestBytes) {
        requests.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(r);
      bytes += n;
    }
    if (cur.length > 0) requests.push(cur);
    return { requests, attempts: 0, failed: 0 };
  }

  /**
   * Sends what is left of the job. Resolves when every record is acknowledged or given up; rejects
   * (retriable, naming the topic and the Kafka error) when a round failed and rounds are left:
   * the caller tries again later, and requests already acknowledged are not sent again.
   */
  async send(job: DeadLetterJob): Promise<void> {
    job.attempts++;
    while (job.requests.length > 0) {
      const records = job.requests[0] as DeadLetter[];
      try {
        await this.producer.send({
          topic: this.topic,
          acks: -1,
          compression: CompressionTypes.GZIP,
          messages: records,
        });
        job.requests.shift();
      } catch (err) {
        const type = kafkaErrorType(err);
        if (type !== undefined && TOO_LARGE.has(type) && records.length > 1) {
          const mid = Math.ceil(records.length / 2);
          job.requests.splice(0, 1, records.slice(0, mid), records.slice(mid));
          continue;
        }
        if (isPermanentKafkaError(err)) {
          job.requests.shift();
          this.giveUp(job, records.length, (type as string).toLowerCase(), err);
          continue;
        }
        if (job.attempts >= this.limits.maxAttempts) {
          const n = job.requests.reduce((s, r) => s + r.length, 0);
          job.requests = [];
          this.giveUp(job, n, 'retries_exhausted', err);
          return;
        }
        throw new ConnectionError(`dead-letter topic ${this.topic}: ${describeKafkaError(err)}`, {
          cause: err,
        });
      }
    }
  }

  private giveUp(job: DeadLetterJob, records: number, reason: string, err: unknown): void {
    job.failed += records;
    failedTotal.inc({ reason }, records);
    this.once.warn(
      `dlq-failed:${reason}`,
      { topic: this.topic, records, reason, kafkaError: describeKafkaError(err), attempts: job.attempts },
      'the dead-letter topic refused dead letters; they are dropped (counted) and the batch is committed',
    );
  }
}
