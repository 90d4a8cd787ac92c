// The decoder's bounds beyond the schema (docs/wire-format.md, "Bounds" and "Reserved names"), on
// a real agent tick recorded on this machine (testdata/processor/agent-host-1s.ndjson): the time
// window on the processor's clock, reserved counter/gauge names, hard bounds refused with their
// code, soft bounds cut and counted.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { ProcessorConfig, resolveProcessorConfig } from '../../processor/config.ts';
import { createSampleDecoder } from '../../processors/decoder.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import {
  type CutKind,
  type DecodeResult,
  RESERVED_NAMES,
  SampleDecoder,
  type SampleLimits,
  type SampleMessage,
} from '../../schemas/sample.ts';

const lines = fs
  .readFileSync(path.join(import.meta.dirname, '../../testdata/processor/agent-host-1s.ndjson'), 'utf8')
  .trim()
  .split('\n');
/** A real tick: one host sample with a device, five interfaces, node labels. */
const base = JSON.parse(lines[0]!) as SampleMessage;
const NOW = base.ts;
const DAY = 24 * 3600_000;

function edited(f: (m: SampleMessage) => void): string {
  const m = structuredClone(base);
  f(m);
  return JSON.stringify(m);
}

function decoder(limits: Partial<SampleLimits> = {}, cuts: [CutKind, number][] = []): SampleDecoder {
  return new SampleDecoder(limits, {
    window: { now: () => NOW, maxAgeMs: 7 * DAY, maxFutureMs: 300_000 },
    onCut: (what, n) => cuts.push([what, n]),
  });
}

const refused = (r: DecodeResult) => (r.ok ? { code: 'ok', reason: '' } : { code: r.code, reason: r.reason });

describe('time window (processor clock)', () => {
  it('takes the recorded tick as it is, on the fast path', () => {
    expect(decoder().decode(lines[0]!).ok).toBe(true);
    expect(decoder().fast(JSON.parse(lines[0]!))).toBeDefined();
  });

  it.each([
    ['2200-01-01', Date.UTC(2200, 0, 1)],
    ['ts = 0 (1970)', 0],
    ['ts = 9e15 (beyond what InfluxDB stores)', 9e15],
    ['8 days old', NOW - 8 * DAY],
    ['6 minutes ahead', NOW + 360_000],
  ])('refuses a tick dated %s: timestamp_out_of_window', (_what, ts) => {
    const r = refused(decoder().decode(edited((m) => (m.ts = ts))));
    expect(r.code).toBe('timestamp_out_of_window');
    expect(r.reason).toMatch(/^ts: /);
  });

  it('refuses a sample whose own ts is out of the window, naming it', () => {
    const r = refused(decoder().decode(edited((m) => (m.samples[0]!.ts = Date.UTC(2200, 0, 1)))));
    expect(r).toEqual({
      code: 'timestamp_out_of_window',
      reason: expect.stringMatching(
        /^samples\.0\.ts: 7258118400000 \(2200-01-01T00:00:00\.000Z\) is later than samples\.maxFuture/,
      ),
    });
  });

  it('takes a backlog up to maxAge old and a clock up to maxFuture ahead', () => {
    expect(
      decoder().decode(
        edited((m) => {
          m.ts = NOW - 6 * DAY;
          m.samples[0]!.ts = NOW - 6 * DAY;
        }),
      ).ok,
    ).toBe(true);
    expect(
      decoder().decode(
        edited((m) => {
          m.ts = NOW + 240_000;
          m.samples[0]!.ts = NOW + 240_000;
        }),
      ).ok,
    ).toBe(true);
  });
});

