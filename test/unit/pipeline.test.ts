// The pipeline as a whole on messages recorded from the real agent on this machine
// (testdata/processor/agent-host-1s.ndjson: 19 ticks of the host collector, 1 s apart), plus
// eviction, bounds and configuration errors.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.ts';
import { registry } from '../../lib/metrics.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { SampleMessage } from '../../schemas/sample.ts';
import { validateSampleMessage } from '../../schemas/sample.ts';

const recorded = fs
  .readFileSync(path.join(import.meta.dirname, '../../testdata/processor/agent-host-1s.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => {
    const r = validateSampleMessage(JSON.parse(l));
    if (!r.ok) throw new Error(r.reason);
    return r.message;
  });

describe('pipeline on recorded agent messages', () => {
  it('every point: sample time, bounded tags, finite numbers, plausible values', () => {
    const p = createPipeline();
    const all = recorded.flatMap((m) => p.handle(m).points);
    expect(recorded.length).toBe(19);
    const cpuCount = recorded[0]!.samples[0]!.gauges.cpu_count!;
    const host = all.filter(
      (pt) => pt.measurement === 'strata_host' && !pt.tags.device && !pt.tags.interface,
    );
    expect(host.length).toBe(19); // one per tick; the first with gauges only
    expect(host[0]!.fields.cpu_cores).toBeUndefined();
    for (const pt of all) {
      expect(recorded.some((m) => m.samples.some((s) => (s.ts ?? m.ts) === pt.timeMs))).toBe(true);
      // node inventory labels (cpu_model, kernel...) never become tags
      expect(
        Object.keys(pt.tags).every((k) =>
          ['node', 'layer', 'kind', 'name', 'device', 'interface'].includes(k),
        ),
      ).toBe(true);
      for (const [k, v] of Object.entries(pt.fields)) {
        if (typeof v !== 'number') continue;
        expect(Number.isFinite(v), k).toBe(true);
        if (!k.includes('overhead') && !k.endsWith('_cores_delta')) expect(v, k).toBeGreaterThanOrEqual(0);
        if (k.endsWith('_ratio') && k.startsWith('psi_')) expect(v, k).toBeLessThanOrEqual(1.0001);
        if (k === 'utilization_ratio' || k === 'cpu_utilization_ratio')
          expect(v, k).toBeLessThanOrEqual(1.0001);
      }
    }
    for (const h of host.slice(1)) {
      expect(h.fields.cpu_cores).toBeGreaterThan(0);
      expect(h.fields.cpu_cores).toBeLessThanOrEqual(cpuCount * 1.05); // tick jitter, never beyond
      expect(h.fields.interval_seconds).toBeGreaterThan(0.5);
      expect(h.fields.interval_seconds).toBeLessThan(1.5);
    }
  });

  it('a replay into a fresh pipeline rewrites identical points (same series, time, values)', () => {
    const first = createPipeline();
    const a = recorded.flatMap((m) => first.handle(m).points);
    const second = createPipeline();
    const b = recorded.flatMap((m) => second.handle(m).points);
    expect(b).toEqual(a);
    expect(a.length).toBeGreaterThan(19);
  });

  it('redelivered messages (at-least-once) produce nothing and do not disturb later rates', () => {
    const clean = createPipeline();
    const expected = recorded.map((m) => clean.handle(m).points);
    const p = createPipeline();
    for (let i = 0; i < recorded.length; i++) {
      expect(p.handle(recorded[i]!).points).toEqual(expected[i]);
      if (i > 0) expect(p.handle(recorded[i - 1]!).points).toEqual([]); // the previous one again
    }
  });

  it('evicts entities of a node that stopped reporting, and entities gone from a live node', () => {
    const p = createPipeline({ evictAfterMs: '10s' });
    const withContainer = (m: SampleMessage, id: string): SampleMessage => ({
      ...m,
      samples: [
        ...m.samples,
        {
          entity: { layer: 'container', kind: 'docker', id, name: id, labels: {} },
          counters: { cpu_usage_usec_total: m.ts },
          gauges: {},
        },
      ],
    });
    p.handle(withContainer(recorded[0]!, 'gone'));
    expect(p.entityCount()).toBe(2);
    // 12 s of sample time later the container is gone from the node's messages: evicted
    const later = { ...recorded[1]!, ts: recorded[0]!.ts + 12_000, seq: 12 };
    later.samples = later.samples.map((s) => ({ ...s, ts: later.ts }));
    p.handle(later);
    const now = 1_000_000;
    expect(p.evict(now)).toBe(1);
    expect(p.entityCount()).toBe(1);
    // the node then goes silent: the next evict finds it idle, one after evictAfterMs drops it
    expect(p.evict(now + 1)).toBe(0);
    expect(p.evict(now + 10_001)).toBe(1);
    expect(p.entityCount()).toBe(0);
  });

  it('bounded state: beyond maxEntities new entities get no rates, existing ones keep theirs', () => {
    const p = createPipeline({ maxEntities: 1 });
    const m = (i: number): SampleMessage => ({
      ...recorded[i]!,
      samples: [
        recorded[i]!.samples[0]!,
        {
          entity: { layer: 'container', kind: 'docker', id: 'c', name: 'c', labels: {} },
          counters: { cpu_usage_usec_total: i * 1e6 },
          gauges: {},
        },
      ],
    });
    p.handle(m(0));
    const out = p.handle(m(1));
    expect(out.points.some((pt) => pt.measurement === 'strata_container')).toBe(false);
    expect(
      out.points.find((pt) => pt.measurement === 'strata_host' && !pt.tags.device && !pt.tags.interface)
        ?.fields.cpu_cores,
    ).toBeGreaterThan(0);
    expect(p.entityCount()).toBe(1);
  });

  it('every field keeps one type per measurement (InfluxDB rejects a field whose type changes)', () => {
    const msgs = zlib
      .gunzipSync(
        fs.readFileSync(path.join(import.meta.dirname, '../../testdata/processor/noisy-1m-direct.ndjson.gz')),
      )
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SampleMessage);
    const p = createPipeline();
    const types = new Map<string, string>();
    let points = 0;
    for (const m of msgs) {
      for (const pt of p.handle(m).points) {
        points++;
        for (const [k, v] of Object.entries(pt.fields)) {
          const key = `${pt.measurement}.${k}`;
          const t = typeof v;
          expect(types.get(key) ?? t, key).toBe(t);
          types.set(key, t);
        }
      }
    }
    // ~465: idle device/interface rows are skipped after the first, and a container's overhead is
    // on its own point and device rows (docs/schema.md).
    expect(points).toBeGreaterThan(400);
    expect(types.get('strata_entity.entity_id')).toBe('string');
    expect(types.get('strata_alert.victims')).toBe('string');
    expect(types.get('strata_alert.victim_count')).toBe('number');
    expect(types.get('strata_container.iops_share_ratio')).toBe('number');
    expect(types.has('strata_overhead.iops_share_ratio')).toBe(false);
  });

  it('counts what it skips in /metrics (flushed on evict): a gap and a redelivered message', async () => {
    const value = async (name: string, reason: string) =>
      (await registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.reason === reason)?.value ??
      0;
    const gap0 = await value('strata_processor_rates_skipped_total', 'gap');
    const stale0 = await value('strata_processor_rates_skipped_total', 'stale');
    const p = createPipeline();
    p.handle(recorded[0]!);
    p.handle(recorded[0]!); // redelivered: 1 entity sample stale
    p.handle({
      ...recorded[10]!,
      samples: recorded[10]!.samples.map((x) => ({ ...x, ts: recorded[10]!.ts })),
    }); // 10 s later: gap
    p.evict(recorded[10]!.ts);
    expect((await value('strata_processor_rates_skipped_total', 'gap')) - gap0).toBe(1);
    expect((await value('strata_processor_rates_skipped_total', 'stale')) - stale0).toBe(1);
  });

  it('rejects a misspelt config key, naming it with the accepted keys', () => {
    expect(() => createPipeline({ rates: { maxGapInterval: 3 } } as never)).toThrow(ConfigError);
    expect(() => createPipeline({ rates: { maxGapInterval: 3 } } as never)).toThrow(
      /processor\.pipeline\.rates\.maxGapInterval: unknown key; accepted keys: maxGapIntervals, /,
    );
    expect(() => createPipeline({ evictAfterMs: 'soon' })).toThrow(/evictAfterMs/);
  });
});
