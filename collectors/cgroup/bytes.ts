// Byte-level fast paths of the cgroup parsers, run on the read Buffer (fileio.ts readShared) so a
// tick allocates no string per file. Each one handles the regular kernel format only and returns
// false on anything else (garbage, a missing key, an odd layout) without having written anything
// it would not have written anyway; the caller then runs the string parser on the same bytes,
// which produces the values and the problem lines. Results, key order included, are exactly those
// of the string parsers (parsers.ts, procfs/parsers.ts parsePressure); test/unit/cgroup-bytes.test.ts
// compares both on the captured trees and on malformed input.
import type { KeyedSpec } from './parsers.ts';

const NL = 10;
const SPACE = 32;

/** Index of the next '\n' at or after pos, or len: a JS loop (Buffer#indexOf is a C++ call per line). */
function lineEnd(buf: Buffer, pos: number, len: number): number {
  while (pos < len && buf[pos] !== NL) pos++;
  return pos;
}

/** A KeyedSpec list flattened for byte matching: one slot per wanted key, in the string parser's order. */
export interface KeyedTable {
  keys: Buffer[];
  names: string[];
  factors: number[];
  /** Index of the spec (record) each key goes into. */
  spec: number[];
  /** Per-read scratch. */
  found: Uint8Array;
  values: Float64Array;
  /** First bytes of the keys. */
  first: number[];
}

export function keyedTable(specs: readonly Pick<KeyedSpec, 'wanted' | 'factor'>[]): KeyedTable {
  const t: KeyedTable = {
    keys: [],
    names: [],
    factors: [],
    spec: [],
    found: new Uint8Array(0),
    values: new Float64Array(0),
    first: [],
  };
  specs.forEach((s, i) => {
    for (const key in s.wanted) {
      t.keys.push(Buffer.from(key, 'latin1'));
      t.names.push(s.wanted[key]!);
      t.factors.push(s.factor?.[key] ?? 1);
      t.spec.push(i);
    }
  });
  t.first = [...new Set(t.keys.map((k) => k[0]!))];
  t.found = new Uint8Array(t.keys.length);
  t.values = new Float64Array(t.keys.length);
  return t;
}

/**
 * Digits [start, end) as a number, exactly as Number() would read them: accumulated while exact
 * (≤ 15 digits), else Number() of the latin1 slice (rare: huge counters). -1 when not all digits
 * or beyond 2^64 (the string parsers refuse it: MAX_KERNEL_VALUE).
 */
function digits(buf: Buffer, start: number, end: number): number {
  if (end <= start) return -1;
  if (end - start > 15) {
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c < 48 || c > 57) return -1;
    }
    const v = Number(buf.toString('latin1', start, end));
    return v <= 2 ** 64 ? v : -1;
  }
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/** parseFlatKeyed on bytes: "key value" lines, every value plain digits, at least one key found. */
export function flatKeyedBytes(
  buf: Buffer,
  len: number,
  t: KeyedTable,
  into0: Record<string, number>,
  into1?: Record<string, number>,
): boolean {
  const { keys, found, values } = t;
  const n = keys.length;
  found.fill(0);
  let left = n;
  let pos = 0;
  const first = t.first;
  while (pos < len && left > 0) {
    if (first.indexOf(buf[pos]!) === -1) {
      // no wanted key starts with this byte: skip the line
      pos = lineEnd(buf, pos, len) + 1;
      continue;
    }
    let sp = pos;
    while (sp < len && buf[sp] !== SPACE && buf[sp] !== NL) sp++;
    const end = lineEnd(buf, sp, len);
    if (sp < end) {
      const klen = sp - pos;
      for (let j = 0; j < n; j++) {
        if (found[j]) continue;
        const k = keys[j]!;
        if (k.length !== klen || k[0] !== buf[pos]) continue;
        let same = true;
        for (let x = 1; x < klen; x++) {
          if (k[x] !== buf[pos + x]) {
            same = false;
            break;
          }
        }
        if (!same) continue;
        const v = digits(buf, sp + 1, end);
        if (v < 0) return false; // the string parser reports it
        found[j] = 1;
        values[j] = v;
        left--;
        break;
      }
    }
    pos = end + 1;
  }
  if (left === n) return false; // none found: a problem, worded by the string parser
  for (let j = 0; j < n; j++) {
    if (!found[j]) continue;
    const into = t.spec[j] === 0 ? into0 : into1;
    if (!into) return false;
    into[t.names[j]!] = values[j]! * t.factors[j]!;
  }
  return true;
}

/** parseSingle on bytes: optional '-', digits, optional trailing newline; undefined when not that (ask parseSingle). */
export function singleBytes(buf: Buffer, len: number): number | undefined {
  let end = len;
  if (end > 0 && buf[end - 1] === NL) end--;
  if (end > 0 && buf[0] === 45 /* - */) {
    const v = digits(buf, 1, end);
    return v < 0 ? undefined : -v;
  }
  const v = digits(buf, 0, end);
  return v < 0 ? undefined : v;
}

