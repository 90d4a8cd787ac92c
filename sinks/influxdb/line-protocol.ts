// InfluxDB line protocol encoder for strata's Points (schemas/point.ts), shared by the v1 and v2 sinks.
//
//   measurement,tag1=v1,tag2=v2 field1=1.5,field2="text",field3=true 1732250400000
//
// Decisions (documented in docs/processor.md, "Line protocol"):
// - Numbers are always written as floats (no `i` suffix). A field that is once an integer and once a
//   float would otherwise be a type conflict that InfluxDB rejects for the whole shard (400
//   "field type conflict"); rates and ratios are floats anyway, and a float64 holds every counter
//   value up to 2^53 exactly.
// - Non-integer numbers are written rounded to 9 significant digits (putNumber below): rates come
//   from millisecond timestamps over ~1 s intervals, so their own resolution is ~1e-3 relative,
//   and V8 prints a double's shortest round-trip form (up to 17 digits) at ~100 ns each, which was
//   the processor's largest single cost with real (non-integer) rates. Integers are exact.
// - Non-finite numbers (NaN, ±Infinity) are not representable: the field is left out and counted.
//   A point left without fields (or without a measurement) is dropped and counted.
// - Tag keys are sorted (byte order), as InfluxDB recommends: the server then skips its own sort.
// - Newlines, carriage returns, tabs and NULs in measurement names, tag keys/values and field keys
//   are not representable (a newline ends the line; influxd skips leading tabs and NULs), so each
//   becomes a space (then escaped as `\ `). In string field values they are kept (InfluxDB
//   accepts them inside quotes).
// - Empty tag values are left out (InfluxDB rejects `tag=`); empty tag or field keys likewise.
// - InfluxDB's tag scanner escapes whatever follows a backslash (it looks one byte back), so a
//   backslash directly before a comma, space or `=` or at the very end of a name/key/value
//   cannot be written: it is removed (`C:\dir\` is stored as `C:\dir`). Measurement names and
//   field keys are unescaped by influxd's escape.Unescape, which also turns `\"` into `"` and
//   `\=` into `=`, so there a backslash before `"` (and before `=` in names) is removed too.
//   Other backslashes pass through unchanged. (Verified against influxd 1.6.7 in
//   test/integration/influx-v1.test.ts and InfluxDB 1.8 in line-protocol-influx.test.ts.)
// - What InfluxDB refuses or silently drops is left out and counted
//   (strata_sink_line_protocol_adjusted_total, below): a tag or field whose key or value is empty
//   once escaped (a value made only of backslashes), the tag key or field key `time`, a second tag
//   whose key escapes to the same bytes; a field key longer than MAX_FIELD_KEY_BYTES. A tag set
//   whose series key would pass InfluxDB's 64 KiB limit has its longest tag values truncated.
//   A point whose measurement name is empty once escaped or starts with `#` (influxd reads the
//   line as a comment) is dropped.
// - Timestamps are integer milliseconds (write with precision=ms); a time InfluxDB cannot store
//   (outside ±9223372036854 ms, its int64 nanoseconds) drops the point.
import { counter } from '../../lib/metrics.ts';
import type { Point } from '../../schemas/point.ts';
import type { BodyPool } from './body-pool.ts';

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

const NEEDS_ESCAPE_MEASUREMENT = /[, \\\n\r\t\0]/;
const NEEDS_ESCAPE_KEY = /[,= \\\n\r\t\0]/;
const CONTROL = /[\n\r\t\0]/g;

/** InfluxDB's limit on a series key (measurement + tags) plus 4 + a field key (models.MaxKeyLength). */
export const INFLUX_MAX_KEY_BYTES = 65535;
/**
 * Longest field key written, in escaped UTF-8 bytes; longer ones are left out (counted). Real field
 * keys are metric names of a few dozen bytes; this reserves room for them beside the tag set.
 */
