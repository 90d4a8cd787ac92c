// The v1 sink (/write) against Debian's real influxd 1.6.7 (apt-get install influxdb), started by
// hand on its own loopback port with auth enabled and its own dirs, stopped after. It has no
// /api/v2/write, so this is exactly the InfluxDB 1.x path.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError } from '../../lib/errors.ts';
import { registry } from '../../lib/metrics.ts';
import type { Point } from '../../schemas/point.ts';
import { InfluxConfig } from '../../sinks/influxdb/config.ts';
import { createInfluxV1Sink } from '../../sinks/influxdb/v1.ts';

const INFLUXD = '/usr/bin/influxd';
const USER = 'admin';
const PASS = 'p@ss word';

let dir: string;
let child: ChildProcess;
let url: string;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface QueryResult {
  error?: string;
  results: { error?: string; series: { columns: string[]; values: unknown[][] }[] }[];
}

async function query(q: string, db?: string, auth = true): Promise<QueryResult> {
  const params = new URLSearchParams({ q, epoch: 'ms' });
  if (db) params.set('db', db);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
  const res = await fetch(`${url}/query`, {
    method: 'POST',
    headers,
    body: params,
  });
  return (await res.json()) as QueryResult;
}

beforeAll(async () => {
  if (!existsSync(INFLUXD)) {
    // Installing is the fix, and the test says so rather than skipping.
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'influxdb'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: 'ignore',
    });
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'strata-influx-v1-'));
  const [port, rpc] = [await freePort(), await freePort()];
  url = `http://127.0.0.1:${port}`;
  writeFileSync(
    path.join(dir, 'influxdb.conf'),
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpc}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:${port}"
  auth-enabled = true
  log-enabled = false
  # Small, so that a large request gets 413 and the writer's split path runs against the real server.
  max-body-size = 20000
[continuous_queries]
  enabled = false
