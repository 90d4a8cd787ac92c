// Config of the Alertmanager webhook sink (the processor's `webhook:` section).
import { z } from 'zod';
import { durationMs } from '../../lib/config.ts';

export const WebhookConfig = z.strictObject({
  /** Alertmanager base URL; alerts are POSTed to <url>/api/v2/alerts. Env ALERT_WEBHOOK_URL. */
  url: z.string().min(1),
  /** generatorURL of each alert (e.g. a Grafana dashboard); empty leaves it out. */
  generatorUrl: z.string().default(''),
  /** Attempts per batch on 429/5xx/network errors, then the batch is dropped and counted. */
  maxAttempts: z.number().int().positive().default(5),
  /** Request timeout. */
  timeout: durationMs.default(5_000),
  /** Most alerts queued; beyond it the oldest are dropped and counted. */
  queueSize: z.number().int().positive().default(1000),
});
export type WebhookConfig = z.output<typeof WebhookConfig>;
