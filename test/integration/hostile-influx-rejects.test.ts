// InfluxDB 1.8 refusing some lines of a request (the stack's real influxd): it stores the valid
// lines and answers 400 with one message ("partial write: field type conflict: ... dropped=N", or
// "unable to parse ..."). The writer must count exactly the lines refused, hand them back to the
// caller (the runtime dead-letters them), and not lose the good lines of other nodes with them.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import type { Point } from '../../schemas/point.ts';
import { InfluxConfig } from '../../sinks/influxdb/config.ts';
import { createInfluxV2Sink } from '../../sinks/influxdb/v2.ts';
import type { LineWriter } from '../../sinks/influxdb/writer.ts';
import { influxQl } from './processor.helpers.ts';

const influxUrl = inject('influxUrl');
const db = `strata_rejects_${randomUUID().slice(0, 8)}`;
const T = Date.now() - 60_000;
let sink: LineWriter | undefined;

afterAll(async () => {
  await sink?.close();
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
});

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

async function count(q: string): Promise<number> {
  const r = await influxQl(influxUrl, q, db);
  return Number(r.results?.[0]?.series?.[0]?.values[0]?.[1] ?? 0);
}

const rejected = () =>
  metric('strata_sink_points_dropped_total', { sink: 'influxdb-v2', reason: 'rejected' });
const badRequests = () =>
  metric('strata_sink_write_errors_total', { sink: 'influxdb-v2', kind: 'bad_request' });

describe('InfluxDB refuses some lines of a request', () => {
  it('one field type conflict among good lines of other nodes: those are stored, the one line refused and counted once', async () => {
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    sink = createInfluxV2Sink(InfluxConfig.parse({ url: influxUrl, bucket: db }));
    await sink.start();
    // `state` exists as a string field of strata_node; a gauge of that name is a float.
    expect(
      await sink.write([
        { measurement: 'strata_node', tags: { node: 'n-x' }, fields: { state: 'up' }, timeMs: T },
      ]),
    ).toEqual({ written: 1, rejected: 0, unencodable: 0 });

    const good = (n: number): Point => ({
      measurement: 'strata_node',
      tags: { node: `n-${n}` },
      fields: { cpu_cores: n / 10, memory_bytes: n * 1000 },
      timeMs: T + 1000,
    });
    const bad: Point = {
      measurement: 'strata_node',
      tags: { node: 'n-bad' },
      fields: { state: 3 },
      timeMs: T + 1000,
    };
    const points = [good(1), good(2), good(3), good(4), good(5), bad, good(6), good(7), good(8), good(9)];
    const before = await rejected();
    const r = await sink.write(points);
    expect(r.written).toBe(9);
    expect(r.rejected).toBe(1);
    expect(r.refused).toHaveLength(1);
    expect(r.refused?.[0]?.line).toMatch(/^strata_node,node=n-bad state=3 /);
    expect(r.refused?.[0]?.error).toMatch(/field type conflict/);
    expect(await rejected()).toBe(before + 1);
    // Every good line of the other nodes is stored.
    expect(await count('SELECT count(cpu_cores) FROM strata_node')).toBe(9);
    expect(await count(`SELECT count(state) FROM strata_node WHERE node = 'n-bad'`)).toBe(0);
  });

  it('a request whose lines are all refused (dropped= equals its lines) costs one request', async () => {
    const w = sink as LineWriter;
    const points: Point[] = [1, 2, 3].map((n) => ({
      measurement: 'strata_node',
      tags: { node: `n-all-${n}` },
      fields: { state: n },
      timeMs: T + 2000,
    }));
    const [rejectedBefore, requestsBefore] = [await rejected(), await badRequests()];
    const r = await w.write(points);
    expect(r).toMatchObject({ written: 0, rejected: 3 });
    expect(r.refused?.map((x) => x.line.split(' ')[0])).toEqual([
      'strata_node,node=n-all-1',
      'strata_node,node=n-all-2',
      'strata_node,node=n-all-3',
    ]);
    expect(await rejected()).toBe(rejectedBefore + 3);
    expect(await badRequests()).toBe(requestsBefore + 1);
  });

  it('an unparsable line among valid ones (no dropped= count): found by bisection, the valid ones stored', async () => {
    const w = sink as LineWriter;
    const lines = [
      `strata_parse,node=a v=1 ${T}`,
      `strata_parse,node=b v=2 ${T}`,
      `strata_parse,node=c v= ${T}`, // no value: InfluxDB cannot parse it
      `strata_parse,node=d v=4 ${T}`,
      `strata_parse,node=e v=5 ${T}`,
    ];
    const before = await rejected();
    const r = await w.write({
      segments: [{ body: Buffer.from(lines.join('\n')), lines: lines.length }],
      lines: lines.length,
      unencodable: 0,
    });
    expect(r).toMatchObject({ written: 4, rejected: 1 });
    expect(r.refused?.map((x) => x.line)).toEqual([lines[2]]);
    expect(r.refused?.[0]?.error).toMatch(/unable to parse/);
    expect(await rejected()).toBe(before + 1);
    expect(await count('SELECT count(v) FROM strata_parse')).toBe(4);
  });
});
