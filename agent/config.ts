// `strata agent` configuration. One zod strictObject, every key documented where declared, parsed
// with lib/config.ts so a bad key is named with the accepted keys. Layering (later wins):
//   schema defaults < config file (`--config`, section `agent:`) < environment variables < flags.
// Every key and env var is listed in docs/agent.md; docker-compose files must use exactly these names.
import { z } from 'zod';
import {
  type DeprecationSink,
  durationMs,
  type EnvVar,
  envLayer,
  fileLayer,
  flagLayer,
  type KeyRename,
  renameSnakeKeys,
  splitList,
  stderrDeprecation,
  validateLayers,
} from '../lib/config.ts';
import { ConfigError } from '../lib/errors.ts';
import {
  applyKafkaSecurityEnv,
  KAFKA_SECURITY_ENV,
  KAFKA_SECURITY_ENV_NAMES,
  KafkaSasl,
  KafkaSsl,
} from '../lib/kafka/security.ts';

export const OUTPUTS = ['kafka', 'ndjson'] as const;
export const COMPRESSIONS = ['gzip', 'lz4', 'zstd', 'none'] as const;
export { KafkaSasl, KafkaSsl, SASL_MECHANISMS } from '../lib/kafka/security.ts';

const MiB = 1024 * 1024;

export const KafkaConfig = z.strictObject({
  /** Bootstrap brokers, host:port. */
  brokers: z
    .array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port'))
    .min(1)
    .default(['127.0.0.1:19092']), // the project's stack (strata stack up), like the processor's default
  /** Topic the samples go to; must exist (strata stack creates it). Same key as the processor's. */
  samplesTopic: z.string().min(1).default('strata.samples'),
  /** Kafka client id (broker logs and quotas). */
  clientId: z.string().min(1).default('strata-agent'),
  /** Record-batch compression. gzip is built in; lz4 and zstd need their codec package (docs/agent.md). */
  compression: z.enum(COMPRESSIONS).default('gzip'),
  /**
   * zlib level for gzip (Kafka's producer setting compression.gzip.level). 1, not zlib's 6: on a
   * real 200-container tick level 6 costs 1.39 ms CPU (≈ 7 µs per entity-sample, as much as
   * reading two cgroup files) for 7.9 KB, level 1 0.44 ms for 13.3 KB (docs/agent.md "Cost").
   */
  gzipLevel: z.number().int().min(1).max(9).default(1),
  /** TLS to the brokers (lib/kafka/security.ts, shared with the processor). */
  ssl: KafkaSsl.default(false),
  /** SASL authentication; absent = none. */
  sasl: KafkaSasl.optional(),
  /** TCP connect timeout per broker. */
  connectionTimeout: durationMs.default(3000),
  /** How long the broker may take to acknowledge a produce request (acks=all). */
  requestTimeout: durationMs.default(10_000),
  /** At most this many buffered ticks go out in one produce request while draining. */
  batchMaxTicks: z.number().int().positive().default(100),
  /**
   * At most this many uncompressed bytes per produce request. Kafka's default message.max.bytes
   * (1 MiB) applies to the compressed batch, so staying under it uncompressed is always safe.
   */
  batchMaxBytes: z
    .number()
    .int()
    .positive()
    .default(900 * 1024),
});
export type KafkaConfig = z.output<typeof KafkaConfig>;