export const MAX_FIELD_KEY_BYTES = 1024;
/** Longest `measurement,tags` prefix: InfluxDB's limit less the field-key separator (4) and room. */
export const MAX_PREFIX_BYTES = INFLUX_MAX_KEY_BYTES - 4 - MAX_FIELD_KEY_BYTES;
/** Times InfluxDB stores: int64 nanoseconds (models.MinNanoTime/MaxNanoTime), in whole ms. */
const MAX_TIME_MS = 9_223_372_036_854;

const adjusted = counter(
  'strata_sink_line_protocol_adjusted_total',
  'Tags and fields InfluxDB cannot store as given, left out (dropped) or cut (truncated): ' +
    'tags once per tag set encoded, fields per point.',
  ['part', 'action'],
);
const tagsDropped = adjusted.labels('tag', 'dropped');
const tagsTruncated = adjusted.labels('tag', 'truncated');
const fieldsDropped = adjusted.labels('field', 'dropped');

/**
 * Measurement names: commas and spaces escaped; control characters become spaces; backslashes
 * InfluxDB would read as an escape (before `,` space `=` `"`, or last) removed.
 */
export function escapeMeasurement(s: string): string {
  if (!NEEDS_ESCAPE_MEASUREMENT.test(s)) return s;
  return escapeWith(s, false, true);
}

/** Tag keys and tag values: commas, `=` and spaces escaped; control characters become spaces. */
export function escapeKey(s: string): string {
  if (!NEEDS_ESCAPE_KEY.test(s)) return s;
  return escapeWith(s, true, false);
}

/** Field keys: as escapeKey, and a backslash before `"` removed (influxd unescapes `\"` in field keys). */
export function escapeFieldKey(s: string): string {
  if (!NEEDS_ESCAPE_KEY.test(s)) return s;
  return escapeWith(s, true, true);
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
function escapeWith(input: string, escapeEquals: boolean, unescapedByInflux: boolean): string {
  const s = input.replace(CONTROL, ' ');
  let out = '';
  // Backslashes are held back until the character after them shows whether they can be written
  // (one pass: removing them afterwards would copy the string once per run).
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\') {
      run++;
      continue;
    }
    if (c === ',' || c === ' ' || (escapeEquals && c === '=')) {
      out += `\\${c}`;
    } else {
      // escape.Unescape (names, field keys) reads `\"` and `\=` as escapes: such a backslash is lost.
      if (run > 0 && !(unescapedByInflux && (c === '"' || c === '='))) out += '\\'.repeat(run);
      out += c;
    }
    run = 0;
  }
  return out;
}

// Field keys, tag keys and tag values are a bounded set (tags are bounded-cardinality by design),
// so their escaped forms are cached. Bounded: cleared when full.
const CACHE_MAX = 50_000;
const keyCache = new Map<string, string>();
/** Field key → `escaped=` (the form written before a field's value). */
const fieldKeyCache = new Map<string, string>();
const measurementCache = new Map<string, string>();

const LONE_SURROGATE = /[\uD800-\uDFFF]/;
/**
 * s as its UTF-8 bytes will read: a lone surrogate is written as U+FFFD, so two keys that differ
 * only there are the same key to InfluxDB (a duplicate tag, which it refuses).
 */
function wellFormed(s: string): string {
  return LONE_SURROGATE.test(s) ? Buffer.from(s, 'utf8').toString('utf8') : s;
}

/** Longer keys and values are escaped each time, not cached: the caches hold ≤ 50k × 256 units. */
const CACHE_MAX_LENGTH = 256;

function cachedKey(s: string): string {
  if (s.length > CACHE_MAX_LENGTH) return wellFormed(escapeKey(s));
  let e = keyCache.get(s);
  if (e === undefined) {
    e = wellFormed(escapeKey(s));
    if (keyCache.size >= CACHE_MAX) keyCache.clear();
    keyCache.set(s, e);
  }
  return e;
}

