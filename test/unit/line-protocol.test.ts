import { describe, expect, it } from 'vitest';
import type { Point } from '../../schemas/point.ts';
import {
  encodePoint,
  encodePoints,
  encodeSegments,
  escapeKey,
  escapeMeasurement,
  formatNumber,
  newEncodeStats,
  quoteString,
} from '../../sinks/influxdb/line-protocol.ts';

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

describe('numbers', () => {
  it.each([
    // [value, written, why]
    [7140.667381225592, '7140.66738', 'a real rate: 9 significant digits (4 + 5 decimals)'],
    [0.003797527833303025, '0.00379752783', 'below 1: 9 significant digits after the leading zeros'],
    [0.30000000000000004, '0.3', 'float noise beyond the 9th digit goes, trailing zeros too'],
    [0.1, '0.1', 'decimal inputs of ≤ 9 digits come back as written'],
    [-3.25, '-3.25', 'negative (an added latency can be)'],
    [9.9999999996, '10', 'rounding carries into a new digit: 10, not 10.0000000'],
    [999999999.6, '1000000000', 'just below 1e9 rounding up to it'],
    [12345678901.5, '12345678902', '≥ 1e9: rounded to an integer (11 significant digits)'],
    [-12345678901.5, '-12345678902', 'and negative'],
    [42, '42', 'integers are exact'],
    [2 ** 53, '9007199254740992', 'integers are exact up to 2^53'],
    [1e21, '1e+21', 'huge integers as JavaScript prints them (InfluxDB parses it)'],
    [5e-7, '5e-7', 'below 1e-6: as JavaScript prints it'],
    [0.000001, '0.000001', '1e-6 itself: fixed notation'],
    [-0, '0', 'negative zero'],
  ])('%d → %s (%s)', (v, written) => {
    expect(formatNumber(v)).toBe(written);
  });

  it('stays within 5e-9 relative of the value, never longer than needed, over 100k random values', () => {
    // Deterministic pseudo-random values over 1e-6 … 1e9, both signs.
    let x = 12345;
    const rnd = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
    const bad: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const v = (rnd() < 0.2 ? -1 : 1) * 10 ** (rnd() * 15 - 6);
      if (Math.abs(v) < 1e-6) continue;
      const s = formatNumber(v);
      const tolerance = Math.abs(v) * 5e-9 + (Math.abs(v) >= 1e9 ? 0.5 : 0);
      if (!(Math.abs(Number(s) - v) <= tolerance) || !/^-?\d+(\.\d*[1-9])?$/.test(s)) bad.push(`${v} → ${s}`);
    }
    expect(bad).toEqual([]);
  });

  it('the string and byte encoders write the same digits', () => {
    const fields: Record<string, number> = {};
    for (let i = 0; i < 50; i++) fields[`f${i}`] = ((i % 2 ? 1 : -1) * (i + 0.123456789123) ** (i % 7)) / 7;
    const p: Point = { measurement: 'm', tags: { node: 'n' }, fields, timeMs: T };
    const out: { body: Buffer; lines: number }[] = [];
    encodeSegments([p], 10, 1 << 20, out);
    expect(out[0]?.body.toString('utf8')).toBe(encodePoint(p));
    expect(encodePoint(p)).toContain(`f1=${formatNumber(1.123456789123 ** 1 / 7)}`);
  });
});
