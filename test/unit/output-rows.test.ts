// When a point is written (docs/schema.md): entity metadata on its own measurement on change and
// on a heartbeat, idle device/interface rows only after a busy one and on a heartbeat. On the 73
// real ticks of testdata/processor/noisy-quiet.ndjson.gz (72 s of a quiet node: the nn-victim
// container throughout, two short-lived containers, 9 devices and interfaces present throughout,
// most of them idle, veths that come and go).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import type { PipelineConfigInput } from '../../processors/config.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import { type SampleMessage, validateSampleMessage } from '../../schemas/sample.ts';

const ticks: SampleMessage[] = zlib
  .gunzipSync(
    fs.readFileSync(path.join(import.meta.dirname, '../../testdata/processor/noisy-quiet.ndjson.gz')),
  )
  .toString('utf8')
  .trim()
  .split('\n')
  .map((l) => {
    const r = validateSampleMessage(JSON.parse(l));
    if (!r.ok) throw new Error(r.reason);
    return r.message;
  });

function run(config: PipelineConfigInput, msgs: SampleMessage[] = ticks): Point[] {
  const p = createPipeline(config);
  return msgs.flatMap((m) => p.handle(m).points);
}

/** Device and interface rows of the layer measurements (strata_overhead's share rows are not skipped). */
const isRow = (p: Point) =>
  p.measurement !== 'strata_overhead' && (p.tags.device !== undefined || p.tags.interface !== undefined);
const seriesKey = (p: Point) => `${p.measurement} ${JSON.stringify(p.tags)}`;
const idle = (p: Point) =>
  Object.entries(p.fields).every(([k, v]) => k === 'interval_seconds' || typeof v !== 'number' || v === 0);

async function metric(name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  return m ? ((await m.get()).values[0]?.value ?? 0) : 0;
}

describe('device and interface rows', () => {
  it('every row the old schema wrote is what fill(previous) reads from the rows written now', () => {
    const all = run({ output: { idleHeartbeatMs: 0 } }).filter(isRow);
    const kept = run({}).filter(isRow);
    // The recording has idle rows to skip, and busy ones.
    expect(all.filter(idle).length).toBeGreaterThan(500);
    expect(all.some((p) => !idle(p))).toBe(true);
    expect(kept.length).toBeLessThan(all.length / 2);
    const written = new Map<string, Point[]>();
    for (const p of kept) written.set(seriesKey(p), [...(written.get(seriesKey(p)) ?? []), p]);
    for (const old of all) {
      const rows = written.get(seriesKey(old)) ?? [];
      // The latest row written at or before this one's time (GROUP BY time ... fill(previous)).
      const prev = rows.filter((r) => r.timeMs <= old.timeMs).at(-1);
      expect(prev, `${seriesKey(old)} @${old.timeMs}`).toBeDefined();
      if (!idle(old))
        expect(prev).toEqual(old); // a busy row is always written, as it was
      else for (const [k, v] of Object.entries(prev!.fields)) if (k !== 'interval_seconds') expect(v).toBe(0);
    }
  });

  it('an idle row is repeated once per idleHeartbeatMs, so a longer silence is a missing sample', () => {
    // Series present on every tick (devices and interfaces that come and go have no row when absent;
    // the first tick has rows only where there are gauges).
    const counts = new Map<string, number>();
    for (const p of run({ output: { idleHeartbeatMs: 0 } }).filter(isRow))
      counts.set(seriesKey(p), (counts.get(seriesKey(p)) ?? 0) + 1);
    const rows = run({ output: { idleHeartbeatMs: '10s' } })
      .filter(isRow)
      .filter((p) => (counts.get(seriesKey(p)) ?? 0) >= ticks.length - 1);
    const bySeries = new Map<string, Point[]>();
    for (const p of rows) bySeries.set(seriesKey(p), [...(bySeries.get(seriesKey(p)) ?? []), p]);
    const span = ticks.at(-1)!.ts - ticks[0]!.ts;
    let idleSeries = 0;
    for (const [key, ps] of bySeries) {
      // Between two written rows of a series: at most the heartbeat plus one tick (~1 s, jitter).
      for (let i = 1; i < ps.length; i++) expect(ps[i]!.timeMs - ps[i - 1]!.timeMs, key).toBeLessThan(11_500);
      expect(ticks.at(-1)!.ts - ps.at(-1)!.timeMs, key).toBeLessThan(11_500);
      if (ps.every(idle)) {
        idleSeries++;
        // Idle for the whole recording: about one row per 10 s, not one per tick.
        expect(ps.length, key).toBeLessThanOrEqual(Math.ceil(span / 10_000) + 1);
      }
    }
    expect(bySeries.size).toBe(9);
    expect(idleSeries).toBeGreaterThanOrEqual(5);
  });

  it('past output.maxInstanceStates the rows of further devices are all written, and counted', async () => {
    const before = await metric('strata_processor_output_untracked_rows_total');
    const p = createPipeline({ output: { maxInstanceStates: 3 } });
    // Ticks 3..15: the same 10 devices and interfaces on each (8 of the host, 2 of nn-victim).
    const span = ticks.slice(3, 16);
    const rows = span.flatMap((m) => p.handle(m).points).filter(isRow);
    p.evict(span.at(-1)!.ts);
    // 3 remembered; the other 7 are written on every tick, idle or not, from the second tick (the
    // first has no rates: rows without gauges have no field and are not written at all).
    const perSeries = new Map<string, number>();
    for (const r of rows) perSeries.set(seriesKey(r), (perSeries.get(seriesKey(r)) ?? 0) + 1);
    expect(perSeries.size).toBe(10);
    expect([...perSeries.values()].filter((n) => n >= span.length - 1)).toHaveLength(8);
    expect((await metric('strata_processor_output_untracked_rows_total')) - before).toBe(
      7 * (span.length - 1),
    );
  });
});

