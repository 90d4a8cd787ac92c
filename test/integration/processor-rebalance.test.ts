// Two `strata processor` children in one group while data flows: the second joining and the first
// leaving (SIGTERM) move partitions between them. Revoked partitions drop their state, newly
// assigned ones rebuild it from messages before the committed offset, so InfluxDB ends with exactly
// the points of an uninterrupted run.
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
const NODES = 8;
const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-rebalance-'));
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) await killChild(c);
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('processor group rebalances', () => {
  it('a member joining and one leaving mid-stream lose and duplicate nothing', async () => {
    await createTopic(brokers, topic, 4);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const ticks = fanOutTicks(`rebal-${id}`, NODES, Date.now() - 60_000);
    const expected = expectedPoints(ticks);
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
    const logA = path.join(dir, 'a.log');
    const logB = path.join(dir, 'b.log');
    const a = spawnProcessor(env, logA, ['--config', configFile]);
    children.push(a);
    const producer = testProducer(brokers);
    await producer.connect();
    let t = 0;
    for (; t < 6; t++) {
      await produceTick(producer, topic, ticks[t] ?? []);
      await sleep(300);
    }
    await waitFor(
      'A to store points',
      async () => ((await storedPoints(influxUrl, db)).size > 0 ? true : undefined),
      60_000,
      200,
    );
    const b = spawnProcessor(env, logB, ['--config', configFile]);
    children.push(b);
    // B joins: the group rebalances and the partitions are split between A and B.
    await waitFor(
      'B to get partitions',
      async () => (readFileSync(logB, 'utf8').includes('partitions assigned') ? true : undefined),
      60_000,
      200,
    );
    for (; t < 13; t++) {
      await produceTick(producer, topic, ticks[t] ?? []);
      await sleep(300);
    }
    await killChild(a, 'SIGTERM'); // A leaves cleanly: B takes everything
    expect(a.exitCode).toBe(0);
    for (; t < ticks.length; t++) {
      await produceTick(producer, topic, ticks[t] ?? []);
      await sleep(300);
    }
    await producer.disconnect();

    const stored = await waitForStored(influxUrl, db, expected);
    expectStoredAsExpected(stored, expected);
    expect(await seriesTimes(influxUrl, db, 'strata_overhead')).toEqual({
      times: NODES * (ticks.length - 1),
      duplicates: 0,
    });
    // B really took over partitions that A had consumed (so it had to rebuild their state).
    const bLog = readFileSync(logB, 'utf8');
    expect(bLog).toContain('re-reading messages to rebuild state');
    expect(readFileSync(logA, 'utf8')).toContain('dropped pipeline state of partition');
  });
});
