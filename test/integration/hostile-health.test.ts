// /healthz tells the truth: with InfluxDB gone (a private influxd 1.8, stopped and restarted on
// the same data dir) and messages waiting, the processor is stuck; once that has lasted longer
// than health.maxStall, /healthz answers 503 with a JSON body naming InfluxDB, and the lag gauge
// shows the messages waiting. When InfluxDB returns, /healthz is 200 again and the lag drains.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { createProcessor, type ProcessorRuntime, resolveProcessorConfig } from '../../processor/index.ts';
import { freePort, type InfluxdbHandle, startInfluxdb } from '../../stack/index.ts';
import {
  createTopic,
  expectedPoints,
  fanOutTicks,
  produceTick,
  storedPoints,
  testProducer,
  waitFor,
} from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const id = randomUUID().slice(0, 8);
const topic = `strata.samples.health-${id}`;
const db = `strata_health_${id}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strata-health-influx-'));
let influx: InfluxdbHandle | undefined;
let processor: ProcessorRuntime | undefined;

afterAll(async () => {
  await processor?.stop();
  await influx?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function lagTotal(): Promise<number> {
  const m = await registry.getSingleMetric('strata_processor_consumer_lag_messages')?.get();
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

interface Healthz {
  status: number;
  body: { status: string; reasons: string[]; cause?: string; partitions: { lag: number | null }[] };
}

async function healthz(listen: string): Promise<Healthz> {
  const res = await fetch(`http://${listen}/healthz`);
  return { status: res.status, body: (await res.json()) as Healthz['body'] };
}

describe('/healthz while the processor is stuck', () => {
  it('turns 503 after health.maxStall with InfluxDB down and lag waiting, and 200 again after', async () => {
    const [port, rpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    influx = await startInfluxdb({ port, rpcPort, dataDir, database: db });
    const url = influx.url;
    await createTopic(brokers, topic, 2);
    const ticks = fanOutTicks(`health-${id}`, 4, Date.now() - 60_000);
    const listen = `127.0.0.1:${metricsPort}`;
    const config = resolveProcessorConfig(
      { metricsListen: listen },
      {
        KAFKA_BROKERS: brokers,
        STRATA_SAMPLES_TOPIC: topic,
        STRATA_DLQ_TOPIC: `strata.dlq.health-${id}`,
        STRATA_ALERTS_TOPIC: '',
        STRATA_GROUP_ID: `g-health-${id}`,
        INFLUX_URL: url,
        INFLUX_BUCKET: db,
      },
    );
    config.health.maxStall = 3_000;
    config.health.lagInterval = 500;
    config.influxdb.maxRetryTime = 1_000;
    config.maxBackoff = 1_000;
    processor = createProcessor(config);
    await processor.start();
    const producer = testProducer(brokers);
    await producer.connect();
    let t = 0;
    for (; t < 4; t++) await produceTick(producer, topic, ticks[t] ?? []);
    await waitFor(
      'points before the outage',
      async () => ((await storedPoints(url, db)).size > 0 ? true : undefined),
      30_000,
      200,
    );
    const ok = await healthz(listen);
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('ok');

    await influx.stop();
    for (; t < 10; t++) await produceTick(producer, topic, ticks[t] ?? []);
    const stalled = await waitFor(
      '/healthz to answer 503',
      async () => {
        const h = await healthz(listen);
        return h.status === 503 ? h : undefined;
      },
      60_000,
      250,
    );
    expect(stalled.body.status).toBe('stalled');
    expect(stalled.body.reasons.length).toBeGreaterThan(0);
    // The cause is InfluxDB, named as such.
    expect(stalled.body.cause).toMatch(/^influxdb: .*InfluxDB/);
    // The lag is what waits, not 0: the messages of the ticks produced during the outage, at least.
    expect(await lagTotal()).toBeGreaterThan(0);
    expect(stalled.body.partitions.some((p) => (p.lag ?? 0) > 0)).toBe(true);

    influx = await startInfluxdb({ port, rpcPort, dataDir, database: db });
    for (; t < ticks.length; t++) await produceTick(producer, topic, ticks[t] ?? []);
    await producer.disconnect();
    const expected = expectedPoints(ticks);
    await waitFor(
      `${expected.size} points after InfluxDB returned`,
      async () => ((await storedPoints(url, db)).size >= expected.size ? true : undefined),
      90_000,
    );
    const healthy = await waitFor(
      '/healthz to answer 200 again',
      async () => {
        const h = await healthz(listen);
        return h.status === 200 ? h : undefined;
      },
      30_000,
      250,
    );
    expect(healthy.body.status).toBe('ok');
    await waitFor('the lag to drain', async () => ((await lagTotal()) === 0 ? true : undefined), 30_000, 250);
  });
});
