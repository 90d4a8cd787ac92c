// Retention policies and continuous queries (sinks/influxdb/retention.ts) on the stack's real
// InfluxDB 1.8: what the processor creates at start, that a second start changes nothing, that a
// changed duration is altered, that policies and queries strata did not name are left alone, and
// that real pipeline points run through the continuous query's own SELECT ... INTO land in the
// rollup with the expected mean and max. Then, on an auth-enabled influxd (Debian's 1.6.7) with a
// user who is not an admin: the setup is refused, said, counted, and writes go on.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { createProcessor, type ProcessorRuntime, resolveProcessorConfig } from '../../processor/index.ts';
import type { Point } from '../../schemas/point.ts';
import { InfluxConfig } from '../../sinks/influxdb/config.ts';
import { createInfluxSink } from '../../sinks/influxdb/index.ts';
import { continuousQuery, RetentionSetup, rollupSelect } from '../../sinks/influxdb/retention.ts';
import {
  createTopic,
  expectedPoints,
  fanOutTicks,
  type InfluxResult,
  influxQl,
} from './processor.helpers.ts';

const influxUrl = process.env.INFLUX_URL ?? 'http://127.0.0.1:18086';
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
const id = `${process.pid}-${Date.now()}`;
const db = `rt_${id.replace(/-/g, '_')}`;

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getSingleMetric(name)?.get()) as
    | { values: { value: number; labels: Record<string, string | number> }[] }
    | undefined;
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((a, v) => a + v.value, 0);
}

function rows(r: InfluxResult): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const s of r.results?.[0]?.series ?? []) {
    for (const v of s.values ?? []) out.push(Object.fromEntries(s.columns.map((c, j) => [c, v[j]])));
  }
  return out;
}

async function policies(): Promise<Record<string, { duration: string; default: boolean }>> {
  const r = await influxQl(influxUrl, `SHOW RETENTION POLICIES ON "${db}"`);
  return Object.fromEntries(
    rows(r).map((x) => [String(x.name), { duration: String(x.duration), default: x.default === true }]),
  );
}

async function cqs(): Promise<Record<string, string>> {
  const r = await influxQl(influxUrl, 'SHOW CONTINUOUS QUERIES');
  const s = r.results?.[0]?.series?.find((x) => x.name === db);
  return Object.fromEntries((s?.values ?? []).map((v) => [String(v[0]), String(v[1])]));
}

/** The processor's config as a user sets it: env vars, the default v2 API against 1.8. */
function envConfig(extra: Record<string, string> = {}) {
  return resolveProcessorConfig(
    { metricsListen: '' },
    {
      KAFKA_BROKERS: brokers,
      STRATA_SAMPLES_TOPIC: `strata.samples.rt-${id}`,
      STRATA_DLQ_TOPIC: `strata.dlq.rt-${id}`,
      STRATA_ALERTS_TOPIC: '',
      STRATA_GROUP_ID: `g-rt-${id}`,
      INFLUX_URL: influxUrl,
      INFLUX_BUCKET: db,
      INFLUX_RETENTION_SETUP: 'true',
      ...extra,
    },
  );
}

function influxConfig(retention: Record<string, unknown> = {}) {
  return InfluxConfig.parse({ url: influxUrl, bucket: db, retention: { enabled: true, ...retention } });
}