/** `escaped=`, or '' for a key InfluxDB cannot store (empty once escaped, `time`, too long). */
function cachedFieldKey(s: string): string {
  let e = fieldKeyCache.get(s);
  if (e === undefined) {
    const k = wellFormed(escapeFieldKey(s));
    e = k === '' || k === 'time' || Buffer.byteLength(k) > MAX_FIELD_KEY_BYTES ? '' : `${k}=`;
    if (fieldKeyCache.size >= CACHE_MAX) fieldKeyCache.clear();
    fieldKeyCache.set(s, e);
  }
  return e;
}

function cachedMeasurement(s: string): string {
  let e = measurementCache.get(s);
  if (e === undefined) {
    e = escapeMeasurement(s);
    // influxd skips a line that starts with '#' (a comment), and '#' has no escape: not writable.
    if (e.charCodeAt(0) === 35) e = '';
    if (measurementCache.size >= 1000) measurementCache.clear();
    measurementCache.set(s, e);
  }
  return e;
}

/**
 * The escaped `measurement,tag=v,...` prefix of a tags object. The pipeline reuses one tags object
 * per entity/device across ticks (processors/rates/rates.ts), so the prefix (sorted, escaped) is
 * cached per tags object (WeakMap: it goes when the object does). Each hit is checked against the
 * raw keys and values the prefix was built from, so a caller that mutates a tags object in place
 * still gets the right line, only without the saving. A frozen tags object (the pipeline freezes
 * its own) cannot have changed, so its hits skip that check.
 */
interface PrefixEntry {
  measurement: string;
  /** Raw keys and values in the object's own (insertion) order, as the prefix was built from. */
  keys: string[];
  values: (string | undefined)[];
  prefix: string;
  /** `prefix` as UTF-8, made on first use by encodeSegments. */
  bytes: Uint8Array | undefined;
  /** Another measurement written with the same tags object. */
  next: PrefixEntry | undefined;
  /** The tags object was frozen when the prefix was built: it cannot differ from keys/values. */
  frozen: boolean;
}
const prefixCache = new WeakMap<Record<string, string>, PrefixEntry>();

function sameTags(e: PrefixEntry, tags: Record<string, string>): boolean {
  const keys = e.keys;
  const values = e.values;
  let i = 0;
  for (const k in tags) {
    if (i >= keys.length || keys[i] !== k || values[i] !== tags[k]) return false;
    i++;
  }
  return i === keys.length;
}

function buildPrefix(measurement: string, tags: Record<string, string>): PrefixEntry {
  const keys: string[] = [];
  const values: (string | undefined)[] = [];
  const pairs: [string, string][] = [];
  for (const k in tags) {
    keys.push(k);
    const v = tags[k];
    values.push(v);
    if (!k || v === undefined || v === '') continue;
    const ek = cachedKey(k);
    const ev = cachedKey(v);
    // `k=` and `=v` are refused; a tag `time` makes influxd drop the point.
    if (ek === '' || ev === '' || ek === 'time') tagsDropped.inc();
    else pairs.push([ek, ev]);
  }
  // Sorted by escaped key (for plain keys the same as by key): two keys that escape alike are
  // then neighbours, and the second is left out (InfluxDB refuses duplicate tags).
  if (pairs.length > 1) pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const m = cachedMeasurement(measurement);
  let prefix = m;
  let last = '';
  for (const [ek, ev] of pairs) {
    if (ek === last) {
      tagsDropped.inc();
      continue;
    }
    last = ek;
    prefix += `,${ek}=${ev}`;
  }
  if (m === '') prefix = ''; // a name made only of backslashes: the point cannot be written
  // A UTF-16 unit is at most 3 UTF-8 bytes: only a long prefix needs measuring.
  if (prefix.length * 3 > MAX_PREFIX_BYTES && Buffer.byteLength(prefix) > MAX_PREFIX_BYTES) {
    prefix = truncatedPrefix(m, pairs);
  }
  return {
    measurement,
    keys,
    values,
    prefix,
    bytes: undefined,
    next: undefined,
    frozen: Object.isFrozen(tags),
  };
}

