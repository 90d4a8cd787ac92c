// Config of the InfluxDB sink (`processor.influxdb`), defined once for both write APIs and read by
// the processor and `strata run`. `api: v2` posts to /api/v2/write (InfluxDB 2.x, and 1.8+, where
// the bucket is `database/retention-policy` or just `database`, the org is ignored and the token is
// `username:password`, or empty when auth is off); `api: v1` posts to /write (InfluxDB 1.x, tested
// against Debian's 1.6.7, which has no /api/v2/write).
import { z } from 'zod';
import { durationMs } from '../../lib/config.ts';

/** Batching, retries and buffer bounds shared by the v1 and v2 sinks. */
const writeTuning = {
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

/**
 * The default URL is the local stack's InfluxDB (`strata stack up`, port 18086): the processor and
 * `strata run --influx` reach it with no flags. Elsewhere set INFLUX_URL / --influx-url.
 */
export const DEFAULT_INFLUX_URL = 'http://127.0.0.1:18086';

/**
 * A retention duration as InfluxQL writes it: a whole number of hours, days or weeks (`7d`, `90d`,
 * `104w`), or `INF` (kept forever). InfluxDB 1.x refuses less than 1h.
 */
const retentionDuration = z
  .string()
  .regex(/^(\d+[hdw]|INF)$/, 'a whole number of h, d or w (7d, 90d, 104w), or INF')
  .refine((v) => v === 'INF' || Number.parseInt(v, 10) > 0, 'a duration of at least 1h');
/** A rollup interval: a whole number of s, m, h or d (`1m`, `1h`). */
const rollupInterval = z
  .string()
  .regex(/^\d+[smhd]$/, 'a whole number of s, m, h or d (1m, 1h)')
  .refine((v) => Number.parseInt(v, 10) > 0, 'an interval above 0');
/** A name InfluxQL and Flux take unquoted everywhere strata prints it (statements, dashboards). */
const influxName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and _, not starting with a digit');

export const Rollup = z.strictObject({
  /** Retention policy (1.x) the rollup is written to; bucket `<bucket>_<name>` on 2.x. */
  name: influxName,
  /** Width of one rollup point (GROUP BY time(every)); the continuous query runs this often. */
  every: rollupInterval,
  /** How long the rollup is kept. */
  duration: retentionDuration,
  /**
   * Window each run recomputes (RESAMPLE FOR); default 2 × every, so points that reach InfluxDB
   * up to one interval late are still in their rollup. Later points need a backfill (docs/storage.md).
   */
  resampleFor: rollupInterval.optional(),
});
export type Rollup = z.output<typeof Rollup>;

/** What strata's InfluxDB downsampling covers (sinks/influxdb/retention.ts, docs/storage.md). */
export const RetentionConfig = z.strictObject({
  /**
   * Create and keep in line, at start on InfluxDB 1.x, the raw retention policy, the rollup
   * policies and their continuous queries. Off by default: a new default retention policy would
   * hide the database's existing data from queries that name none, and a raw duration deletes
   * what is older, so this is the operator's choice (as with Telegraf, which creates none).
   * Env INFLUX_RETENTION_SETUP.
   */
  enabled: z.boolean().default(false),
  /**
   * Retention policy the raw points go to, made the database's default so that writes without
   * an explicit policy land in it; influxdb.retentionPolicy (or the bucket's `/rp`), when set, must name it.
   */
  rawPolicy: influxName.default('raw'),
  /** How long raw points are kept. */
  raw: retentionDuration.default('7d'),
  /** Rollups, each computed from the raw points: mean and max of every numeric field. */
  rollups: z
    .array(Rollup)
    .min(1)
    .default([
      { name: 'rollup_1m', every: '1m', duration: '90d' },
      { name: 'rollup_1h', every: '1h', duration: '730d' },
    ]),
  /**
   * Measurements rolled up. `strata_alert` is not: alerts are events, and their text and ids are
   * strings, which a mean or max drops.
   */
  measurements: z
    .array(influxName)
    .min(1)
    .default(['strata_host', 'strata_container', 'strata_vm', 'strata_guest', 'strata_overhead']),
});
export type RetentionConfig = z.output<typeof RetentionConfig>;

export const InfluxConfig = z.strictObject({
  /** Which write API: v2 (/api/v2/write, InfluxDB 2.x and 1.8+) or v1 (/write, InfluxDB 1.x). Env INFLUX_API. */
  api: z.enum(['v2', 'v1']).default('v2'),
  /** Base URL (no /api/v2; a path in it prefixes every request, e.g. behind a reverse proxy). Env INFLUX_URL, flag --influx-url. */
  url: z.url().default(DEFAULT_INFLUX_URL),
  /** v2: API token (InfluxDB 1.8: `user:password` or empty). Env INFLUX_TOKEN. */
  token: z.string().default(''),
  /** v2: organisation (ignored by 1.8). Env INFLUX_ORG. */
  org: z.string().default('strata'),
  /** v2: bucket (InfluxDB 1.8: `database` or `database/retention-policy`). Env INFLUX_BUCKET, flag --bucket. */
  bucket: z.string().min(1).default('strata'),
  /** v1: database. Env INFLUX_DATABASE, flag --database. */
  database: z.string().min(1).default('strata'),
  /** v1: retention policy (empty: the database default). Env INFLUX_RETENTION_POLICY. */
  retentionPolicy: z.string().default(''),
  /** v1: user (sent as HTTP basic auth when InfluxDB has auth enabled). Env INFLUX_USERNAME. */
  username: z.string().default(''),
  /** v1: password for `username`. Env INFLUX_PASSWORD. */
  password: z.string().default(''),
  /**
   * v1: create the database at start (CREATE DATABASE is idempotent), like Telegraf's influxdb
   * output; set false when the user may not create databases.
   */
  createDatabase: z.boolean().default(true),
  /** Retention policies and downsampling (docs/storage.md). */
  retention: RetentionConfig.prefault({}),
  ...writeTuning,
});
export type InfluxConfig = z.output<typeof InfluxConfig>;
