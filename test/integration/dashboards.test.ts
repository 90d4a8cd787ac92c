// The Grafana dashboards and alert rules run against real data, as Grafana would run them. Into a
// fresh InfluxDB database: `strata run --influx-url` writes real ticks of this machine (with a
// container on the stack's Docker engine doing I/O); captured agent ticks with a VM and its guest
// (testdata/processor/vm-tcg) and a noisy-neighbour incident (noisy-1m-direct, once whole and once
// cut before it resolves) go through the processor's pipeline and line-protocol encoder; `strata
// bench` writes strata_bench. Then every variable, panel, annotation and alert-rule query of the
// generated dashboards/*.json and dashboards/alerting/*.yaml is executed with Grafana's macros and
// variables substituted (regex variables as /^(a|b)$/ with every value the variable's own query
// returns). No query may fail, and each returns data where its scenario produces some
// (dashboards/src declares which scenario feeds which query).
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { boards } from '../../dashboards/src/index.ts';
import { DS, type Expect, fromLayers, q, TICK_VAR } from '../../dashboards/src/influxql.ts';
import { type Field, LAYER_FIELDS as L, LAYERS, MEASUREMENT, TAG } from '../../dashboards/src/schema.ts';
import type { PipelineConfigInput } from '../../processors/config.ts';
import { NoisyNeighborConfig } from '../../processors/noisy-neighbor/config.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import type { SampleMessage } from '../../schemas/sample.ts';
import { encodePoints } from '../../sinks/influxdb/line-protocol.ts';
import { dockerRequest } from '../../stack/index.ts';

const influxUrl = inject('influxUrl');
const socketPath = inject('dockerHost').replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const db = `strata_dash_${randomUUID().slice(0, 8)}`;
const container = `strata-dash-${randomUUID().slice(0, 8)}`;

const benchOut = mkdtempSync(path.join(tmpdir(), 'strata-dash-bench-'));
const ROOT = path.resolve(import.meta.dirname, '../..');

