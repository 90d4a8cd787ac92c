// Apache Kafka in KRaft mode (one process that is both broker and controller), from Maven Central
// jars rather than a tarball: Maven Central is reachable where downloads.apache.org is not.
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { StrataError } from '../lib/errors.ts';
import {
  addScramArgs,
  type ClientTlsFiles,
  checkUsers,
  DEFAULT_KAFKA_USERS,
  ensureClientTlsFiles,
  ensureTlsFiles,
  type KafkaSecurityInfo,
  type KafkaSecurityOptions,
  type KafkaUser,
  needsTls,
  SASL_MECHANISMS,
  scramFingerprint,
  securityInfo,
  securityProperties,
  type TlsFiles,
} from './kafka-security.ts';
import {
  assertPortFree,
  defaultCacheDir,
  fileExists,
  isPortFree,
  killPid,
  type Progress,
  requireCommand,
  runCommand,
  type ServiceHandle,
  silentProgress,
  spawnService,
  stopPid,
  treeRssBytes,
  waitUntilReady,
  withHeartbeat,
} from './util.ts';

export const DEFAULT_KAFKA_VERSION = '3.9.2';
const SLF4J_VERSION = '1.7.36';

/** The topics strata uses; `stack up` creates them. Partitions bound the processor's parallelism. */
export const STACK_TOPICS = [
  { topic: 'strata.samples', numPartitions: 6 },
  { topic: 'strata.alerts', numPartitions: 1 },
  { topic: 'strata.dlq', numPartitions: 1 },
] as const;

export interface KafkaInstallOptions {
  cacheDir?: string;
  version?: string;
  progress?: Progress;
}

/**
 * Fetches kafka_2.13 and its dependencies into <cache>/kafka-<version>/libs (once). The Maven
 * repository lives in <cache>/m2 so the cache is self-contained and easy to delete.
 * Returns the libs directory.
 */
