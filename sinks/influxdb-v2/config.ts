// Config of the InfluxDB v2-API sink (`processor.influxdb` with `api: v2`). Also what InfluxDB 1.8
// serves on /api/v2/write: there the bucket is `database/retention-policy` (or just `database`),
// the org is ignored and the token is `username:password` (or empty when auth is off).
import { z } from 'zod';
import { durationMs } from '../../lib/config.ts';

/** Batching, retries and buffer bounds shared by the v1 and v2 sinks. */
export const writeTuning = {
  /** Most lines in one write request. */
  batchSize: z.number().int().positive().default(5000),
  /** Most bytes (uncompressed) in one write request. */
  maxBatchBytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  /**
   * How long a small batch may wait for more lines before it is sent when no request is in
   * flight. 0 (the default) sends at once: batches grow by themselves while requests are busy.
   * The client library's 60 s default is wrong for a live pipeline.
   */
  flushInterval: durationMs.default(0),
  /** Concurrent write requests; more lines wait and leave together when a slot frees. */
  maxInFlight: z.number().int().positive().default(2),
  /** Bodies larger than this many bytes are gzipped (InfluxDB decodes Content-Encoding: gzip). */
  gzipThreshold: z.number().int().nonnegative().default(1000),
  /**
   * zlib level of those bodies. 3 costs less than half the CPU of zlib's default 6 for ~25 % more
   * bytes on line protocol (docs/processor.md, "Cost").
   */
  gzipLevel: z.number().int().min(1).max(9).default(3),
  /**
   * Gzip also when the URL's host is loopback (127.0.0.0/8, ::1, localhost). Off by default: on
   * the same host compression only costs CPU, ~3 CPU-µs per entity-sample here and the server's
   * to decompress (docs/processor.md, "Cost").
   */
  gzipLoopback: z.boolean().default(false),
  /** Socket timeout of one request. */
  timeout: durationMs.default(10_000),
  /** First retry delay after a retryable error (429, 5xx, 401/403/404, network); doubles per attempt. */
  minRetryDelay: durationMs.default(100),
  /** Cap of the retry delay. */
  maxRetryDelay: durationMs.default(5_000),
  /**
   * How long one write() keeps retrying before it fails back to the caller (the processor then
   * pauses its partitions and tries again, indefinitely, without committing).
   */
  maxRetryTime: durationMs.default(10_000),
  /** Most lines buffered waiting for a request slot; beyond it write() fails (counted) and is retried by the caller. */
  maxBufferLines: z.number().int().positive().default(200_000),
};

const WriteTuning = z.object(writeTuning);
export type WriteTuning = z.output<typeof WriteTuning>;

/** The writer options (writer.ts) that the shared tuning keys set, for both sinks. */
export function tuningOptions(c: WriteTuning) {
  return {
    batchSize: c.batchSize,
    maxBatchBytes: c.maxBatchBytes,
    flushIntervalMs: c.flushInterval,
    maxInFlight: c.maxInFlight,
    gzipThreshold: c.gzipThreshold,
    gzipLevel: c.gzipLevel,
    gzipLoopback: c.gzipLoopback,
    timeoutMs: c.timeout,
    minRetryDelayMs: c.minRetryDelay,
    maxRetryDelayMs: c.maxRetryDelay,
    maxRetryTimeMs: c.maxRetryTime,
    maxBufferLines: c.maxBufferLines,
  };
}

export const InfluxV2Config = z.strictObject({
  /** Base URL of InfluxDB, e.g. http://127.0.0.1:8086 (no /api/v2). */
  url: z.url().default('http://127.0.0.1:8086'),
  /** API token (InfluxDB 1.8: `user:password`, or empty without auth). */
  token: z.string().default(''),
  /** Organisation (ignored by InfluxDB 1.8). */
  org: z.string().default('strata'),
  /** Bucket (InfluxDB 1.8: `database/retention-policy` or `database`). */
  bucket: z.string().min(1).default('strata'),
  ...writeTuning,
});
export type InfluxV2Config = z.output<typeof InfluxV2Config>;
