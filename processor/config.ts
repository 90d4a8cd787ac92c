// Config of `strata processor`: the Kafka consumer group runtime, its InfluxDB sink and alert
// outputs. Layering (lowest first): defaults < `processor:` section of the --config file < env
// vars < flags. Every key and env var is documented in docs/processor.md; docker-compose files
// use exactly these env names.
import { z } from 'zod';
import {
  type DeprecationSink,
  durationMs,
  type EnvVar,
  envLayer,
  fileLayer,
  flagLayer,
  type KeyRename,
  splitList,
  stderrDeprecation,
  validateLayers,
} from '../lib/config.ts';
import { applyKafkaSecurityEnv, KafkaSasl, KafkaSsl } from '../lib/kafka/security.ts';
import { parsePipelineConfig } from '../processors/config.ts';
import { DEFAULT_SAMPLE_LIMITS } from '../schemas/sample.ts';
import { InfluxConfig } from '../sinks/influxdb/config.ts';
import { WebhookConfig } from '../sinks/webhook/config.ts';

export const KafkaSection = z.strictObject({
  /** Bootstrap brokers, host:port. Env KAFKA_BROKERS (comma-separated), flag --brokers. */
  brokers: z
    .array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port'))
    .min(1)
    .default(['127.0.0.1:19092']),
  /** Kafka client id (shows in broker logs and quotas). Env STRATA_KAFKA_CLIENT_ID, flag --client-id. */
  clientId: z.string().min(1).default('strata-processor'),
  /** Consumer group; processors sharing it split the partitions. Env STRATA_GROUP_ID, flag --group-id. */
  groupId: z.string().min(1).default('strata-processor'),
  /** Topic the agents publish to. Env STRATA_SAMPLES_TOPIC, flag --samples-topic. */
  samplesTopic: z.string().min(1).default('strata.samples'),
  /** Dead-letter topic for messages that are not JSON or fail the schema. Env STRATA_DLQ_TOPIC. */
  dlqTopic: z.string().min(1).default('strata.dlq'),
  /** Alerts topic (keyed by node). Env STRATA_ALERTS_TOPIC. Empty string disables it. */
  alertsTopic: z.string().default('strata.alerts'),
  /** A group without committed offsets starts at the earliest message (true) or only new ones. */
  fromBeginning: z.boolean().default(true),
  /** Broker declares this consumer dead after this long without heartbeats. */
  sessionTimeout: durationMs.default(30_000),
  /** Heartbeat period; heartbeats continue while a batch waits for InfluxDB. */
  heartbeatInterval: durationMs.default(3_000),
  /** Partitions processed at the same time by this process (each one batch at a time). */
  partitionsConsumedConcurrently: z.number().int().positive().default(4),
  /**
   * Most bytes fetched per partition per request: bounds the memory of one batch. Compressed bytes:
   * agents gzip their ticks (≈ 13× on real ones at level 1), so 256 KiB is ≈ 3.3 MiB of JSON, ~100
   * ticks of 21 entities. 1 MiB held 4× that for no CPU gain (docs/processor.md "Cost").
   */
  maxBytesPerPartition: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  /**
   * Most bytes one fetched record batch may inflate to (gzip inflates up to ≈ 1000×: 400 KB can
   * hold 400 MB). Enforced inside zlib, so memory and CPU stop there; a batch past it is skipped
   * undecoded, dead-lettered (reason inflate_limit) and counted (lib/kafka/gzip.ts). Real batches
   * are at most a few MiB: an agent's is ≤ kafka.batchMaxBytes (900 KB) of JSON.
   */
  maxInflatedBatchBytes: z
    .number()
    .int()
    .positive()
    .max(2 ** 30)
    .default(32 * 1024 * 1024),
  /**
   * A record value (after inflating) larger than this is dead-lettered (reason message_too_large,
   * value cut to its first 64 KiB) without being parsed. An agent's tick is ≤ 900 KB.
   */
  maxMessageBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  /**
   * Kafka's fetch.min.bytes: the broker answers a fetch once this many (compressed) bytes are ready
   * or maxWaitTime has passed. With agents ticking at 1 Hz, answering at the first byte (Kafka's
   * default of 1) gave batches of ~5 messages, each paying a fetch, an InfluxDB request and an
   * offset commit: at 300 nodes 27–31 CPU-µs per entity-sample against 24–27 with 1 MiB and 250 ms
   * (docs/processor.md, "Cost"). A large fleet fills 1 MiB sooner than maxWaitTime.
   */
  minBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /**
   * Kafka's fetch.max.wait.ms: longest a fetch waits for minBytes. Below minBytes per this long
   * (a small fleet) it is what the data waits in the broker: part of the sample → queryable latency.
   */
  maxWaitTime: durationMs.default(250),
  /**
   * After a partition is assigned, messages this far back (by Kafka timestamp) before the
   * committed offset are re-read only to rebuild counter state, so the first rate after a restart
   * or rebalance is not lost. Must cover the longest agent tick interval.
   */
  warmup: durationMs.default(30_000),
  /**
   * After an assignment, the alerts topic is read back this far (by Kafka timestamp) to take over
   * the still-open incidents of the assigned partitions (processors/runtime/incidents.ts); an
   * incident that fired earlier is not continued. 0 disables the take-over.
   */
  incidentLookback: durationMs.default(7 * 24 * 3600_000),
  /** Longest the read-back may take before the partitions go on without it. */
  incidentReadTimeout: durationMs.default(30_000),
  /**
   * TLS to the brokers: true (system CAs) or {caFile, certFile, keyFile, rejectUnauthorized}.
   * Env STRATA_KAFKA_SSL, STRATA_KAFKA_SSL_CA/_CERT/_KEY/_REJECT_UNAUTHORIZED (as the agent's).
   */
  ssl: KafkaSsl.default(false),
  /** SASL {mechanism, username, password}; absent = none. Env STRATA_KAFKA_SASL_MECHANISM/_USERNAME/_PASSWORD. */
  sasl: KafkaSasl.optional(),
});

