// The line-protocol encoder against the stack's real InfluxDB 1.8: a few hundred fast-check points
// (tricky names, keys and values: separators, backslashes, quotes, control characters, unicode,
// lone surrogates, NaN/Infinity fields) are encoded as the writer does (encodeSegments), written
// to a fresh database, and read back: InfluxDB must accept every line and store exactly the tags
// and fields the documented normalisation gives (test/fuzz/line-protocol.fuzz.ts `expected`).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Point } from '../../schemas/point.ts';
import { encodeSegments, formatNumber, newEncodeStats } from '../../sinks/influxdb/line-protocol.ts';
import { expected, pointArb } from '../fuzz/line-protocol.fuzz.ts';

const influxUrl = inject('influxUrl');
const db = `strata_lp_fuzz_${Date.now()}`;
const T0 = 1_732_250_400_000;

interface Series {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

async function query(q: string): Promise<{ results: { error?: string; series?: Series[] }[] }> {
  const res = await fetch(`${influxUrl}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ q, db, epoch: 'ms' }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { results: { error?: string; series?: Series[] }[] };
}

async function write(points: Point[]): Promise<void> {
  const bodies: { body: Buffer; lines: number }[] = [];
  encodeSegments(points, 5000, 8 * 1024 * 1024, bodies, newEncodeStats());
  for (const { body } of bodies) {
    const res = await fetch(`${influxUrl}/write?db=${db}&precision=ms`, {
      method: 'POST',
      body: body as unknown as BodyInit,
    });
    // 204: every line stored; a refused line would be 400 with influxd's reason.
    expect({ status: res.status, error: res.status === 204 ? '' : await res.text() }).toEqual({
      status: 204,
      error: '',
    });
  }
}

/** Tag keys and field keys carry a prefix (and fields their type) so that no tag and field share a
 * name and no field changes type between points of one measurement (each a separate rule of InfluxDB). */
function separate(p: Point, i: number): Point {
  const tags: Record<string, string> = { fuzz_i: String(i) };
  for (const k in p.tags) tags[`t:${k}`] = p.tags[k]!;
  const fields: Point['fields'] = {};
  for (const k in p.fields) fields[`f:${typeof p.fields[k]}:${k}`] = p.fields[k]!;
  return { ...p, tags, fields, timeMs: T0 + i };
}

beforeAll(async () => {
  const r = await query(`CREATE DATABASE ${db}`);
  expect(r.results[0]?.error).toBeUndefined();
});
afterAll(async () => {
  await query(`DROP DATABASE ${db}`);
});

describe('line protocol against InfluxDB 1.8', () => {
  it('stores every fast-check point as its normalised form', async () => {
    const points = fc.sample(pointArb(false), { seed: 4242, numRuns: 300 }).map(separate);
    const wants = points.map(expected);
    const storable = wants.filter((w) => w !== undefined).length;
    expect(storable).toBeGreaterThan(200);
    await write(points);
    const r = await query('SELECT * FROM /.*/ GROUP BY *');
    expect(r.results[0]?.error).toBeUndefined();
    const got = new Map<
      string,
      { name: string; tags: Record<string, string>; row: Record<string, unknown> }
    >();
    for (const s of r.results[0]?.series ?? []) {
      for (const v of s.values) {
        const row = Object.fromEntries(s.columns.map((c, i) => [c, v[i]]));
        got.set(s.tags?.fuzz_i ?? '', { name: s.name, tags: s.tags ?? {}, row });
      }
    }
    expect(got.size).toBe(storable);
    let checked = 0;
    wants.forEach((w, i) => {
      if (w === undefined) return;
      const g = got.get(String(i));
      expect(g, `point ${i}`).toBeDefined();
      expect(g!.name).toBe(w.point.measurement);
      // GROUP BY * lists every tag key of the measurement, "" where a series has none.
      const tags = Object.fromEntries(Object.entries(g!.tags).filter(([, v]) => v !== ''));
      expect(tags).toEqual(w.point.tags);
      const fields = Object.fromEntries(
        Object.entries(g!.row).filter(([k, v]) => k !== 'time' && v !== null),
      );
      expect(Object.keys(fields).sort()).toEqual(Object.keys(w.point.fields).sort());
      for (const [k, want] of Object.entries(w.point.fields)) {
        // InfluxDB holds the float64 of the digits written (9 significant digits, formatNumber).
        if (typeof want === 'number') expect(fields[k]).toBe(Number(formatNumber(want)));
        else expect(fields[k]).toBe(want);
      }
      expect(g!.row.time).toBe(T0 + i);
      checked++;
    });
    expect(checked).toBe(storable);
  });

  it('stores a point whose tag value passes the 64 KiB series key limit, cut', async () => {
    const big = 'é'.repeat(40_000); // 80 KB of UTF-8
    await write([{ measurement: 'lp_big', tags: { big, node: 'n1' }, fields: { v: 1 }, timeMs: T0 }]);
    const r = await query('SELECT * FROM lp_big GROUP BY *');
    const s = r.results[0]?.series?.[0];
    expect(s?.tags?.node).toBe('n1');
    expect(big.startsWith(s!.tags!.big!)).toBe(true);
    expect(Buffer.byteLength(s!.tags!.big!)).toBeGreaterThan(60_000);
  });
});
