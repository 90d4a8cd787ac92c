// The one place a kafkajs client is built, for the agent (agent/kafka.ts), the processor
// (processor/index.ts) and so `strata run`, which runs both in one process. Building a
// client also installs, once per process, what strata changes in kafkajs: the idle-loop fix of
// its request queue (request-queue.ts: without it every broker connection spins a 1 ms timer,
// ≈ 40 ms of CPU per second) and strata's gzip codec (gzip.ts: inflates on the calling thread,
// never past the processor's kafka.maxInflatedBatchBytes; compresses at the agent's gzipLevel).
import kafkajs, { type Kafka, type RetryOptions } from 'kafkajs';
import type { Logger } from '../log.ts';
import { installGzipCodec } from './gzip.ts';
import { fixIdleRequestQueue } from './request-queue.ts';
import { type KafkaSecurity, kafkaJsSecurity } from './security.ts';

// kafkajs is CommonJS: take the values from its default export (named ESM imports fail at run time).
const { Kafka: KafkaClient, logLevel } = kafkajs;

export interface KafkaClientConfig extends KafkaSecurity {
  clientId: string;
  brokers: string[];
  /** Where these keys live (agent.kafka, processor.kafka): named by configuration errors. */
  configPath: string;
  connectionTimeout?: number;
  requestTimeout?: number;
  /** kafkajs' own retries of one request (the callers retry above them, each its own way). */
  retry: RetryOptions;
  /** zlib level of the gzip batches this process produces (the agent's kafka.gzipLevel). */
  gzipLevel?: number;
  /** Most bytes one gzip batch may inflate to (the processor's kafka.maxInflatedBatchBytes). */
  maxInflatedBatchBytes?: number;
  /**
   * Where kafkajs' log goes. `debug`: its errors at debug, the rest at trace (the agent, whose
   * Publisher reports outages itself; kafkajs is chatty during them). `warn`: its errors at error,
   * its warnings at warn (the processor).
   */
  logs: 'debug' | 'warn';
}

export function createKafka(config: KafkaClientConfig, logger: Logger): Kafka {
  fixIdleRequestQueue();
  installGzipCodec(config.gzipLevel, config.maxInflatedBatchBytes);
  const quiet = config.logs === 'debug';
  return new KafkaClient({
    clientId: config.clientId,
    brokers: config.brokers,
    ...kafkaJsSecurity(config, config.configPath), // TLS/SASL, the same keys for agent and processor
    ...(config.connectionTimeout !== undefined ? { connectionTimeout: config.connectionTimeout } : {}),
    ...(config.requestTimeout !== undefined ? { requestTimeout: config.requestTimeout } : {}),
    logLevel: quiet ? logLevel.INFO : logLevel.WARN,
    retry: config.retry,
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        if (quiet) {
          if (level <= logLevel.ERROR) logger.debug(rest, `kafkajs: ${message}`);
          else logger.trace(rest, `kafkajs: ${message}`);
        } else if (level <= logLevel.ERROR) logger.error(rest, message);
        else logger.warn(rest, message);
      },
  });
}
