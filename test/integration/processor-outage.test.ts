// InfluxDB goes away for 30 s mid-stream (a private influxd 1.8 from the stack API, stopped and
// restarted on the same data dir): the processor pauses, keeps its group membership through
// heartbeats, and after InfluxDB returns the database holds exactly the expected points.
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
  expectStoredAsExpected,
  fanOutTicks,
  produceTick,
  seriesTimes,
  storedPoints,
  testProducer,
  waitFor,
  waitForStored,
} from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const id = randomUUID().slice(0, 8);
const topic = `strata.samples.t-${id}`;
const db = `strata_outage_${id}`;
const NODES = 4;
const OUTAGE_MS = 30_000;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strata-outage-influx-'));
let influx: InfluxdbHandle | undefined;
let processor: ProcessorRuntime | undefined;

afterAll(async () => {
  await processor?.stop();
  await influx?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

describe('InfluxDB outage of 30 s mid-stream', () => {
  it('pauses, retries with heartbeats, resumes, and ends with exactly the expected points', async () => {
    const [port, rpcPort] = [await freePort(), await freePort()];
    influx = await startInfluxdb({ port, rpcPort, dataDir, database: db });
    const url = influx.url;
    await createTopic(brokers, topic, 2);
    const ticks = fanOutTicks(`outage-${id}`, NODES, Date.now() - 60_000);
    const expected = expectedPoints(ticks);

    processor = createProcessor(
      resolveProcessorConfig(
        { metricsListen: '' },
        {
          KAFKA_BROKERS: brokers,
          STRATA_SAMPLES_TOPIC: topic,
          STRATA_DLQ_TOPIC: `strata.dlq.t-${id}`,
          STRATA_ALERTS_TOPIC: `strata.alerts.t-${id}`,
          STRATA_GROUP_ID: `g-${id}`,
          INFLUX_URL: url,
          INFLUX_BUCKET: db,
        },
      ),
    );
    await processor.start();
    const producer = testProducer(brokers);
    await producer.connect();
    let t = 0;
    for (; t < 6; t++) await produceTick(producer, topic, ticks[t] ?? []);
    await waitFor(
      'points before the outage',
      async () => ((await storedPoints(url, db)).size > 0 ? true : undefined),
      30_000,
      200,
    );

    const abandonedBefore = await metric('strata_processor_batches_abandoned_total');
    const retriesBefore = await metric('strata_processor_delivery_retries_total');
    const networkErrorsBefore = await metric('strata_sink_write_errors_total', {
      sink: 'influxdb-v2',
      kind: 'network',
    });
    await influx.stop();
    const down = Date.now();
    // The stream goes on while InfluxDB is down.
    for (; t < ticks.length; t++) {
      await produceTick(producer, topic, ticks[t] ?? []);
      await new Promise((r) => setTimeout(r, 500));
    }
    await producer.disconnect();
    await waitFor(
      'the processor to pause',
      async () => ((await metric('strata_processor_paused')) === 1 ? true : undefined),
      30_000,
      200,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - down))));
    expect(await metric('strata_processor_paused')).toBe(1);
    expect(await metric('strata_processor_delivery_retries_total')).toBeGreaterThan(retriesBefore);
    expect(
      await metric('strata_sink_write_errors_total', { sink: 'influxdb-v2', kind: 'network' }),
    ).toBeGreaterThan(networkErrorsBefore);
    // Heartbeats kept the member in the group: it still owns both partitions, nothing abandoned.
    expect(await metric('strata_processor_assigned_partitions')).toBe(2);
    expect(await metric('strata_processor_batches_abandoned_total')).toBe(abandonedBefore);

    influx = await startInfluxdb({ port, rpcPort, dataDir, database: db });
    const stored = await waitForStored(url, db, expected, `${expected.size} points after InfluxDB returned`);
    expectStoredAsExpected(stored, expected);
    expect(await seriesTimes(url, db, 'strata_overhead')).toEqual({
      times: NODES * (ticks.length - 1),
      duplicates: 0,
    });
    await waitFor(
      'the processor to resume',
      async () => ((await metric('strata_processor_paused')) === 0 ? true : undefined),
      30_000,
      200,
    );
  });
});
