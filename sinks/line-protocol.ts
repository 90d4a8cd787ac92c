// InfluxDB line protocol encoder for strata's Points (sinks/point.ts), shared by the v1 and v2 sinks.
//
//   measurement,tag1=v1,tag2=v2 field1=1.5,field2="text",field3=true 1732250400000
//
// Decisions (documented in docs/processor.md, "Line protocol"):
// - Numbers are always written as floats (no `i` suffix). A field that is once an integer and once a
//   float would otherwise be a type conflict that InfluxDB rejects for the whole shard (400
//   "field type conflict"); rates and ratios are floats anyway, and a float64 holds every counter
//   value up to 2^53 exactly.
// - Non-finite numbers (NaN, ±Infinity) are not representable: the field is left out and counted.
//   A point left without fields (or without a measurement) is dropped and counted.
// - Tag keys are sorted (byte order), as InfluxDB recommends: the server then skips its own sort.
// - Newlines, carriage returns and tabs in measurement names, tag keys/values and field keys are
//   not representable (a newline ends the line), so each becomes a space (then escaped as `\ `).
//   In string field values they are kept (InfluxDB accepts them inside quotes).
// - Empty tag values are left out (InfluxDB rejects `tag=`); empty tag or field keys likewise.
// - InfluxDB's tag scanner escapes whatever follows a backslash (it looks one byte back), so a
//   backslash directly before a comma, space or `=` or at the very end of a name/key/value
//   cannot be written: it is removed (`C:\dir\` is stored as `C:\dir`). Other backslashes pass
//   through unchanged. (Verified against influxd 1.6.7 in test/integration/influx-v1.test.ts.)
// - Timestamps are integer milliseconds (write with precision=ms).
import type { Point } from './point.ts';

/** Counts of what could not be encoded; the sinks export them as metrics. */
export interface EncodeStats {
  /** Fields left out because their value was NaN or ±Infinity. */
  nonFiniteFields: number;
  /** Points dropped: no measurement, no encodable field, or a non-finite time. */
  droppedPoints: number;
}

export function newEncodeStats(): EncodeStats {
  return { nonFiniteFields: 0, droppedPoints: 0 };
}

const NEEDS_ESCAPE_MEASUREMENT = /[, \\\n\r\t]/;
const NEEDS_ESCAPE_KEY = /[,= \\\n\r\t]/;
const CONTROL = /[\n\r\t]/g;

/** Measurement names: commas and spaces escaped; control characters become spaces. */
export function escapeMeasurement(s: string): string {
  if (!NEEDS_ESCAPE_MEASUREMENT.test(s)) return s;
  return escapeWith(s, false);
}

/** Tag keys, tag values and field keys: commas, `=` and spaces escaped; control characters become spaces. */
export function escapeKey(s: string): string {
  if (!NEEDS_ESCAPE_KEY.test(s)) return s;
  return escapeWith(s, true);
}

/** String field values: quoted, with `"` and `\` escaped. */
export function quoteString(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * InfluxDB's tag scanner treats any character right after a backslash as escaped (it looks one
 * byte back, it does not pair backslashes), so a backslash directly before a separator or at the
 * very end cannot be written at all: such backslashes are removed. Others pass through unchanged.
 */
function escapeWith(input: string, escapeEquals: boolean): string {
  const s = input.replace(CONTROL, ' ');
  let out = '';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\') {
      run++;
      out += c;
      continue;
    }
    const special = c === ',' || c === ' ' || (escapeEquals && c === '=');
    if (special) {
      if (run > 0) out = out.slice(0, out.length - run);
      out += `\\${c}`;
    } else {
      out += c;
    }
    run = 0;
  }
  if (run > 0) out = out.slice(0, out.length - run);
  return out;
}

// Field keys, tag keys and tag values are a bounded set (tags are bounded-cardinality by design),
// so their escaped forms are cached: it saves ~25% of encoding time. Bounded: cleared when full.
const CACHE_MAX = 50_000;
const keyCache = new Map<string, string>();
const measurementCache = new Map<string, string>();

function cachedKey(s: string): string {
  let e = keyCache.get(s);
  if (e === undefined) {
    e = escapeKey(s);
    if (keyCache.size >= CACHE_MAX) keyCache.clear();
    keyCache.set(s, e);
  }
  return e;
}

function cachedMeasurement(s: string): string {
  let e = measurementCache.get(s);
  if (e === undefined) {
    e = escapeMeasurement(s);
    if (measurementCache.size >= 1000) measurementCache.clear();
    measurementCache.set(s, e);
  }
  return e;
}

/** Encodes one point, or returns undefined (and counts why) when it cannot be represented. */
export function encodePoint(p: Point, stats: EncodeStats = newEncodeStats()): string | undefined {
  if (!p.measurement || !Number.isFinite(p.timeMs)) {
    stats.droppedPoints++;
    return undefined;
  }
  let fields = '';
  for (const key in p.fields) {
    if (key === '') continue;
    const v = p.fields[key];
    let enc: string;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) {
        stats.nonFiniteFields++;
        continue;
      }
      enc = String(v);
    } else if (typeof v === 'string') {
      enc = quoteString(v);
    } else if (typeof v === 'boolean') {
      enc = v ? 'true' : 'false';
    } else {
      continue; // undefined/null slipped through an untyped caller: nothing to write
    }
    fields += `${fields ? ',' : ''}${cachedKey(key)}=${enc}`;
  }
  if (!fields) {
    stats.droppedPoints++;
    return undefined;
  }
  let line = cachedMeasurement(p.measurement);
  const keys = Object.keys(p.tags);
  if (keys.length > 1) keys.sort();
  for (const k of keys) {
    const v = p.tags[k];
    if (!k || v === undefined || v === '') continue;
    line += `,${cachedKey(k)}=${cachedKey(v)}`;
  }
  return `${line} ${fields} ${Math.trunc(p.timeMs)}`;
}

/** Encodes points into `out` (appended); returns the number of lines added. */
export function encodePoints(
  points: readonly Point[],
  out: string[],
  stats: EncodeStats = newEncodeStats(),
): number {
  let n = 0;
  for (const p of points) {
    const line = encodePoint(p, stats);
    if (line !== undefined) {
      out.push(line);
      n++;
    }
  }
  return n;
}
