// Alert events (schemas/alert.ts) to a Kafka topic, keyed by node id so one node's firing and
// resolved events stay in order on one partition. Uses the caller's connected producer (the
// processor shares one for DLQ and alerts); send() resolves when the brokers acknowledged (acks=all).
// Each event carries the samples topic and partition it was computed from (headers below): a
// processor that takes over a partition reads its still-open incidents back from this topic
// (processor/incidents.ts, docs/processor.md "Open incidents across restarts").
import type { Producer } from 'kafkajs';
import { counter } from '../../lib/metrics.ts';
import { ALERT_SCHEMA_VERSION, type AlertEvent } from '../../schemas/alert.ts';
import { HEADERS } from '../../schemas/sample.ts';
import type { Sink, WriteResult } from '../types.ts';
import type { KafkaAlertsConfig } from './config.ts';

export { KafkaAlertsConfig } from './config.ts';

/** Headers naming the samples topic partition whose pipeline produced the event. */
export const ALERT_HEADERS = {
  sourceTopic: 'strata-source-topic',
  sourcePartition: 'strata-source-partition',
} as const;

/** Where an event was computed: the samples topic and partition (its node's partition). */
export interface AlertSource {
  topic: string;
  partition: number;
}

const sentTotal = counter('strata_sink_alerts_sent_total', 'Alert events acknowledged by a sink.', ['sink']);

/**
 * A sink of the one contract (sinks/types.ts) for alert events. start() and close() have nothing to
 * do: the producer is the caller's, connected and disconnected by it.
 */
export class KafkaAlertsSink implements Sink<AlertEvent> {
  readonly name = 'kafka-alerts';

  constructor(
    private readonly config: KafkaAlertsConfig,
    private readonly producer: Producer,
  ) {}

  async start(): Promise<void> {}

  /** Resolves once the brokers acknowledged every event; a refusal rejects (the caller decides). */
  async write(alerts: readonly AlertEvent[], source?: AlertSource): Promise<WriteResult> {
    if (alerts.length === 0) return { written: 0, rejected: 0, unencodable: 0 };
    await this.producer.send({
      topic: this.config.topic,
      acks: -1,
      messages: alerts.map((a) => ({
        key: a.node,
        value: JSON.stringify(a),
        headers: {
          [HEADERS.contentType]: 'application/json',
          [HEADERS.schemaVersion]: String(ALERT_SCHEMA_VERSION),
          ...(source
            ? {
                [ALERT_HEADERS.sourceTopic]: source.topic,
                [ALERT_HEADERS.sourcePartition]: String(source.partition),
              }
            : {}),
        },
      })),
    });
    sentTotal.inc({ sink: this.name }, alerts.length);
    return { written: alerts.length, rejected: 0, unencodable: 0 };
  }

  async close(): Promise<void> {}
}
