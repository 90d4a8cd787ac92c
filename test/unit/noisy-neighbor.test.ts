// Noisy-neighbor detection on tick sequences recorded on this machine with the real agent (host +
// cgroup collectors, 1 s ticks) and two containers on the stack's Docker engine
// (testdata/processor/capture-noisy.sh): nn-victim does one 4 KiB O_DIRECT write every 50 ms
// throughout; nn-antagonist does random O_DIRECT writes for the middle part. Other engineers'
// bench containers ran on the same disk at the time and are in the recordings too.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { PipelineConfigInput } from '../../processors/config.ts';
import { correlation, Ewma } from '../../processors/noisy-neighbor/detector.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { AlertEvent } from '../../schemas/alert.ts';
import { AlertEvent as AlertSchema } from '../../schemas/alert.ts';
import type { Point } from '../../schemas/point.ts';
import type { SampleMessage } from '../../schemas/sample.ts';

const DIR = path.join(import.meta.dirname, '../../testdata/processor');

function recording(name: string): SampleMessage[] {
  return zlib
    .gunzipSync(fs.readFileSync(path.join(DIR, name)))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
}

/**
 * The recordings end ~30 s after the antagonist stops, before the default episode gap (2 min) has
 * passed: these tests judge one steady episode each, so incidents resolve after resolveAfterWindows
 * as without a gap (noisy-neighbor-episodes.test.ts covers the gap).
 */
const STEADY = { noisyNeighbor: { episodeGap: 0 } } as const;

function replay(msgs: SampleMessage[], config: PipelineConfigInput = {}) {
  const p = createPipeline({
    ...config,
    noisyNeighbor: { ...STEADY.noisyNeighbor, ...config.noisyNeighbor },
  });
  const alerts: AlertEvent[] = [];
  const alertPoints: Point[] = [];
  for (const m of msgs) {
    const out = p.handle(m);
    alerts.push(...out.alerts);
    alertPoints.push(...out.points.filter((pt) => pt.measurement === 'strata_alert'));
  }
  return { alerts, alertPoints };
}

/** Sample times of the first and last tick in which the named container did I/O. */
function activeSpan(msgs: SampleMessage[], name: string): [number, number] {
  const ts = msgs.filter((m) => m.samples.some((s) => s.entity.name === name)).map((m) => m.ts);
  return [ts[0]!, ts[ts.length - 1]!];
}

const heavy = recording('noisy-1m-direct.ndjson.gz');

describe('noisy neighbour on a real recording: 8 × 1 MiB random O_DIRECT writes', () => {
  const { alerts, alertPoints } = replay(heavy);
  const [from, to] = activeSpan(heavy, 'nn-antagonist');

  it('fires once naming the antagonist and the victim, then resolves after it stops', () => {
    expect(alerts.map((a) => [a.status, a.labels.antagonist, a.labels.victims, a.labels.device])).toEqual([
      ['firing', 'nn-antagonist', 'nn-victim', 'vda'],
      ['resolved', 'nn-antagonist', 'nn-victim', 'vda'],
    ]);
    const [firing, resolved] = alerts as [AlertEvent, AlertEvent];
    for (const a of alerts) expect(AlertSchema.safeParse(a).success).toBe(true);
    expect(resolved.id).toBe(firing.id);
    // Not before 2 bad windows of 5 ticks each after the antagonist started; while it still ran.
    expect(firing.starts_at).toBeGreaterThanOrEqual(from + 2 * 5 * 1000 - 5 * 1000);
    expect(firing.starts_at).toBeLessThanOrEqual(to);
    // Resolved only after it stopped (3 good windows), and it carries its start.
    expect(resolved.ends_at).toBeGreaterThan(to);
    expect(resolved.starts_at).toBe(firing.starts_at);
  });

  it('carries the evidence: dominant share, correlation, the victim against its baseline', () => {
    const e = alerts[0]!.evidence;
    expect(e.antagonist_iops_share_ratio).toBeGreaterThan(0.5);
    expect(e.antagonist_bytes_share_ratio).toBeGreaterThan(0.5);
    expect(e.antagonist_victim_stall_correlation_ratio).toBeGreaterThan(0.3);
    expect(e.victim_latency_ms_per_op).toBeGreaterThan(2 * e.victim_baseline_latency_ms_per_op!);
    expect(e.bad_windows).toBe(2);
    expect(alerts[0]!.summary).toContain('nn-antagonist');
  });

  it('writes Grafana-annotation points at the sample time of each event', () => {
    expect(alertPoints.map((p) => [p.tags.status, p.timeMs])).toEqual(alerts.map((a) => [a.status, a.ts]));
    expect(alertPoints[0]!.tags).toMatchObject({
      alertname: 'NoisyNeighborIO',
      device: 'vda',
      antagonist: 'nn-antagonist',
    });
    expect(alertPoints[0]!.fields.title).toMatch(
      /^NoisyNeighborIO firing: nn-antagonist on vda — cap nn-antagonist at \d+ write IOPS, \d+ MiB\/s written$/,
    );
    expect(alertPoints[1]!.fields.title).toBe('NoisyNeighborIO resolved: nn-antagonist on vda');
    expect(typeof alertPoints[0]!.fields.text).toBe('string');
  });

  it('is deterministic: a replay gives the same events (ids, times, evidence)', () => {
    expect(replay(heavy).alerts).toEqual(alerts);
  });

  it('hysteresis: firing after 3 bad windows instead of 2 starts exactly one window (5 ticks) later', () => {
    const later = replay(heavy, { noisyNeighbor: { fireAfterWindows: 3 } }).alerts;
    expect(later[0]?.status).toBe('firing');
    expect(later[0]!.starts_at - alerts[0]!.starts_at).toBeGreaterThanOrEqual(4500);
    expect(later[0]!.starts_at - alerts[0]!.starts_at).toBeLessThanOrEqual(5500);
  });

  it('resolves when both tenants disappear while firing (no incident left open forever)', () => {
    const p = createPipeline(STEADY);
    const events: AlertEvent[] = [];
    let gone = false;
    for (const m of heavy) {
      const msg = gone ? { ...m, samples: m.samples.filter((x) => !x.entity.name.startsWith('nn-')) } : m;
      const out = p.handle(msg);
      events.push(...out.alerts);
      if (out.alerts.some((a) => a.status === 'firing')) gone = true;
    }
    expect(events.map((a) => a.status)).toEqual(['firing', 'resolved']);
    // 3 empty windows of 5 ticks: ~15 s after the last tick with tenants
    expect(events[1]!.ends_at! - events[0]!.starts_at).toBeGreaterThanOrEqual(14_000);
    expect(events[1]!.ends_at! - events[0]!.starts_at).toBeLessThanOrEqual(21_000);
  });

  it('no baseline, no verdict: a warm-up longer than the run produces nothing', () => {
    expect(replay(heavy, { noisyNeighbor: { warmupWindows: 100 } }).alerts).toEqual([]);
  });

  it('bounded tenants: with room for one tenant per node nobody can be accused', () => {
    expect(replay(heavy, { noisyNeighbor: { maxTenantsPerNode: 1 } }).alerts).toEqual([]);
  });
});