/**
 * The prefix cut to MAX_PREFIX_BYTES: the longest tag values are cut (at a character, never inside
 * an escape) until it fits, a value cut to nothing is left out. '' when the measurement name alone
 * does not fit (the point is dropped).
 */
function truncatedPrefix(m: string, pairs: [string, string][]): string {
  const kept: [string, string, number][] = [];
  let last = '';
  for (const [ek, ev] of pairs) {
    if (ek === last) continue; // already counted
    last = ek;
    kept.push([ek, ev, Buffer.byteLength(ev)]);
  }
  let total = Buffer.byteLength(m);
  for (const [ek, , n] of kept) total += 2 + Buffer.byteLength(ek) + n;
  if (Buffer.byteLength(m) > MAX_PREFIX_BYTES) {
    tagsDropped.inc(kept.length);
    return '';
  }
  while (total > MAX_PREFIX_BYTES) {
    let longest = 0;
    for (let i = 1; i < kept.length; i++) if (kept[i]![2] > kept[longest]![2]) longest = i;
    const t = kept[longest]!;
    const cut = cutUtf8(t[1], Math.max(0, t[2] - (total - MAX_PREFIX_BYTES)));
    const n = Buffer.byteLength(cut);
    if (n === 0) {
      total -= 2 + Buffer.byteLength(t[0]) + t[2];
      kept.splice(longest, 1);
      tagsDropped.inc();
    } else {
      total -= t[2] - n;
      t[1] = cut;
      t[2] = n;
      tagsTruncated.inc();
    }
  }
  let prefix = m;
  for (const [ek, ev] of kept) prefix += `,${ek}=${ev}`;
  return prefix;
}

/**
 * The longest start of the escaped s of at most maxBytes UTF-8 bytes, cut between code points and
 * without a trailing backslash (a cut escape, or one InfluxDB would read as escaping the separator).
 */
function cutUtf8(s: string, maxBytes: number): string {
  let bytes = 0;
  let i = 0;
  while (i < s.length) {
    const c = s.codePointAt(i) as number;
    const n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (bytes + n > maxBytes) break;
    bytes += n;
    i += c >= 0x10000 ? 2 : 1;
  }
  let end = i;
  while (end > 0 && s.charCodeAt(end - 1) === 92) end--;
  return s.slice(0, end);
}

function tagPrefix(measurement: string, tags: Record<string, string>): PrefixEntry {
  const first = prefixCache.get(tags);
  let e = first;
  let n = 0;
  while (e !== undefined) {
    if (e.measurement === measurement) {
      if (e.frozen || sameTags(e, tags)) return e;
      break;
    }
    e = e.next;
    n++;
  }
  const fresh = buildPrefix(measurement, tags);
  // A few measurements per tags object at most in practice; keep the chain short regardless.
  fresh.next = n < 8 ? dropMeasurement(first, measurement) : undefined;
  prefixCache.set(tags, fresh);
  return fresh;
}

function dropMeasurement(e: PrefixEntry | undefined, measurement: string): PrefixEntry | undefined {
  if (e === undefined) return undefined;
  if (e.measurement === measurement) return e.next;
  e.next = dropMeasurement(e.next, measurement);
  return e;
}

/** The timestamp of consecutive points is usually the same: its string is reused. */
let lastTime = Number.NaN;
let lastTimeStr = '';
/** ` <lastTimeStr>` as bytes (encodeSegments), for the time string lastTimeBytesOf. */
let lastTimeBytes: Uint8Array = new Uint8Array(0);
let lastTimeBytesOf: string | undefined;

