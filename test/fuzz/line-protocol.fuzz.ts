// The line-protocol encoder (sinks/influxdb/line-protocol.ts) against hostile points: every line it writes
// must parse back, by InfluxDB 1.8's rules (line-protocol-parser.ts), to the point it was given,
// as the documented normalisation changes it (docs/processor.md "Line protocol"): control
// characters become spaces, backslashes InfluxDB would read as escapes are removed, what cannot be
// stored is left out, numbers are rounded to 9 significant digits, series keys over 64 KiB are cut.
import fc from 'fast-check';
import type { Point } from '../../schemas/point.ts';
import {
  encodePoint,
  encodeSegments,
  MAX_FIELD_KEY_BYTES,
  MAX_PREFIX_BYTES,
  newEncodeStats,
} from '../../sinks/influxdb/line-protocol.ts';
import type { FuzzTarget } from './harness.ts';
import { type ParsedPoint, parseBody, parseLine } from './line-protocol-parser.ts';

const MAX_TIME_MS = 9_223_372_036_854;

/** Characters that matter to line protocol, and some that matter to UTF-8. */
const TRICKY = [
  ',',
  ' ',
  '=',
  '"',
  '\\',
  '\n',
  '\r',
  '\t',
  '\0',
  'a',
  'b',
  'é',
  '中',
  '😀',
  '\uD800',
  '\uDFFF',
  '#',
  'i',
];

export const trickyString = (maxLength = 12): fc.Arbitrary<string> =>
  fc.oneof(
    { arbitrary: fc.string({ unit: fc.constantFrom(...TRICKY), maxLength }), weight: 4 },
    { arbitrary: fc.string({ maxLength }), weight: 1 },
    { arbitrary: fc.string({ unit: 'binary', maxLength }), weight: 1 },
    { arbitrary: fc.constantFrom('\\', '\\\\', 'C:\\dir\\', 'time', 'a\\,b', 'x\\', ''), weight: 1 },
  );

/** A value long enough to pass InfluxDB's series key limit on its own. */
const hugeString: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('x', 'é', '😀', ',', 'a\\', '\\,'), fc.integer({ min: 16_000, max: 70_000 }))
  .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)));

const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    2 ** 53,
    1e-7,
    1e21,
    0.1,
  ),
  trickyString(20),
  fc.boolean(),
  fc.constantFrom(undefined, null),
);

export const pointArb = (huge: boolean): fc.Arbitrary<Point> =>
  fc.record({
    measurement: fc.oneof({ arbitrary: fc.constant('strata_host'), weight: 3 }, trickyString(8)),
    tags: huge
      ? fc
          .tuple(
            fc.dictionary(trickyString(6), trickyString(10), { maxKeys: 4 }),
            trickyString(6),
            hugeString,
          )
          .map(([tags, k, v]) => ({ ...tags, [k]: v }))
      : fc.dictionary(trickyString(6), trickyString(10), { maxKeys: 5 }),
    fields: fc.dictionary(
      fc.oneof({ arbitrary: fc.constantFrom('cpu', 'v', 'n'), weight: 2 }, trickyString(8)),
      fieldValue,
      { maxKeys: 5 },
    ) as fc.Arbitrary<Point['fields']>,
    timeMs: fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: 4_102_444_800_000 }), weight: 6 },
      fc.double(),
      fc.constantFrom(MAX_TIME_MS, MAX_TIME_MS + 1, -MAX_TIME_MS, 1e300, 0.5, -0.5),
    ),
  });

/** What InfluxDB keeps of a name, key or value (see the header). */
function normalise(s: string, removeBefore: string): string {
  const t = s.replace(/[\n\r\t\0]/g, ' ');
  let out = '';
  let run = 0;
  for (const c of t) {
    if (c === '\\') {
      run++;
      continue;
    }
    if (run > 0 && !removeBefore.includes(c)) out += '\\'.repeat(run);
    out += c;
    run = 0;
  }
  return wellFormed(out);
}

/** s as UTF-8 can carry it: a lone surrogate becomes U+FFFD. */
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
const bytes = (s: string) => Buffer.byteLength(s);
const escapedBytes = (s: string, specials: RegExp) => bytes(s) + (s.match(specials)?.length ?? 0);

interface Expected {
  point: ParsedPoint;
  /** The series key passes the limit: tag values may be cut or left out. */
  cut: boolean;
}

