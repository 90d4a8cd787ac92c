// kill -9 the processor (a real `strata processor` child) mid-stream, restart it: InfluxDB ends up
// with exactly the points an uninterrupted run stores (same series, times and values), none twice.

import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  createTopic,
  expectedPoints,
  expectStoredAsExpected,
  fanOutTicks,
  influxQl,
  killChild,
  produceTick,
  seriesTimes,
  spawnProcessor,
  storedPoints,
  testProducer,
  waitFor,
  waitForStored,
} from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const influxUrl = inject('influxUrl');
const id = randomUUID().slice(0, 8);
const topic = `strata.samples.t-${id}`;
const db = `strata_t_${id}`;
const NODES = 6;
const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-crash-'));
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) await killChild(c);
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

describe('processor crash (kill -9) and restart', () => {
  it('stores the same points as an uninterrupted run, none lost, none twice', async () => {
    await createTopic(brokers, topic, 3);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const ticks = fanOutTicks(`crash-${id}`, NODES, Date.now() - 60_000);
    const expected = expectedPoints(ticks);
    // A short session timeout so the group notices the killed member quickly (broker minimum 6 s).
    const configFile = path.join(dir, 'strata.yaml');
    writeFileSync(configFile, 'processor:\n  kafka:\n    sessionTimeout: 6s\n    heartbeatInterval: 1s\n');
    const env = {
      KAFKA_BROKERS: brokers,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_DLQ_TOPIC: `strata.dlq.t-${id}`,
      STRATA_ALERTS_TOPIC: `strata.alerts.t-${id}`,
      STRATA_GROUP_ID: `g-${id}`,
      INFLUX_URL: influxUrl,
      INFLUX_BUCKET: db,
    };
    const log1 = path.join(dir, 'processor-1.log');
    const log2 = path.join(dir, 'processor-2.log');

    const producer = testProducer(brokers);
    await producer.connect();
    const first = spawnProcessor(env, log1, ['--config', configFile]);
    children.push(first);
    let t = 0;
    for (; t < 8; t++) {
      await produceTick(producer, topic, ticks[t] ?? []);
      await new Promise((r) => setTimeout(r, 300));
    }
    // Mid-stream: the first processor has stored part of the data when it dies.
    const partial = await waitFor(
      'the first processor to store some points',
      async () => {
        const s = (await storedPoints(influxUrl, db)).size;
        return s > 0 ? s : undefined;
      },
      60_000,
      200,
    );
    await new Promise((r) => setTimeout(r, 500)); // let its first commits land, so the restart resumes mid-stream
    await killChild(first, 'SIGKILL');
    expect(first.signalCode).toBe('SIGKILL');
    expect(partial).toBeLessThan(expected.size);
    for (; t < ticks.length; t++) await produceTick(producer, topic, ticks[t] ?? []);
    await producer.disconnect();

    const second = spawnProcessor(env, log2, ['--config', configFile]);
    children.push(second);
    const stored = await waitForStored(influxUrl, db, expected, `${expected.size} points after the restart`);
    expectStoredAsExpected(stored, expected);
    const n = ticks.length;
    const cpu = await influxQl(
      influxUrl,
      `SELECT count(cpu_cores) FROM strata_host WHERE device = '' AND interface = ''`,
      db,
    );
    expect(cpu.results?.[0]?.series?.[0]?.values[0]?.[1]).toBe(NODES * (n - 1));
    for (const m of ['strata_host', 'strata_overhead']) {
      const { duplicates } = await seriesTimes(influxUrl, db, m);
      expect(duplicates, m).toBe(0);
    }
    const overhead = await seriesTimes(influxUrl, db, 'strata_overhead');
    expect(overhead.times).toBe(NODES * (n - 1));
    // The restart rebuilt counter state from messages before the committed offsets (else the
    // first rate of every node after the restart would be missing and the counts above short).
    const restartLog = readFileSync(log2, 'utf8');
    expect(restartLog).toContain('processor started');
    expect(restartLog).toContain('re-reading messages to rebuild state');
    await killChild(second, 'SIGTERM');
    expect(second.exitCode).toBe(0);
  });
});