/** The InfluxDB sink's keys, defined once beside the sink (sinks/influxdb/config.ts). */
export const InfluxSection = InfluxConfig;

/**
 * Bounds on what one sample message may hold and when it may be dated (processors/decoder.ts,
 * docs/wire-format.md "Bounds"). A message that breaks a hard one goes to the dead-letter topic
 * with its code; what a soft one cuts is counted (strata_processor_samples_cut_total).
 */
export const SamplesSection = z.strictObject({
  /**
   * Sample times older than this before the processor's clock are refused
   * (timestamp_out_of_window). Kafka's default retention: a backlog Kafka still holds is in.
   */
  maxAge: durationMs.default(7 * 24 * 3600_000),
  /** Sample times later than this after the processor's clock are refused (an agent's clock ahead). */
  maxFuture: durationMs.default(300_000),
  /** Hard: a message with more entity samples is refused (too_many_samples). */
  maxSamplesPerMessage: z.number().int().positive().default(DEFAULT_SAMPLE_LIMITS.maxSamplesPerMessage),
  /** Soft: devices (and, apart, interfaces) of one entity beyond this are cut, the first kept. */
  maxInstancesPerEntity: z.number().int().positive().default(DEFAULT_SAMPLE_LIMITS.maxInstancesPerEntity),
  /** Hard: a counter or gauge name longer than this is refused (name_too_long). */
  maxNameLength: z.number().int().positive().default(DEFAULT_SAMPLE_LIMITS.maxNameLength),
  /**
   * Label values longer than this are cut to it and devices/interfaces named longer are cut
   * (soft); an id, name, kind, hostname or run id longer is refused (value_too_long, hard).
   */
  maxValueLength: z.number().int().positive().default(DEFAULT_SAMPLE_LIMITS.maxValueLength),
});

export const WebhookSection = WebhookConfig.extend({
  /** Alertmanager base URL (alerts are POSTed to <url>/api/v2/alerts); empty disables. Env ALERT_WEBHOOK_URL. */
  url: z.string().default(''),
});

