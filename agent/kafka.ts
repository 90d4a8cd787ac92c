// Kafka output: a kafkajs producer, idempotent with acks=all and one request in flight, so ticks
// land in order and kafkajs' own retries cannot duplicate them. One record per tick, key = node
// id (one partition per node: joins and neighbour detection need no cross-partition state),
// record timestamp = tick time, headers = schema version and content type.
//
// kafkajs' internal retries are bounded here (unlike its idempotent default of "forever"): the
// Publisher above owns the long retry, so a send fails within seconds during an outage, the
// buffer's drop-oldest rule applies to what is waiting, and the newest ticks go first once the
// broker is back. A failed request rolls back kafkajs' sequence numbers, so a resend is safe.
import kafkajs, { type Kafka, type Producer } from 'kafkajs';
import { ConfigError, ConnectionError, errorMessage, StrataError } from '../lib/errors.ts';
import { createKafka } from '../lib/kafka/client.ts';
import {
  describeKafkaSecurity,
  explainKafkaSecurityError,
  kafkaErrorChain,
  kafkaPlaintextHint,
} from '../lib/kafka/security.ts';
import { componentLogger, type Logger } from '../lib/log.ts';
import { HEADERS, SCHEMA_VERSION } from '../schemas/sample.ts';
import type { Tick } from './buffer.ts';
import type { KafkaConfig } from './config.ts';
import { RejectedError, type Transport } from './publisher.ts';

// kafkajs is CommonJS: take the values from its default export (named ESM imports fail at run time).
const { CompressionCodecs, CompressionTypes, ConfigResourceTypes, Partitioners } = kafkajs;

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
} as const;

export async function ensureCodec(compression: KafkaConfig['compression']): Promise<void> {
  if (compression === 'none') return;
  // strata's gzip codec, at gzipLevel, is installed with the client (createKafka).
  if (compression === 'gzip') return;
  const type = COMPRESSION[compression];
  if (CompressionCodecs[type]) return;
  const pkg = compression === 'lz4' ? 'kafkajs-lz4' : '@kafkajs/zstd';
  try {
    const mod = (await import(pkg)) as { default: new () => { codec: unknown } | (() => unknown) };
    const Codec = mod.default as unknown as new () => { codec: () => unknown };
    CompressionCodecs[type] = new Codec().codec as never;
  } catch (err) {
    throw new ConfigError(
      `agent.kafka.compression: "${compression}" needs the codec package ${pkg}, which is not installed (${errorMessage(err)}); ` +
        `install it with "npm install ${pkg}" or use gzip (accepted: "gzip", "lz4", "zstd", "none")`,
    );
  }
}

