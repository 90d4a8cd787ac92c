// Open noisy-neighbour incidents survive a processor's death, for real: two nodes replay the real
// recording testdata/processor/noisy-1m-direct (re-timed to the last minutes, new node ids) through
// the real Kafka into a real `strata processor` child, which fires one incident per node and is
// killed (SIGKILL). A second processor of the same group takes the partitions over with a warm-up
// (5 s) far too short to rebuild the victims' baselines, reads the alerts topic back, and:
// - node A keeps reporting: its incident resolves (recovered) once the antagonist has stopped,
//   with the original id and start;
// - node B never reports again (nor does anything else on its partition, so that partition never
//   gets a batch): its incident resolves with resolved_reason node_silent when the processor
//   evicts the node.
// In the alerts topic and in InfluxDB strata_alert: exactly one firing and one resolved per incident.
// The second processor also has an Alertmanager webhook (a capture server here): it sends the
// incidents it took over as firing at once and repeats them (webhook.resendInterval 1 s), so
// Alertmanager keeps them open, then sends their resolved events.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPipeline } from '../../processors/pipeline.ts';
import { AlertEvent } from '../../schemas/alert.ts';
import type { SampleMessage } from '../../schemas/sample.ts';
import { ALERT_HEADERS } from '../../sinks/kafka-alerts/index.ts';
import {
  createTopic,
  influxQl,
  kafkaClient,
  killChild,
  ROOT,
  spawnProcessor,
  testProducer,
  waitFor,
} from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const influxUrl = inject('influxUrl');
const id = randomUUID().slice(0, 8);
const topic = `strata.samples.ho-${id}`;
const alertsTopic = `strata.alerts.ho-${id}`;
const db = `strata_ho_${id}`;
const nodeA = `ho-a-${id}`;
const nodeB = `ho-b-${id}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-handover-'));
const children: ChildProcess[] = [];
const producer = testProducer(brokers);
const reader = kafkaClient(brokers).consumer({ groupId: `ho-reader-${id}` });
/** What the second processor's webhook posted: Alertmanager alerts with the time they arrived. */
const posted: { at: number; alertId: string; endsAt: number; resolvedReason?: string }[] = [];
const alertmanager = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => {
    body += c;
  });
  req.on('end', () => {
    const at = Date.now();
    for (const a of JSON.parse(body) as {
      annotations: { alert_id: string; resolved_reason?: string };
      endsAt: string;
    }[]) {
      posted.push({
        at,
        alertId: a.annotations.alert_id,
        endsAt: Date.parse(a.endsAt),
        resolvedReason: a.annotations.resolved_reason,
      });
    }
    res.end();
  });
});

afterAll(async () => {
  await new Promise<void>((r) => alertmanager.close(() => r()));
  for (const c of children) await killChild(c);
  await producer.disconnect().catch(() => {});
  await reader.disconnect().catch(() => {});
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
});

const raw = zlib
  .gunzipSync(fs.readFileSync(path.join(ROOT, 'testdata/processor/noisy-1m-direct.ndjson.gz')))
  .toString('utf8')
  .trim()
  .split('\n');
const recordedNode = (JSON.parse(raw[0]!) as SampleMessage).node.id;
const t0 = Date.now() - (raw.length + 5) * 1000;

/** The recording as node `node`, its first tick at t0 (sample times shifted alike). */
function retimed(node: string): SampleMessage[] {
  const first = (JSON.parse(raw[0]!) as SampleMessage).ts;
  return raw.map((l) => {
    const m = JSON.parse(l.split(recordedNode).join(node)) as SampleMessage;
    m.ts += t0 - first;
    for (const s of m.samples) if (s.ts !== undefined) s.ts += t0 - first;
    return m;
  });
}

async function produce(msgs: SampleMessage[]): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    messages: msgs.map((m) => ({
      key: m.node.id,
      // Node A on partition 0, node B on 1: after the kill, partition 1 receives nothing at all.
      partition: m.node.id === nodeA ? 0 : 1,
      value: JSON.stringify(m),
      timestamp: String(m.ts), // the agent's tick time: the warm-up is measured on it
      headers: { 'strata-schema-version': '1', 'content-type': 'application/json' },
    })),
  });
}

describe('open incidents across a processor kill -9 and a take-over', () => {
  it('are continued by the new owner: one firing and one resolved each, same id and start', async () => {
    const msgsA = retimed(nodeA);
    const msgsB = retimed(nodeB);
    // Where the pipeline fires on this recording (deterministic): the first processor sees a
    // little more than that, the second one the rest (node A) or nothing (node B).
    const p = createPipeline();
    const fireAt = msgsA.findIndex((m) => p.handle(m).alerts.length > 0);
    expect(fireAt).toBeGreaterThan(0);
    const cut = fireAt + 3;

    await createTopic(brokers, topic, 2);
    await createTopic(brokers, alertsTopic, 1);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const events: { event: AlertEvent; headers: Record<string, string> }[] = [];
    await reader.connect();
    await reader.subscribe({ topics: [alertsTopic], fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        events.push({ event: AlertEvent.parse(JSON.parse(String(message.value))), headers });
      },
    });

    const config = path.join(dir, 'first.yaml');
    // The recording ends 30 s after the antagonist stops: judged without the episode gap (2 min).
    fs.writeFileSync(
      config,
      'processor:\n  kafka:\n    sessionTimeout: 6s\n    heartbeatInterval: 1s\n' +
        '  pipeline:\n    noisyNeighbor:\n      episodeGap: 0\n',
    );
    const second = path.join(dir, 'second.yaml');
    await new Promise<void>((r) => alertmanager.listen(0, '127.0.0.1', r));
    fs.writeFileSync(
      second,
      'processor:\n  kafka:\n    sessionTimeout: 6s\n    heartbeatInterval: 1s\n    warmup: 5s\n' +
        '  evictInterval: 1s\n  pipeline:\n    evictAfterMs: 6s\n    noisyNeighbor:\n      episodeGap: 0\n' +
        `  webhook:\n    url: http://127.0.0.1:${(alertmanager.address() as AddressInfo).port}\n    resendInterval: 1s\n`,
    );
    const env = {
      KAFKA_BROKERS: brokers,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_DLQ_TOPIC: `strata.dlq.ho-${id}`,
      STRATA_ALERTS_TOPIC: alertsTopic,
      STRATA_GROUP_ID: `ho-${id}`,
      INFLUX_URL: influxUrl,
      INFLUX_BUCKET: db,
    };
    await producer.connect();
    await produce(msgsA.slice(0, cut + 1).flatMap((m, i) => [m, msgsB[i]!]));
    const first = spawnProcessor(env, path.join(dir, 'first.log'), ['--config', config]);
    children.push(first);
    await waitFor(
      'both nodes to fire',
      async () => (new Set(events.map((e) => e.event.node)).size === 2 ? true : undefined),
      90_000,
      200,
    );
    await new Promise((r) => setTimeout(r, 1500)); // its commits land: the restart resumes after them
    await killChild(first, 'SIGKILL');

    await produce(msgsA.slice(cut + 1));
    const log2 = path.join(dir, 'second.log');
    const next = spawnProcessor(env, log2, ['--config', second]);
    children.push(next);
    await waitFor(
      'both incidents to resolve',
      async () => (events.filter((e) => e.event.status === 'resolved').length >= 2 ? true : undefined),
      120_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 3000)); // anything extra (a duplicate) would show up now

    for (const node of [nodeA, nodeB]) {
      const mine = events.filter((e) => e.event.node === node);
      expect(
        mine.map((e) => e.event.status),
        node,
      ).toEqual(['firing', 'resolved']);
      const [f, r] = mine.map((e) => e.event) as [AlertEvent, AlertEvent];
      expect(r.id).toBe(f.id);
      expect(r.starts_at).toBe(f.starts_at);
      expect(r.labels).toEqual(f.labels);
      expect(r.resolved_reason).toBe(node === nodeA ? 'recovered' : 'node_silent');
      for (const e of mine) expect(e.headers[ALERT_HEADERS.sourceTopic]).toBe(topic);
      expect(mine[1]!.headers[ALERT_HEADERS.sourcePartition]).toBe(
        mine[0]!.headers[ALERT_HEADERS.sourcePartition],
      );
    }
    const a = events.filter((e) => e.event.node === nodeA).map((e) => e.event);
    // Node A's incident ended after its antagonist's last tick, not at the take-over.
    const antagonistLast = msgsA
      .filter((m) => m.samples.some((s) => s.entity.name === 'nn-antagonist'))
      .at(-1)!.ts;
    expect(a[1]!.ends_at).toBeGreaterThan(antagonistLast);
    // Node B's at the last sample time of node B.
    expect(
      events.find((e) => e.event.node === nodeB && e.event.status === 'resolved')!.event.ends_at,
    ).toBeLessThanOrEqual(msgsB[cut]!.ts + 1000);

    // The second processor adopted them (its log says so), the first one never resolved anything.
    expect(fs.readFileSync(log2, 'utf8')).toContain('taking over open incidents of partition');
    expect(fs.readFileSync(path.join(dir, 'first.log'), 'utf8')).not.toContain('"status":"resolved"');

    // The webhook: each incident taken over was sent as firing (endsAt ahead of its post) before
    // its resolved event (endsAt = its end, past); node B's never fired in the second processor,
    // so its firing posts can only be the take-over's and its repeats.
    for (const node of [nodeA, nodeB]) {
      const f = events.find((e) => e.event.node === node)!.event;
      const mine = posted.filter((p) => p.alertId === f.id);
      const resolvedAt = mine.findIndex((p) => p.resolvedReason !== undefined);
      expect(resolvedAt, `${node}: ${JSON.stringify(mine)}`).toBeGreaterThan(0);
      for (const p of mine.slice(0, resolvedAt)) expect(p.endsAt).toBeGreaterThan(p.at);
      expect(mine[resolvedAt]!.resolvedReason).toBe(node === nodeA ? 'recovered' : 'node_silent');
      expect(mine.slice(resolvedAt + 1), `${node}: nothing after resolved`).toEqual([]);
    }

    // InfluxDB: one firing and one resolved point per incident, with the same alert_id and start.
    const res = await influxQl(
      influxUrl,
      'SELECT "alert_id", "starts_at_ms", "resolved_reason", "status", "node" FROM "strata_alert"',
      db,
    );
    const rows = (res.results?.[0]?.series?.[0]?.values ?? []).map((v) => ({
      alertId: v[1],
      startsAt: v[2],
      reason: v[3],
      status: v[4],
      node: v[5],
    }));
    for (const node of [nodeA, nodeB]) {
      const mine = rows.filter((r) => r.node === node);
      const f = events.find((e) => e.event.node === node)!.event;
      expect(mine.map((r) => r.status).sort(), node).toEqual(['firing', 'resolved']);
      for (const r of mine) {
        expect(r.alertId).toBe(f.id);
        expect(r.startsAt).toBe(f.starts_at);
      }
      expect(mine.find((r) => r.status === 'resolved')!.reason).toBe(
        node === nodeA ? 'recovered' : 'node_silent',
      );
    }
  });
});
