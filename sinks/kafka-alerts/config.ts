// Config of the Kafka alerts sink (the processor's `kafka.alertsTopic`, env STRATA_ALERTS_TOPIC).
import { z } from 'zod';

export const KafkaAlertsConfig = z.strictObject({
  /** Topic the alert events (schemas/alert.ts, JSON) go to, keyed by node id. */
  topic: z.string().min(1).default('strata.alerts'),
});
export type KafkaAlertsConfig = z.output<typeof KafkaAlertsConfig>;