export class KafkaTransport implements Transport {
  readonly name = 'kafka';
  readonly target: string;
  private readonly producer: Producer;
  private readonly kafka: Kafka;
  private connected = false;
  /** The topic's max.message.bytes, read once when Kafka first refuses a tick as too large. */
  private messageLimit?: Promise<number | undefined>;
  private readonly headers = {
    [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
    [HEADERS.contentType]: 'application/json',
  };

  constructor(
    private readonly cfg: KafkaConfig,
    private readonly log: Logger = componentLogger('agent.kafka'),
  ) {
    this.target = `kafka ${cfg.brokers.join(',')} topic ${cfg.samplesTopic} (${describeKafkaSecurity(cfg)})`;
    const kafka = createKafka(
      {
        clientId: cfg.clientId,
        brokers: cfg.brokers,
        ssl: cfg.ssl,
        sasl: cfg.sasl,
        configPath: 'agent.kafka',
        connectionTimeout: cfg.connectionTimeout,
        requestTimeout: cfg.requestTimeout,
        // Short inner retries; the Publisher retries forever with its own backoff.
        retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
        gzipLevel: cfg.gzipLevel,
        logs: 'debug',
      },
      log,
    );
    this.kafka = kafka;
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false, // a typo'd topic must be an error, not a new topic
      createPartitioner: Partitioners.DefaultPartitioner, // murmur2 on the key, like the Java client
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
    });
  }

  async start(): Promise<void> {
    await ensureCodec(this.cfg.compression);
    try {
      await this.connect();
    } catch {
      // Not fatal: the first send reconnects, and the Publisher reports the outage.
    }
  }

  async send(ticks: readonly Tick[]): Promise<void> {
    try {
      if (!this.connected) await this.connect();
      await this.producer.send({
        topic: this.cfg.samplesTopic,
        acks: -1,
        timeout: this.cfg.requestTimeout,
        compression: COMPRESSION[this.cfg.compression],
        messages: ticks.map((t) => ({
          key: t.key,
          value: t.value,
          timestamp: String(t.ts),
          headers: this.headers,
        })),
      });
    } catch (err) {
      const explained = this.explain(err);
      if (explained instanceof RejectedError && explained.reason === 'too_large') {
        throw await this.withLimit(explained, ticks);
      }
      throw explained;
    }
  }

  /** Names the size of what was refused and the topic's limit (read with the admin API, once). */
  private async withLimit(err: RejectedError, ticks: readonly Tick[]): Promise<RejectedError> {
    this.messageLimit ??= this.readMessageLimit();
    const limit = await this.messageLimit;
    let bytes = 0;
    for (const t of ticks) bytes += t.value.length;
    const what =
      ticks.length === 1
        ? `a tick (seq ${ticks[0]!.seq}) of ${bytes} bytes`
        : `${ticks.length} ticks of ${bytes} bytes`;
    return new RejectedError(
      `Kafka ${this.cfg.brokers.join(',')} refused ${what} (before ${this.cfg.compression} compression) as larger than ` +
        `${limit === undefined ? "the topic's max.message.bytes (not readable)" : `topic ${this.cfg.samplesTopic}'s max.message.bytes ${limit}`}; ` +
        `raise max.message.bytes on the topic (or the broker's message.max.bytes), or collect fewer entities per tick`,
      'too_large',
      limit,
      { cause: err.cause },
    );
  }

  private async readMessageLimit(): Promise<number | undefined> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const res = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: this.cfg.samplesTopic,
            configNames: ['max.message.bytes'],
          },
        ],
      });
      const value = res.resources[0]?.configEntries.find(
        (e) => e.configName === 'max.message.bytes',
      )?.configValue;
      return value === undefined ? undefined : Number(value);
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'cannot read the topic max.message.bytes');
      return undefined;
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  async shutdown(): Promise<void> {
    try {
      await this.producer.disconnect();
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'disconnect failed');
    }
    this.connected = false;
  }

  private async connect(): Promise<void> {
    await this.producer.connect();
    this.connected = true;
  }

  /** Turns kafkajs' nested errors into one message naming the brokers and what to do. */
  private explain(err: unknown): StrataError {
    // TLS/SASL failures first: a wrong password or CA must say so, not "cannot publish".
    const security = explainKafkaSecurityError(err, this.cfg, 'agent.kafka');
    if (security) return security;
    const chain = kafkaErrorChain(err);
    const brokers = this.cfg.brokers.join(',');
    if (chain.some((e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION')) {
      // Permanent (counted as such): kafkajs' own retries are spent and only creating the topic
      // helps. The ticks stay buffered (bounded) and are retried, so creating the topic delivers them.
      return new StrataError(
        `topic "${this.cfg.samplesTopic}" does not exist on Kafka ${brokers}; create it (strata stack up does) ` +
          `or set agent.kafka.samplesTopic / STRATA_SAMPLES_TOPIC / --samples-topic to an existing topic`,
        { retriable: false, cause: err },
      );
    }
    // Refusals of these very bytes: resending them cannot succeed (the Publisher isolates and drops).
    if (chain.some((e) => e.type === 'MESSAGE_TOO_LARGE' || e.type === 'RECORD_LIST_TOO_LARGE')) {
      return new RejectedError(`Kafka ${brokers} refused the batch as too large`, 'too_large', undefined, {
        cause: err,
      });
    }
    if (chain.some((e) => e.type === 'INVALID_RECORD')) {
      const reason = chain.find((e) => e.type === 'INVALID_RECORD');
      return new RejectedError(
        `Kafka ${brokers} refused a record of topic ${this.cfg.samplesTopic} as invalid (INVALID_RECORD: ${errorMessage(reason)})`,
        'invalid_record',
        undefined,
        { cause: err },
      );
    }
    const root = chain.at(-1);
    return new ConnectionError(
      `cannot publish to Kafka ${brokers}: ${errorMessage(root ?? err)}${kafkaPlaintextHint(err, this.cfg, 'agent.kafka')}`,
      { cause: err },
    );
  }
}
