// The one place a kafkajs client is built, for the agent (agent/kafka.ts), the processor
// (processor/index.ts) and so `strata run`, which runs both in one process. Building a
// client also installs, once per process, what strata changes in kafkajs: the idle-loop fix of
// its request queue (request-queue.ts: without it every broker connection spins a 1 ms timer,
// ≈ 40 ms of CPU per second) and strata's gzip codec (gzip.ts: inflates on the calling thread,
// never past the processor's kafka.maxInflatedBatchBytes; compresses at the agent's gzipLevel).
import net from 'node:net';
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
  // kafkajs logs every failed connection attempt, each with a stack trace: 11 lines in 12 s for
  // one unreachable broker, before strata's own line says what is wrong. Connection errors are
  // folded: the first one in a minute is one line without the stack, the rest go to debug.
  let connectionLoggedAt = Number.NEGATIVE_INFINITY;
  // Under the processor's "kafkajs" component the line already says whose message it is
  // ("kafkajs: Connection error"); under the agent's own component it is named in the message.
  const from = logger.bindings().component === 'kafkajs' ? '' : 'kafkajs: ';
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
        if (level <= logLevel.ERROR && isConnectionError(message, rest.error)) {
          const now = Date.now();
          const { stack: _stack, ...short } = rest;
          if (now - connectionLoggedAt < FOLD_MS) {
            logger.debug(rest, `${from}${message}`);
            return;
          }
          connectionLoggedAt = now;
          const note = 'further connection errors for a minute are logged at debug';
          if (quiet) logger.debug(rest, `${from}${message}`);
          else logger.warn({ ...short, note }, `${from}${message}`);
          return;
        }
        if (quiet) {
          if (level <= logLevel.ERROR) logger.debug(rest, `${from}${message}`);
          else logger.trace(rest, `${from}${message}`);
        } else if (level <= logLevel.ERROR) logger.error(rest, `${from}${message}`);
        else logger.warn(rest, `${from}${message}`);
      },
  });
}

const FOLD_MS = 60_000;

/** kafkajs' messages about a broker it cannot reach (refused, unknown host, timed out, dropped). */
function isConnectionError(message: string, error: unknown): boolean {
  return /connect|connection|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|socket/i.test(
    `${message} ${typeof error === 'string' ? error : ''}`,
  );
}

/** Where a broker list came from, as lib/config.ts records it ("flag --brokers", "env KAFKA_BROKERS", "config file x"). */
export function brokerSourceOf(sources: ReadonlyMap<string, string>, key = 'kafka.brokers'): string {
  return sources.get(key) ?? "the default, the local stack's";
}

/** Kafka unreachable, in one line: which brokers, where that list came from, what to do. */
export function brokersUnreachable(brokers: readonly string[], source: string, why: string): string {
  return (
    `Kafka is not reachable at ${brokers.join(',')} (brokers from ${source}; ${why}). ` +
    'Start the local stack with `strata stack up`, or pass --brokers host:port (env KAFKA_BROKERS) of running brokers.'
  );
}

/**
 * Whether any broker accepts a TCP connection within `timeoutMs`; else why the first did not.
 * kafkajs finds out the same only after its retries (≈ 12 s with the processor's); a refused or
 * unknown address is known here at once, a silent one after `timeoutMs`. TLS and SASL come later:
 * a broker that accepts the connection counts as reachable.
 */
export async function probeBrokers(
  brokers: readonly string[],
  timeoutMs: number,
): Promise<{ reachable: boolean; why: string }> {
  const tries = brokers.map(
    (b) =>
      new Promise<string | undefined>((resolve) => {
        const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(b.trim());
        if (!m) {
          resolve(`"${b}" is not host:port`);
          return;
        }
        const socket = net.connect({ host: m[1], port: Number(m[2]) });
        const done = (why: string | undefined) => {
          socket.destroy();
          resolve(why);
        };
        socket.setTimeout(timeoutMs, () => done(`connect ${b}: no answer in ${timeoutMs} ms`));
        socket.once('connect', () => done(undefined));
        socket.once('error', (err: NodeJS.ErrnoException) => done(`connect ${err.code ?? err.message} ${b}`));
      }),
  );
  const whys = await Promise.all(tries);
  const failed = whys.filter((w): w is string => w !== undefined);
  return { reachable: failed.length < whys.length, why: failed[0] ?? '' };
}

/**
 * At start: when no broker is reachable, says so at once in one line (brokers, where the list came
 * from, `strata stack up`), then waits for one, probing with a backoff of 0.5 s doubling up to
 * 5 s (the processor's kafkajs maxRetryTime), until one is or `stopped()`.
 */
export async function waitForBrokers(
  brokers: readonly string[],
  o: { source: string; timeoutMs: number; log: Logger; stopped: () => boolean },
): Promise<void> {
  let probe = await probeBrokers(brokers, o.timeoutMs);
  if (probe.reachable) return;
  const since = Date.now();
  o.log.warn(
    { brokers: brokers.join(','), source: o.source },
    `${brokersUnreachable(brokers, o.source, probe.why)} Waiting for it.`,
  );
  for (let attempt = 0; !o.stopped(); attempt++) {
    await new Promise((r) => setTimeout(r, Math.min(5_000, 500 * 2 ** attempt)));
    if (o.stopped()) return;
    probe = await probeBrokers(brokers, o.timeoutMs);
    if (probe.reachable) {
      o.log.info(
        { brokers: brokers.join(','), waitedSeconds: Math.round((Date.now() - since) / 1000) },
        'Kafka is reachable; connecting',
      );
      return;
    }
    o.log.debug({ why: probe.why }, 'Kafka still not reachable');
  }
}
