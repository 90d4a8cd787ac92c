// Shared by the processor integration tests: real agent ticks fanned out to several nodes, Kafka
// topics and producers, InfluxDB queries, and the expected points computed by running the same
// pipeline in-process.
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { expect } from 'vitest';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import type { SampleMessage } from '../../schemas/sample.ts';
import { formatNumber } from '../../sinks/influxdb/line-protocol.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** 19 consecutive real ticks (1 s apart) recorded from `strata agent --output ndjson` on this machine. */
export const TICKS_FILE = path.join(ROOT, 'testdata/processor/agent-host-1s.ndjson');

/**
 * The recorded ticks as `nodes` distinct nodes (node id, host entity id/name rewritten), with
 * sample times moved so that the first tick is at `startMs`. ticks[t][n] = node n's message at tick t.
 */
export function fanOutTicks(prefix: string, nodes: number, startMs: number): SampleMessage[][] {
  const raw = readFileSync(TICKS_FILE, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
  const t0 = raw[0]?.ts ?? 0;
  return raw.map((msg) =>
    Array.from({ length: nodes }, (_, n) => {
      const id = `${prefix}-node-${n}`;
      const oldId = msg.node.id;
      const text = JSON.stringify(msg).split(oldId).join(id);
      const m = JSON.parse(text) as SampleMessage;
      m.node.hostname = id;
      const shift = startMs - t0;
      m.ts += shift;
      for (const s of m.samples) {
        if (s.entity.id === id) s.entity.name = id;
        if (s.ts !== undefined) s.ts += shift;
      }
      return m;
    }),
  );
}

export function seriesKey(p: { measurement: string; tags: Record<string, string>; timeMs: number }): string {
  const tags = Object.keys(p.tags)
    .filter((k) => p.tags[k] !== '')
    .sort()
    .map((k) => `${k}=${p.tags[k]}`)
    .join(',');
  return `${p.measurement}|${tags}|${p.timeMs}`;
}

/**
 * The points a processor stores for these ticks: the pipeline's, with every number as the line
 * protocol writes it (9 significant digits for non-integers, sinks/influxdb/line-protocol.ts), so the
 * comparison with InfluxDB stays exact. Two points of the same series and time (a VM's overhead
 * joined a tick late is a second line of its strata_vm point) are one point in InfluxDB, with the
 * fields of both: merged here the same way.
 */
export function expectedPoints(ticks: SampleMessage[][]): Map<string, Point> {
  const pipeline = createPipeline();
  const out = new Map<string, Point>();
  for (const tick of ticks) {
    for (const m of tick) {
      for (const p of pipeline.handle(structuredClone(m)).points) {
        const fields: Point['fields'] = {};
        for (const [f, v] of Object.entries(p.fields))
          fields[f] = typeof v === 'number' && Number.isFinite(v) ? Number(formatNumber(v)) : v;
        const key = seriesKey(p);
        const prev = out.get(key);
        out.set(key, { ...p, fields: prev === undefined ? fields : { ...prev.fields, ...fields } });
      }
    }
  }
  return out;
}

export function kafkaClient(brokers: string): Kafka {
  return new Kafka({ clientId: 'strata-test', brokers: [brokers], logLevel: logLevel.NOTHING });
}

export function testProducer(brokers: string): Producer {
  return kafkaClient(brokers).producer({ createPartitioner: Partitioners.DefaultPartitioner });
}

export async function createTopic(brokers: string, topic: string, numPartitions: number): Promise<void> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

export async function produceTick(producer: Producer, topic: string, tick: SampleMessage[]): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    messages: tick.map((m) => ({
      key: m.node.id,
      value: JSON.stringify(m),
      headers: { 'strata-schema-version': '1', 'content-type': 'application/json' },
    })),
  });
}