export const BufferConfig = z.strictObject({
  /** Ticks kept in memory while Kafka is unreachable; beyond it the oldest are spilled or dropped. */
  maxTicks: z.number().int().positive().default(3600),
  /** Bytes (encoded messages) kept in memory; the same overflow rule as maxTicks. */
  maxBytes: z
    .number()
    .int()
    .positive()
    .default(64 * MiB),
  /** Base path of an on-disk overflow buffer (segments <path>.000001...); survives restarts. */
  spillFile: z.string().min(1).optional(),
  /** Bytes on disk for the spill file; beyond it the oldest segment is dropped (and counted). */
  maxSpillBytes: z
    .number()
    .int()
    .positive()
    .default(256 * MiB),
  /**
   * Corrupt spill segments found at start-up are set aside as <segment>.corrupt-<ms> for
   * inspection; at most this many are kept (oldest deleted first).
   */
  quarantineMaxFiles: z.number().int().nonnegative().default(4),
  /** Bytes of quarantined spill segments kept at most (oldest deleted first). */
  quarantineMaxBytes: z
    .number()
    .int()
    .nonnegative()
    .default(64 * MiB),
  /**
   * Keep ticks that must wait (output behind or down) gzip-compressed (level 1, ~30x smaller on
   * real messages), so maxBytes and maxSpillBytes hold ~30x more outage. Ticks sent at once are
   * never compressed.
   */
  compressBacklog: z.boolean().default(true),
});
export type BufferConfig = z.output<typeof BufferConfig>;

export const PathsConfig = z.strictObject({
  /** The host's /proc (HOST_PROC), e.g. /host/proc when the agent runs in a container. */
  proc: z.string().min(1).default('/proc'),
  /** The host's /sys (HOST_SYS). */
  sys: z.string().min(1).default('/sys'),
  /** The cgroup mount root (HOST_CGROUP); default <sys>/fs/cgroup. */
  cgroup: z.string().min(1).optional(),
});

/** Builds the agent schema around the registered collectors' own schemas (collectors/registry.ts). */
export function agentConfigSchema(collectorSchemas: Record<string, z.ZodType>) {
  const collectorShape: Record<string, z.ZodType> = {};
  for (const [name, schema] of Object.entries(collectorSchemas)) {
    // An object = enabled with these settings. `true`/`false` are taken out before validation
    // (loadAgentConfig) so that errors inside a collector's settings name its accepted keys.
    collectorShape[name] = schema.optional();
  }
  return z.strictObject({
    /**
     * This node's id: the Kafka key and the `node` tag of every point; stable across restarts.
     * Default: the machine-id (HOST_ETC/machine-id), else the hostname.
     */
    nodeId: z.string().min(1).optional(),
    /** Extra labels for the node (rack, zone, cluster). */
    labels: z.record(z.string(), z.string()).default({}),
    /** Tick interval; ticks align to wall-clock multiples of it so every node's ticks line up. */
    interval: durationMs
      .pipe(
        z
          .number()
          .int()
          .min(10, 'expected at least 10ms (a bare number is milliseconds: write 1s for one second)'),
      )
      .default(1000),
    /**
     * How long one collector may take per tick; a slower one is left out of that tick (and
     * counted) so it never delays the others. Default: 80% of the interval.
     */
    collectTimeout: durationMs.pipe(z.number().int().positive()).optional(),
    /** Collectors to run, by name; see docs/agent.md. Absent names use the registry's default. */
    collectors: z.strictObject(collectorShape).default({}),
    /** Where ticks go: kafka, or ndjson (one JSON line per tick on stdout). */
    output: z.enum(OUTPUTS).default('kafka'),
    kafka: KafkaConfig.default(KafkaConfig.parse({})),
    buffer: BufferConfig.default(BufferConfig.parse({})),
    paths: PathsConfig.default(PathsConfig.parse({})),
    /** Docker Engine API endpoint for container names and images (unix:///var/run/docker.sock). */
    dockerHost: z.string().min(1).optional(),
    /** host:port to serve Prometheus /metrics and /healthz on; absent = not served. */
    metricsListen: z
      .string()
      .regex(/^[^\s]*:\d+$/, 'expected host:port or :port')
      .optional(),
    /** On SIGINT/SIGTERM, how long to keep flushing buffered ticks before exiting. */
    shutdownTimeout: durationMs.default(5000),
  });
}
export type AgentConfig = z.output<ReturnType<typeof agentConfigSchema>>;

/**
 * Environment variables and the config key each sets. The Kafka names (brokers, samples topic,
 * client id, TLS/SASL) and STRATA_METRICS_LISTEN are the processor's too.
 */