export async function installKafka(options: KafkaInstallOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const version = options.version ?? DEFAULT_KAFKA_VERSION;
  const progress = options.progress ?? silentProgress;
  const home = path.join(cacheDir, `kafka-${version}`);
  const libs = path.join(home, 'libs');
  if (fileExists(path.join(libs, `kafka_2.13-${version}.jar`))) return libs;

  requireCommand('java', 'to run Kafka', 'apt-get install -y openjdk-17-jre-headless');
  const mvn = requireCommand('mvn', 'to fetch the Kafka jars from Maven Central', 'apt-get install -y maven');
  mkdirSync(home, { recursive: true });
  writeFileSync(path.join(home, 'pom.xml'), kafkaPom(version));
  // Fetch into a private dir, then rename: two concurrent first installs cannot see half a libs/.
  const staging = path.join(home, `libs.tmp-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  const started = Date.now();
  progress(`kafka: fetching kafka_2.13 ${version} jars from Maven Central into ${libs} (first run only)`);
  await withHeartbeat(
    progress,
    'kafka: mvn dependency:copy-dependencies',
    runCommand(
      mvn,
      [
        '-q',
        '-B',
        `-Dmaven.repo.local=${path.join(cacheDir, 'm2')}`,
        'dependency:copy-dependencies',
        `-DoutputDirectory=${staging}`,
      ],
      { cwd: home },
    ),
  ).catch((err: unknown) => {
    throw new StrataError(
      `could not fetch Kafka ${version} from Maven Central (is the network/proxy set up for mvn? ` +
        `is ${version} a released kafka_2.13 version?): ${(err as Error).message}`,
      { cause: err },
    );
  });
  try {
    renameSync(staging, libs);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another install won the race
  }
  progress(`kafka: jars fetched in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return libs;
}

function kafkaPom(version: string): string {
  const dep = (g: string, a: string, v: string) =>
    `    <dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by strata stack: the Kafka broker's classpath. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>strata.stack</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
${dep('org.apache.kafka', 'kafka_2.13', version)}
${dep('org.slf4j', 'slf4j-api', SLF4J_VERSION)}
${dep('org.slf4j', 'slf4j-simple', SLF4J_VERSION)}
  </dependencies>
</project>
`;
}

export interface KafkaOptions {
  /** Client (PLAINTEXT) port on 127.0.0.1. */
  port: number;
  /** KRaft controller port on 127.0.0.1. */
  controllerPort: number;
  /** Holds server.properties, the log dirs and kafka.log. Reusing it restarts on the same data. */
  dataDir: string;
  cacheDir?: string;
  version?: string;
  /** JVM max heap, MiB. */
  heapMb?: number;
  /** Own session: outlives this process (`stack up`). Default false: dies with the caller's group. */
  detached?: boolean;
  readyTimeoutMs?: number;
  /** Topics to create once ready (existing ones are left alone). */
  topics?: readonly { topic: string; numPartitions: number }[];
  /**
   * Extra listeners: SASL_PLAINTEXT, SSL, SASL_SSL, MTLS (stack/kafka-security.ts). The CA and
   * server certificate are made in <dataDir>/tls on first use, client certificates (MTLS) in
   * <dataDir>/tls/clients; the PLAINTEXT listener stays as it is.
   */
  security?: KafkaSecurityOptions;
  progress?: Progress;
}

export interface KafkaHandle extends ServiceHandle {
  /** "127.0.0.1:<port>", for kafkajs `brokers`. */
  readonly brokers: string;
  readonly port: number;
  readonly controllerPort: number;
  /** Addresses of the secured listeners, the CA file and the SASL users (with `security`). */
  readonly security?: KafkaSecurityInfo;
}

/** Starts (formatting on first use) a single-node KRaft Kafka and waits until it serves metadata. */
export async function startKafka(options: KafkaOptions): Promise<KafkaHandle> {
  const progress = options.progress ?? silentProgress;
  await assertPortFree(options.port, 'kafka', '--kafka-port', 'STRATA_KAFKA_PORT');
  await assertPortFree(
    options.controllerPort,
    'the kafka controller',
    '--kafka-controller-port',
    'STRATA_KAFKA_CONTROLLER_PORT',
  );
  const security = options.security;
  const securePorts: [number | undefined, string][] = [
    [security?.saslPlaintextPort, 'the kafka SASL_PLAINTEXT listener'],
    [security?.sslPort, 'the kafka SSL listener'],
    [security?.saslSslPort, 'the kafka SASL_SSL listener'],
    [security?.mtlsPort, 'the kafka MTLS listener'],
  ];
  for (const [p, what] of securePorts) {
    if (p !== undefined && !(await isPortFree(p))) {
      throw new StrataError(`port ${p} for ${what} is in use (by another process); pick another port`);
    }
  }
  const libs = await installKafka({ cacheDir: options.cacheDir, version: options.version, progress });
  const java = requireCommand('java', 'to run Kafka', 'apt-get install -y openjdk-17-jre-headless');

  const dataDir = path.resolve(options.dataDir);
  const logDir = path.join(dataDir, 'kraft-logs');
  mkdirSync(logDir, { recursive: true });
  let tls: TlsFiles | undefined;
  let clients: ClientTlsFiles | undefined;
  if (security && needsTls(security)) {
    tls = await ensureTlsFiles(path.join(dataDir, 'tls'));
    if (security.mtlsPort !== undefined) clients = await ensureClientTlsFiles(tls);
  }
  const config = path.join(dataDir, 'server.properties');
  writeFileSync(config, serverProperties(options.port, options.controllerPort, logDir, security, tls));
  const logFile = path.join(dataDir, 'kafka.log');
  const classpath = `${libs}/*`;

  // SCRAM credentials live in the metadata log: written at format time, or (a data dir formatted
  // before, with other users) by kafka-configs once the broker is up.
  const users = security ? (security.users ?? DEFAULT_KAFKA_USERS) : [];
  if (security) checkUsers(users);
  const scramMarker = path.join(dataDir, 'scram-users.sha256');
  const wantScram = createHash('sha256').update(scramFingerprint(users)).digest('hex');
  let addScramLater = false;
  if (!fileExists(path.join(logDir, 'meta.properties'))) {
    const clusterId = kafkaClusterId();
    progress(`kafka: formatting ${logDir} (cluster id ${clusterId})`);
    await runCommand(java, [
      '-Xmx256m',
      '-cp',
      classpath,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      config,
      ...addScramArgs(users),
    ]);
    writeFileSync(scramMarker, `${wantScram}\n`);
  } else if (users.length && readText(scramMarker)?.trim() !== wantScram) {
    addScramLater = true;
  }

  const started = Date.now();
  progress(`kafka: starting on 127.0.0.1:${options.port} (controller ${options.controllerPort})`);
  const { pid } = spawnService(
    java,
    [
      `-Xmx${options.heapMb ?? 512}m`,
      '-Xms128m',
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-Djava.awt.headless=true',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=info',
      '-Dorg.slf4j.simpleLogger.showDateTime=true',
      '-cp',
      classpath,
      'kafka.Kafka',
      config,
    ],
    { logFile, detached: options.detached ?? false },
  );
  const brokers = `127.0.0.1:${options.port}`;
  try {
    await waitUntilReady(`kafka (${brokers})`, () => kafkaReady(brokers), {
      pid,
      logFile,
      timeoutMs: options.readyTimeoutMs ?? 120_000,
      intervalMs: 500,
    });
    if (addScramLater) {
      progress('kafka: adding the SCRAM users to an existing data dir (kafka-configs)');
      await addScramUsers(brokers, users, { cacheDir: options.cacheDir, version: options.version });
      writeFileSync(scramMarker, `${wantScram}\n`);
    }
    if (options.topics?.length) await createTopics(brokers, options.topics);
  } catch (err) {
    await stopPid(pid, config, 10_000);
    throw err;
  }
  const startMs = Date.now() - started;
  return {
    service: 'kafka',
    pid,
    address: brokers,
    brokers,
    port: options.port,
    controllerPort: options.controllerPort,
    security: security ? securityInfo(security, tls, clients) : undefined,
    dataDir,
    logFile,
    marker: config,
    startMs,
    // Controlled shutdown of a single KRaft node takes a few seconds; 30 s covers a loaded machine.
    stop: async () => {
      await stopPid(pid, config, 30_000);
    },
    kill: () => killPid(pid, config),
    rssBytes: () => treeRssBytes(pid),
  };
}

/**
 * Creates (or resets the password of) SCRAM-SHA-256/512 users on a running broker with
 * kafka-configs (kafka.admin.ConfigCommand: one JVM, ~2-3 s, per user and mechanism) over a PLAINTEXT
 * listener.
 */
export async function addScramUsers(
  brokers: string,
  users: readonly KafkaUser[],
  options: { cacheDir?: string; version?: string } = {},
): Promise<void> {
  checkUsers(users);
  const libs = await installKafka(options);
  const java = requireCommand('java', 'to run Kafka', 'apt-get install -y openjdk-17-jre-headless');
  for (const u of users) {
    // One mechanism per request: the broker refuses to alter a user's credentials twice in one.
    for (const m of (u.mechanisms ?? SASL_MECHANISMS).filter((x) => x !== 'PLAIN')) {
      await runCommand(java, [
        '-Xmx256m',
        '-cp',
        `${libs}/*`,
        'kafka.admin.ConfigCommand',
        '--bootstrap-server',
        brokers,
        '--alter',
        '--entity-type',
        'users',
        '--entity-name',
        u.username,
        '--add-config',
        `${m}=[password=${u.password}]`,
      ]);
    }
  }
}

/** A random Kafka cluster id: 16 bytes, URL-safe base64 without padding (what `random-uuid` prints). */
export function kafkaClusterId(): string {
  for (;;) {
    const id = Buffer.from(randomUUID().replaceAll('-', ''), 'hex').toString('base64url');
    // Kafka's Uuid.randomUuid() skips ids starting with '-' too: StorageTool would read one as a flag.
    if (!id.startsWith('-')) return id;
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function serverProperties(
  port: number,
  controllerPort: number,
  logDir: string,
  security: KafkaSecurityOptions | undefined,
  tls: TlsFiles | undefined,
): string {
  const extra = security
    ? securityProperties(security, tls)
    : { listeners: [], protocolMap: [], properties: '' };
  const advertised = [`PLAINTEXT://127.0.0.1:${port}`, ...extra.listeners].join(',');
  return `# Written by strata stack on each start; edit the stack code, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controllerPort}
listeners=${advertised},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=${advertised}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=${['CONTROLLER:PLAINTEXT', 'PLAINTEXT:PLAINTEXT', ...extra.protocolMap].join(',')}
${extra.properties}log.dirs=${logDir}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Tests create topics on the fly and consumer groups should start at once.
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
# A development broker: keep disk use small.
log.retention.hours=24
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
`;
}

function adminClient(brokers: string) {
  return new Kafka({
    clientId: 'strata-stack',
    brokers: brokers.split(',').map((b) => b.trim()),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 5000,
    retry: { retries: 0 },
  }).admin();
}

/** Ready = an admin client connects and describeCluster lists the broker. */
export async function kafkaReady(brokers: string): Promise<boolean> {
  const admin = adminClient(brokers);
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function createTopics(
  brokers: string,
  topics: readonly { topic: string; numPartitions: number }[],
): Promise<void> {
  const admin = new Kafka({
    clientId: 'strata-stack',
    brokers: brokers.split(',').map((b) => b.trim()),
    logLevel: logLevel.NOTHING,
    retry: { retries: 5 },
  }).admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length) {
      await admin.createTopics({
        topics: missing.map((t) => ({ ...t, replicationFactor: 1 })),
        waitForLeaders: true,
      });
    }
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** The cluster id a data dir was formatted with, if any (for status output). */
export function formattedClusterId(dataDir: string): string | undefined {
  try {
    const meta = readFileSync(path.join(dataDir, 'kraft-logs', 'meta.properties'), 'utf8');
    return /cluster\.id=(.+)/.exec(meta)?.[1]?.trim();
  } catch {
    return undefined;
  }
}
