// encodeSegments (the writer's byte-level batch encoder) must give exactly the bodies that joining
// encodePoint's lines gives, cut at the same places: checked on the pipeline's output for real
// recorded messages and on points built to hit every escaping and dropping rule.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';
import {
  type EncodedSegment,
  encodePoint,
  encodeSegments,
  newEncodeStats,
  SegmentEncoder,
} from '../../sinks/influxdb/line-protocol.ts';

const T = 1_732_250_400_123;
const testdata = path.join(import.meta.dirname, '../../testdata');

function readNdjson(file: string): string[] {
  const raw = fs.readFileSync(path.join(testdata, file));
  const text = file.endsWith('.gz') ? zlib.gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** The pipeline's points for the recorded messages of `file`. */
function pipelinePoints(file: string): Point[] {
  const pipeline = createPipeline();
  const points: Point[] = [];
  for (const line of readNdjson(file)) {
    const d = decodeSampleMessage(line);
    if (!d.ok) throw new Error(`${file}: ${d.reason}`);
    for (const p of pipeline.handle(d.message).points) points.push(p);
  }
  return points;
}

/** The writer's former algorithm: encodePoint per point, cut by line count and size, joined. */
function reference(points: readonly Point[], maxLines: number, maxBytes: number) {
  const stats = newEncodeStats();
  const segments: EncodedSegment[] = [];
  let lines: string[] = [];
  let bytes = 0;
  let total = 0;
  for (const p of points) {
    const line = encodePoint(p, stats);
    if (line === undefined) continue;
    const size = Buffer.byteLength(line);
    if (lines.length > 0 && (lines.length >= maxLines || bytes + size >= maxBytes)) {
      segments.push({ body: Buffer.from(lines.join('\n'), 'utf8'), lines: lines.length });
      lines = [];
      bytes = 0;
    }
    lines.push(line);
    bytes += size + 1;
    total++;
  }
  if (lines.length > 0) segments.push({ body: Buffer.from(lines.join('\n'), 'utf8'), lines: lines.length });
  return { segments, total, stats };
}

function segmented(points: readonly Point[], maxLines: number, maxBytes: number) {
  const stats = newEncodeStats();
  const segments: EncodedSegment[] = [];
  const total = encodeSegments(points, maxLines, maxBytes, segments, stats);
  return { segments, total, stats };
}

const tricky: Point[] = [
  {
    measurement: 'strata host',
    tags: { node: 'n,1', layer: 'host', 'k=1': 'v 2', empty: '', '': 'x', tab: 'a\tb' },
    fields: { 'f 1': 1.5, s: 'say "hi" \\o/\nnext', ok: true, no: false, big: 2 ** 64, tiny: 1e-9 },
    timeMs: T + 0.7,
  },
  { measurement: 'm', tags: { path: 'C:\\dir\\' }, fields: { nan: Number.NaN, v: -0.5 }, timeMs: T },
  {
    measurement: 'm',
    tags: { a: 'b' },
    fields: {
      zero: 0,
      negZero: -0,
      neg: -5,
      ten: 10,
      pow: 1e15,
      maxSafe: Number.MAX_SAFE_INTEGER,
      minSafe: Number.MIN_SAFE_INTEGER,
      beyond: 2 ** 53,
      big: 123456789012,
      nines: 999999999999999,
      frac: 0.1,
      e21: 1e21,
    },
    timeMs: T,
  },
  { measurement: 'm', tags: {}, fields: { inf: Number.POSITIVE_INFINITY }, timeMs: T }, // no field left
  { measurement: '', tags: {}, fields: { a: 1 }, timeMs: T }, // no measurement
  { measurement: 'm', tags: {}, fields: { a: 1 }, timeMs: Number.NaN }, // no time
  { measurement: 'm', tags: {}, fields: {}, timeMs: T },
  {
    measurement: 'strata_container',
    tags: { name: 'café-ü', image: '日本/イメージ:1' },
    fields: { note: 'naïve — 😀', größe: 3, entity_id: 'x' },
    timeMs: T + 1,
  },
  {
    measurement: 'm',
    tags: { a: 'b' },
    fields: { [`long_${'x'.repeat(300)}`]: 'y'.repeat(5000) },
    timeMs: T,
  },
  {
    // String fields: written quoted straight into the buffer; the non-ASCII fallback mid-string.
    measurement: 'm',
    tags: { a: 'b' },
    fields: {
      empty: '',
      quotes: '""',
      backslashEnd: 'C:\\dir\\',
      lateUnicode: 'ab"c\\ é "d" \\ 😀 end',
      lone: 'x\ud800y"',
      ctrl: 'a\tb\rc\nd',
      many: '"\\'.repeat(2000),
    },
    timeMs: T,
  },
];

describe('encodeSegments', () => {
  const real = [
    ...pipelinePoints('processor/agent-host-1s.ndjson'),
    ...pipelinePoints('run/host-ticks.ndjson'),
    ...pipelinePoints('processor/noisy-quiet.ndjson.gz'),
  ];

  it('has real points to check', () => {
    expect(real.length).toBeGreaterThan(100);
  });

  it('gets frozen tags objects from the pipeline for entities and devices (their prefix is trusted unchecked)', () => {
    const rates = real.filter((p) => p.measurement !== 'strata_overhead');
    expect(rates.length).toBeGreaterThan(100);
    expect(rates.filter((p) => !Object.isFrozen(p.tags))).toEqual([]);
    expect(rates.some((p) => p.tags.device !== undefined)).toBe(true);
  });

  for (const [maxLines, maxBytes] of [
    [5000, 8_388_608],
    [7, 8_388_608],
    [1, 8_388_608],
    [5000, 4000],
    [3, 700],
    [5000, 1],
  ] as const) {
    it(`gives the joined lines of encodePoint, cut alike (batchSize ${maxLines}, maxBatchBytes ${maxBytes})`, () => {
      const points = [...tricky, ...real, ...tricky];
      const got = segmented(points, maxLines, maxBytes);
      const want = reference(points, maxLines, maxBytes);
      expect(got.total).toBe(want.total);
      expect(got.stats).toEqual(want.stats);
      expect(got.segments.length).toBe(want.segments.length);
      for (let i = 0; i < want.segments.length; i++) {
        const g = got.segments[i] as EncodedSegment;
        const w = want.segments[i] as EncodedSegment;
        expect(g.lines).toBe(w.lines);
        expect(g.body.toString('utf8')).toBe(w.body.toString('utf8')); // readable diff
        expect(Buffer.compare(g.body, w.body)).toBe(0); // and the very bytes
      }
    });
  }

  it('gives the same bodies when points are added in pieces (SegmentEncoder, one piece per message)', () => {
    const points = [...tricky, ...real, ...tricky];
    const enc = new SegmentEncoder();
    for (const [maxLines, maxBytes] of [
      [5000, 8_388_608],
      [7, 8_388_608],
      [5000, 4000],
      [3, 700],
      [5000, 1],
    ] as const) {
      const want = reference(points, maxLines, maxBytes);
      // Pieces of 0..40 points (empty pieces too), the same encoder reused across batches.
      for (const seed of [1, 2]) {
        const stats = newEncodeStats();
        const segments: EncodedSegment[] = [];
        enc.begin(maxLines, maxBytes, segments, stats);
        let added = 0;
        let x = seed;
        for (let i = 0; i < points.length; ) {
          x = (x * 1103515245 + 12345) % 2147483648;
          const n = x % 41;
          added += enc.add(points.slice(i, i + n));
          i += n;
        }
        expect(enc.finish()).toBe(want.total);
        expect(added).toBe(want.total);
        expect(stats).toEqual(want.stats);
        expect(segments.map((g) => g.lines)).toEqual(want.segments.map((w) => w.lines));
        expect(segments.map((g) => g.body.toString('utf8'))).toEqual(
          want.segments.map((w) => w.body.toString('utf8')),
        );
      }
    }
    // finish() without points gives no body.
    const none: EncodedSegment[] = [];
    expect(enc.begin(10, 1000, none, newEncodeStats()).finish()).toBe(0);
    expect(none).toEqual([]);
  });

  it('appends nothing for points that all fail to encode, counting them', () => {
    const out: EncodedSegment[] = [];
    const stats = newEncodeStats();
    expect(encodeSegments(tricky.slice(3, 7), 10, 1000, out, stats)).toBe(0);
    expect(out).toEqual([]);
    expect(stats).toEqual({ nonFiniteFields: 1, droppedPoints: 4 });
  });

  it('sees a tags object changed in place (the prefix cache checks what it was built from)', () => {
    const tags: Record<string, string> = { node: 'n1', layer: 'host' };
    const p: Point = { measurement: 'strata_host', tags, fields: { a: 1 }, timeMs: T };
    const encode = () => {
      const out: EncodedSegment[] = [];
      encodeSegments([p], 10, 1e6, out);
      return out[0]?.body.toString('utf8');
    };
    expect(encode()).toBe(`strata_host,layer=host,node=n1 a=1 ${T}`);
    tags.node = 'n 2';
    expect(encode()).toBe(`strata_host,layer=host,node=n\\ 2 a=1 ${T}`);
    expect(encodePoint(p)).toBe(`strata_host,layer=host,node=n\\ 2 a=1 ${T}`);
    tags.kind = 'node';
    expect(encode()).toBe(`strata_host,kind=node,layer=host,node=n\\ 2 a=1 ${T}`);
    delete tags.layer;
    expect(encodePoint(p)).toBe(`strata_host,kind=node,node=n\\ 2 a=1 ${T}`);
    // The same tags object under another measurement.
    expect(encodePoint({ ...p, measurement: 'strata_overhead' })).toBe(
      `strata_overhead,kind=node,node=n\\ 2 a=1 ${T}`,
    );
    expect(encode()).toBe(`strata_host,kind=node,node=n\\ 2 a=1 ${T}`);
  });
});