export const ENV_VARS: ReadonlyArray<EnvVar> = [
  { env: 'STRATA_NODE_ID', key: 'nodeId', kind: 'string' },
  { env: 'STRATA_INTERVAL', key: 'interval', kind: 'string' },
  { env: 'STRATA_COLLECT_TIMEOUT', key: 'collectTimeout', kind: 'string' },
  { env: 'STRATA_OUTPUT', key: 'output', kind: 'string' },
  { env: 'KAFKA_BROKERS', key: 'kafka.brokers', kind: 'list' },
  { env: 'STRATA_SAMPLES_TOPIC', key: 'kafka.samplesTopic', kind: 'string' },
  { env: 'STRATA_KAFKA_CLIENT_ID', key: 'kafka.clientId', kind: 'string' },
  { env: 'STRATA_KAFKA_COMPRESSION', key: 'kafka.compression', kind: 'string' },
  { env: 'STRATA_KAFKA_GZIP_LEVEL', key: 'kafka.gzipLevel', kind: 'number' },
  // TLS and SASL: the same variables as the processor's; applied by applyKafkaSecurityEnv.
  ...KAFKA_SECURITY_ENV.map((e) => ({ env: e.env, key: `kafka.${e.key}`, kind: e.kind })),
  { env: 'STRATA_BUFFER_MAX_TICKS', key: 'buffer.maxTicks', kind: 'number' },
  { env: 'STRATA_BUFFER_MAX_BYTES', key: 'buffer.maxBytes', kind: 'number' },
  { env: 'STRATA_SPILL_FILE', key: 'buffer.spillFile', kind: 'string' },
  { env: 'STRATA_SPILL_MAX_BYTES', key: 'buffer.maxSpillBytes', kind: 'number' },
  { env: 'STRATA_METRICS_LISTEN', key: 'metricsListen', kind: 'string' },
  { env: 'STRATA_SHUTDOWN_TIMEOUT', key: 'shutdownTimeout', kind: 'string' },
  { env: 'HOST_PROC', key: 'paths.proc', kind: 'string' },
  { env: 'HOST_SYS', key: 'paths.sys', kind: 'string' },
  { env: 'HOST_CGROUP', key: 'paths.cgroup', kind: 'string' },
  { env: 'DOCKER_HOST', key: 'dockerHost', kind: 'string' },
  // Handled specially: selects which collectors run (see selectCollectors).
  { env: 'STRATA_COLLECTORS', key: '(collectors)', kind: 'list' },
];

/**
 * Keys spelt differently before agent and processor shared one vocabulary. The old spelling is
 * still read from a config file, with one deprecation line naming the new key.
 */
export const AGENT_KEY_RENAMES: readonly KeyRename[] = [{ from: 'kafka.topic', to: 'kafka.samplesTopic' }];

/** Flag values after commander, keyed like the config (dotted). */
export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

export interface LoadOptions {
  collectorSchemas: Record<string, z.ZodType>;
  /** Registry defaults: which collectors run when the config does not say. */
  defaultCollectors: readonly string[];
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Dotted config key -> value, from flags. `(collectors)` selects collectors. */
  flags?: FlagValues;
  /** Where deprecation lines go (default: stderr, once each). */
  onDeprecated?: DeprecationSink;
}

export interface LoadedConfig {
  config: AgentConfig;
  /** Enabled collector name -> its raw sub-config (validated by the registry factory). */
  enabled: string[];
  /** Where each explicitly set key came from, for error messages and `--print-config`. */
  sources: Map<string, string>;
}

