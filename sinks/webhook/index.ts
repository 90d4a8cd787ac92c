// Alerts to an Alertmanager-compatible webhook: POST <url>/api/v2/alerts with
// [{labels, annotations, startsAt, endsAt, generatorURL}]. Best effort by design: the processor
// does not hold Kafka commits for a webhook (Kafka's alerts topic is the durable copy), so this
// sink has its own bounded queue and bounded retries; what it drops it counts.
import { errorMessage } from '../../lib/errors.ts';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { counter, gauge } from '../../lib/metrics.ts';
import type { AlertEvent } from '../../schemas/alert.ts';
import type { WebhookConfig } from './config.ts';

export { WebhookConfig } from './config.ts';

const sentTotal = counter('strata_sink_alerts_sent_total', 'Alert events acknowledged by a sink.', ['sink']);
const droppedTotal = counter(
  'strata_sink_alerts_dropped_total',
  'Alert events a sink gave up on, by reason (queue_full, rejected = 4xx, retries_exhausted).',
  ['sink', 'reason'],
);
const queueGauge = gauge('strata_sink_alerts_queue', 'Alert events waiting to be sent.', ['sink']);

/** One Alertmanager v2 API alert (the PostableAlert model). */
export interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

/**
 * Labels that may grow while an incident is open (victims join it): annotations, not labels, since
 * Alertmanager identifies an alert by its label set and a resolved event must match its firing one.
 */
const VOLATILE_LABELS = new Set(['victims']);

/** Alertmanager requires a label set that identifies the alert: alertname + node + our stable labels. */
export function toAlertmanager(a: AlertEvent, generatorUrl = ''): AlertmanagerAlert {
  const annotations: Record<string, string> = { summary: a.summary, alert_id: a.id };
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(a.labels)) {
    if (VOLATILE_LABELS.has(k)) annotations[k] = v;
    else labels[k] = v;
  }
  for (const [k, v] of Object.entries(a.evidence)) annotations[k] = String(v);
  if (a.resolved_reason !== undefined) annotations.resolved_reason = a.resolved_reason;
  const out: AlertmanagerAlert = {
    labels: { ...labels, alertname: a.name, node: a.node, source: 'strata' },
    annotations,
    startsAt: new Date(a.starts_at).toISOString(),
  };
  // Resolved: endsAt in the past tells Alertmanager it is over. Firing: no endsAt (Alertmanager
  // applies its resolve_timeout unless we repeat the alert).
  if (a.status === 'resolved') out.endsAt = new Date(a.ends_at ?? a.ts).toISOString();
  if (generatorUrl) out.generatorURL = generatorUrl;
  return out;
}

export class WebhookSink {
  private readonly log = componentLogger('sink.webhook');
  private readonly once = new OnceLogger(this.log);
  private queue: AlertmanagerAlert[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly endpoint: string;

  constructor(private readonly c: WebhookConfig) {
    this.endpoint = `${c.url.replace(/\/+$/, '')}/api/v2/alerts`;
  }

  /** Queues alerts; never blocks the caller. */
  enqueue(alerts: readonly AlertEvent[]): void {
    if (this.closed) return;
    for (const a of alerts) this.queue.push(toAlertmanager(a, this.c.generatorUrl));
    const over = this.queue.length - this.c.queueSize;
    if (over > 0) {
      this.queue.splice(0, over);
      droppedTotal.inc({ sink: 'webhook', reason: 'queue_full' }, over);
    }
    queueGauge.set({ sink: 'webhook' }, this.queue.length);
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 100);
      queueGauge.set({ sink: 'webhook' }, this.queue.length);
      const outcome = await this.post(batch);
      if (outcome === 'ok') sentTotal.inc({ sink: 'webhook' }, batch.length);
      else droppedTotal.inc({ sink: 'webhook', reason: outcome }, batch.length);
    }
  }

  private async post(batch: AlertmanagerAlert[]): Promise<'ok' | 'rejected' | 'retries_exhausted'> {
    for (let attempt = 1; attempt <= this.c.maxAttempts; attempt++) {
      try {
        const res = await fetch(this.endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(this.c.timeout),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return 'ok';
        if (res.status !== 429 && res.status < 500) {
          this.once.warn(
            `status:${res.status}`,
            { url: this.endpoint, status: res.status },
            'webhook refused alerts; not retrying',
          );
          return 'rejected';
        }
        this.once.warn(
          `status:${res.status}`,
          { url: this.endpoint, status: res.status },
          'webhook failed; retrying',
        );
      } catch (err) {
        this.once.warn(
          `net:${errorMessage(err)}`,
          { url: this.endpoint, err: errorMessage(err) },
          'webhook unreachable; retrying',
        );
      }
      if (attempt < this.c.maxAttempts && !this.closed)
        await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
    }
    return 'retries_exhausted';
  }

  /** Sends what is queued (bounded by the retries), then stops. */
  async close(): Promise<void> {
    await this.running;
    this.closed = true;
  }
}
