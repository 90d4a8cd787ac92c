// Records too large to decode: a record batch that inflated past kafka.maxInflatedBatchBytes (its
// records reach the runtime as stand-ins, lib/kafka/gzip.ts) and a single record value larger
// than kafka.maxMessageBytes. Neither is parsed: each becomes one dead letter (the oversized
// batch's, on its last record; its other stand-ins are skipped) and the batch's offsets are
// committed past them like any other dead letter's.
import type { KafkaMessage } from 'kafkajs';
import { OVERSIZED_PREFIX_BYTES, oversizedBatchOf } from '../lib/kafka/gzip.ts';
import { counter } from '../lib/metrics.ts';
import { HEADERS } from '../schemas/sample.ts';

const oversizedBatchesTotal = counter(
  'strata_processor_oversized_batches_total',
  'Record batches that inflated past kafka.maxInflatedBatchBytes: skipped undecoded, one dead letter each (reason inflate_limit).',
);

/** Dead-letter headers beside HEADERS' (same names as the dead-letter path's). */
const REASON_CODE = 'strata-dlq-reason-code';
const SOURCE_OFFSETS = 'strata-dlq-source-offsets';
const ORIGINAL_SIZE = 'strata-dlq-original-size';
const TRUNCATED = 'strata-dlq-truncated';

export interface Oversized {
  /** The dead-letter counter's reason_kind. */
  kind: 'inflate_limit' | 'message_too_large';
  /** The dead letter, or undefined for a stand-in whose batch is dead-lettered on its last record. */
  letter: { key: Buffer | null; value: Buffer | null; headers: Record<string, string | Buffer> } | undefined;
  /** What to log (once per kind). */
  log: Record<string, unknown>;
}

/**
 * Whether `m` is too large to decode, and its dead letter if so (undefined: an ordinary record,
 * decode it). Costs a WeakMap lookup and a length comparison per record.
 */
export function oversized(
  m: KafkaMessage,
  topic: string,
  partition: number,
  maxMessageBytes: number,
): Oversized | undefined {
  const batch = oversizedBatchOf(m.value);
  if (batch !== undefined) {
    const log = { topic, partition, ...batch, claimedBytes: batch.claimedBytes ?? null };
    if (m.value?.length === 0) return { kind: 'inflate_limit', letter: undefined, log };
    const reason =
      `inflate_limit: record batch at offsets ${batch.firstOffset}-${batch.lastOffset} (${batch.records} records, ` +
      `${batch.compressedBytes} bytes of gzip) inflates past kafka.maxInflatedBatchBytes (${batch.limit})` +
      (batch.claimedBytes !== undefined ? `; its gzip trailer claims ${batch.claimedBytes} bytes` : '') +
      `; value: the first ${m.value?.length} compressed bytes`;
    return {
      kind: 'inflate_limit',
      log,
      letter: {
        key: null,
        // A copy: the stand-in buffer it points into is not kept alive by the dead letter.
        value: Buffer.from(m.value as Buffer),
        headers: {
          [HEADERS.contentType]: 'application/gzip',
          [HEADERS.dlqReason]: reason,
          [REASON_CODE]: 'inflate_limit',
          [HEADERS.dlqSourceTopic]: topic,
          [HEADERS.dlqSourcePartition]: String(partition),
          [HEADERS.dlqSourceOffset]: batch.firstOffset,
          [SOURCE_OFFSETS]: `${batch.firstOffset}-${batch.lastOffset}`,
          [ORIGINAL_SIZE]: String(batch.compressedBytes),
          ...(batch.compressedBytes > OVERSIZED_PREFIX_BYTES ? { [TRUNCATED]: 'true' } : {}),
        },
      },
    };
  }
  const size = m.value?.length ?? 0;
  if (size <= maxMessageBytes) return undefined;
  const keep = Math.min(size, OVERSIZED_PREFIX_BYTES);
  const headers: Record<string, string | Buffer> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v !== undefined) headers[k] = Array.isArray(v) ? (v[0] ?? '') : v;
  }
  return {
    kind: 'message_too_large',
    log: { topic, partition, offset: m.offset, bytes: size, maxMessageBytes },
    letter: {
      key: m.key,
      value: Buffer.from((m.value as Buffer).subarray(0, keep)),
      headers: {
        ...headers,
        [HEADERS.dlqReason]: `message_too_large: value of ${size} bytes exceeds kafka.maxMessageBytes (${maxMessageBytes}); not parsed; value: its first ${keep} bytes`,
        [REASON_CODE]: 'message_too_large',
        [HEADERS.dlqSourceTopic]: topic,
        [HEADERS.dlqSourcePartition]: String(partition),
        [HEADERS.dlqSourceOffset]: m.offset,
        [ORIGINAL_SIZE]: String(size),
        [TRUNCATED]: 'true',
      },
    },
  };
}

/** Counts the oversized batches among a delivered batch's dead-letter kinds. */
export function countOversized(kinds: readonly string[]): void {
  let n = 0;
  for (const k of kinds) if (k === 'inflate_limit') n++;
  if (n > 0) oversizedBatchesTotal.inc(n);
}