export async function influxQl(url: string, q: string, db?: string): Promise<InfluxResult> {
  const params = new URLSearchParams({ q, epoch: 'ms' });
  if (db) params.set('db', db);
  const res = await fetch(`${url}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: params,
  });
  const body = (await res.json()) as InfluxResult;
  const err = body.error ?? body.results?.find((r) => r.error)?.error;
  if (!res.ok || err) throw new Error(`InfluxQL ${q}: ${res.status} ${err ?? ''}`);
  return body;
}

export interface InfluxResult {
  error?: string;
  results?: {
    error?: string;
    series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[];
  }[];
}

/** Every stored point as series key → row, read back with InfluxQL (SELECT * per measurement). */
export async function storedPoints(url: string, db: string): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  const ms = await influxQl(url, 'SHOW MEASUREMENTS', db);
  const names = (ms.results?.[0]?.series?.[0]?.values ?? []).map((v) => String(v[0]));
  for (const name of names) {
    const tagKeys = await influxQl(url, `SHOW TAG KEYS FROM "${name}"`, db);
    const tagSet = new Set((tagKeys.results?.[0]?.series?.[0]?.values ?? []).map((v) => String(v[0])));
    const res = await influxQl(url, `SELECT * FROM "${name}"`, db);
    const s = res.results?.[0]?.series?.[0];
    if (!s) continue;
    for (const row of s.values) {
      const rec: Record<string, unknown> = {};
      s.columns.forEach((c, i) => {
        rec[c] = row[i];
      });
      const tags: Record<string, string> = {};
      for (const k of tagSet) if (rec[k] != null && rec[k] !== '') tags[k] = String(rec[k]);
      out.set(seriesKey({ measurement: name, tags, timeMs: Number(rec.time) }), rec);
    }
  }
  return out;
}

/** InfluxDB's points once it holds at least as many as `expected` (waited for up to 90 s). */
export function waitForStored(
  url: string,
  db: string,
  expected: ReadonlyMap<string, Point>,
  what = `${expected.size} points in InfluxDB`,
): Promise<Map<string, Record<string, unknown>>> {
  return waitFor(
    what,
    async () => {
      const s = await storedPoints(url, db);
      return s.size >= expected.size ? s : undefined;
    },
    90_000,
  );
}

/**
 * Same set of (measurement, tags, time), same field values: nothing lost, nothing extra. A
 * non-finite value is never written (the encoder leaves it out), so it is not looked for.
 */
export function expectStoredAsExpected(
  stored: ReadonlyMap<string, Record<string, unknown>>,
  expected: ReadonlyMap<string, Point>,
): void {
  expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, p] of expected) {
    const row = stored.get(key) as Record<string, unknown>;
    for (const [f, v] of Object.entries(p.fields)) {
      if (typeof v === 'number' && !Number.isFinite(v)) continue;
      expect(row[f], `${key} ${f}`).toEqual(v);
    }
  }
}

/**
 * Per series (GROUP BY *), the number of distinct point times, summed; `duplicates` counts rows
 * whose (series, time) appeared before in the answer (InfluxDB overwrites, so this must be 0).
 */
export async function seriesTimes(
  url: string,
  db: string,
  measurement: string,
): Promise<{ times: number; duplicates: number }> {
  const res = await influxQl(url, `SELECT * FROM "${measurement}" GROUP BY *`, db);
  let times = 0;
  let duplicates = 0;
  for (const s of res.results?.[0]?.series ?? []) {
    const seen = new Set<number>();
    for (const v of s.values) {
      const t = Number(v[0]);
      if (seen.has(t)) duplicates++;
      seen.add(t);
    }
    times += seen.size;
  }
  return { times, duplicates };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `node bin/strata.js processor` as a child with its own env; stderr (pino JSON) goes to logFile. */
export function spawnProcessor(
  env: Record<string, string>,
  logFile: string,
  args: string[] = [],
): ChildProcess {
  const fd = openSync(logFile, 'a');
  return spawn(process.execPath, [path.join(ROOT, 'bin/strata.js'), 'processor', ...args], {
    cwd: ROOT,
    env: { ...process.env, STRATA_METRICS_LISTEN: '', ...env },
    stdio: ['ignore', fd, fd],
  });
}

export function killChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}