describe('retention policies and continuous queries on the stack InfluxDB 1.8', () => {
  let processor: ProcessorRuntime | undefined;
  const userCq = `CREATE CONTINUOUS QUERY user_cq ON ${db} BEGIN SELECT count(*) INTO ${db}.keep_me.counted FROM ${db}.autogen.other GROUP BY time(1h) END`;

  beforeAll(async () => {
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    // Not strata's: must come out of every start exactly as they went in.
    await influxQl(influxUrl, `CREATE RETENTION POLICY "keep_me" ON "${db}" DURATION 30d REPLICATION 1`);
    await influxQl(influxUrl, userCq);
    await createTopic(brokers, `strata.samples.rt-${id}`, 1);
  });

  afterAll(async () => {
    await processor?.stop().catch(() => {});
    await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
  });

  it('the processor creates the raw (default) and rollup policies and one continuous query per rollup at start', async () => {
    const before = await metric('strata_sink_retention_changes_total', { sink: 'influxdb-v2' });
    processor = createProcessor(envConfig());
    await processor.start();
    await processor.stop();
    processor = undefined;

    const rp = await policies();
    expect(rp.raw).toEqual({ duration: '168h0m0s', default: true });
    expect(rp.rollup_1m).toEqual({ duration: '2160h0m0s', default: false });
    expect(rp.rollup_1h).toEqual({ duration: '17520h0m0s', default: false });
    expect(rp.keep_me).toEqual({ duration: '720h0m0s', default: false });
    expect(rp.autogen).toEqual({ duration: '0s', default: false });
    const q = await cqs();
    expect(Object.keys(q).sort()).toEqual(['strata_rollup_1h', 'strata_rollup_1m', 'user_cq']);
    expect(q.strata_rollup_1m).toBe(
      `CREATE CONTINUOUS QUERY strata_rollup_1m ON ${db} RESAMPLE EVERY 1m FOR 2m BEGIN SELECT mean(*), max(*), sum(*) INTO ${db}.rollup_1m.:MEASUREMENT ` +
        `FROM ${db}.raw./^(strata_host|strata_container|strata_vm|strata_guest|strata_overhead)$/ GROUP BY time(1m), * END`,
    );
    expect(q.user_cq).toBe(userCq);
    expect((await metric('strata_sink_retention_changes_total', { sink: 'influxdb-v2' })) - before).toBe(5);
  });

  it('a second start changes nothing', async () => {
    const [rp, q] = [await policies(), await cqs()];
    const sink = createInfluxSink(influxConfig());
    await sink.start();
    await sink.close();
    const again = await new RetentionSetup(influxConfig(), 'influxdb-v2').run();
    expect(again).toEqual({ ok: true, changes: [] });
    expect(await policies()).toEqual(rp);
    expect(await cqs()).toEqual(q);
  });

  it('a changed duration is altered, a changed query replaced, and nothing else touched', async () => {
    const r = await new RetentionSetup(
      influxConfig({
        raw: '14d',
        rollups: [
          { name: 'rollup_1m', every: '1m', duration: '30d', resampleFor: '5m' },
          { name: 'rollup_1h', every: '1h', duration: '730d' },
        ],
      }),
      'influxdb-v2',
    ).run();
    expect(r.ok).toBe(true);
    expect(r.changes).toEqual([
      `ALTER RETENTION POLICY "raw" ON "${db}" DURATION 14d`,
      `ALTER RETENTION POLICY "rollup_1m" ON "${db}" DURATION 30d`,
      `DROP CONTINUOUS QUERY "strata_rollup_1m" ON "${db}"`,
      expect.stringContaining('CREATE CONTINUOUS QUERY "strata_rollup_1m"'),
    ]);
    const rp = await policies();
    expect(rp.raw).toEqual({ duration: '336h0m0s', default: true });
    expect(rp.rollup_1m?.duration).toBe('720h0m0s');
    expect(rp.keep_me).toEqual({ duration: '720h0m0s', default: false });
    const q = await cqs();
    expect(q.strata_rollup_1m).toContain('RESAMPLE EVERY 1m FOR 5m');
    expect(q.user_cq).toBe(userCq);
    // Back to the defaults, for the data test below.
    expect((await new RetentionSetup(influxConfig(), 'influxdb-v2').run()).changes).toHaveLength(4);
  });

  it("real pipeline points run through the continuous query's SELECT ... INTO land in rollup_1m with their mean and max", async () => {
    // 19 recorded ticks, 1 s apart, inside one past minute (CQs run only on their schedule, so
    // the statement is run here by hand over that minute, as a backfill would).
    const minute = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
    const ticks = fanOutTicks(`rt-${id}`, 2, minute + 5_000);
    const points = [...expectedPoints(ticks).values()];
    const sink = createInfluxSink(InfluxConfig.parse({ url: influxUrl, bucket: db }));
    await sink.start();
    const alert: Point = {
      measurement: 'strata_alert',
      tags: { node: 'n', alertname: 'x', status: 'firing' },
      fields: { title: 't', victim_io_stall_ratio: 0.5 },
      timeMs: minute + 1_000,
    };
    // The only strings on per-tick points of a rolled-up measurement (docs/schema.md): on a VM's
    // point joined with its guest, beside its overhead; and the measurement that holds the
    // entities' ids.
    const vm: Point = {
      measurement: 'strata_vm',
      tags: { node: 'n', layer: 'vm', kind: 'qemu', name: 'v' },
      fields: { cpu_cores: 0.3, cpu_overhead_ratio: 1.5, guest_entity_id: 'g-1', host_device: 'sda' },
      timeMs: minute + 2_000,
    };
    const entity: Point = {
      measurement: 'strata_entity',
      tags: { node: 'n', layer: 'host', kind: 'node', name: 'n' },
      fields: { entity_id: 'e-1' },
      timeMs: minute + 2_000,
    };
    const w = await sink.write([...points, alert, vm, entity]);
    expect(w.written).toBe(points.length + 3);
    await sink.close();

    const c = influxConfig().retention;
    const rollup = c.rollups[0] as (typeof c.rollups)[number];
    const stmt = rollupSelect(c, db, rollup, `time >= ${minute}ms AND time < ${minute + 60_000}ms`);
    // The very SELECT the continuous query runs, only with a time range.
    expect(continuousQuery(c, db, rollup)).toContain(rollupSelect(c, db, rollup));
    await influxQl(influxUrl, stmt, db);

    // Expected: per node, the host entity row's cpu_cores over the minute.
    const hosts = points.filter(
      (p) => p.measurement === 'strata_host' && p.tags.kind === 'node' && !p.tags.device && !p.tags.interface,
    );
    const byNode = new Map<string, number[]>();
    for (const p of hosts) {
      const v = p.fields.cpu_cores;
      if (typeof v === 'number')
        byNode.set(p.tags.node as string, [...(byNode.get(p.tags.node as string) ?? []), v]);
    }
    expect(byNode.size).toBe(2);
    const res = await influxQl(
      influxUrl,
      `SELECT mean_cpu_cores, max_cpu_cores FROM rollup_1m.strata_host WHERE kind = 'node' AND device = '' AND interface = '' GROUP BY node`,
      db,
    );
    const series = res.results?.[0]?.series ?? [];
    expect(series.map((s) => s.tags?.node).sort()).toEqual([...byNode.keys()].sort());
    for (const s of series) {
      const vals = byNode.get(s.tags?.node as string) as number[];
      expect(s.values).toHaveLength(1);
      const [time, mean, max] = s.values[0] as [number, number, number];
      expect(time).toBe(minute);
      expect(mean).toBeCloseTo(vals.reduce((a, b) => a + b, 0) / vals.length, 9);
      expect(max).toBe(Math.max(...vals));
    }
    // Device rows: sum_ of a rate is the sum of the rows written, so sum_ × interval ÷ minute is
    // the mean over time even where idle rows were skipped (docs/storage.md).
    const field = 'written_bytes_per_second';
    const devSums = new Map<string, number>();
    for (const p of points)
      if (p.measurement === 'strata_host' && p.tags.device && typeof p.fields[field] === 'number') {
        const key = `${p.tags.node}/${p.tags.device}`;
        devSums.set(key, (devSums.get(key) ?? 0) + (p.fields[field] as number));
      }
    expect(devSums.size).toBeGreaterThan(0);
    expect([...devSums.values()].some((v) => v > 0)).toBe(true);
    const dev = await influxQl(
      influxUrl,
      `SELECT sum_${field} FROM rollup_1m.strata_host WHERE device != '' GROUP BY node, device`,
      db,
    );
    const gotSums = new Map(
      (dev.results?.[0]?.series ?? []).map((s) => [`${s.tags?.node}/${s.tags?.device}`, s.values?.[0]?.[1]]),
    );
    expect(gotSums.size).toBe(devSums.size);
    for (const [key, sum] of devSums) expect(gotSums.get(key) as number, key).toBeCloseTo(sum, 3);
    // Strings are not rolled up: the numbers of the VM row are, its ids are not.
    const keys = (r: InfluxResult) => (r.results?.[0]?.series?.[0]?.values ?? []).map((v) => String(v[0]));
    const vmKeys = keys(await influxQl(influxUrl, 'SHOW FIELD KEYS FROM rollup_1m.strata_vm', db));
    expect(vmKeys).toContain('mean_cpu_cores');
    expect(vmKeys).toContain('mean_cpu_overhead_ratio');
    expect(vmKeys.filter((k) => /guest_entity_id|host_device/.test(k))).toEqual([]);
    // The node's totals (strata_overhead, layer=node only) are rolled up like any entity's.
    const nodeKeys = keys(await influxQl(influxUrl, 'SHOW FIELD KEYS FROM rollup_1m.strata_overhead', db));
    expect(nodeKeys).toContain('mean_host_cpu_busy_cores');
    // strata_entity (ids, on change) is not rolled up.
    expect(rows(await influxQl(influxUrl, 'SELECT * FROM raw.strata_entity', db)).length).toBeGreaterThan(0);
    expect(
      (await influxQl(influxUrl, 'SELECT * FROM rollup_1m.strata_entity', db)).results?.[0]?.series ?? [],
    ).toHaveLength(0);
    // Tags are kept: every raw series of the minute has its rollup series.
    const tagsOf = async (from: string) =>
      (await influxQl(influxUrl, `SHOW SERIES FROM ${from}`, db)).results?.[0]?.series?.[0]?.values?.length ??
      0;
    expect(await tagsOf('raw.strata_host')).toBeGreaterThan(2);
    expect(await tagsOf('rollup_1m.strata_host')).toBe(await tagsOf('raw.strata_host'));
    // Alerts are events: not rolled up.
    expect(rows(await influxQl(influxUrl, 'SELECT * FROM raw.strata_alert', db))).toHaveLength(1);
    const rolled = await influxQl(influxUrl, 'SELECT * FROM rollup_1m.strata_alert', db);
    expect(rolled.results?.[0]?.series ?? []).toHaveLength(0);
  });
});