describe('strata_entity', () => {
  const meta = (points: Point[]) => points.filter((p) => p.measurement === 'strata_entity');

  it('no string field on the layer and overhead points; the metadata once per entity, then on the heartbeat', () => {
    const points = run({});
    for (const p of points) {
      if (p.measurement === 'strata_entity') continue;
      for (const [k, v] of Object.entries(p.fields))
        expect(typeof v, `${p.measurement}.${k}`).not.toBe('string');
    }
    const m = meta(points);
    // 72 s < the 10 min heartbeat: one point per entity (the host, three containers).
    expect(m.map((p) => p.tags.name).sort()).toEqual(
      ['bc41a6d6118f', 'nn-victim', 'strata-bench-20261122T045457-0d8b-container-cpu', 'vm'].sort(),
    );
    const c = m.find((p) => p.tags.name === 'nn-victim')!;
    expect(c.tags).toMatchObject({ name: 'nn-victim', image: expect.any(String) });
    expect(c.fields).toEqual({ entity_id: expect.any(String), cgroup_path: expect.stringMatching(/^\//) });
    // A 20 s heartbeat over 72 s: the first sample, then ~every 20 s.
    expect(
      meta(run({ output: { metadataHeartbeatMs: '20s' } })).filter((p) => p.tags.layer === 'host'),
    ).toHaveLength(4);
  });

  it('a value that changes or goes is written at once (a label gone as ""); a new agent run writes it again', () => {
    const msgs = ticks.slice(0, 6).map((m) => structuredClone(m));
    const container = (m: SampleMessage) => m.samples.find((s) => s.entity.name === 'nn-victim')!;
    container(msgs[2]!).entity.labels.io_accounting = 'partial';
    for (const m of msgs.slice(3)) container(m).entity.labels.io_accounting = 'partial';
    delete container(msgs[4]!).entity.labels.io_accounting;
    delete container(msgs[5]!).entity.labels.io_accounting;
    const c = meta(run({}, msgs)).filter((p) => p.tags.name === 'nn-victim');
    expect(c.map((p) => p.fields.io_accounting)).toEqual([undefined, 'partial', '']);
    expect(c.map((p) => p.timeMs)).toEqual([0, 2, 4].map((i) => container(msgs[i]!).ts ?? msgs[i]!.ts));
    // New tags (an image changed) are a new series: its metadata and idle rows are written at once.
    const retagged = ticks.slice(0, 6).map((m) => structuredClone(m));
    for (const m of retagged.slice(4)) container(m).entity.labels.image = 'strata/other';
    const out = run({}, retagged).filter(
      (p) => p.tags.name === 'nn-victim' && p.tags.image === 'strata/other',
    );
    expect(meta(out).map((p) => p.timeMs)).toEqual([container(retagged[4]!).ts ?? retagged[4]!.ts]);
    expect(out.filter((p) => p.tags.interface === 'eth0').map((p) => p.timeMs)).toEqual([
      container(retagged[4]!).ts ?? retagged[4]!.ts,
    ]);
    // Another run_id: fresh state, its first sample writes the metadata again.
    const restarted = structuredClone(ticks[6]!);
    restarted.agent.run_id = 'another-run';
    const p = createPipeline();
    for (const m of ticks.slice(0, 6)) p.handle(m);
    expect(meta(p.handle(restarted).points).map((x) => x.tags.name)).toEqual(['vm', 'nn-victim']);
  });
});