/** The point InfluxDB should read back, or undefined when the encoder must drop it. */
export function expected(p: Point): Expected | undefined {
  if (!p.measurement || !(Math.abs(p.timeMs) <= MAX_TIME_MS)) return undefined;
  const measurement = normalise(p.measurement, ', ="');
  if (measurement === '' || measurement.startsWith('#')) return undefined;
  const tags: Record<string, string> = {};
  let prefixBytes = escapedBytes(measurement, /[, ]/g);
  for (const k in p.tags) {
    const v = p.tags[k];
    if (!k || v === undefined || v === '') continue;
    const nk = normalise(k, ', =');
    const nv = normalise(v, ', =');
    if (nk === '' || nv === '' || nk === 'time' || nk in tags) continue;
    tags[nk] = nv;
    prefixBytes += 2 + escapedBytes(nk, /[, =]/g) + escapedBytes(nv, /[, =]/g);
  }
  const fields: Record<string, number | string | boolean> = {};
  for (const k in p.fields) {
    const v: unknown = p.fields[k];
    if (k === '' || v === undefined || v === null) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) continue;
    const nk = normalise(k, ', ="');
    if (nk === '' || nk === 'time' || escapedBytes(nk, /[, =]/g) > MAX_FIELD_KEY_BYTES) continue;
    fields[nk] = typeof v === 'string' ? wellFormed(v) : (v as number | boolean);
  }
  if (Object.keys(fields).length === 0) return undefined;
  return {
    point: { measurement, tags, fields, time: String(Math.trunc(p.timeMs)) },
    cut: prefixBytes > MAX_PREFIX_BYTES,
  };
}

function sameNumber(got: number, want: number): boolean {
  if (Number.isInteger(want) && Math.abs(want) < 1e9) return got === want;
  const a = Math.abs(want);
  if (a < 1e-6) return got === want;
  if (a >= 1e9) return Math.abs(got - want) <= 0.5 + a * 1e-15;
  return Math.abs(got - want) <= a * 5.01e-9;
}

/** Throws unless `got` (parsed from the encoder's line) is `want` as InfluxDB stores it. */
export function checkPoint(got: ParsedPoint, want: Expected, line: string): void {
  const w = want.point;
  const fail = (what: string) => {
    throw new Error(
      `${what}\n  line: ${JSON.stringify(line.slice(0, 300))}\n  want: ${JSON.stringify(w).slice(0, 300)}`,
    );
  };
  if (got.measurement !== w.measurement) fail(`measurement ${JSON.stringify(got.measurement)}`);
  if (got.time !== w.time) fail(`time ${got.time}`);
  for (const k in got.tags) {
    if (!(k in w.tags)) fail(`unexpected tag ${JSON.stringify(k)}`);
    const g = got.tags[k]!;
    const e = w.tags[k]!;
    if (g !== e && !(want.cut && g !== '' && e.startsWith(g)))
      fail(`tag ${JSON.stringify(k)} = ${JSON.stringify(g.slice(0, 80))}`);
  }
  for (const k in w.tags) if (!(k in got.tags) && !want.cut) fail(`tag ${JSON.stringify(k)} missing`);
  const gk = Object.keys(got.fields).sort();
  const wk = Object.keys(w.fields).sort();
  if (JSON.stringify(gk) !== JSON.stringify(wk))
    fail(`fields ${JSON.stringify(gk)} vs ${JSON.stringify(wk)}`);
  for (const k of wk) {
    const g = got.fields[k];
    const e = w.fields[k];
    const ok = typeof e === 'number' ? typeof g === 'number' && sameNumber(g, e) : g === e;
    if (!ok) fail(`field ${JSON.stringify(k)} = ${JSON.stringify(g)}, want ${JSON.stringify(e)}`);
  }
}

function roundTrip(points: Point[]): void {
  const lines: string[] = [];
  const wants: Expected[] = [];
  for (const p of points) {
    const want = expected(p);
    const stats = newEncodeStats();
    const line = encodePoint(p, stats);
    if (want === undefined) {
      if (line !== undefined)
        throw new Error(`encoded a point InfluxDB cannot store: ${JSON.stringify(line.slice(0, 300))}`);
      if (stats.droppedPoints !== 1) throw new Error('a dropped point was not counted');
      continue;
    }
    if (line === undefined)
      throw new Error(`dropped a storable point: ${JSON.stringify(want.point).slice(0, 300)}`);
    checkPoint(parseLine(line), want, line);
    lines.push(line);
    wants.push(want);
  }
  // The writer's path: the same lines, joined into bodies, split back as influxd splits them.
  const out: { body: Buffer; lines: number }[] = [];
  encodeSegments(points, 1000, 8 * 1024 * 1024, out, newEncodeStats());
  const parsed = out.flatMap((s) => parseBody(s.body));
  if (parsed.length !== wants.length)
    throw new Error(`bodies hold ${parsed.length} lines, want ${wants.length}`);
  for (let i = 0; i < parsed.length; i++) checkPoint(parsed[i]!, wants[i]!, lines[i]!);
}

export const targets: FuzzTarget[] = [
  {
    name: 'line-protocol: every line parses back to its point',
    property: () => fc.property(fc.array(pointArb(false), { minLength: 1, maxLength: 4 }), roundTrip),
  },
  {
    name: 'line-protocol: series keys over 64 KiB are cut, not refused',
    property: () => fc.property(pointArb(true), (p) => roundTrip([p])),
    // Each case encodes and parses back a 16–280 KB value.
    weight: 0.05,
  },
];
