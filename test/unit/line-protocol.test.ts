import { describe, expect, it } from 'vitest';
import {
  encodePoint,
  encodePoints,
  escapeKey,
  escapeMeasurement,
  newEncodeStats,
  quoteString,
} from '../../sinks/line-protocol.ts';
import type { Point } from '../../sinks/point.ts';

const T = 1_732_250_400_123;

describe('line protocol escaping', () => {
  it('escapes commas and spaces in measurements, but not =', () => {
    expect(escapeMeasurement('strata host')).toBe('strata\\ host');
    expect(escapeMeasurement('a,b=c')).toBe('a\\,b=c');
    expect(escapeMeasurement('strata_host')).toBe('strata_host');
  });

  it('escapes commas, = and spaces in tag keys and values', () => {
    expect(escapeKey('my tag')).toBe('my\\ tag');
    expect(escapeKey('a=b,c')).toBe('a\\=b\\,c');
    expect(escapeKey('/sys/fs/cgroup/x.slice')).toBe('/sys/fs/cgroup/x.slice');
  });

  it('turns newlines, carriage returns and tabs into (escaped) spaces', () => {
    expect(escapeKey('line1\nline2')).toBe('line1\\ line2');
    expect(escapeKey('a\r\nb\tc')).toBe('a\\ \\ b\\ c');
    expect(escapeMeasurement('m\n')).toBe('m\\ ');
  });

  it('removes backslashes that would escape a separator or end a value (InfluxDB cannot store them)', () => {
    expect(escapeKey('a\\,b')).toBe('a\\,b'); // a\,b -> a\,b (the comma's own escape)
    expect(escapeKey('a\\\\ b')).toBe('a\\ b');
    expect(escapeKey('C:\\dir\\')).toBe('C:\\dir');
    expect(escapeMeasurement('m\\')).toBe('m');
    expect(escapeMeasurement('m x\\')).toBe('m\\ x');
    // backslashes before ordinary characters pass through
    expect(escapeKey('C:\\dir x')).toBe('C:\\dir\\ x');
  });

  it('quotes string fields escaping " and \\ only', () => {
    expect(quoteString('say "hi" \\o/')).toBe('"say \\"hi\\" \\\\o/"');
    expect(quoteString('a, b=c d')).toBe('"a, b=c d"');
  });
});

describe('encodePoint', () => {
  it('sorts tag keys and writes numbers as floats without the i suffix', () => {
    const p: Point = {
      measurement: 'strata_host',
      tags: { node: 'n1', layer: 'host', entity: 'web 1' },
      fields: { cpu_cores: 1.25, procs_running: 3, ok: true, note: 'x' },
      timeMs: T,
    };
    expect(encodePoint(p)).toBe(
      `strata_host,entity=web\\ 1,layer=host,node=n1 cpu_cores=1.25,procs_running=3,ok=true,note="x" ${T}`,
    );
  });

  it('drops empty tag values and keys, which InfluxDB rejects', () => {
    const line = encodePoint({
      measurement: 'm',
      tags: { a: '', '': 'v', b: 'x' },
      fields: { f: 1 },
      timeMs: T,
    });
    expect(line).toBe(`m,b=x f=1 ${T}`);
  });

  it('leaves out non-finite fields and drops points left without fields, counting both', () => {
    const stats = newEncodeStats();
    expect(
      encodePoint({ measurement: 'm', tags: {}, fields: { a: Number.NaN, b: 2 }, timeMs: T }, stats),
    ).toBe(`m b=2 ${T}`);
    expect(
      encodePoint({ measurement: 'm', tags: {}, fields: { a: Number.POSITIVE_INFINITY }, timeMs: T }, stats),
    ).toBeUndefined();
    expect(encodePoint({ measurement: '', tags: {}, fields: { a: 1 }, timeMs: T }, stats)).toBeUndefined();
    expect(
      encodePoint({ measurement: 'm', tags: {}, fields: { a: 1 }, timeMs: Number.NaN }, stats),
    ).toBeUndefined();
    expect(stats).toEqual({ nonFiniteFields: 2, droppedPoints: 3 });
  });

  it('writes large, tiny and negative numbers in a form InfluxDB parses as floats', () => {
    const line = encodePoint({
      measurement: 'm',
      tags: {},
      fields: { big: 2 ** 64, tiny: 1e-9, neg: -0.5, max: Number.MAX_SAFE_INTEGER },
      timeMs: T,
    });
    expect(line).toBe(`m big=18446744073709552000,tiny=1e-9,neg=-0.5,max=9007199254740991 ${T}`);
  });

  it('truncates fractional timestamps to integer ms', () => {
    expect(encodePoint({ measurement: 'm', tags: {}, fields: { a: 1 }, timeMs: T + 0.7 })).toBe(`m a=1 ${T}`);
  });

  it('escapes field keys like tag keys and keeps newlines inside string values', () => {
    expect(
      encodePoint({ measurement: 'm', tags: { 'k=1': 'v,2' }, fields: { 'f 1': 'a\nb' }, timeMs: T }),
    ).toBe(`m,k\\=1=v\\,2 f\\ 1="a\nb" ${T}`);
  });

  it('encodePoints appends only encodable points', () => {
    const out: string[] = ['existing'];
    const n = encodePoints(
      [
        { measurement: 'm', tags: {}, fields: { a: 1 }, timeMs: T },
        { measurement: 'm', tags: {}, fields: {}, timeMs: T },
      ],
      out,
    );
    expect(n).toBe(1);
    expect(out).toEqual(['existing', `m a=1 ${T}`]);
  });
});