/** How dead letters are produced (to kafka.dlqTopic), processors/runtime/dead-letters.ts. */
export const DlqSection = z.strictObject({
  /**
   * A dead letter's value is cut to this many bytes (headers give the original size), so that one
   * record fits the broker's message.max.bytes (1 MiB by default) whatever the input's size.
   */
  maxValueBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  /**
   * Most bytes (keys, values, headers, before gzip) of dead letters in one produce request; more
   * are sent in several requests, and a request the broker finds too large is split in halves.
   */
  maxRequestBytes: z
    .number()
    .int()
    .positive()
    .default(512 * 1024),
  /**
   * Rounds of producing a batch's dead letters (each with kafkajs' own retries) before they are
   * given up (counted in strata_processor_dlq_failed_total, logged once) and the batch committed.
   */
  maxAttempts: z.number().int().positive().default(3),
});

/** What /healthz reports (processors/runtime/health.ts). */
export const HealthSection = z.strictObject({
  /**
   * /healthz answers 503 once the partitions have been paused, or a partition with lag has not
   * advanced, for longer than this.
   */
  maxStall: durationMs.default(300_000),
  /** How often the lag of the assigned partitions is read from the brokers (high watermarks). */
  lagInterval: durationMs.default(10_000),
});

export const ProcessorConfig = z.strictObject({
  kafka: KafkaSection.prefault({}),
  influxdb: InfluxSection.prefault({}),
  webhook: WebhookSection.prefault({}),
  /** Bounds on sample messages: time window, sizes, names (SamplesSection). */
  samples: SamplesSection.prefault({}),
  /** The processing pipeline's own config (rates, overhead, noisyNeighbor...); see processors/config.ts. */
  pipeline: z.record(z.string(), z.unknown()).default({}),
  /** While InfluxDB fails: first delay between rounds of retries of a batch (doubles up to maxBackoff). */
  minBackoff: durationMs.default(200),
  /** Cap of that delay. */
  maxBackoff: durationMs.default(10_000),
  /** How often pipeline state of silent entities is evicted. */
  evictInterval: durationMs.default(30_000),
  dlq: DlqSection.prefault({}),
  health: HealthSection.prefault({}),
  /** host:port for /metrics and /healthz; empty disables. Env STRATA_METRICS_LISTEN, flag --metrics-listen. */
  metricsListen: z.string().default('127.0.0.1:9465'),
});
export type ProcessorConfig = z.output<typeof ProcessorConfig>;
export type ProcessorConfigInput = z.input<typeof ProcessorConfig>;

/** Flags of `strata processor` (and the processor side of `strata run`) as commander hands them over. */
export interface ProcessorFlags {
  config?: string;
  brokers?: string;
  clientId?: string;
  groupId?: string;
  samplesTopic?: string;
  influxApi?: string;
  influxUrl?: string;
  influxBucket?: string;
  influxDatabase?: string;
  influxToken?: string;
  metricsListen?: string;
}

/**
 * Environment variables and the config key each sets. With KAFKA_SECURITY_ENV (lib/kafka/security.ts:
 * STRATA_KAFKA_SSL*, STRATA_KAFKA_SASL_*), the only env names the processor reads (besides
 * STRATA_LOG_LEVEL). The Kafka names and STRATA_METRICS_LISTEN are the agent's too.
 */
export const PROCESSOR_ENV_VARS: readonly EnvVar[] = [
  { env: 'KAFKA_BROKERS', key: 'kafka.brokers', kind: 'list' },
  { env: 'STRATA_KAFKA_CLIENT_ID', key: 'kafka.clientId', kind: 'string' },
  { env: 'STRATA_GROUP_ID', key: 'kafka.groupId', kind: 'string' },
  { env: 'STRATA_SAMPLES_TOPIC', key: 'kafka.samplesTopic', kind: 'string' },
  // '' disables the alerts topic / the metrics endpoint, so an empty value is kept.
  { env: 'STRATA_ALERTS_TOPIC', key: 'kafka.alertsTopic', kind: 'string', emptyIsValue: true },
  { env: 'STRATA_DLQ_TOPIC', key: 'kafka.dlqTopic', kind: 'string' },
  { env: 'INFLUX_API', key: 'influxdb.api', kind: 'string' },
  { env: 'INFLUX_URL', key: 'influxdb.url', kind: 'string' },
  { env: 'INFLUX_TOKEN', key: 'influxdb.token', kind: 'string' },
  { env: 'INFLUX_ORG', key: 'influxdb.org', kind: 'string' },
  { env: 'INFLUX_BUCKET', key: 'influxdb.bucket', kind: 'string' },
  { env: 'INFLUX_DATABASE', key: 'influxdb.database', kind: 'string' },
  { env: 'INFLUX_RETENTION_POLICY', key: 'influxdb.retentionPolicy', kind: 'string' },
  { env: 'INFLUX_USERNAME', key: 'influxdb.username', kind: 'string' },
  { env: 'INFLUX_PASSWORD', key: 'influxdb.password', kind: 'string' },
  { env: 'INFLUX_RETENTION_SETUP', key: 'influxdb.retention.enabled', kind: 'bool' },
  { env: 'ALERT_WEBHOOK_URL', key: 'webhook.url', kind: 'string' },
  { env: 'STRATA_METRICS_LISTEN', key: 'metricsListen', kind: 'string', emptyIsValue: true },
];