/** Reads and merges all layers (lib/config.ts), validates once, and names the layer of any bad key. */
export function loadAgentConfig(opts: LoadOptions): LoadedConfig {
  const env = opts.env ?? process.env;
  const warn = opts.onDeprecated ?? stderrDeprecation;
  const layers = fileLayer(opts.configFile, 'agent', AGENT_KEY_RENAMES, warn, true);
  const { raw, sources } = layers;

  let selected: string[] | undefined;
  let selectedFrom = '';
  const collectorsEnv = env.STRATA_COLLECTORS;
  if (collectorsEnv) {
    selected = splitList(collectorsEnv);
    selectedFrom = 'env STRATA_COLLECTORS';
  }
  envLayer(
    layers,
    ENV_VARS.filter((e) => e.key !== '(collectors)' && !KAFKA_SECURITY_ENV_NAMES.has(e.env)),
    env,
  );
  raw.kafka ??= {};
  if (typeof raw.kafka === 'object' && raw.kafka !== null && !Array.isArray(raw.kafka)) {
    const kafka = raw.kafka as Record<string, unknown>;
    for (const [key, name] of applyKafkaSecurityEnv(kafka, env, 'agent.kafka')) {
      sources.set(`kafka.${key}`, `env ${name}`);
    }
  }
  const { '(collectors)': collectorFlag, ...flags } = opts.flags ?? {};
  if (collectorFlag !== undefined) {
    selected = Array.isArray(collectorFlag) ? collectorFlag : splitList(String(collectorFlag));
    selectedFrom = 'flag --collectors';
  }
  flagLayer(layers, flags, flagName);

  const names = Object.keys(opts.collectorSchemas);
  if (selected) {
    const unknown = selected.filter((n) => !names.includes(n));
    if (unknown.length) {
      throw new ConfigError(
        `${selectedFrom}: unknown collector(s) ${unknown.join(', ')}; accepted: ${names.join(', ') || '(none registered)'}`,
      );
    }
    const collectors = (raw.collectors ?? {}) as Record<string, unknown>;
    const picked: Record<string, unknown> = {};
    for (const n of names) {
      const current = collectors[n];
      picked[n] = selected.includes(n)
        ? typeof current === 'object' && current !== null
          ? current
          : true
        : false;
    }
    raw.collectors = picked;
  }

  // Booleans: true = enabled with defaults, false = disabled.
  const disabled = new Set<string>();
  const rawCollectors = raw.collectors;
  if (typeof rawCollectors === 'object' && rawCollectors !== null && !Array.isArray(rawCollectors)) {
    const rc = rawCollectors as Record<string, unknown>;
    for (const [n, v] of Object.entries(rc)) {
      if (v === true || v === null) rc[n] = {};
      else if (v === false) {
        disabled.add(n);
        delete rc[n];
      } else {
        const schema = opts.collectorSchemas[n];
        if (schema) renameSnakeKeys(v, schema, `agent.collectors.${n}`, warn);
      }
    }
  }

  const config = validateLayers(agentConfigSchema(opts.collectorSchemas), layers, 'agent');
  const collectors = config.collectors as Record<string, unknown>;
  const enabled = names.filter(
    (n) => !disabled.has(n) && (collectors[n] !== undefined || opts.defaultCollectors.includes(n)),
  );
  return { config, enabled, sources };
}

/** Settings of one collector ({} when given as `true` or absent). */
export function collectorSubConfig(config: AgentConfig, name: string): unknown {
  return (config.collectors as Record<string, unknown>)[name] ?? {};
}

/** Config keys whose flag is not the key spelled in kebab case (cli/agent.ts). */
const FLAG_FOR_KEY: Readonly<Record<string, string>> = {
  'kafka.brokers': 'brokers',
  'kafka.samplesTopic': 'samples-topic',
  'kafka.clientId': 'client-id',
  'kafka.compression': 'compression',
  'kafka.gzipLevel': 'gzip-level',
  'buffer.spillFile': 'spill-file',
  'buffer.maxSpillBytes': 'spill-max-bytes',
};

/** The command-line flag (without --) that sets a config key, as errors name it. */
export function flagName(key: string): string {
  const named = FLAG_FOR_KEY[key];
  if (named) return named;
  return key
    .split('.')
    .map((p) => p.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))
    .join('-');
}
