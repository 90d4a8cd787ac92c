// The Alertmanager webhook sink against a real local HTTP server this test starts: the JSON it
// posts, retries on 503, no retry on 400, bounded queue.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { AlertEvent } from '../../schemas/alert.ts';
import {
  type AlertmanagerAlert,
  toAlertmanager,
  WebhookConfig,
  WebhookSink,
} from '../../sinks/webhook/index.ts';

let server: http.Server;
let base: string;
const received: { status: number; body: unknown; at: number }[] = [];
/** Statuses to answer, in order; 200 once exhausted. */
let script: number[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const status = script.shift() ?? 200;
      expect(req.url).toBe('/api/v2/alerts');
      expect(req.method).toBe('POST');
      received.push({ status, body: JSON.parse(body), at: Date.now() });
      res.statusCode = status;
      res.end(status === 200 ? '' : 'nope');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

const firing = AlertEvent.parse({
  v: 1,
  id: 'nn-node1-vda-1',
  name: 'NoisyNeighborIO',
  status: 'firing',
  node: 'node1',
  labels: { device: 'vda', antagonist: 'fio-writer', victims: 'redis' },
  evidence: { antagonist_iops_share_ratio: 0.93, victim_latency_increase_ratio: 4.2 },
  summary: 'fio-writer dominates vda; redis latency ×4.2',
  starts_at: 1_795_322_559_000,
  ts: 1_795_322_569_000,
});
const resolved = AlertEvent.parse({
  ...firing,
  status: 'resolved',
  ends_at: 1_795_322_659_000,
  ts: 1_795_322_659_000,
});

async function dropped(reason: string): Promise<number> {
  const m = await registry.getSingleMetric('strata_sink_alerts_dropped_total')?.get();
  return m?.values.find((v) => v.labels.sink === 'webhook' && v.labels.reason === reason)?.value ?? 0;
}

describe('Alertmanager mapping', () => {
  it('maps an alert event to a PostableAlert: identifying labels, evidence as annotations, RFC 3339 times', () => {
    expect(toAlertmanager(firing, 'http://grafana/d/strata')).toEqual({
      labels: {
        alertname: 'NoisyNeighborIO',
        node: 'node1',
        source: 'strata',
        device: 'vda',
        antagonist: 'fio-writer',
      },
      annotations: {
        summary: 'fio-writer dominates vda; redis latency ×4.2',
        alert_id: 'nn-node1-vda-1',
        victims: 'redis',
        antagonist_iops_share_ratio: '0.93',
        victim_latency_increase_ratio: '4.2',
      },
      startsAt: '2026-11-22T04:42:39.000Z',
      generatorURL: 'http://grafana/d/strata',
    });
    expect(toAlertmanager(resolved).endsAt).toBe('2026-11-22T04:44:19.000Z');
    expect(toAlertmanager(resolved).generatorURL).toBeUndefined();
  });

  it('firing and resolved share one label set even when victims joined meanwhile; the reason is an annotation', () => {
    const later = { ...resolved, labels: { ...resolved.labels, victims: 'redis,postgres' } };
    const end = toAlertmanager({ ...later, resolved_reason: 'node_silent' });
    expect(end.labels).toEqual(toAlertmanager(firing).labels);
    expect(end.annotations.victims).toBe('redis,postgres');
    expect(end.annotations.resolved_reason).toBe('node_silent');
  });
});

describe('webhook sink', () => {
  it('posts firing then resolved, retrying 503 until it succeeds', async () => {
    received.length = 0;
    script = [503, 503];
    const sink = new WebhookSink(WebhookConfig.parse({ url: `${base}/`, maxAttempts: 5 }));
    sink.enqueue([firing]);
    await sink.close();
    expect(received.map((r) => r.status)).toEqual([503, 503, 200]);
    // A firing alert carries an endsAt 4 resend intervals (default 60 s) after the post that
    // succeeded, not after the first attempt.
    const [sent] = received[2]!.body as AlertmanagerAlert[];
    const { endsAt, ...rest } = sent as AlertmanagerAlert;
    expect(rest).toEqual(toAlertmanager(firing));
    const ahead = Date.parse(endsAt as string) - received[2]!.at;
    expect(ahead).toBeGreaterThan(240_000 - 1_000);
    expect(ahead).toBeLessThanOrEqual(240_000);
  });

  it('does not retry a 400 and counts the batch as rejected', async () => {
    received.length = 0;
    script = [400];
    const before = await dropped('rejected');
    const sink = new WebhookSink(WebhookConfig.parse({ url: base }));
    sink.enqueue([firing, resolved]);
    await sink.close();
    expect(received.map((r) => r.status)).toEqual([400]);
    expect(await dropped('rejected')).toBe(before + 2);
  });

  it('gives up after maxAttempts and counts it', async () => {
    received.length = 0;
    script = [500, 500, 500];
    const before = await dropped('retries_exhausted');
    const sink = new WebhookSink(WebhookConfig.parse({ url: base, maxAttempts: 2 }));
    sink.enqueue([firing]);
    await sink.close();
    expect(received).toHaveLength(2);
    expect(await dropped('retries_exhausted')).toBe(before + 1);
    script = [];
  });

  it('keeps at most queueSize alerts, dropping the oldest (counted)', async () => {
    received.length = 0;
    const before = await dropped('queue_full');
    const sink = new WebhookSink(WebhookConfig.parse({ url: base, queueSize: 2 }));
    // The first enqueue starts sending at once (1 alert in flight); the next 3 queue behind it.
    sink.enqueue([firing]);
    sink.enqueue([
      { ...firing, id: 'a' },
      { ...firing, id: 'b' },
      { ...firing, id: 'c' },
    ]);
    await sink.close();
    expect(await dropped('queue_full')).toBe(before + 1);
    const ids = received.flatMap((r) =>
      (r.body as { annotations: { alert_id: string } }[]).map((a) => a.annotations.alert_id),
    );
    expect(ids).toEqual(['nn-node1-vda-1', 'b', 'c']);
  });

  it('repeats a firing alert every resendInterval with a fresh endsAt until its resolved event', async () => {
    received.length = 0;
    const sink = new WebhookSink(WebhookConfig.parse({ url: base, resendInterval: '1s' }));
    sink.enqueue([firing], 0);
    await new Promise((r) => setTimeout(r, 2_500));
    sink.enqueue([resolved], 0);
    await new Promise((r) => setTimeout(r, 1_500));
    await sink.close();
    const posts = received.map((r) => (r.body as AlertmanagerAlert[]).map((a) => ({ ...a, at: r.at })));
    // firing at 0 s, again at ≈ 1 s and ≈ 2 s (a busy machine may delay a timer), then resolved,
    // and nothing after it.
    const alerts = posts.flat();
    expect(alerts.length).toBeGreaterThanOrEqual(3);
    expect(alerts.length).toBeLessThanOrEqual(4);
    for (const a of alerts.slice(0, -1)) {
      expect(a.labels).toEqual(toAlertmanager(firing).labels);
      const ahead = Date.parse(a.endsAt as string) - a.at;
      expect(ahead).toBeGreaterThan(4_000 - 200);
      expect(ahead).toBeLessThanOrEqual(4_000);
    }
    expect(alerts.at(-1)?.endsAt).toBe(toAlertmanager(resolved).endsAt); // in the past: over
    expect(await open()).toBe(0);
  });

  it('forget(partition) stops the repeats of that partition only; track() takes over at once', async () => {
    received.length = 0;
    const sink = new WebhookSink(WebhookConfig.parse({ url: base, resendInterval: '1s' }));
    const onOther = { ...firing, id: 'other', labels: { ...firing.labels, device: 'vdb' } };
    sink.enqueue([firing], 3);
    sink.enqueue([onOther], 4);
    sink.forget(3); // partition 3 moved to another processor
    // Taken over from the alerts topic (a processor that owned partition 5 is gone); the resolved
    // event in the same read-back list is not tracked.
    const adopted = { ...firing, id: 'adopted', labels: { ...firing.labels, device: 'vdc' } };
    sink.track([adopted, { ...resolved, id: 'ended' }], 5);
    expect(await open()).toBe(2);
    await new Promise((r) => setTimeout(r, 1_500));
    await sink.close();
    const ids = received.flatMap((r) =>
      (r.body as { annotations: { alert_id: string } }[]).map((a) => a.annotations.alert_id),
    );
    // First posts: the two firings, then the take-over; one resend: the open ones, not partition 3's.
    expect(ids.slice(0, 3)).toEqual(['nn-node1-vda-1', 'other', 'adopted']);
    expect(ids.slice(3).sort()).toEqual(['adopted', 'other']);
  });
});

async function open(): Promise<number> {
  const m = await registry.getSingleMetric('strata_sink_alerts_open')?.get();
  return m?.values.find((v) => v.labels.sink === 'webhook')?.value ?? 0;
}
