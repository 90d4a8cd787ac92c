// Alerts to an Alertmanager-compatible webhook: POST <url>/api/v2/alerts with
// [{labels, annotations, startsAt, endsAt, generatorURL}]. Best effort by design: the processor
// does not hold Kafka commits for a webhook (Kafka's alerts topic is the durable copy), so this
// sink has its own bounded queue and bounded retries; what it drops it counts.
//
// Alertmanager's clients must repeat active alerts: one not heard of again by its endsAt (or for
// resolve_timeout when it has none) is resolved by Alertmanager itself. So the open incidents of
// the partitions this processor owns are sent again every resendInterval, each time with endsAt =
// now + 4 × resendInterval (what Prometheus does), until their resolved event; a partition that
// moves to another processor is forgotten here (forget) and taken over there (track).
import { errorMessage } from '../../lib/errors.ts';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { counter, gauge } from '../../lib/metrics.ts';
import { redactUrl } from '../../lib/redact.ts';
import type { AlertEvent } from '../../schemas/alert.ts';
import type { WebhookConfig } from './config.ts';

export { WebhookConfig } from './config.ts';

const sentTotal = counter('strata_sink_alerts_sent_total', 'Alert events acknowledged by a sink.', ['sink']);
const droppedTotal = counter(
  'strata_sink_alerts_dropped_total',
  'Alert events a sink gave up on, by reason (queue_full, rejected = 4xx, retries_exhausted, open_full = not re-sent).',
  ['sink', 'reason'],
);
const queueGauge = gauge('strata_sink_alerts_queue', 'Alert events waiting to be sent.', ['sink']);
const openGauge = gauge(
  'strata_sink_alerts_open',
  'Firing alerts re-sent every resendInterval until resolved (open incidents of the partitions owned).',
  ['sink'],
);

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
  // What to do: the runbook an on-call engineer acts on, beside the summary that says what happened.
  if (a.remedy !== undefined) annotations.remedy = a.remedy;
  const out: AlertmanagerAlert = {
    labels: { ...labels, alertname: a.name, node: a.node, source: 'strata' },
    annotations,
    startsAt: new Date(a.starts_at).toISOString(),
  };
  // Resolved: endsAt in the past tells Alertmanager it is over. Firing: the sink sets endsAt when it
  // posts (now + 4 × resendInterval) and repeats it until resolved.
  if (a.status === 'resolved') out.endsAt = new Date(a.ends_at ?? a.ts).toISOString();
  if (generatorUrl) out.generatorURL = generatorUrl;
  return out;
}

/** A queued alert; firing ones get their endsAt when posted (a retried post must not carry a stale one). */
interface Queued {
  id: string;
  alert: AlertmanagerAlert;
  firing: boolean;
}

export class WebhookSink {
  private readonly log = componentLogger('sink.webhook');
  private readonly once = new OnceLogger(this.log);
  private queue: Queued[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly endpoint: string;
  /** Open incidents by alert id, with the samples partition they came from: re-sent until resolved. */
  private readonly open = new Map<string, { alert: AlertmanagerAlert; partition: number | undefined }>();
  private readonly resendTimer: NodeJS.Timeout;

  constructor(private readonly c: WebhookConfig) {
    this.endpoint = `${c.url.replace(/\/+$/, '')}/api/v2/alerts`;
    this.resendTimer = setInterval(() => this.resend(), c.resendInterval);
    this.resendTimer.unref();
  }

  /**
   * Queues alert events (never blocks the caller). Firing ones are re-sent until their resolved
   * event; `partition` (of the samples topic) lets forget() drop them when it is revoked.
   */
  enqueue(alerts: readonly AlertEvent[], partition?: number): void {
    if (this.closed) return;
    for (const a of alerts) {
      const alert = toAlertmanager(a, this.c.generatorUrl);
      const firing = a.status === 'firing';
      if (firing) this.remember(a.id, alert, partition);
      else this.open.delete(a.id);
      this.queue.push({ id: a.id, alert, firing });
    }
    openGauge.set({ sink: 'webhook' }, this.open.size);
    this.kick();
  }

  /** Open incidents taken over from another processor (read back from the alerts topic): sent now and from now on. */
  track(open: readonly AlertEvent[], partition: number): void {
    this.enqueue(
      open.filter((a) => a.status === 'firing'),
      partition,
    );
  }

  /** The partition moved to another processor: its incidents are no longer re-sent from here. */
  forget(partition: number): void {
    for (const [id, o] of this.open) if (o.partition === partition) this.open.delete(id);
    openGauge.set({ sink: 'webhook' }, this.open.size);
  }

  private remember(id: string, alert: AlertmanagerAlert, partition: number | undefined): void {
    if (!this.open.has(id) && this.open.size >= this.c.maxOpen) {
      droppedTotal.inc({ sink: 'webhook', reason: 'open_full' });
      this.once.warn(
        'open_full',
        { maxOpen: this.c.maxOpen },
        'too many open alerts to re-send; Alertmanager resolves the others after their endsAt',
      );
      return;
    }
    this.open.set(id, { alert, partition });
  }

  private resend(): void {
    if (this.closed || this.open.size === 0) return;
    // Not twice in the queue (Alertmanager down for a while): the one waiting gets a fresh endsAt anyway.
    const waiting = new Set<string>();
    for (const q of this.queue) if (q.firing) waiting.add(q.id);
    for (const [id, { alert }] of this.open)
      if (!waiting.has(id)) this.queue.push({ id, alert, firing: true });
    this.kick();
  }

  private kick(): void {
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

  private async post(batch: Queued[]): Promise<'ok' | 'rejected' | 'retries_exhausted'> {
    for (let attempt = 1; attempt <= this.c.maxAttempts; attempt++) {
      try {
        const endsAt = new Date(Date.now() + 4 * this.c.resendInterval).toISOString();
        const body = batch.map((q) => (q.firing ? { ...q.alert, endsAt } : q.alert));
        const res = await fetch(this.endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.c.timeout),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return 'ok';
        if (res.status !== 429 && res.status < 500) {
          this.once.warn(
            `status:${res.status}`,
            { url: redactUrl(this.endpoint), status: res.status },
            'webhook refused alerts; not retrying',
          );
          return 'rejected';
        }
        this.once.warn(
          `status:${res.status}`,
          { url: redactUrl(this.endpoint), status: res.status },
          'webhook failed; retrying',
        );
      } catch (err) {
        this.once.warn(
          `net:${errorMessage(err)}`,
          { url: redactUrl(this.endpoint), err: errorMessage(err) },
          'webhook unreachable; retrying',
        );
      }
      if (attempt < this.c.maxAttempts && !this.closed)
        await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
    }
    return 'retries_exhausted';
  }

  /** Sends what is queued (bounded by the retries), then stops (Alertmanager ends what is open by its endsAt). */
  async close(): Promise<void> {
    clearInterval(this.resendTimer);
    await this.running;
    this.closed = true;
  }
}
