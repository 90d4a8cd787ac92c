// The encoder cases the line-protocol fuzz target found, kept as plain examples: each line is
// checked with the strict parser of test/fuzz/line-protocol-parser.ts (InfluxDB 1.8's rules).
import { describe, expect, it } from 'vitest';
import type { Point } from '../../schemas/point.ts';
import { encodePoint, MAX_PREFIX_BYTES, newEncodeStats } from '../../sinks/influxdb/line-protocol.ts';
import { parseLine } from '../fuzz/line-protocol-parser.ts';

const T = 1_732_250_400_000;
const point = (p: Partial<Point>): Point => ({
  measurement: 'm',
  tags: {},
  fields: { v: 1 },
  timeMs: T,
  ...p,
});

describe('line protocol: what InfluxDB cannot store', () => {
  it('leaves out a tag whose value is only backslashes (was `k=`, refused)', () => {
    const line = encodePoint(point({ tags: { k: '\\\\', node: 'n1' } }))!;
    expect(line).toBe(`m,node=n1 v=1 ${T}`);
    expect(parseLine(line).tags).toEqual({ node: 'n1' });
  });

  it('leaves out a field whose key is only backslashes (was `=1`, refused)', () => {
    const line = encodePoint(point({ fields: { '\\': 1, v: 2 } }))!;
    expect(parseLine(line).fields).toEqual({ v: 2 });
  });

  it('cuts a tag value that would pass the 64 KiB series key limit (was refused)', () => {
    const line = encodePoint(point({ tags: { big: 'x'.repeat(70_000), node: 'n1' } }))!;
    const parsed = parseLine(line);
    expect(parsed.tags.node).toBe('n1');
    expect(parsed.tags.big!.length).toBeGreaterThan(60_000);
    expect(Buffer.byteLength(line.slice(0, line.indexOf(' ')))).toBeLessThanOrEqual(MAX_PREFIX_BYTES);
  });

  it('cuts a long value of escapes without leaving a lone backslash', () => {
    const line = encodePoint(point({ tags: { big: 'a\\,'.repeat(30_000) } }))!;
    const big = parseLine(line).tags.big!;
    expect('a\\,'.repeat(30_000).replaceAll('\\,', ',').startsWith(big)).toBe(true);
  });

  it('drops a point InfluxDB would read as a comment or whose time it cannot store', () => {
    const stats = newEncodeStats();
    expect(encodePoint(point({ measurement: '#m' }), stats)).toBeUndefined();
    expect(encodePoint(point({ timeMs: 1e300 }), stats)).toBeUndefined();
    expect(encodePoint(point({ measurement: '\\' }), stats)).toBeUndefined();
    expect(stats.droppedPoints).toBe(3);
  });

  it('writes a NUL in a field key as a space (influxd skips a leading NUL)', () => {
    const line = encodePoint(point({ fields: { '\u0000k': 1 } }))!;
    expect(parseLine(line).fields).toEqual({ ' k': 1 });
  });
});
