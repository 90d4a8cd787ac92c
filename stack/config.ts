// `strata stack` options: flag, then environment variable, then default. Every port, directory and
// version is configurable so a second stack (or a private test instance) can run beside the first.
import path from 'node:path';
import { z } from 'zod';
import { parseConfig, splitList } from '../lib/config.ts';
import { ConfigError } from '../lib/errors.ts';
import { DEFAULT_DOCKER_IMAGE } from './docker.ts';
import { DEFAULT_INFLUX_DATABASE, DEFAULT_INFLUXDB_VERSION } from './influxdb.ts';
import { DEFAULT_KAFKA_VERSION } from './kafka.ts';
import { defaultCacheDir, SERVICES } from './util.ts';

const port = z.number().int().min(1).max(65535);

export const StackConfig = z.strictObject({
  /** Installs: Kafka jars, the Maven repository, influxd, the busybox rootfs. ~/.cache/strata. */
  cacheDir: z.string().min(1),
  /** This stack's state file, logs and data (Kafka log dirs, InfluxDB shards). <cacheDir>/stack. */
  dataDir: z.string().min(1),
  /** Which services `up`/`down` act on. */
  only: z.array(z.enum(SERVICES)).min(1),
  /** Seconds each service may take from spawn to ready. */
  readyTimeoutMs: z.number().int().positive(),
  kafka: z.strictObject({
    /** Client (PLAINTEXT) listener on 127.0.0.1. */
    port,
    /** KRaft controller listener on 127.0.0.1. */
    controllerPort: port,
    /** org.apache.kafka:kafka_2.13 version on Maven Central (3.9.x: KRaft, Java 17). */
    version: z.string().regex(/^\d+\.\d+\.\d+$/),
    /** JVM -Xmx in MiB. */
    heapMb: z.number().int().min(128),
  }),
  influxdb: z.strictObject({
    /** HTTP API on 127.0.0.1. */
    port,
    /** RPC (backup/restore) service on 127.0.0.1. */
    rpcPort: port,
    /** github.com/influxdata/influxdb tag built with go install (1.8.x serves /api/v2/write). */
    version: z.string().regex(/^\d+\.\d+\.\d+$/),
    /** Database created on up. */
    database: z.string().min(1),
  }),
  docker: z.strictObject({
    /** Image imported offline from busybox-static. */
    image: z.string().min(1),
    /** dockerd --data-root (images, containers). <cacheDir>/docker, kept across stacks. */
    dataRoot: z.string().min(1),
  }),
});
export type StackConfig = z.infer<typeof StackConfig>;

export const DEFAULT_PORTS = {
  kafka: 19092,
  kafkaController: 19093,
  influxdb: 18086,
  influxdbRpc: 18088,
} as const;

/** Flags as commander hands them over (camelCase, strings). */
export interface StackFlags {
  cacheDir?: string;
  dataDir?: string;
  only?: string;
  timeout?: string;
  kafkaPort?: string;
  kafkaControllerPort?: string;
  kafkaVersion?: string;
  kafkaHeapMb?: string;
  influxPort?: string;
  influxRpcPort?: string;
  influxVersion?: string;
  influxDatabase?: string;
  dockerImage?: string;
  dockerDataRoot?: string;
}

/** Flag beats env beats default; numbers are checked here so the error names the flag and variable. */
export function resolveStackConfig(
  flags: StackFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): StackConfig {
  const pick = (flag: string | undefined, envVar: string): string | undefined =>
    flag ?? (env[envVar] || undefined);
  const num = (flag: string | undefined, flagName: string, envVar: string, fallback: number): number => {
    const raw = pick(flag, envVar);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n)) {
      throw new ConfigError(`${flagName} / ${envVar}: "${raw}" is not a whole number`);
    }
    if (flagName.endsWith('-port') && (n < 1 || n > 65535)) {
      throw new ConfigError(`${flagName} / ${envVar}: ${n} is not a TCP port (1-65535)`);
    }
    return n;
  };
  const cacheDir = path.resolve(pick(flags.cacheDir, 'STRATA_CACHE_DIR') ?? defaultCacheDir());
  const only = splitList(pick(flags.only, 'STRATA_STACK_ONLY')) ?? [...SERVICES];
  const unknown = only.filter((s) => !(SERVICES as readonly string[]).includes(s));
  if (unknown.length) {
    throw new ConfigError(
      `--only / STRATA_STACK_ONLY: unknown service(s) ${unknown.join(', ')}; accepted: ${SERVICES.join(', ')}`,
    );
  }
  return parseConfig(
    StackConfig,
    {
      cacheDir,
      dataDir: path.resolve(pick(flags.dataDir, 'STRATA_STACK_DIR') ?? path.join(cacheDir, 'stack')),
      only,
      readyTimeoutMs: num(flags.timeout, '--timeout', 'STRATA_STACK_TIMEOUT', 180) * 1000,
      kafka: {
        port: num(flags.kafkaPort, '--kafka-port', 'STRATA_KAFKA_PORT', DEFAULT_PORTS.kafka),
        controllerPort: num(
          flags.kafkaControllerPort,
          '--kafka-controller-port',
          'STRATA_KAFKA_CONTROLLER_PORT',
          DEFAULT_PORTS.kafkaController,
        ),
        version: pick(flags.kafkaVersion, 'STRATA_KAFKA_VERSION') ?? DEFAULT_KAFKA_VERSION,
        heapMb: num(flags.kafkaHeapMb, '--kafka-heap-mb', 'STRATA_KAFKA_HEAP_MB', 512),
      },
      influxdb: {
        port: num(flags.influxPort, '--influx-port', 'STRATA_INFLUX_PORT', DEFAULT_PORTS.influxdb),
        rpcPort: num(
          flags.influxRpcPort,
          '--influx-rpc-port',
          'STRATA_INFLUX_RPC_PORT',
          DEFAULT_PORTS.influxdbRpc,
        ),
        version: pick(flags.influxVersion, 'STRATA_INFLUX_VERSION') ?? DEFAULT_INFLUXDB_VERSION,
        database: pick(flags.influxDatabase, 'STRATA_INFLUX_DATABASE') ?? DEFAULT_INFLUX_DATABASE,
      },
      docker: {
        image: pick(flags.dockerImage, 'STRATA_DOCKER_IMAGE') ?? DEFAULT_DOCKER_IMAGE,
        dataRoot: path.resolve(
          pick(flags.dockerDataRoot, 'STRATA_DOCKER_DATA_ROOT') ?? path.join(cacheDir, 'docker'),
        ),
      },
    },
    'stack',
  );
}