/** Env var → [section, key] (section '' = top level), for the deploy files' checks. */
export const ENV_KEYS: Record<string, readonly [string, string]> = Object.fromEntries(
  PROCESSOR_ENV_VARS.map(({ env, key }) => {
    const i = key.indexOf('.');
    return [env, i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)]];
  }),
);

/** Flag → config key; the flag names are the agent's where the concept is the same. */
const FLAG_KEYS: Record<keyof Omit<ProcessorFlags, 'config'>, { key: string; flag: string }> = {
  brokers: { key: 'kafka.brokers', flag: 'brokers' },
  clientId: { key: 'kafka.clientId', flag: 'client-id' },
  groupId: { key: 'kafka.groupId', flag: 'group-id' },
  samplesTopic: { key: 'kafka.samplesTopic', flag: 'samples-topic' },
  influxApi: { key: 'influxdb.api', flag: 'influx-api' },
  influxUrl: { key: 'influxdb.url', flag: 'influx-url' },
  influxBucket: { key: 'influxdb.bucket', flag: 'influx-bucket' },
  influxDatabase: { key: 'influxdb.database', flag: 'influx-database' },
  influxToken: { key: 'influxdb.token', flag: 'influx-token' },
  metricsListen: { key: 'metricsListen', flag: 'metrics-listen' },
};

/** Keys renamed since the processor was first configured; none yet besides the agent's. */
export const PROCESSOR_KEY_RENAMES: readonly KeyRename[] = [];

export interface LoadedProcessorConfig {
  config: ProcessorConfig;
  /** Where each explicitly set key came from (config file, env X, flag --x), for --print-config. */
  sources: Map<string, string>;
}

/** defaults < file < env < flags (lib/config.ts); throws ConfigError naming each bad key and its layer. */
export function loadProcessorConfig(
  flags: ProcessorFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  onDeprecated: DeprecationSink = stderrDeprecation,
): LoadedProcessorConfig {
  const layers = fileLayer(flags.config, 'processor', PROCESSOR_KEY_RENAMES, onDeprecated);
  envLayer(layers, PROCESSOR_ENV_VARS, env);
  const { raw, sources } = layers;
  raw.kafka ??= {};
  if (typeof raw.kafka === 'object' && raw.kafka !== null && !Array.isArray(raw.kafka)) {
    const kafka = raw.kafka as Record<string, unknown>;
    for (const [key, name] of applyKafkaSecurityEnv(kafka, env, 'processor.kafka')) {
      sources.set(`kafka.${key}`, `env ${name}`);
    }
  }
  const byKey: Record<string, unknown> = {};
  const flagOf: Record<string, string> = {};
  for (const [name, { key, flag }] of Object.entries(FLAG_KEYS)) {
    const v = flags[name as keyof typeof FLAG_KEYS];
    if (v === undefined) continue;
    byKey[key] = name === 'brokers' ? splitList(v) : v;
    flagOf[key] = flag;
  }
  flagLayer(layers, byKey, (key) => flagOf[key] ?? key);
  const config = validateLayers(ProcessorConfig, layers, 'processor');
  // The pipeline's section has its own schema (processors/config.ts): checked here too, so that a
  // wrong key or value is named by --print-config and before any server is contacted.
  parsePipelineConfig(config.pipeline);
  return { config, sources };
}

/** The resolved config alone (see loadProcessorConfig). */
export function resolveProcessorConfig(
  flags: ProcessorFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): ProcessorConfig {
  return loadProcessorConfig(flags, env).config;
}
