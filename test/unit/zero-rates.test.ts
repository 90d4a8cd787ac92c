// pipeline.output.zeroRates: skip, on recorded agent messages of real nodes: fewer field values
// written, and nothing lost — every value of `write` mode is recovered from `skip` mode's points by
// the rule readers use (a rate field absent from a point that is written reads as 0: fill(0)).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isRateField } from '../../processors/output/zero-rates.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import type { SampleMessage } from '../../schemas/sample.ts';

const DATA = path.join(import.meta.dirname, '../../testdata/processor');

function messages(file: string): SampleMessage[] {
  return zlib
    .gunzipSync(fs.readFileSync(path.join(DATA, file)))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
}

const seriesKey = (p: Point) =>
  `${p.measurement},${Object.entries(p.tags)
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`;

function run(msgs: SampleMessage[], zeroRates: 'write' | 'skip', idleHeartbeatMs = 60_000) {
  const p = createPipeline({ output: { zeroRates, idleHeartbeatMs } });
  const points: Point[] = [];
  for (const m of msgs) for (const pt of p.handle(m).points) points.push(pt);
  return points;
}

/** Points of one series and time merged, as InfluxDB stores them (a late VM join is a second line). */
function merged(points: Point[]): Map<string, Point> {
  const m = new Map<string, Point>();
  for (const p of points) {
    const key = `${seriesKey(p)}@${p.timeMs}`;
    const had = m.get(key);
    m.set(key, had ? { ...had, fields: { ...had.fields, ...p.fields } } : p);
  }
  return m;
}

function countFields(points: Point[]): number {
  let n = 0;
  for (const p of points) n += Object.keys(p.fields).length;
  return n;
}

describe('output.zeroRates: skip', () => {
  for (const file of ['noisy-quiet.ndjson.gz', 'noisy-1m-bursty.ndjson.gz', 'vm-tcg.ndjson.gz']) {
    it(`${file}: fewer values written, and every value of write mode read back with fill(0)`, () => {
      const msgs = messages(file);
      const all = run(msgs, 'write');
      const sparse = run(msgs, 'skip');
      expect(countFields(sparse)).toBeLessThan(countFields(all));
      // Points: the same series and times (a layer point loses zeros, never its existence),
      // unless every field of a row was a repeated zero.
      const byKey = merged(sparse);
      let recovered = 0;
      for (const p of merged(all).values()) {
        const q = byKey.get(`${seriesKey(p)}@${p.timeMs}`);
        for (const [k, v] of Object.entries(p.fields)) {
          const got = q?.fields[k];
          if (got === undefined) {
            // Left out: only a rate at 0, on a point that is there or a row that was only zeros.
            expect(v, `${seriesKey(p)} ${k} @${p.timeMs}`).toBe(0);
            expect(isRateField(k), k).toBe(true);
            recovered++;
          } else expect(got, `${seriesKey(p)} ${k}`).toBe(v);
        }
        // The entity's own point is always written: a missing sample stays visible.
        if (!p.tags.device && !p.tags.interface) expect(q, seriesKey(p)).toBeDefined();
      }
      expect(recovered).toBeGreaterThan(0);
    });
  }

  it('a rate at 0 is written when it turns 0 and then at least once per idleHeartbeatMs', () => {
    const msgs = messages('noisy-1m-bursty.ndjson.gz');
    const heartbeat = 10_000;
    const all = run(msgs, 'write', heartbeat);
    const sparse = run(msgs, 'skip', heartbeat);
    // Per series and field: the times a value was written.
    const written = new Map<string, Map<number, number | string | boolean>>();
    for (const p of sparse) {
      for (const [k, v] of Object.entries(p.fields)) {
        const key = `${seriesKey(p)} ${k}`;
        const m = written.get(key) ?? new Map<number, number | string | boolean>();
        m.set(p.timeMs, v);
        written.set(key, m);
      }
    }
    const last = new Map<string, { v: unknown; writtenAt: number }>();
    let turns = 0;
    for (const p of all) {
      for (const [k, v] of Object.entries(p.fields)) {
        const key = `${seriesKey(p)} ${k}`;
        const w = written.get(key);
        const here = w?.has(p.timeMs) === true;
        const before = last.get(key);
        if (v === 0 && isRateField(k)) {
          if (before === undefined || before.v !== 0) {
            expect(here, `${key} turning 0 @${p.timeMs}`).toBe(true);
            turns++;
          }
          if (before !== undefined && p.timeMs - before.writtenAt >= heartbeat) {
            expect(here, `${key} heartbeat @${p.timeMs}`).toBe(true);
          }
        } else expect(here, `${key} @${p.timeMs}`).toBe(true);
        last.set(key, { v, writtenAt: here ? p.timeMs : (before?.writtenAt ?? p.timeMs) });
      }
    }
    expect(turns).toBeGreaterThan(10);
  });

  it('names rates by the endings reserved for them, not gauges, latencies or ratios of two figures', () => {
    for (const k of [
      'cpu_cores',
      'read_iops',
      'rx_packets_per_second',
      'psi_io_some_stall_ratio',
      'utilization_ratio',
    ])
      expect(isRateField(k), k).toBe(true);
    for (const k of [
      'memory_usage_bytes',
      'in_flight_requests',
      'read_latency_ms_per_op',
      'iops_share_ratio',
      'interval_seconds',
    ])
      expect(isRateField(k), k).toBe(false);
  });
});