`,
  );
  child = spawn(INFLUXD, ['run', '-config', path.join(dir, 'influxdb.conf')], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  for (let i = 0; i < 150; i++) {
    const ok = await fetch(`${url}/ping`).then(
      (r) => r.status === 204,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // With auth on and no users yet, InfluxDB 1.x accepts exactly this statement unauthenticated.
  const created = await query(
    `CREATE USER "${USER}" WITH PASSWORD '${PASS}' WITH ALL PRIVILEGES`,
    undefined,
    false,
  );
  expect(created.results?.[0]?.error).toBeUndefined();
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cfg(extra: Record<string, unknown> = {}) {
  return InfluxConfig.parse({ url, database: 'v1test', username: USER, password: PASS, ...extra });
}

describe('influxdb-v1 sink against influxd 1.6.7', () => {
  it('creates the database and round-trips tricky tag values, string fields and float fields', async () => {
    const sink = createInfluxV1Sink(cfg({ gzipThreshold: 0, gzipLoopback: true })); // every body gzipped
    await sink.start();
    const t0 = 1_732_250_400_000;
    const tricky = ['web 1', 'a,b=c', 'line1\nline2', 'C:\\dir\\', 'tab\there', 'ünïcødé', 'x\\,y'];
    const points: Point[] = tricky.map((name, i) => ({
      measurement: 'strata host',
      tags: { entity: name, layer: 'container', empty: '' },
      fields: { cpu_cores: 0.5 + i, procs: i, note: `say "hi" \\ ${i}\nnext`, ok: i % 2 === 0 },
      timeMs: t0 + i * 1000,
    }));
    const result = await sink.write(points);
    expect(result).toEqual({ written: tricky.length, rejected: 0, unencodable: 0 });
    await sink.close();

    const res = await query('SELECT * FROM "strata host" ORDER BY time', 'v1test');
    expect(res.results[0]?.error).toBeUndefined();
    const series = res.results[0]?.series[0];
    if (!series) throw new Error(`no series in ${JSON.stringify(res)}`);
    const col = (name: string) => series.columns.indexOf(name);
    const rows: unknown[][] = series.values;
    expect(rows.map((r) => r[col('time')])).toEqual(tricky.map((_, i) => t0 + i * 1000));
    // Newlines and tabs become spaces; backslashes before a separator or at the end are removed.
    expect(rows.map((r) => r[col('entity')])).toEqual([
      'web 1',
      'a,b=c',
      'line1 line2',
      'C:\\dir',
      'tab here',
      'ünïcødé',
      'x,y',
    ]);
    expect(rows.map((r) => r[col('note')])).toEqual(tricky.map((_, i) => `say "hi" \\ ${i}\nnext`));
    expect(rows.map((r) => r[col('cpu_cores')])).toEqual(tricky.map((_, i) => 0.5 + i));
    // procs was written as 0, 1, 2 (no `i` suffix): stored as float, so a later 1.5 is no conflict.
    const types = await query('SHOW FIELD KEYS FROM "strata host"', 'v1test');
    const fieldTypes = Object.fromEntries((types.results[0]?.series[0]?.values ?? []) as [string, unknown][]);
    expect(fieldTypes).toMatchObject({ cpu_cores: 'float', procs: 'float', note: 'string', ok: 'boolean' });
  });

  it('counts a 400 (field type conflict) as rejected without retrying, and the write still resolves', async () => {
    const sink = createInfluxV1Sink(cfg());
    await sink.start();
    const before = await errorCount('influxdb-v1', 'bad_request');
    const r = await sink.write([
      { measurement: 'conflict', tags: {}, fields: { f: 'text' }, timeMs: 1_732_250_400_000 },
    ]);
    expect(r.written).toBe(1);
    const r2 = await sink.write([
      { measurement: 'conflict', tags: {}, fields: { f: 1 }, timeMs: 1_732_250_401_000 },
    ]);
    // The refused line comes back with InfluxDB's reason: the processor dead-letters it.
    expect(r2).toEqual({
      written: 0,
      rejected: 1,
      unencodable: 0,
      refused: [
        { line: 'conflict f=1 1732250401000', error: expect.stringContaining('field type conflict') },
      ],
    });
    expect(await errorCount('influxdb-v1', 'bad_request')).toBe(before + 1);
    await sink.close();
  });

  it('retries a wrong password as an auth error, then fails back retriable after maxRetryTime', async () => {
    const sink = createInfluxV1Sink(cfg({ password: 'wrong', createDatabase: false, maxRetryTime: 400 }));
    await sink.start(); // /ping needs no auth
    const before = await errorCount('influxdb-v1', 'auth');
    const err = await sink
      .write([{ measurement: 'm', tags: {}, fields: { f: 1 }, timeMs: 1_732_250_400_000 }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).retriable).toBe(true);
    expect(await errorCount('influxdb-v1', 'auth')).toBeGreaterThan(before);
    await sink.close();
  });

  it('coalesces writes made while a request is in flight into one request, each write() resolving with its own lines', async () => {
    const sink = createInfluxV1Sink(cfg({ gzipThreshold: 1e9, maxInFlight: 1, batchSize: 5000 }));
    await sink.start();
    const before = await requestCount('influxdb-v1');
    const t0 = 1_732_260_000_000;
    const writes = Array.from({ length: 10 }, (_, w) =>
      sink.write(
        Array.from({ length: 20 }, (_, i) => ({
          measurement: 'batched',
          tags: { writer: `w${w}` },
          fields: { value: i * 0.5 },
          timeMs: t0 + i,
        })),
      ),
    );
    const results = await Promise.all(writes);
    await sink.close();
    expect(results).toEqual(Array.from({ length: 10 }, () => ({ written: 20, rejected: 0, unencodable: 0 })));
    // The first write went out alone at once; the 9 made meanwhile left together when it returned.
    expect((await requestCount('influxdb-v1')) - before).toBe(2);
    const count = await query('SELECT count(value) FROM batched', 'v1test');
    expect(count.results[0]?.series[0]?.values[0]?.[1]).toBe(200);
  });

  it('splits a request the server finds too large (413) until the halves fit', async () => {
    const sink = createInfluxV1Sink(cfg({ gzipThreshold: 1e9 }));
    await sink.start();
    const tooLargeBefore = await errorCount('influxdb-v1', 'too_large');
    const before = await requestCount('influxdb-v1');
    // ~36 KB of line protocol against max-body-size 20 KB: one 413, then two halves that fit.
    const r = await sink.write(
      Array.from({ length: 500 }, (_, i) => ({
        measurement: 'big',
        tags: { pad: 'x'.repeat(40) },
        fields: { value: i },
        timeMs: 1_732_270_000_000 + i,
      })),
    );
    await sink.close();
    expect(r).toEqual({ written: 500, rejected: 0, unencodable: 0 });
    expect((await errorCount('influxdb-v1', 'too_large')) - tooLargeBefore).toBe(1);
    expect((await requestCount('influxdb-v1')) - before).toBe(2);
    const count = await query('SELECT count(value) FROM big', 'v1test');
    expect(count.results[0]?.series[0]?.values[0]?.[1]).toBe(500);
  });

  it('start() names the server, the address and how to start one when nothing listens', async () => {
    const port = await freePort();
    const sink = createInfluxV1Sink(InfluxConfig.parse({ url: `http://127.0.0.1:${port}` }));
    const err = (await sink.start().catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.message).toContain(`http://127.0.0.1:${port}`);
    expect(err.message).toContain('npx strata stack up');
    expect(err.message).toContain('INFLUX_URL');
  });
});

async function requestCount(sink: string): Promise<number> {
  const m = await registry.getSingleMetric('strata_sink_write_request_duration_seconds')?.get();
  return (
    m?.values.find(
      (v) => v.labels.sink === sink && (v as { metricName?: string }).metricName?.endsWith('_count'),
    )?.value ?? 0
  );
}

async function errorCount(sink: string, kind: string): Promise<number> {
  const m = await registry.getSingleMetric('strata_sink_write_errors_total')?.get();
  return m?.values.find((v) => v.labels.sink === sink && v.labels.kind === kind)?.value ?? 0;
}
