// The foundation end to end, on the real stack: wire-format messages built from real /proc
// snapshots (testdata/) -> Kafka (key = node id) -> consumed and validated with decodeSampleMessage
// -> InfluxDB through @influxdata/influxdb-client (/api/v2/write, bucket db/rp) -> read back with
// InfluxQL. Every value read back must be exactly the value written.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  decodeSampleMessage,
  HEADERS,
  type SampleMessage,
  type SampleMessageInput,
  SCHEMA_VERSION,
} from '../../schemas/sample.ts';
import { influxQuery } from '../../stack/index.ts';

const brokers = inject('kafkaBrokers');
const influxUrl = inject('influxUrl');
const database = inject('influxDatabase');
const TOPIC = 'strata.samples';
const run = randomUUID().slice(0, 8);
const MEASUREMENT = 'e2e_foundation';
const TESTDATA = path.resolve(import.meta.dirname, '../../testdata/proc/hybrid-host');

const kafka = new Kafka({
  clientId: `e2e-foundation-${run}`,
  brokers: [brokers],
  logLevel: logLevel.NOTHING,
});
const admin = kafka.admin();
const producer = kafka.producer({ allowAutoTopicCreation: false });
const consumer = kafka.consumer({ groupId: `e2e-foundation-${run}`, sessionTimeout: 10_000 });

afterAll(async () => {
  await Promise.allSettled([consumer.disconnect(), producer.disconnect(), admin.disconnect()]);
});

/** Host counters of one real /proc snapshot (two consecutive captures exist: step0, step1). */
function hostCounters(step: string) {
  const stat = readFileSync(path.join(TESTDATA, step, 'stat'), 'utf8');
  const vmstat = readFileSync(path.join(TESTDATA, step, 'vmstat'), 'utf8');
  const meminfo = readFileSync(path.join(TESTDATA, step, 'meminfo'), 'utf8');
  const cpu = /^cpu +(.+)$/m.exec(stat)![1]!.split(/\s+/).map(Number);
  const line = (text: string, key: string) => Number(new RegExp(`^${key}:?\\s+(\\d+)`, 'm').exec(text)![1]);
  const usec = (ticks: number | undefined) => (ticks ?? 0) * 10_000; // USER_HZ = 100
  return {
    counters: {
      cpu_user_usec_total: usec(cpu[0]),
      cpu_nice_usec_total: usec(cpu[1]),
      cpu_system_usec_total: usec(cpu[2]),
      cpu_idle_usec_total: usec(cpu[3]),
      cpu_iowait_usec_total: usec(cpu[4]),
      cpu_softirq_usec_total: usec(cpu[6]),
      cpu_steal_usec_total: usec(cpu[7]),
      context_switches_total: line(stat, 'ctxt'),
      processes_forked_total: line(stat, 'processes'),
      page_faults_total: line(vmstat, 'pgfault'),
      major_page_faults_total: line(vmstat, 'pgmajfault'),
    },
    gauges: {
      cpu_count: (stat.match(/^cpu\d+ /gm) ?? []).length,
      memory_total_bytes: line(meminfo, 'MemTotal') * 1024,
      memory_available_bytes: line(meminfo, 'MemAvailable') * 1024,
      procs_running: line(stat, 'procs_running'),
    },
  };
}

/** 3 nodes x 2 ticks; each node's counters are the real snapshot shifted so nodes differ. */
function buildBatch(): SampleMessageInput[] {
  const t0 = Date.UTC(2026, 10, 22, 4, 0, 0);
  const out: SampleMessageInput[] = [];
  for (const [n, node] of ['e2e-node-a', 'e2e-node-b', 'e2e-node-c'].entries()) {
    for (const [seq, step] of ['step0', 'step1'].entries()) {
      const host = hostCounters(step);
      const counters = Object.fromEntries(
        Object.entries(host.counters).map(([k, v]) => [k, v + n * 1_000_003]),
      );
      out.push({
        v: SCHEMA_VERSION,
        node: { id: `${node}-${run}`, hostname: node, labels: { rack: `r${n}` } },
        ts: t0 + seq * 1000,
        interval_ms: 1000,
        seq,
        agent: { version: '0.1.0', run_id: run },
        samples: [
          {
            entity: { layer: 'host', kind: 'node', id: `${node}-${run}`, name: node, labels: {} },
            counters,
            gauges: host.gauges,
          },
          {
            entity: {
              layer: 'container',
              kind: 'docker',
              id: `c0ffee${n}${seq}`.padEnd(64, '0'),
              name: `web-${n}`,
              labels: { image: 'strata/busybox:latest', cgroup_version: 'hybrid' },
              parent: { layer: 'host', id: `${node}-${run}` },
            },
            counters: {
              cpu_usage_usec_total: 2_500_000 + seq * 412_345 + n,
              page_faults_total: 18_211 + seq * 97,
            },
            gauges: { memory_usage_bytes: 7_340_032 + seq * 4096 },
          },
        ],
      });
    }
  }
  return out;
}