interface Target {
  refId: string;
  query: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string;
  datasource?: { type: string; uid: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: { query?: string; name: string; datasource?: { uid: string } }[] };
}
interface Series {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

async function influxql(q: string, database = db): Promise<{ series?: Series[]; error?: string }> {
  const res = await fetch(`${influxUrl}/query?db=${database}&q=${encodeURIComponent(q)}`, {
    method: 'POST',
  });
  const body = (await res.json()) as {
    results?: { series?: Series[]; error?: string }[];
    error?: string;
  };
  if (body.error) return { error: body.error };
  return body.results?.[0] ?? { error: 'no result' };
}

const escapeRegex = (v: string) => v.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');

/**
 * Grafana's interpolation for the InfluxDB data source: a variable inside a regex gets its values
 * escaped and, when several are selected, joined as (a|b); elsewhere its (first) value.
 */
function asGrafana(
  q: string,
  vars: Map<string, string[]>,
  rangeSeconds = 3 * 3600,
  interval = '10s',
): string {
  let out = q
    .replaceAll('$timeFilter', `time > now() - ${rangeSeconds}s`)
    .replaceAll('$__interval_ms', String(intervalMs(interval)))
    .replaceAll('$__interval', interval);
  for (const [name, values] of vars) {
    const re = values.length === 1 ? escapeRegex(values[0]!) : `(${values.map(escapeRegex).join('|')})`;
    out = out
      .replaceAll(`/^$${name}$/`, `/^${re}$/`)
      .replaceAll(`\${${name}}`, values[0] ?? '')
      .replaceAll(`$${name}`, values[0] ?? '');
  }
  return out;
}

/** Grafana's $__interval_ms of an interval such as `10s` or `1m`. */
function intervalMs(interval: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(interval);
  if (!m) throw new Error(`interval ${interval}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

const hasData = (r: { series?: Series[] }) =>
  (r.series ?? []).flatMap((s) => s.values).filter((v) => v.slice(1).some((x) => x !== null && x !== ''))
    .length > 0;

function recording(name: string): SampleMessage[] {
  return zlib
    .gunzipSync(readFileSync(path.join(ROOT, 'testdata/processor', name)))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
}

/** The recording as node `node`, its last tick `endAgoMs` before now. */
function retime(msgs: SampleMessage[], node: string, endAgoMs: number): SampleMessage[] {
  const shift = Date.now() - endAgoMs - msgs[msgs.length - 1]!.ts;
  return msgs.map((m) => {
    const out = JSON.parse(JSON.stringify(m).split(m.node.id).join(node)) as SampleMessage;
    out.ts += shift;
    for (const s of out.samples) if (s.ts !== undefined) s.ts += shift;
    return out;
  });
}

/**
 * The noisy recording is one minute long and its incident resolves resolveAfterWindows windows
 * after the antagonist stops; an episode gap (noisyNeighbor.episodeGap, where the detector has one)
 * would hold it open past the end of the recording, leaving no resolved incident to show.
 */
const PIPELINE_CONFIG = (
  'episodeGap' in NoisyNeighborConfig.shape ? { noisyNeighbor: { episodeGap: 0 } } : {}
) as PipelineConfigInput;

/** Through the processor's pipeline and line-protocol encoder into the test database. */
async function writeThroughPipeline(
  msgs: SampleMessage[],
  database = db,
  config: PipelineConfigInput = PIPELINE_CONFIG,
): Promise<{ points: number; alerts: string[]; written: Point[] }> {
  const pipeline = createPipeline(config);
  const lines: string[] = [];
  const alerts: string[] = [];
  const written: Point[] = [];
  let points = 0;
  for (const m of msgs) {
    const out = pipeline.handle(m);
    points += out.points.length;
    written.push(...out.points);
    alerts.push(...out.alerts.map((a) => a.status));
    encodePoints(out.points, lines);
  }
  const res = await fetch(`${influxUrl}/write?db=${database}&precision=ms`, {
    method: 'POST',
    body: `${lines.join('\n')}\n`,
  });
  expect(res.status, await res.text()).toBe(204);
  return { points, alerts, written };
}

beforeAll(async () => {
  expect((await influxql(`CREATE DATABASE "${db}"`)).error).toBeUndefined();
  const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${container}`, {
    Image: image,
    Cmd: [
      'sh',
      '-c',
      'while true; do dd if=/dev/zero of=/tmp/f bs=4k count=64 oflag=direct 2>/dev/null; done',
    ],
  });
  expect(created.status, created.body).toBe(201);
  expect((await dockerRequest(socketPath, 'POST', `/containers/${container}/start`)).status).toBe(204);
  const run = spawnSync(
    process.execPath,
    [
      'bin/strata.js',
      'run',
      '--output',
      'ndjson',
      '--ticks',
      '4',
      '--influx-url',
      influxUrl,
      '--influx-bucket',
      `${db}/autogen`,
    ],
    {
      env: { ...process.env, DOCKER_HOST: `unix://${socketPath}`, STRATA_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(run.status, run.stderr).toBe(0);

  const vm = await writeThroughPipeline(retime(recording('vm-tcg.ndjson.gz'), 'dash-vm-node', 3 * 60_000));
  expect(vm.points).toBeGreaterThan(100);
  const noisy = recording('noisy-1m-direct.ndjson.gz');
  const whole = await writeThroughPipeline(retime(noisy, 'dash-noisy-node', 3 * 60_000));
  expect(whole.alerts).toEqual(['firing', 'resolved']);
  // The same incident cut before it resolves: one still open.
  let firedAt = 0;
  const p = createPipeline(PIPELINE_CONFIG);
  for (const [i, m] of noisy.entries())
    if (p.handle(structuredClone(m)).alerts.length && !firedAt) firedAt = i;
  const open = await writeThroughPipeline(retime(noisy.slice(0, firedAt + 1), 'dash-noisy-open', 3 * 60_000));
  expect(open.alerts).toEqual(['firing']);

  const bench = spawnSync(
    process.execPath,
    [
      'bin/strata.js',
      'bench',
      ...['--cmd', 'dd if=/dev/zero of=/dev/null bs=64k count=2000', '--layers', 'native,container'],
      ...['--repeats', '1', '--progress', 'none', '--no-html', '--out', benchOut],
      ...['--influx-url', influxUrl, '--influx-database', db, '--image', image],
    ],
    { env: { ...process.env, DOCKER_HOST: `unix://${socketPath}` }, encoding: 'utf8', timeout: 120_000 },
  );
  expect(bench.status, bench.stderr).toBe(0);

  // A live node whose minute in progress has no point yet (its last tick was just before the
  // minute began: 10 s ticks and an evaluation early in the minute). Written last, so it is
  // still under a minute old when the alert-rule test runs.
  const minuteStart = Math.floor(Date.now() / 60_000) * 60_000;
  const early = await writeThroughPipeline(
    retime(recording('vm-tcg.ndjson.gz'), 'dash-early-node', Date.now() - (minuteStart - 500)),
  );
  expect(early.points).toBeGreaterThan(100);
}, 300_000);

afterAll(async () => {
  await dockerRequest(socketPath, 'DELETE', `/containers/${container}?force=true`).catch(() => {});
  await influxql(`DROP DATABASE "${db}"`).catch(() => {});
  rmSync(benchOut, { recursive: true, force: true });
});

const dashboards = readdirSync(path.join(ROOT, 'dashboards'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(path.join(ROOT, 'dashboards', f), 'utf8')) as Dashboard);
const expects = new Map(Object.entries(boards()).map(([uid, b]) => [uid, b.expects]));

/** What each scenario wrote: a query whose scenario is one of these must return data. */
const SCENARIOS: Expect[] = ['host', 'container', 'vm', 'guest', 'noisy', 'bench'];

describe('Grafana dashboards on real data', () => {
  it('has the six dashboards, each generated from dashboards/src', () => {
    expect(dashboards.map((d) => d.uid).sort()).toEqual([...expects.keys()].sort());
  });

  for (const dash of dashboards) {
    it(`${dash.title}: every variable, panel and annotation query runs as Grafana runs it, with data where the scenarios produce some`, async () => {
      // Variables in order, each query seeing the values of those before it (all values selected).
      const vars = new Map<string, string[]>();
      for (const v of dash.templating.list) {
        if (v.type === 'datasource') {
          expect(v.query).toBe('influxdb');
          continue;
        }
        if (v.type === 'custom') {
          vars.set(v.name, v.query.split(','));
          continue;
        }
        expect(v.datasource?.uid, `variable ${v.name}`).toBe(DS.uid);
        const r = await influxql(asGrafana(v.query, vars));
        expect(r.error, `variable ${v.name}: ${v.query}`).toBeUndefined();
        const values = [...new Set((r.series ?? []).flatMap((s) => s.values.map((row) => String(row[1]))))];
        expect(values.length, `variable ${v.name} has no values: ${v.query}`).toBeGreaterThan(0);
        vars.set(v.name, values);
      }
      const want = expects.get(dash.uid)!;
      // Declared scenarios against what came back, all listed at once: a query that should have
      // data and has none, or one declared 'none' that has data (declare the scenario that feeds it).
      const wrong: string[] = [];
      let checked = 0;
      for (const p of dash.panels) {
        if (p.type === 'row') continue;
        expect(p.datasource?.uid, p.title).toBe(DS.uid);
        expect(p.fieldConfig?.defaults?.unit, `${p.title}: unit`).toBeTruthy();
        expect(p.fieldConfig?.defaults?.unit, `${p.title}: unit`).not.toBe('none');
        for (const t of p.targets ?? []) {
          expect(t.datasource?.uid, `${p.title} ${t.refId}`).toBe(DS.uid);
          const sql = asGrafana(t.query, vars);
          const r = await influxql(sql);
          expect(r.error, `${p.title} ${t.refId}: ${sql}`).toBeUndefined();
          const scenario = want.get(`${p.title}#${t.refId}`);
          expect(scenario, `${p.title}#${t.refId} not declared in dashboards/src`).toBeDefined();
          if (hasData(r) !== SCENARIOS.includes(scenario!))
            wrong.push(
              `${p.title}#${t.refId} (${scenario}) ${hasData(r) ? 'has data' : 'has no data'}: ${sql}`,
            );
          checked++;
        }
      }
      for (const a of (dash.annotations?.list ?? []).filter((x) => x.query)) {
        expect(a.datasource?.uid).toBe(DS.uid);
        const r = await influxql(asGrafana(a.query!, vars));
        expect(r.error, `annotation ${a.name}`).toBeUndefined();
        expect(hasData(r), `annotation ${a.name} returned no incident`).toBe(true);
      }
      expect(wrong).toEqual([]);
      expect(checked).toBeGreaterThan(4);
    });
  }
});

describe('fleet overview: per-layer sums on real data', () => {
  const fleet = dashboards.find((d) => d.uid === 'strata-fleet')!;
  const all = new Map([
    ['node', ['dash-vm-node', 'dash-noisy-node']],
    [TICK_VAR, ['1000']],
  ]);

  // Summed per node and layer, a figure is at most the sum of each entity's (device's,
  // interface's) own peak, however wide the bucket: a sum() over the bucket would add up every
  // tick in it too (60 one-second ticks in a minute bucket).
  for (const [title, field, row] of [
    ['CPU in use per node and layer', L.cpuCores, []],
    ['IOPS per node and layer', L.iops, [TAG.device]],
    ['Packets per node and layer', L.rxPackets, [TAG.iface]],
  ] as const) {
    it(`${title}: no more than the sum of the peaks, with minute buckets`, async () => {
      const panel = fleet.panels.find((p) => p.title === title)!;
      const r = await influxql(asGrafana(panel.targets![0]!.query, all, 3 * 3600, '1m'));
      expect(r.error).toBeUndefined();
      // A sum of fields (iops = read_iops + write_iops): the peaks of its parts, a part a row
      // lacks (QMP may report one of the two) counted as 0.
      const parts = field.sumOf ?? [field.field];
      const peaks = await influxql(
        asGrafana(
          `SELECT ${parts.map((f) => `max(${q(f)})`).join(', ')} FROM ${fromLayers()} WHERE "node" =~ /^$node$/ AND $timeFilter GROUP BY ${['node', 'layer', 'name', ...row].map(q).join(', ')}`,
          all,
        ),
      );
      const bound = new Map<string, number>();
      for (const ser of peaks.series ?? []) {
        const key = `${ser.tags!.node}/${ser.tags!.layer}`;
        const peak = ser.values[0]!.slice(1).reduce<number>((n, v) => n + ((v as number | null) ?? 0), 0);
        bound.set(key, (bound.get(key) ?? 0) + peak);
      }
      let compared = 0;
      for (const ser of r.series ?? []) {
        const key = `${ser.tags!.node}/${ser.tags!.layer}`;
        // The first column after time: cores, iops, rx.
        const top = Math.max(...ser.values.map((v) => (v[1] as number | null) ?? 0));
        expect(top, key).toBeLessThanOrEqual(bound.get(key)! * 1.000001);
        if (top > 0) compared++;
      }
      expect(compared).toBeGreaterThan(0);
    });
  }
});

describe('Grafana alert rules on real data', () => {
  // Grafana reads $$ in provisioning files as a literal $.
  const file = parse(
    readFileSync(path.join(ROOT, 'dashboards/alerting/strata-rules.yaml'), 'utf8').replaceAll('$$', '$'),
  ) as {
    apiVersion: number;
    groups: {
      name: string;
      folder: string;
      rules: {
        uid: string;
        title: string;
        condition: string;
        data: {
          refId: string;
          datasourceUid: string;
          relativeTimeRange?: { from: number };
          model: { query?: string; expression?: string };
        }[];
      }[];
    }[];
  };
  const rules = file.groups.flatMap((g) => g.rules);
  const byUid = new Map(rules.map((r) => [r.uid, r]));

  async function run(uid: string): Promise<Series[]> {
    const rule = byUid.get(uid)!;
    const a = rule.data.find((d) => d.refId === 'A')!;
    expect(a.datasourceUid).toBe('strata-influxql');
    const r = await influxql(asGrafana(a.model.query!, new Map(), a.relativeTimeRange!.from));
    expect(r.error, `${rule.title}: ${a.model.query}`).toBeUndefined();
    return r.series ?? [];
  }

  it('is a provisioning file whose rules end in their condition', () => {
    expect(file.apiVersion).toBe(1);
    expect(rules.length).toBeGreaterThanOrEqual(3);
    for (const r of rules) {
      expect(r.data.map((d) => d.refId)).toContain(r.condition);
      for (const d of r.data.filter((x) => x.model.expression))
        expect(r.data.map((x) => x.refId)).toContain(d.model.expression);
    }
  });

  it('noisy neighbour: the incident still open counts 1, the resolved one 0', async () => {
    const series = await run('strata-noisy-neighbour-open');
    // The rule's reducer: the sum over the hourly buckets.
    const open = Object.fromEntries(
      series.map((s) => [s.tags!.node, s.values.reduce((n, v) => n + (v[1] as number), 0)]),
    );
    expect(open).toEqual({ 'dash-noisy-node': 0, 'dash-noisy-open': 1 });
  });

  it('VM overhead: one ratio per VM from the VM and guest ticks', async () => {
    const series = await run('strata-vm-cpu-overhead');
    const vms = series.filter((s) => s.values.some((v) => typeof v[1] === 'number'));
    expect(vms.map((s) => s.tags!.node)).toContain('dash-vm-node');
  });

  it('node silent: the nodes whose ticks ended minutes ago read 0, this machine (ticks seconds ago) does not', async () => {
    const series = await run('strata-node-silent');
    const last = Object.fromEntries(series.map((s) => [s.tags!.node, s.values[s.values.length - 1]![1]]));
    expect(last['dash-vm-node']).toBe(0);
    expect(last['dash-noisy-node']).toBe(0);
    // The rule's condition: below 0.3 fires.
    const live = Object.entries(last).filter(([node]) => !node.startsWith('dash-'));
    expect(live.length).toBe(1);
    expect(live[0]![1] as number).toBeGreaterThan(0.3);
    // Live, with nothing in the minute in progress: not silent.
    expect(last['dash-early-node'] as number).toBeGreaterThan(0.3);
    // Earlier minutes of the same series had points.
    const vm = series.find((s) => s.tags!.node === 'dash-vm-node')!;
    expect(vm.values.some((v) => (v[1] as number) > 0)).toBe(true);
  });
});

describe('device and interface rates over minute buckets: the time average, idle rows skipped', () => {
  // A real 1 s recording (testdata/processor/noisy-1m-bursty) whose antagonist container writes in
  // three bursts of ~15 s with idle stretches between them; its victim's eth0 sends a packet every
  // ~20 s. Through the pipeline (an idle device or interface writes one all-zero
  // row, then one per minute) into a database of its own, placed on minute boundaries. The truth
  // for a minute bucket is what the agent measured: the sum of the per-tick rates (a skipped row's
  // rate is 0) ÷ the ticks in the bucket. A mean over the rows written would read the bursts only.
  const idleDb = `${db}_idle`;
  const node = 'dash-idle-node';
  const TICK_MS = 1000;
  let written: Point[] = [];
  let tickTimes: number[] = [];

  beforeAll(async () => {
    expect((await influxql(`CREATE DATABASE "${idleDb}"`, idleDb)).error).toBeUndefined();
    const msgs = recording('noisy-1m-bursty.ndjson.gz');
    // First tick 0.5 s into a minute well inside the 3 h range and ended before now.
    const span = msgs[msgs.length - 1]!.ts - msgs[0]!.ts;
    const firstAt = Math.floor((Date.now() - span) / 60_000) * 60_000 - 10 * 60_000 + 500;
    const placed = retime(msgs, node, Date.now() - (firstAt + span));
    tickTimes = placed.map((m) => m.ts);
    ({ written } = await writeThroughPipeline(placed, idleDb));
  }, 120_000);

  afterAll(async () => {
    await influxql(`DROP DATABASE "${idleDb}"`, idleDb).catch(() => {});
  });

  const byUid = (uid: string) => dashboards.find((d) => d.uid === uid)!;
  const ROW_TAGS = [TAG.node, TAG.layer, TAG.name, TAG.device, TAG.iface];

  for (const [uid, title, refId, field] of [
    ['strata-node', 'IOPS per device', 'B', L.writeIops],
    ['strata-node', 'Throughput per device', 'B', L.writtenBytes],
    ['strata-node', 'Packets per interface', 'B', L.txPackets],
    ['strata-fleet', 'IOPS per node and layer', 'A', L.iops],
    ['strata-fleet', 'Packets per node and layer', 'A', L.rxPackets],
    ['strata-node', 'Packets per interface', 'A', L.rxPackets],
  ] as [string, string, string, Field][]) {
    it(`${uid} "${title}" ${refId}: each minute bucket equals the per-tick rates summed ÷ the ticks in it`, async () => {
      const dash = byUid(uid);
      const target = dash.panels.find((p) => p.title === title)!.targets!.find((t) => t.refId === refId)!;
      // Every value the pipeline wrote selected, as Grafana's "All" does.
      const values = (tag: string) =>
        [...new Set(written.map((p) => p.tags[tag]).filter((v) => v))] as string[];
      const vars = new Map<string, string[]>([
        ['node', [node]],
        ['layer', values(TAG.layer)],
        ['entity', values(TAG.name)],
        ['device', values(TAG.device)],
        [TICK_VAR, [String(TICK_MS)]],
      ]);
      const sql = asGrafana(target.query, vars, 3 * 3600, '1m');
      const r = await influxql(sql, idleDb);
      expect(r.error, sql).toBeUndefined();

      const measurements = new Set<string>((field.layers ?? LAYERS).map((l) => MEASUREMENT[l]));
      const rowTag = field.row === 'device' ? TAG.device : TAG.iface;
      // The field's value on a row written; a sum of fields (iops) adds the parts the row has.
      const parts = field.sumOf ?? [field.field];
      const rowValue = (p: Point) => {
        const v = parts.map((f) => p.fields[f]).filter((x): x is number => typeof x === 'number');
        return v.length > 0 ? v.reduce((a, b) => a + b, 0) : undefined;
      };
      const rows = written.filter(
        (p) => measurements.has(p.measurement) && p.tags[rowTag] && rowValue(p) !== undefined,
      );
      // Whole minutes inside the recording, after its first tick (which has no rates yet).
      const first = tickTimes[0]!;
      const last = tickTimes[tickTimes.length - 1]!;
      let compared = 0;
      let biased = 0;
      for (const ser of r.series ?? []) {
        const tags = ser.tags ?? {};
        // The series' measurement (FROM a regex over the layers gives one series per measurement).
        const mine = rows.filter(
          (p) =>
            p.measurement === ser.name &&
            ROW_TAGS.every((t) => tags[t] === undefined || p.tags[t] === tags[t]),
        );
        for (const [time, value] of ser.values as [string | number, number | null][]) {
          const start = typeof time === 'number' ? time : Date.parse(time);
          if (start <= first || start + 60_000 > last + 1) continue;
          const inBucket = mine.filter((p) => p.timeMs >= start && p.timeMs < start + 60_000);
          const ticks = tickTimes.filter((t) => t >= start && t < start + 60_000).length;
          const sum = inBucket.reduce((n, p) => n + rowValue(p)!, 0);
          const truth = sum / ticks;
          // Σ × tick ÷ bucket divides by 60 ticks, the truth by the ticks recorded (59–61).
          expect(
            Math.abs((value ?? 0) - truth),
            `${JSON.stringify(tags)} at ${new Date(start).toISOString()}: ${value} against ${truth}; ${sql}`,
          ).toBeLessThanOrEqual(truth * 0.025 + 1e-9);
          compared++;
          // What mean() per device or interface, summed, read: the mean over the rows written.
          const perRow = new Map<string, number[]>();
          for (const p of inBucket) {
            const k = JSON.stringify(p.tags);
            perRow.set(k, [...(perRow.get(k) ?? []), rowValue(p)!]);
          }
          const rowMean = [...perRow.values()].reduce(
            (n, v) => n + v.reduce((a, b) => a + b, 0) / v.length,
            0,
          );
          if (truth > 0 && rowMean > truth * 1.5) biased++;
        }
      }
      expect(compared).toBeGreaterThan(0);
      // Idle rows were skipped in some compared bucket: a mean over the rows written reads high there.
      expect(biased).toBeGreaterThan(0);
    });
  }
});

describe('pipeline.output.zeroRates: skip: every panel and alert rule reads what it reads with every zero written', () => {
  // The same messages through the pipeline twice, into two databases: with every rate written
  // (`write`, the default) and with a rate at 0 left out of its point between the first 0 and the
  // heartbeat (`skip`). This machine's ticks (host and cgroup collectors, with the container doing
  // I/O) recorded by `strata agent`, the captured VM and guest, a noisy-neighbour incident and a
  // bursty antagonist. Every variable, panel target and alert-rule query then runs on both, over a
  // fixed range (so both see the same buckets), with 5 s and 1 min buckets: the series, times and
  // figures must be the same, a value left out reading as the 0 it was.
  const modes = { write: `${db}_write`, skip: `${db}_skip` } as const;
  let rangeStartMs = 0;
  let rangeEndMs = 0;
  const skipped = { write: 0, skip: 0 };
  const TOLERANCE = 1e-9;

  beforeAll(async () => {
    for (const d of Object.values(modes))
      expect((await influxql(`CREATE DATABASE "${d}"`, d)).error).toBeUndefined();
    // This machine, live: the agent's own messages (stopped after ~15 ticks).
    const agent = spawnSync(
      process.execPath,
      ['bin/strata.js', 'agent', '--output', 'ndjson', '--interval', '1s', '--collectors', 'host,cgroup'],
      {
        env: { ...process.env, DOCKER_HOST: `unix://${socketPath}`, STRATA_LOG_LEVEL: 'warn' },
        encoding: 'utf8',
        timeout: 16_000,
        killSignal: 'SIGTERM',
      },
    );
    const live = agent.stdout
      .split('\n')
      .filter((l) => l.startsWith('{') && l.endsWith('}'))
      .map((l) => JSON.parse(l) as SampleMessage);
    expect(live.length, agent.stderr).toBeGreaterThanOrEqual(8);
    expect(live.some((m) => m.samples.some((s) => s.entity.layer === 'container'))).toBe(true);
    const streams = [
      live,
      retime(recording('vm-tcg.ndjson.gz'), 'cmp-vm-node', 4 * 60_000),
      retime(recording('noisy-1m-direct.ndjson.gz'), 'cmp-noisy-node', 4 * 60_000),
      retime(recording('noisy-1m-bursty.ndjson.gz'), 'cmp-bursty-node', 6 * 60_000),
    ];
    for (const [mode, d] of Object.entries(modes) as [keyof typeof modes, string][]) {
      const config = {
        ...PIPELINE_CONFIG,
        output: { zeroRates: mode },
      } as PipelineConfigInput;
      for (const msgs of streams) {
        const { written } = await writeThroughPipeline(structuredClone(msgs), d, config);
        for (const p of written) skipped[mode] += Object.keys(p.fields).length;
      }
    }
    const all = streams.flat().map((m) => m.ts);
    rangeStartMs = Math.min(...all) - 60_000;
    rangeEndMs = Math.max(...all, Date.now()) + 60_000;
  }, 120_000);

  afterAll(async () => {
    for (const d of Object.values(modes)) await influxql(`DROP DATABASE "${d}"`, d).catch(() => {});
  });

  /** A query as Grafana runs it, over the fixed range: the same buckets in both databases. */
  const fixed = (query: string, vars: Map<string, string[]>, interval: string) =>
    asGrafana(query, vars, 3600, interval).replaceAll(
      'time > now() - 3600s',
      `time >= ${rangeStartMs}ms AND time < ${rangeEndMs}ms`,
    );

  /** Series by measurement and tags, rows by time: the differences between two results. */
  function differences(a: Series[], b: Series[]): { diffs: string[]; maxDiff: number; values: number } {
    const key = (s: Series) => `${s.name} ${JSON.stringify(Object.entries(s.tags ?? {}).sort())}`;
    const index = (ss: Series[]) => {
      const m = new Map<string, Map<string, unknown[]>>();
      for (const s of ss) {
        const rows = m.get(key(s)) ?? new Map<string, unknown[]>();
        for (const r of s.values) rows.set(`${r[0]}#${s.columns.join(',')}`, r.slice(1));
        m.set(key(s), rows);
      }
      return m;
    };
    const [ia, ib] = [index(a), index(b)];
    const diffs: string[] = [];
    let maxDiff = 0;
    let values = 0;
    for (const k of new Set([...ia.keys(), ...ib.keys()])) {
      const [ra, rb] = [ia.get(k), ib.get(k)];
      if (!ra || !rb) {
        diffs.push(`series ${k} only in ${ra ? 'write' : 'skip'}`);
        continue;
      }
      for (const t of new Set([...ra.keys(), ...rb.keys()])) {
        const [va, vb] = [ra.get(t), rb.get(t)];
        if (!va || !vb) {
          diffs.push(`${k} at ${t} only in ${va ? 'write' : 'skip'}`);
          continue;
        }
        for (const [i, x] of va.entries()) {
          const y = vb[i];
          if (typeof x === 'number' && typeof y === 'number') {
            values++;
            const d = Math.abs(x - y);
            maxDiff = Math.max(maxDiff, d);
            if (d > TOLERANCE * Math.max(1, Math.abs(x), Math.abs(y)))
              diffs.push(`${k} at ${t}: write ${x}, skip ${y}`);
          } else if (x !== y) diffs.push(`${k} at ${t}: write ${String(x)}, skip ${String(y)}`);
        }
      }
    }
    return { diffs, maxDiff, values };
  }

  it('skip mode left zero rates out', () => {
    // Field values written: the zeros left out are the difference.
    expect(skipped.skip).toBeLessThan(skipped.write * 0.95);
  });

  const total = { targets: 0, withData: 0, values: 0, maxDiff: 0 };

  for (const dash of dashboards) {
    it(`${dash.title}: every variable and panel target gives the same series and figures in both modes`, async () => {
      const vars = new Map<string, string[]>();
      for (const v of dash.templating.list) {
        if (v.type === 'datasource') continue;
        if (v.type === 'custom') {
          vars.set(v.name, v.query.split(','));
          continue;
        }
        const got = await Promise.all(
          Object.values(modes).map(async (d) => {
            const r = await influxql(fixed(v.query, vars, '5s'), d);
            expect(r.error, v.query).toBeUndefined();
            return [
              ...new Set((r.series ?? []).flatMap((s) => s.values.map((row) => String(row[1])))),
            ].sort();
          }),
        );
        expect(got[1], `variable ${v.name}`).toEqual(got[0]);
        // A dashboard without data in these databases (bench) keeps its variable empty.
        vars.set(v.name, got[0]!.length ? got[0]! : ['none']);
      }
      const diffs: string[] = [];
      for (const p of dash.panels)
        for (const t of p.targets ?? [])
          for (const interval of ['5s', '1m']) {
            const sql = fixed(t.query, vars, interval);
            const [w, s] = await Promise.all(Object.values(modes).map((d) => influxql(sql, d)));
            expect(w!.error, sql).toBeUndefined();
            expect(s!.error, sql).toBeUndefined();
            const d = differences(w!.series ?? [], s!.series ?? []);
            total.targets++;
            if (hasData(w!)) total.withData++;
            total.values += d.values;
            total.maxDiff = Math.max(total.maxDiff, d.maxDiff);
            diffs.push(
              ...d.diffs.slice(0, 3).map((x) => `${p.title}#${t.refId} (${interval}): ${x}; ${sql}`),
            );
          }
      expect(diffs).toEqual([]);
    });
  }

  it('every alert rule gives the same figures in both modes', async () => {
    const file = parse(
      readFileSync(path.join(ROOT, 'dashboards/alerting/strata-rules.yaml'), 'utf8').replaceAll('$$', '$'),
    ) as { groups: { rules: { title: string; data: { refId: string; model: { query?: string } }[] }[] }[] };
    const diffs: string[] = [];
    let rules = 0;
    for (const r of file.groups.flatMap((g) => g.rules)) {
      const query = r.data.find((d) => d.refId === 'A')!.model.query!;
      const sql = fixed(query, new Map(), '1m');
      const [w, s] = await Promise.all(Object.values(modes).map((d) => influxql(sql, d)));
      expect(w!.error, sql).toBeUndefined();
      expect(s!.error, sql).toBeUndefined();
      diffs.push(...differences(w!.series ?? [], s!.series ?? []).diffs.map((x) => `${r.title}: ${x}`));
      if (hasData(w!)) rules++;
    }
    expect(diffs).toEqual([]);
    expect(rules).toBeGreaterThanOrEqual(2);
  });

  it("entity rates: skip mode's figure is write mode's mean() of the points with the rate, wherever that has one", async () => {
    // What the panels read before they read rates as sum ÷ count(per): mean() over the points
    // written. With every zero written that is the entity's mean; skip mode must give it back.
    const dash = dashboards.find((d) => d.uid === 'strata-node')!;
    const vars = new Map<string, string[]>([
      ['node', ['cmp-vm-node', 'cmp-noisy-node', 'cmp-bursty-node']],
      ['layer', [...LAYERS]],
      ['entity', ['.*']],
      ['device', ['.*']],
    ]);
    const rateMean = /sum\(("[a-z_]+")\) \/ count\("[a-z_]+"\)/;
    let compared = 0;
    const diffs: string[] = [];
    for (const p of dash.panels)
      for (const t of p.targets ?? []) {
        if (!rateMean.test(t.query)) continue;
        // Grafana would escape a regex variable's values; these are regexes on purpose.
        const sql = (q: string) =>
          fixed(q, new Map(), '5s').replaceAll(
            /\/\^\$(node|layer|entity|device)\$\//g,
            (_, v: string) => `/^(${vars.get(v)!.join('|')})$/`,
          );
        const before = sql(t.query.replace(rateMean, 'mean($1)').replace(/ fill\(0\)$/, ''));
        const [w, s] = await Promise.all([influxql(before, modes.write), influxql(sql(t.query), modes.skip)]);
        expect(w.error, before).toBeUndefined();
        const skipRows = new Map(
          (s.series ?? []).flatMap((x) =>
            x.values.map((r) => [`${x.name} ${JSON.stringify(x.tags)} ${r[0]}`, r[1]]),
          ),
        );
        for (const x of w.series ?? [])
          for (const r of x.values) {
            if (typeof r[1] !== 'number') continue;
            const got = skipRows.get(`${x.name} ${JSON.stringify(x.tags)} ${r[0]}`);
            compared++;
            if (typeof got !== 'number' || Math.abs(got - r[1]) > TOLERANCE * Math.max(1, Math.abs(r[1])))
              diffs.push(
                `${p.title}#${t.refId} ${JSON.stringify(x.tags)} ${r[0]}: mean() ${r[1]}, skip ${got}`,
              );
          }
      }
    expect(diffs.slice(0, 10)).toEqual([]);
    expect(compared).toBeGreaterThan(100);
  });

  it('compared real figures: most targets had data', () => {
    // Printed for docs/deploy.md's figures; the floor keeps the comparison from passing on empty results.
    console.log(
      `zeroRates write vs skip: field values written ${skipped.write} / ${skipped.skip}; ${total.targets} target runs (${total.withData} with data), ${total.values} values, max difference ${total.maxDiff}`,
    );
    expect(total.withData).toBeGreaterThan(100);
  });
});
