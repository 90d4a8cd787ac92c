// Open noisy-neighbour incidents outlive the pipeline that fired them, on the real recording of
// testdata/processor/noisy-1m-direct (see noisy-neighbor.test.ts):
// - a node that stops reporting resolves its incidents (resolved_reason node_silent) when evict()
//   drops it, at the last sample time it was seen;
// - a new pipeline (restart, partition moved) that adopts the open incidents of record at the end
//   of its warm-up replay continues them with the same id and start and resolves them once the
//   antagonist stopped — not before, although its victims' baselines start from nothing.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { openIncidents } from '../../processor/incidents.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import { type AlertEvent, AlertEvent as AlertSchema } from '../../schemas/alert.ts';
import type { Point } from '../../schemas/point.ts';
import type { SampleMessage } from '../../schemas/sample.ts';

const DIR = path.join(import.meta.dirname, '../../testdata/processor');
const heavy: SampleMessage[] = zlib
  .gunzipSync(fs.readFileSync(path.join(DIR, 'noisy-1m-direct.ndjson.gz')))
  .toString('utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as SampleMessage);
const HORIZON = 300_000; // processors/config.ts evictAfterMs default
/**
 * The recordings end ~30 s after the antagonist stops, before the default episode gap (2 min) has
 * passed: these tests judge one steady episode each, so incidents resolve after resolveAfterWindows
 * as without a gap (noisy-neighbor-episodes.test.ts covers the gap).
 */
const STEADY = { noisyNeighbor: { episodeGap: 0 } } as const;

/** Index of the first message after which the pipeline has fired, and the events so far. */
function untilFiring() {
  const p = createPipeline(STEADY);
  const alerts: AlertEvent[] = [];
  for (let i = 0; i < heavy.length; i++) {
    alerts.push(...p.handle(heavy[i]!).alerts);
    if (alerts.length > 0) return { p, i, firing: alerts[0]! };
  }
  throw new Error('the recording never fires');
}

/** Last tick in which the antagonist container was sampled. */
const antagonistLast = heavy
  .filter((m) => m.samples.some((s) => s.entity.name === 'nn-antagonist'))
  .at(-1)!.ts;

describe('a node that stops reporting', () => {
  it('resolves its open incident at eviction with resolved_reason node_silent, once', () => {
    const { p, i, firing } = untilFiring();
    expect(firing.status).toBe('firing');
    expect(p.drain().alerts).toEqual([]);
    const lastTs = heavy[i]!.ts;
    p.evict(1_000_000); // marks the node idle
    expect(p.drain().alerts).toEqual([]);
    p.evict(1_000_000 + HORIZON + 1); // silent for longer than the horizon: dropped
    const out = p.drain();
    expect(out.alerts).toHaveLength(1);
    const r = out.alerts[0]!;
    expect(AlertSchema.safeParse(r).success).toBe(true);
    expect(r).toMatchObject({
      id: firing.id,
      status: 'resolved',
      starts_at: firing.starts_at,
      resolved_reason: 'node_silent',
      labels: firing.labels,
    });
    // At the last sample time seen (the tick's sample ts, within its message's second), not eviction time.
    expect(r.ends_at).toBe(r.ts);
    expect(r.ts).toBeGreaterThanOrEqual(lastTs);
    expect(r.ts).toBeLessThan(lastTs + 1000);
    expect(r.summary).toContain('stopped reporting');
    const pt = out.points.find((x) => x.measurement === 'strata_alert') as Point;
    expect(pt.tags).toMatchObject({ status: 'resolved', antagonist: 'nn-antagonist', device: 'vda' });
    expect(pt.fields).toMatchObject({
      alert_id: firing.id,
      resolved_reason: 'node_silent',
      ends_at_ms: r.ts,
    });
    expect(pt.timeMs).toBe(r.ts);
    // Returned once; the node is gone.
    expect(p.drain().alerts).toEqual([]);
    expect(p.openIncidents(firing.node)).toEqual([]);
  });

  it('an adopted incident of a node this pipeline never hears from is resolved the same way', () => {
    const { firing } = untilFiring();
    const p = createPipeline(STEADY);
    p.adopt([firing]);
    expect(p.openIncidents(firing.node)).toEqual([firing.id]);
    p.evict(5_000);
    p.evict(5_000 + HORIZON + 1);
    const [r] = p.drain().alerts;
    expect(r).toMatchObject({ id: firing.id, starts_at: firing.starts_at, resolved_reason: 'node_silent' });
    expect(r!.ends_at).toBeGreaterThanOrEqual(firing.ts);
  });

  it('a normal end says resolved_reason recovered', () => {
    const p = createPipeline(STEADY);
    const alerts = heavy.flatMap((m) => p.handle(m).alerts);
    expect(alerts.map((a) => [a.status, a.resolved_reason])).toEqual([
      ['firing', undefined],
      ['resolved', 'recovered'],
    ]);
  });
});

describe('a new pipeline takes over an open incident', () => {
  const { i, firing } = untilFiring();
  const restartAt = i + 3; // the old owner processed up to i+2 (a little after firing), then died

  /** Replays `warmTicks` before restartAt (outputs discarded), adopts `open`, then runs live. */
  function takeOver(warmTicks: number, open: AlertEvent[] | undefined, early = false) {
    const p = createPipeline(STEADY);
    if (early && open !== undefined) p.adopt(open); // at assignment, as the runtime does
    for (const m of heavy.slice(Math.max(0, restartAt - warmTicks), restartAt)) p.handle(m);
    if (open !== undefined) p.adopt(open);
    const alerts: AlertEvent[] = [];
    for (const m of heavy.slice(restartAt)) alerts.push(...p.handle(m).alerts);
    return alerts;
  }

  it('with a 30 s warm-up: exactly one resolved, same id and start, after the antagonist stopped', () => {
    const alerts = takeOver(30, [firing]);
    expect(alerts.map((a) => [a.status, a.id, a.starts_at, a.resolved_reason])).toEqual([
      ['resolved', firing.id, firing.starts_at, 'recovered'],
    ]);
    expect(alerts[0]!.ends_at).toBeGreaterThan(antagonistLast);
    expect(alerts[0]!.labels).toEqual(firing.labels);
  });

  it('adopted at assignment and again after the replay (as the runtime does): the same single end', () => {
    for (const warm of [30, 5]) {
      const alerts = takeOver(warm, [firing], true);
      expect(alerts.map((a) => [a.status, a.id, a.starts_at])).toEqual([
        ['resolved', firing.id, firing.starts_at],
      ]);
      expect(alerts[0]!.ends_at).toBeGreaterThan(antagonistLast);
    }
  });

  it('with a 5 s warm-up (no baseline at all): still held while the antagonist runs, then resolved', () => {
    const alerts = takeOver(5, [firing]);
    expect(alerts.map((a) => [a.status, a.id])).toEqual([['resolved', firing.id]]);
    expect(alerts[0]!.ends_at).toBeGreaterThan(antagonistLast);
  });

  it('without adoption the incident is lost: no resolved event for it ever comes (the gap closed here)', () => {
    const alerts = takeOver(5, undefined);
    expect(alerts.filter((a) => a.id === firing.id)).toEqual([]);
  });

  it('an incident fired during the replay but not of record is dropped: no resolved without a firing', () => {
    const p = createPipeline(STEADY);
    // The replay covers the firing; its outputs were discarded, and the alerts topic has nothing.
    for (const m of heavy.slice(0, restartAt)) p.handle(m);
    expect(p.openIncidents(firing.node)).toEqual([firing.id]);
    p.adopt([]);
    expect(p.openIncidents(firing.node)).toEqual([]);
    const alerts = heavy.slice(restartAt).flatMap((m) => p.handle(m).alerts);
    for (const a of alerts.filter((x) => x.status === 'resolved')) {
      expect(alerts.some((f) => f.status === 'firing' && f.id === a.id)).toBe(true);
    }
  });
});

describe('reading the alerts topic back: the last event of each incident wins', () => {
  const ev = (id: string, status: 'firing' | 'resolved', node = 'n1'): AlertEvent => ({
    v: 1,
    id,
    name: 'NoisyNeighborIO',
    status,
    node,
    labels: { device: 'vda', antagonist: 'a', antagonist_layer: 'container', victims: 'b' },
    evidence: {},
    summary: '',
    starts_at: 1,
    ts: 2,
  });
  it('keeps incidents still firing, by source partition; other topics and unattributed events are ignored', () => {
    const open = openIncidents(
      [
        { event: ev('x', 'firing'), topic: 'samples', partition: 0 },
        { event: ev('y', 'firing', 'n2'), topic: 'samples', partition: 2 },
        { event: ev('x', 'resolved'), topic: 'samples', partition: 0 },
        { event: ev('z', 'firing', 'n3'), topic: 'samples', partition: 2 },
        { event: ev('w', 'firing'), topic: 'other-samples', partition: 0 },
        { event: ev('v', 'firing') },
      ],
      'samples',
    );
    expect([...open.keys()]).toEqual([2]);
    expect(open.get(2)!.map((e) => e.id)).toEqual(['y', 'z']);
  });
});