describe('reserved names', () => {
  it.each([
    ['gauges', 'entity_id', 5],
    ['gauges', 'name', 1],
    ['gauges', 'time', 1],
    ['gauges', 'cpu_cores', 1],
    ['gauges', 'cpu_user_cores', 0.5],
    ['gauges', 'rx_bytes_per_second', 1],
    ['counters', 'node', 1],
    ['counters', 'interval_seconds', 1],
    ['counters', 'entity_id', 1],
  ] as const)('refuses %s.%s: reserved_name', (where, name, value) => {
    const r = refused(
      decoder().decode(edited((m) => ((m.samples[0]![where] as Record<string, number>)[name] = value))),
    );
    expect(r.code).toBe('reserved_name');
    expect(r.reason).toMatch(new RegExp(`^samples\\.0\\.${where}\\.${name}: reserved name`));
  });

  it('refuses a reserved name on a device too', () => {
    const r = refused(decoder().decode(edited((m) => (m.samples[0]!.devices!.vda!.gauges!.iops = 3))));
    expect(r.code).toBe('reserved_name');
    expect(r.reason).toMatch(/^samples\.0\.devices\.vda\.gauges\.iops: /);
  });

  it('covers every tag and string field the pipeline writes', () => {
    const p = createPipeline();
    const written = new Set<string>();
    for (const l of lines) {
      const r = decoder().decode(l);
      if (!r.ok) continue;
      for (const pt of p.handle(r.message).points) {
        for (const t in pt.tags) written.add(t);
        for (const [f, v] of Object.entries(pt.fields)) if (typeof v === 'string') written.add(f);
      }
    }
    expect(written.size).toBeGreaterThan(5);
    expect([...written].filter((n) => !RESERVED_NAMES.has(n))).toEqual([]);
  });
});

describe('hard bounds: refused with their code', () => {
  it('too many entity samples', () => {
    const three = edited((m) => {
      m.samples = [m.samples[0]!, m.samples[0]!, m.samples[0]!];
    });
    expect(decoder({ maxSamplesPerMessage: 3 }).decode(three).ok).toBe(true);
    expect(refused(decoder({ maxSamplesPerMessage: 2 }).decode(three))).toEqual({
      code: 'too_many_samples',
      reason: 'samples: 3 entity samples, more than samples.maxSamplesPerMessage (2)',
    });
  });

  it('a counter or gauge name longer than maxNameLength', () => {
    const r = refused(decoder().decode(edited((m) => (m.samples[0]!.gauges[`g${'x'.repeat(200)}`] = 1))));
    expect(r.code).toBe('name_too_long');
  });

  it('an entity id longer than maxValueLength', () => {
    const r = refused(
      decoder({ maxValueLength: 64 }).decode(edited((m) => (m.samples[0]!.entity.id = 'i'.repeat(65)))),
    );
    expect(r).toEqual({
      code: 'value_too_long',
      reason: 'samples.0.entity.id: 65 characters, more than samples.maxValueLength (64)',
    });
  });
});

describe('soft bounds: cut and counted', () => {
  it('interfaces beyond maxInstancesPerEntity: the first ones kept', () => {
    const cuts: [CutKind, number][] = [];
    const d = decoder({ maxInstancesPerEntity: 3 }, cuts);
    expect(d.fast(JSON.parse(lines[0]!))).toBeUndefined(); // not the fast path's to cut
    const r = d.decode(lines[0]!);
    expect(r.ok).toBe(true);
    const names = Object.keys(base.samples[0]!.interfaces!);
    expect(names.length).toBe(5);
    if (r.ok) expect(Object.keys(r.message.samples[0]!.interfaces!)).toEqual(names.slice(0, 3));
    expect(cuts).toEqual([['instances', 2]]);
  });

  it('a label value longer than maxValueLength is cut to it', () => {
    const cuts: [CutKind, number][] = [];
    const r = decoder({ maxValueLength: 40 }, cuts).decode(
      edited((m) => (m.samples[0]!.entity.labels.image = 'registry.example/'.padEnd(100, 'x'))),
    );
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.message.samples[0]!.entity.labels.image).toHaveLength(40);
    expect(cuts).toEqual([['label_values', 1]]);
  });

  it('the processor counts cuts in /metrics', async () => {
    const value = async () =>
      (await registry.getSingleMetric('strata_processor_samples_cut_total')!.get()).values.find(
        (v) => v.labels.what === 'instances',
      )?.value ?? 0;
    const before = await value();
    const bounds = resolveProcessorConfig({}, {}).samples;
    const d = createSampleDecoder({ ...bounds, maxInstancesPerEntity: 2 }, () => NOW);
    expect(d.decode(lines[0]!).ok).toBe(true);
    expect((await value()) - before).toBe(3);
  });
});

describe('processor.samples config', () => {
  it('has documented defaults and rejects unknown keys', () => {
    expect(resolveProcessorConfig({}, {}).samples).toEqual({
      maxAge: 7 * DAY,
      maxFuture: 300_000,
      maxSamplesPerMessage: 5000,
      maxInstancesPerEntity: 1024,
      maxNameLength: 200,
      maxValueLength: 1024,
    });
    const bad = ProcessorConfig.safeParse({ samples: { maxAgee: '1d' } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('maxAgee');
  });
});
