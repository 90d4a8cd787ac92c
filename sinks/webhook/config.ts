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
  /**
   * A firing alert is sent again this often while its incident is open, with endsAt = now + 4 ×
   * this: Alertmanager's clients are expected to repeat active alerts, and one not heard of by its
   * endsAt (or, without one, for resolve_timeout, 5 min by default) is resolved by Alertmanager.
   * So a long incident stays firing, and one whose processor is gone ends within 4 intervals.
   */
  resendInterval: durationMs.default(60_000).refine((ms) => ms >= 1000, 'at least 1s'),
  /** Most open incidents re-sent; beyond it the newest are not re-sent (counted). */
  maxOpen: z.number().int().positive().default(10_000),
});
export type WebhookConfig = z.output<typeof WebhookConfig>;