const SOME = Buffer.from('some ', 'latin1');
const FULL = Buffer.from('full ', 'latin1');
const TOTAL = Buffer.from('total=', 'latin1');

function startsWithAt(buf: Buffer, pos: number, end: number, what: Buffer): boolean {
  if (end - pos < what.length) return false;
  for (let i = 0; i < what.length; i++) if (buf[pos + i] !== what[i]) return false;
  return true;
}

/**
 * parsePressure on bytes for a regular PSI file: one or two lines "some|full avg10=… total=N", of
 * which only total= is read. `names` are PSI_NAMES[resource]: [some total, full total].
 */
export function pressureBytes(
  buf: Buffer,
  len: number,
  names: readonly [string, string],
  counters: Record<string, number>,
): boolean {
  let pos = 0;
  let lines = 0;
  let kind0 = -1;
  let kind1 = -1;
  let tot0 = 0;
  let tot1 = 0;
  while (pos < len) {
    const end = lineEnd(buf, pos, len);
    let kind: number;
    if (startsWithAt(buf, pos, end, SOME)) kind = 0;
    else if (startsWithAt(buf, pos, end, FULL)) kind = 1;
    else return false;
    // total=: the first "total=" of the line, as parsePressure's indexOf finds it (a " total="
    // further on must not win over a garbled "xtotal=" that the string parser would read).
    let t = -1;
    for (let j = pos + SOME.length; j + TOTAL.length <= end; j++) {
      if (buf[j] === 116 /* t */ && startsWithAt(buf, j, end, TOTAL)) {
        t = j + TOTAL.length;
        break;
      }
    }
    if (t === -1 || t === end) return false;
    let total = 0;
    for (let j = t; j < end; j++) {
      const c = buf[j]!;
      if (c < 48 || c > 57) return false;
      total = total * 10 + (c - 48);
    }
    if (total > 2 ** 64) return false; // beyond u64: the string parser refuses it
    if (lines === 0) {
      kind0 = kind;
      tot0 = total;
    } else if (lines === 1) {
      kind1 = kind;
      tot1 = total;
    } else return false;
    lines++;
    pos = end + 1;
  }
  if (lines === 0) return false;
  counters[names[kind0]!] = tot0;
  if (lines === 2) counters[names[kind1]!] = tot1;
  return true;
}

/** "MAJ:MIN" strings by maj * 2^20 + min, so a device line needs no substring. */
const devStrings = new Map<number, string>();

const OPS = [Buffer.from('Read'), Buffer.from('Write'), Buffer.from('Discard')];
const TOTAL_LINE = Buffer.from('Total ', 'latin1');

/**
 * parseBlkioRw on bytes: "MAJ:MIN Op N" lines (Op Read/Write/Discard are kept, Sync/Async/Total
 * skipped) and the final "Total N". `names` = [Read, Write, Discard] metric names. Writes as it goes,
 * in the string parser's order: when it gives up midway, the string parser rewrites the same values
 * in the same order and goes on.
 */
export function blkioBytes(
  buf: Buffer,
  len: number,
  names: readonly [string, string, string],
  into: Record<string, Record<string, number>>,
): boolean {
  let pos = 0;
  while (pos < len) {
    const end = lineEnd(buf, pos, len);
    if (end === pos) {
      pos = end + 1;
      continue;
    }
    if (startsWithAt(buf, pos, end, TOTAL_LINE)) {
      if (digits(buf, pos + TOTAL_LINE.length, end) < 0) return false;
      pos = end + 1;
      continue;
    }
    // MAJ:MIN
    let i = pos;
    let maj = 0;
    for (; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++) maj = maj * 10 + (buf[i]! - 48);
    // A leading zero ("0254:0") would share the cached string of "254:0": the string parser decides.
    if (i === pos || i - pos > 7 || buf[i] !== 58 /* : */ || (buf[pos] === 48 && i - pos > 1)) return false;
    const minStart = ++i;
    let min = 0;
    for (; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++) min = min * 10 + (buf[i]! - 48);
    if (i === minStart || i - minStart > 7 || buf[i] !== SPACE || min >= 2 ** 20) return false;
    if (buf[minStart] === 48 && i - minStart > 1) return false;
    const devEnd = i;
    const opStart = ++i;
    while (i < end && buf[i] !== SPACE) i++;
    if (i === end) return false;
    const opEnd = i;
    const v = digits(buf, i + 1, end);
    if (v < 0) return false;
    let op = -1;
    for (let k = 0; k < 3; k++) {
      const o = OPS[k]!;
      if (opEnd - opStart === o.length && startsWithAt(buf, opStart, opEnd, o)) {
        op = k;
        break;
      }
    }
    if (op >= 0) {
      const id = maj * 2 ** 20 + min;
      let dev = devStrings.get(id);
      if (dev === undefined) {
        dev = buf.toString('latin1', pos, devEnd);
        if (devStrings.size > 4096) devStrings.clear();
        devStrings.set(id, dev);
      }
      const counters = into[dev] ?? {};
      counters[names[op]!] = v;
      into[dev] = counters;
    }
    pos = end + 1;
  }
  return true;
}