describe('foundation end to end', () => {
  it('carries sample messages through Kafka into InfluxDB and reads back exactly what was written', async () => {
    const batch = buildBatch();
    await admin.connect();
    // Start the new group at the current end of every partition, so it reads only this batch.
    const ends = await admin.fetchTopicOffsets(TOPIC);
    await admin.setOffsets({
      groupId: `e2e-foundation-${run}`,
      topic: TOPIC,
      partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
    });

    await producer.connect();
    await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: batch.map((m) => ({
        key: m.node.id,
        value: JSON.stringify(m),
        headers: {
          [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
          [HEADERS.contentType]: 'application/json',
        },
      })),
    });

    const received: { key: string; partition: number; message: SampleMessage }[] = [];
    const rejected: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC });
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          const decoded = decodeSampleMessage(message.value);
          if (!decoded.ok) rejected.push(decoded.reason);
          else if (decoded.message.agent.run_id === run) {
            received.push({ key: message.key?.toString() ?? '', partition, message: decoded.message });
          }
          if (received.length === batch.length) resolve();
        },
      });
    });
    await done;

    expect(rejected).toEqual([]);
    expect(received).toHaveLength(batch.length);
    for (const r of received) expect(r.key).toBe(r.message.node.id);
    // Key = node id: every message of one node is in one partition, in order.
    const byNode = new Map<string, typeof received>();
    for (const r of received) byNode.set(r.key, [...(byNode.get(r.key) ?? []), r]);
    expect(byNode.size).toBe(3);
    for (const msgs of byNode.values()) {
      expect(new Set(msgs.map((m) => m.partition)).size).toBe(1);
      expect(msgs.map((m) => m.message.seq)).toEqual([0, 1]);
    }

    // Write every entity sample as one point: tags identify it, counters and gauges are fields.
    const writeApi = new InfluxDB({ url: influxUrl, token: '' }).getWriteApi('', `${database}/autogen`, 'ms');
    const expected = new Map<string, Record<string, number>>();
    for (const { message } of received) {
      for (const s of message.samples) {
        const fields = { ...s.counters, ...s.gauges };
        const point = new Point(MEASUREMENT)
          .tag('run', run)
          .tag('node', message.node.id)
          .tag('layer', s.entity.layer)
          .tag('entity', s.entity.name)
          .timestamp(s.ts ?? message.ts);
        for (const [k, v] of Object.entries(fields)) point.floatField(k, v);
        writeApi.writePoint(point);
        expected.set(`${message.node.id}|${s.entity.layer}|${s.entity.name}|${s.ts ?? message.ts}`, fields);
      }
    }
    await writeApi.close();

    const result = await influxQuery(influxUrl, `SELECT * FROM "${MEASUREMENT}" WHERE "run" = '${run}'`, {
      db: database,
      epoch: 'ms',
    });
    const series = result.results?.[0]?.series?.[0];
    expect(series, 'no rows came back').toBeDefined();
    const cols = series!.columns;
    const actual = new Map<string, Record<string, number>>();
    for (const row of series!.values) {
      const get = (c: string) => row[cols.indexOf(c)];
      const fields: Record<string, number> = {};
      for (const [i, c] of cols.entries()) {
        if (!['time', 'run', 'node', 'layer', 'entity'].includes(c) && row[i] !== null)
          fields[c] = row[i] as number;
      }
      actual.set(`${get('node')}|${get('layer')}|${get('entity')}|${get('time')}`, fields);
    }
    expect(actual.size).toBe(batch.length * 2);
    expect(actual).toEqual(expected);
  });
});