// ---- Numbers ----------------------------------------------------------------------------------
/** Significant digits of non-integer numbers (see the header). 10^9 < 2^31: int32 digit arithmetic. */
const SIGNIFICANT_DIGITS = 9;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
/** Longest `${v}` of a finite double ("-1.2345678901234567e-308"): the room putNumber needs. */
export const MAX_NUMBER_BYTES = 24;

/** Writes the decimal digits of the integer 0 ≤ m < 2^31 ending just before `end`; returns the start. */
function putDigitsBackwards(b: Uint8Array, end: number, m: number): number {
  let p = end;
  do {
    const u = (m / 10) | 0;
    b[--p] = 48 + m - u * 10;
    m = u;
  } while (m > 0);
  return p;
}

/**
 * Writes finite v at b[q..] (MAX_NUMBER_BYTES of room ensured by the caller); returns the end.
 *   - integers: exact (as `${v}` writes them);
 *   - non-integers with 1e-6 ≤ |v| < 1e9: rounded to 9 significant digits, fixed notation,
 *     trailing zeros dropped (7140.667381225592 → 7140.66738; 0.1 → 0.1);
 *   - |v| ≥ 1e9: rounded to an integer (still ≥ 10 significant digits);
 *   - |v| < 1e-6: as `${v}` (rare; exponent notation, which InfluxDB parses).
 * Deterministic, so a replay rewrites identical points.
 */
export function putNumber(b: Buffer, q: number, v: number): number {
  const a = v < 0 ? -v : v;
  if (a < 1e9 && Number.isInteger(a)) {
    if (v < 0) b[q++] = 45;
    const end = q + digitCount(a);
    putDigitsBackwards(b, end, a);
    return end;
  }
  if (a >= 1e9) return putString(b, q, `${Math.sign(v) * Math.round(a)}`);
  if (a < 1e-6) return putString(b, q, `${v}`);
  // d = decimals for 9 significant digits: a in [10^e, 10^(e+1)) → d = 8 − e.
  let d: number;
  if (a >= 1) {
    let e = 0;
    while (e < 8 && a >= (POW10[e + 1] as number)) e++;
    d = SIGNIFICANT_DIGITS - 1 - e;
  } else {
    let e = 1; // a in [10^-e, 10^(1-e))
    while (a * (POW10[e] as number) < 1) e++;
    d = SIGNIFICANT_DIGITS - 1 + e;
  }
  let m = Math.round(a * (POW10[d] as number));
  if (m >= 1e9) {
    // Rounding carried into a 10th digit (9.9999999996 → 10.0000000): one decimal fewer.
    if (d === 0) return putString(b, q, `${Math.sign(v) * m}`);
    m = Math.round(m / 10);
    d--;
  }
  while (d > 0 && m % 10 === 0) {
    m = (m / 10) | 0;
    d--;
  }
  if (v < 0) b[q++] = 45; // m ≥ 100 here (|v| ≥ 1e-6 at 9 digits): never "-0".
  if (d === 0) {
    const end = q + digitCount(m);
    putDigitsBackwards(b, end, m);
    return end;
  }
  const n = digitCount(m);
  if (n <= d) {
    // 0.000ddd: leading zeros after the point.
    b[q++] = 48;
    b[q++] = 46;
    for (let z = d - n; z > 0; z--) b[q++] = 48;
    const end = q + n;
    putDigitsBackwards(b, end, m);
    return end;
  }
  // iii.ddd: the fraction's d digits, the point, then the integer part.
  const end = q + n + 1;
  const frac = m % (POW10[d] as number);
  let p = end;
  for (let k = 0, f = frac; k < d; k++) {
    const u = (f / 10) | 0;
    b[--p] = 48 + f - u * 10;
    f = u;
  }
  b[--p] = 46;
  putDigitsBackwards(b, p, (m - frac) / (POW10[d] as number));
  return end;
}

function digitCount(m: number): number {
  let n = 1;
  while (n < 16 && m >= (POW10[n] as number)) n++;
  return n;
}