describe('no alert where no one is hurt (real recordings)', () => {
  it('4 KiB random O_DIRECT writes at 15–40k IOPS: the victim’s stall does not move', () => {
    const msgs = recording('noisy-4k-direct.ndjson.gz');
    const { alerts } = replay(msgs);
    expect(alerts.filter((a) => a.labels.antagonist === 'nn-antagonist')).toEqual([]);
  });

  it('256 KiB random O_DIRECT writes at queue depth 4: absorbed by this disk, no alert', () => {
    const msgs = recording('noisy-256k-direct.ndjson.gz');
    expect(replay(msgs).alerts).toEqual([]);
  });

  it('a quiet run of the same length (the victim alone) produces none', () => {
    const msgs = recording('noisy-quiet.ndjson.gz');
    expect(msgs.length).toBeGreaterThanOrEqual(70);
    expect(replay(msgs).alerts).toEqual([]);
  });
});

describe('building blocks', () => {
  it('EWMA mean and variance (α = 0.5): hand-computed', () => {
    const e = new Ewma(0.5);
    e.add(2); // mean 2, var 0
    e.add(4); // diff 2, incr 1 → mean 3; var = 0.5 × (0 + 2 × 1) = 1
    expect(e.mean).toBe(3);
    expect(e.variance).toBe(1);
    e.add(3); // diff 0 → mean 3; var = 0.5 × (1 + 0) = 0.5
    expect(e.mean).toBe(3);
    expect(e.variance).toBe(0.5);
    expect(e.n).toBe(3);
  });

  it('Pearson correlation: ±1 for linear series, NaN ticks skipped, undefined without variance', () => {
    expect(correlation([1, 2, 3, 4], [2, 4, 6, 8])).toBeCloseTo(1, 12);
    expect(correlation([1, 2, 3, 4], [8, 6, 4, 2])).toBeCloseTo(-1, 12);
    expect(correlation([1, 2, Number.NaN, 3], [1, 2, 5, 3])).toBeCloseTo(1, 12);
    expect(correlation([1, 1, 1], [1, 2, 3])).toBeUndefined();
    expect(correlation([1, 2], [1, 2])).toBeUndefined();
    // x = 1,2,3; y = 1,3,2: mx = 2, my = 2; cov = (-1)(-1) + 0 + (1)(0) = 1; vx = 2, vy = 2 → 0.5
    expect(correlation([1, 2, 3], [1, 3, 2])).toBeCloseTo(0.5, 12);
  });
});