describe('retention setup refused for want of the admin privilege (influxd 1.6.7, auth on)', () => {
  const INFLUXD = '/usr/bin/influxd';
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

  async function admin(q: string, auth = true): Promise<InfluxResult> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth) headers.authorization = `Basic ${Buffer.from('admin:adm').toString('base64')}`;
    const res = await fetch(`${url}/query`, { method: 'POST', headers, body: new URLSearchParams({ q }) });
    return (await res.json()) as InfluxResult;
  }

  beforeAll(async () => {
    if (!existsSync(INFLUXD)) {
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'influxdb'], {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        stdio: 'ignore',
      });
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'strata-influx-rt-'));
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
[continuous_queries]
  enabled = false
`,
    );
    child = spawn(INFLUXD, ['run', '-config', path.join(dir, 'influxdb.conf')], { stdio: 'ignore' });
    for (let i = 0; i < 150; i++) {
      if (
        await fetch(`${url}/ping`).then(
          (r) => r.status === 204,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(
      (await admin(`CREATE USER "admin" WITH PASSWORD 'adm' WITH ALL PRIVILEGES`, false)).results?.[0]?.error,
    ).toBeUndefined();
    for (const q of [
      'CREATE DATABASE "strata"',
      `CREATE USER "writer" WITH PASSWORD 'w'`,
      'GRANT ALL ON "strata" TO "writer"',
    ]) {
      expect((await admin(q)).results?.[0]?.error).toBeUndefined();
    }
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names the missing privilege and the user, counts it, and the sink starts and writes', async () => {
    const c = InfluxConfig.parse({
      api: 'v1',
      url,
      database: 'strata',
      username: 'writer',
      password: 'w',
      createDatabase: false,
      retention: { enabled: true },
    });
    const r = await new RetentionSetup(c, 'influxdb-v1').run();
    expect(r.ok).toBe(false);
    expect(r.changes).toEqual([]);
    expect(r.error).toMatch(/admin privilege, which user "writer" lacks/);
    expect(r.error).toContain('--print-influx-setup');

    const before = await metric('strata_sink_retention_setup_failures_total', {
      sink: 'influxdb-v1',
      reason: 'privilege',
    });
    const sink = createInfluxSink(c);
    await sink.start(); // does not throw
    const w = await sink.write([
      { measurement: 'strata_host', tags: { node: 'n' }, fields: { cpu_cores: 1 }, timeMs: Date.now() },
    ]);
    expect(w.written).toBe(1);
    await sink.close();
    expect(
      (await metric('strata_sink_retention_setup_failures_total', {
        sink: 'influxdb-v1',
        reason: 'privilege',
      })) - before,
    ).toBe(1);
    // Nothing was created behind the refusal.
    const rp = await admin('SHOW RETENTION POLICIES ON "strata"');
    expect(rows(rp).map((x) => x.name)).toEqual(['autogen']);
  });
});