const numberScratch = Buffer.allocUnsafe(MAX_NUMBER_BYTES);
/** v as putNumber writes it, as a string (encodePoint's path). */
export function formatNumber(v: number): string {
  return numberScratch.toString('latin1', 0, putNumber(numberScratch, 0, v));
}

/** Encodes one point, or returns undefined (and counts why) when it cannot be represented. */
export function encodePoint(p: Point, stats: EncodeStats = newEncodeStats()): string | undefined {
  // !(|t| ≤ max) is also true for NaN.
  if (!p.measurement || !(Math.abs(p.timeMs) <= MAX_TIME_MS)) {
    stats.droppedPoints++;
    return undefined;
  }
  const prefix = tagPrefix(p.measurement, p.tags).prefix;
  if (prefix === '') {
    stats.droppedPoints++;
    return undefined;
  }
  let fields = '';
  const f = p.fields;
  for (const key in f) {
    if (key === '') continue;
    const v = f[key];
    let enc: string;
    if (typeof v === 'number') {
      // v - v is 0 for finite numbers and NaN for NaN and ±Infinity.
      if (v - v !== 0) {
        stats.nonFiniteFields++;
        continue;
      }
      enc = formatNumber(v);
    } else if (typeof v === 'string') {
      enc = quoteString(v);
    } else if (typeof v === 'boolean') {
      enc = v ? 'true' : 'false';
    } else {
      continue; // undefined/null slipped through an untyped caller: nothing to write
    }
    const k = cachedFieldKey(key);
    if (k === '') {
      fieldsDropped.inc();
      continue;
    }
    fields = fields === '' ? k + enc : `${fields},${k}${enc}`;
  }
  if (fields === '') {
    stats.droppedPoints++;
    return undefined;
  }
  const t = p.timeMs;
  if (t !== lastTime) {
    lastTime = t;
    lastTimeStr = String(Math.trunc(t));
  }
  return `${prefix} ${fields} ${lastTimeStr}`;
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

// ---- Batch encoding into bytes ---------------------------------------------------------------
// The writer's path: points → bodies of at most maxLines lines / maxBytes bytes. Lines are
// written byte by byte into one reused buffer and each body is copied out as its own Buffer (the
// UTF-8 bytes the socket sends, so no string is made and re-encoded per body), which allocates far
// less than building every line from concatenated strings (the GC was most of the encoding cost).
// The output is byte-for-byte what joining encodePoint's lines gives.

/** Cached UTF-8 bytes of the escaped field keys (`key=`). */
const fieldKeyBytes = new Map<string, Uint8Array>();

/** A buffer with room for `need` bytes after the first `used` bytes of `old` (copied). */
function grow(old: Buffer, used: number, need: number): Buffer {
  const next = Buffer.allocUnsafe(Math.max((used + need) * 2, old.length));
  old.copy(next, 0, 0, used);
  return next;
}

/** Writes s at b[q..] (room for 3 bytes per UTF-16 unit ensured by the caller); returns the end. */
function putString(b: Buffer, q: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return q + b.write(s.slice(i), q, 'utf8');
    b[q++] = c;
  }
  return q;
}

/** `escaped=` as bytes; empty for a key InfluxDB cannot store (cachedFieldKey). */
function fieldKeyBytesFor(key: string): Uint8Array {
  let b = fieldKeyBytes.get(key);
  if (b === undefined) {
    b = Buffer.from(cachedFieldKey(key), 'utf8');
    if (fieldKeyBytes.size >= CACHE_MAX) fieldKeyBytes.clear();
    fieldKeyBytes.set(key, b);
  }
  return b;
}

function prefixBytesFor(measurement: string, tags: Record<string, string>): Uint8Array {
  const e = tagPrefix(measurement, tags);
  if (e.bytes === undefined) e.bytes = Buffer.from(e.prefix, 'utf8');
  return e.bytes;
}

/** An encoded body: lines joined by newlines, as UTF-8 bytes (no trailing newline). */
export interface EncodedSegment {
  body: Buffer;
  lines: number;
}

/**
 * Writes the quoted, escaped string field value `"…"` at b[q..] (room for 2 + 2·3 bytes per
 * UTF-16 unit ensured by the caller); returns the end. Same bytes as putString(quoteString(s)).
 */
function putQuoted(b: Buffer, q: number, s: string): number {
  const n = s.length;
  b[q++] = 34;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      // Rare (non-ASCII text): the general path for the rest of the string.
      q = putString(b, q, s.slice(i).replace(/["\\]/g, '\\$&'));
      b[q++] = 34;
      return q;
    }
    if (c === 34 || c === 92) b[q++] = 92;
    b[q++] = c;
  }
  b[q++] = 34;
  return q;
}

/**
 * Encodes points into bodies of at most `maxLines` lines, cutting before a line that would take a
 * body's size (each line's length + 1) to `maxBytes` or beyond; a line longer than that gets a body
 * of its own. Unencodable points and non-finite fields are left out and counted in `stats`, as by
 * encodePoint, and the bodies are exactly encodePoint's lines joined by newlines.
 *
 * Points can be added in pieces (`add` per Kafka message, as the processor runtime does): each
 * piece's Point objects can then die young instead of living until the whole batch is encoded,
 * which is most of the GC cost. `add` and `finish` give the same bodies as one encodeSegments call
 * over all the points. One encoder is one body in progress at a time: `finish` before reusing it.
 */
export class SegmentEncoder {
  /** Where bodies are copied to: recycled memory when the owner gives bodies back (body-pool.ts). */
  constructor(private readonly bodies?: BodyPool) {}

  /** Grows as needed, never shrinks; reused across bodies. */
  private buf: Buffer = Buffer.allocUnsafe(1 << 16);
  private out: EncodedSegment[] = [];
  private stats: EncodeStats = newEncodeStats();
  private maxLines = 5000;
  private maxBytes = 8 * 1024 * 1024;
  /** Bytes of the body in progress in buf (its lines so far, newline-separated). */
  private q = 0;
  private segLines = 0;
  private segBytes = 0;
  private total = 0;

  /** Starts a batch: bodies go to `out`, counts of what could not be encoded to `stats`. */
  begin(maxLines: number, maxBytes: number, out: EncodedSegment[], stats: EncodeStats): this {
    this.maxLines = maxLines;
    this.maxBytes = maxBytes;
    this.out = out;
    this.stats = stats;
    this.q = 0;
    this.segLines = 0;
    this.segBytes = 0;
    this.total = 0;
    return this;
  }

  /** Encodes points into the batch; returns the number of lines added. */
  add(points: readonly Point[]): number {
    let total = 0;
    let segLines = this.segLines;
    let segBytes = this.segBytes;
    let b = this.buf;
    let q = this.q;
    for (const p of points) {
      // !(|t| ≤ max) is also true for NaN.
      if (!p.measurement || !(Math.abs(p.timeMs) <= MAX_TIME_MS)) {
        this.stats.droppedPoints++;
        continue;
      }
      const pb = prefixBytesFor(p.measurement, p.tags);
      if (pb.length === 0) {
        this.stats.droppedPoints++;
        continue;
      }
      if (q + pb.length + 1 > b.length) b = grow(b, q, pb.length + 1);
      const lineStart = q;
      if (segLines > 0) b[q++] = 10; // \n between lines
      const textStart = q;
      if (pb.length > 32) {
        b.set(pb, q);
        q += pb.length;
      } else {
        for (let i = 0; i < pb.length; i++) b[q++] = pb[i] as number;
      }
      const fieldsStart = q;
      let sep = 32; // ' ' before the first field, ',' between fields
      const f = p.fields;
      for (const key in f) {
        if (key === '') continue;
        const v = f[key];
        // Room the value may need after `key=`: its longest form.
        let need: number;
        if (typeof v === 'number') {
          // v - v is 0 for finite numbers, NaN for NaN and ±Infinity.
          if (v - v !== 0) {
            this.stats.nonFiniteFields++;
            continue;
          }
          need = MAX_NUMBER_BYTES;
        } else if (typeof v === 'string') {
          need = 2 + v.length * 6; // quoted, every UTF-16 unit escaped or 3 UTF-8 bytes
        } else if (typeof v === 'boolean') {
          need = 5;
        } else {
          continue; // undefined/null slipped through an untyped caller: nothing to write
        }
        const kb = fieldKeyBytesFor(key);
        if (kb.length === 0) {
          fieldsDropped.inc();
          continue;
        }
        if (q + kb.length + 1 + need > b.length) b = grow(b, q, kb.length + 1 + need);
        b[q++] = sep;
        sep = 44;
        b.set(kb, q); // faster than a byte loop even for short keys (encode −0.6 µs/entity-sample)
        q += kb.length;
        // Numbers and strings go straight into the buffer (no intermediate strings).
        if (typeof v === 'number') q = putNumber(b, q, v);
        else if (typeof v === 'string') q = putQuoted(b, q, v);
        else q = putString(b, q, v ? 'true' : 'false');
      }
      if (q === fieldsStart) {
        q = lineStart;
        this.stats.droppedPoints++;
        continue;
      }
      const t = p.timeMs;
      if (t !== lastTime) {
        lastTime = t;
        lastTimeStr = String(Math.trunc(t));
      }
      if (lastTimeStr !== lastTimeBytesOf) {
        lastTimeBytes = Buffer.from(` ${lastTimeStr}`, 'latin1'); // digits (and '-'): ASCII
        lastTimeBytesOf = lastTimeStr;
      }
      if (q + lastTimeBytes.length > b.length) b = grow(b, q, lastTimeBytes.length);
      b.set(lastTimeBytes, q);
      q += lastTimeBytes.length;
      const lineBytes = q - textStart;
      if (segLines > 0 && (segLines >= this.maxLines || segBytes + lineBytes >= this.maxBytes)) {
        this.out.push({ body: this.body(b, lineStart), lines: segLines });
        // The next body starts with this line: move it to the front of the buffer.
        b.copy(b, 0, textStart, q);
        q -= textStart;
        segLines = 0;
        segBytes = 0;
      }
      segLines++;
      segBytes += lineBytes + 1;
      total++;
    }
    this.buf = b;
    this.q = q;
    this.segLines = segLines;
    this.segBytes = segBytes;
    this.total += total;
    return total;
  }

  /** A copy of b[0..end) that owns its bytes (b is the reused encode buffer). */
  private body(b: Buffer, end: number): Buffer {
    const out = this.bodies ? this.bodies.take(end) : Buffer.allocUnsafe(end);
    b.copy(out, 0, 0, end);
    return out;
  }

  /** Appends the last body and returns the number of lines of the batch. */
  finish(): number {
    if (this.segLines > 0) this.out.push({ body: this.body(this.buf, this.q), lines: this.segLines });
    this.q = 0;
    this.segLines = 0;
    this.segBytes = 0;
    this.out = [];
    return this.total;
  }
}

/** Reused by encodeSegments (synchronous: one batch at a time). */
const shared = new SegmentEncoder();

/**
 * Encodes points into bodies appended to `out` (rules: SegmentEncoder); returns the number of
 * lines encoded.
 */
export function encodeSegments(
  points: readonly Point[],
  maxLines: number,
  maxBytes: number,
  out: EncodedSegment[],
  stats: EncodeStats = newEncodeStats(),
): number {
  shared.begin(maxLines, maxBytes, out, stats).add(points);
  return shared.finish();
}
