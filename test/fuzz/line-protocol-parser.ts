// A strict line-protocol parser for the tests: the rules of InfluxDB 1.8's models/points.go
// (scanLine, scanKey, scanMeasurement, scanTagsKey/Value, scanFields, scanNumber, scanBoolean,
// scanTime, walkTags/walkFields) and the unescaping it applies when the point is read back
// (unescapeTag for tag keys and values, escape.Unescape for the measurement and field keys,
// unescapeStringField for string values). It works on bytes, as influxd does, and throws where
// influxd refuses a line (or silently stores something else: leading whitespace, a "time" tag).
export interface ParsedPoint {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | string | boolean>;
  time: string;
}

export class LineProtocolError extends Error {}

/** InfluxDB's limit on measurement + tags, and on that + 4 + a field key (models.MaxKeyLength). */
export const MAX_KEY_LENGTH = 65535;

const BS = 0x5c;
const COMMA = 0x2c;
const SPACE = 0x20;
const EQ = 0x3d;
const QUOTE = 0x22;
const NL = 0x0a;

function fail(msg: string, buf: Buffer): never {
  throw new LineProtocolError(`${msg}: ${JSON.stringify(buf.toString('utf8').slice(0, 200))}`);
}

/** Splits a request body into lines the way influxd's scanLine does (a quoted newline stays). */
export function splitBody(body: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let i = 0;
  while (i < body.length) {
    const start = i;
    let quoted = false;
    let fields = false;
    let equals = 0;
    let commas = 0;
    while (i < body.length) {
      const c = body[i]!;
      if (c === BS && i + 2 < body.length) {
        i += 2;
        continue;
      }
      if (c === SPACE) fields = true;
      if (fields) {
        if (!quoted && c === EQ) {
          i++;
          equals++;
          continue;
        }
        if (!quoted && c === COMMA) {
          i++;
          commas++;
          continue;
        }
        if (c === QUOTE && equals > commas) {
          i++;
          quoted = !quoted;
          continue;
        }
      }
      if (c === NL && !quoted) break;
      i++;
    }
    lines.push(body.subarray(start, i));
    i++;
  }
  return lines;
}

export function parseBody(body: Buffer): ParsedPoint[] {
  return splitBody(body).map(parseLine);
}

export function parseLine(input: Buffer | string): ParsedPoint {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  if (buf.length === 0) fail('empty line', buf);
  const c0 = buf[0]!;
  if (c0 === SPACE || c0 === 0x09 || c0 === 0) fail('leading whitespace (influxd skips it)', buf);
  if (c0 === 0x23) fail('a comment line', buf);
  // scanMeasurement
  if (c0 === COMMA) fail('missing measurement', buf);
  let i = 0;
  let state: 'tags' | 'fields';
  for (;;) {
    i++;
    if (i >= buf.length) fail('missing fields', buf);
    if (buf[i - 1] === BS) continue;
    if (buf[i] === COMMA) {
      state = 'tags';
      break;
    }
    if (buf[i] === SPACE) {
      state = 'fields';
      break;
    }
  }
  const measurementRaw = buf.subarray(0, i);
  const tagRaw: [Buffer, Buffer][] = [];
  if (state === 'tags') {
    i++;
    for (;;) {
      // scanTagsKey
      const ks = i;
      if (i >= buf.length || buf[i] === SPACE || buf[i] === COMMA || buf[i] === EQ)
        fail('missing tag key', buf);
      for (;;) {
        i++;
        if (i >= buf.length || ((buf[i] === SPACE || buf[i] === COMMA) && buf[i - 1] !== BS)) {
          fail('missing tag value', buf);
        }
        if (buf[i] === EQ && buf[i - 1] !== BS) break;
      }
      const key = buf.subarray(ks, i);
      i++;
      // scanTagsValue
      const vs = i;
      if (i >= buf.length || buf[i] === COMMA || buf[i] === SPACE) fail('missing tag value', buf);
      let next: 'tag' | 'fields';
      for (;;) {
        i++;
        if (i >= buf.length) fail('missing fields', buf);
        if (buf[i] === EQ && buf[i - 1] !== BS) fail('invalid tag format', buf);
        if (buf[i] === COMMA && buf[i - 1] !== BS) {
          next = 'tag';
          break;
        }
        if (buf[i] === SPACE && buf[i - 1] !== BS) {
          next = 'fields';
          break;
        }
      }
      tagRaw.push([key, buf.subarray(vs, i)]);
      if (next === 'fields') break;
      i++;
    }
  }
  const keyEnd = i;
  if (keyEnd > MAX_KEY_LENGTH) fail(`max key length exceeded: ${keyEnd}`, buf);
  // scanFields
  i++;
  if (buf[i] === SPACE || buf[i] === 0x09 || buf[i] === 0)
    fail('whitespace before the fields (influxd skips it)', buf);
  const fieldsStart = i;
  let quoted = false;
  let equals = 0;
  let commas = 0;
  for (;;) {
    if (i >= buf.length) break;
    const c = buf[i]!;
    if (c === BS && i + 1 < buf.length) {
      i += 2;
      continue;
    }
    if (c === QUOTE && equals > commas) {
      quoted = !quoted;
      i++;
      continue;
    }
    if (c === EQ && !quoted) {
      equals++;
      if (buf[i - 1] === SPACE && buf[i - 2] !== BS) fail('missing field key', buf);
      if (buf[i - 1] === COMMA && buf[i - 2] !== BS) fail('missing field key', buf);
      if (i === fieldsStart) fail('missing field key', buf);
      if (i + 1 >= buf.length) fail('missing field value', buf);
      const n = buf[i + 1]!;
      if (n === COMMA || n === SPACE) fail('missing field value', buf);
      if ((n >= 0x30 && n <= 0x39) || n === 0x2e || n === 0x2d || n === 0x4e || n === 0x6e) {
        i = scanNumber(buf, i + 1);
        continue;
      }
      if (n !== QUOTE) {
        i = scanBoolean(buf, i + 1);
        continue;
      }
    }
    if (c === COMMA && !quoted) commas++;
    if (c === SPACE && !quoted) break;
    i++;
  }
  if (quoted) fail('unbalanced quotes', buf);
  if (equals === 0 || commas !== equals - 1) fail('invalid field format', buf);
  const fieldsRaw = buf.subarray(fieldsStart, i);
  // walkFields: key up to the first '=' not preceded by a backslash (one byte back).
  const fields: Record<string, number | string | boolean> = {};
  let rest = fieldsRaw;
  while (rest.length > 0) {
    let k = 0;
    while (k < rest.length && !(rest[k] === EQ && (k === 0 || rest[k - 1] !== BS))) k++;
    if (k > rest.length - 2) fail(`invalid value: field-key=${rest.subarray(0, k)}`, buf);
    const keyRaw = rest.subarray(0, k);
    if (keyEnd + 4 + keyRaw.length > MAX_KEY_LENGTH)
      fail('max key length exceeded (series key + field)', buf);
    rest = rest.subarray(k + 1);
    // scanFieldValue
    let v = 0;
    let q = false;
    while (v < rest.length) {
      if (rest[v] === BS && v + 1 < rest.length && (rest[v + 1] === QUOTE || rest[v + 1] === BS)) {
        v += 2;
        continue;
      }
      if (rest[v] === QUOTE) {
        v++;
        q = !q;
        continue;
      }
      if (rest[v] === COMMA && !q) break;
      v++;
    }
    const valueRaw = rest.subarray(0, v);
    rest = rest.subarray(v);
    if (rest.length > 0) rest = rest.subarray(1);
    const key = unescapeField(keyRaw).toString('utf8');
    if (key === '') fail('empty field key', buf);
    // A key twice: influxd accepts the line, the last value wins (point.Fields()).
    fields[key] = fieldValue(valueRaw, buf);
  }
  // scanTime
  i++;
  const ts = i;
  while (i < buf.length && buf[i] !== SPACE && buf[i] !== NL) {
    if (i === ts && buf[i] === 0x2d) {
      i++;
      continue;
    }
    if (buf[i]! < 0x30 || buf[i]! > 0x39) fail('bad timestamp', buf);
    i++;
  }
  for (; i < buf.length; i++) if (buf[i] !== SPACE) fail('point is invalid (after the timestamp)', buf);
  const time = buf.subarray(ts, i).toString('latin1').trim();
  if (!/^-?\d+$/.test(time)) fail('no timestamp', buf);

  const tags: Record<string, string> = {};
  let prev: Buffer | undefined;
  for (const [k, v] of tagRaw) {
    if (prev !== undefined && Buffer.compare(prev, k) === 0) fail('duplicate tags', buf);
    prev = k;
    const key = unescapeTag(k).toString('utf8');
    if (key in tags) fail(`duplicate tag ${key}`, buf);
    if (key === 'time') fail('invalid tag key "time" (influxd drops the point)', buf);
    tags[key] = unescapeTag(v).toString('utf8');
  }
  return { measurement: unescapeField(measurementRaw).toString('utf8'), tags, fields, time };
}

function scanNumber(buf: Buffer, start: number): number {
  let i = start;
  if (buf[i] === 0x2d) {
    i++;
    if (i === buf.length) fail('invalid number', buf);
  }
  let decimal = false;
  let scientific = false;
  let isInt = false;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === COMMA || c === SPACE) break;
    if (c === 0x69 && i > start && !isInt) {
      isInt = true;
      continue;
    }
    if (c === 0x2e) {
      if (decimal) fail('invalid number', buf);
      decimal = true;
    }
    if (i > start && (c === 0x65 || c === 0x45)) {
      scientific = true;
      continue;
    }
    if ((c === 0x2b || c === 0x2d) && (buf[i - 1] === 0x65 || buf[i - 1] === 0x45)) continue;
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2e)) fail('invalid number', buf);
  }
  if (isInt && (decimal || scientific)) fail('invalid number', buf);
  if (isInt && buf[i - 1] !== 0x69) fail('invalid number', buf);
  const text = buf.subarray(start, isInt ? i - 1 : i).toString('latin1');
  if (!/\d/.test(text) || !Number.isFinite(Number(text))) fail('invalid float', buf);
  return i;
}

function scanBoolean(buf: Buffer, start: number): number {
  let i = start;
  while (i < buf.length && buf[i] !== COMMA && buf[i] !== SPACE) i++;
  const text = buf.subarray(start, i).toString('latin1');
  const ok = ['t', 'T', 'true', 'True', 'TRUE', 'f', 'F', 'false', 'False', 'FALSE'].includes(text);
  if (!ok) fail(`invalid boolean ${JSON.stringify(text)}`, buf);
  return i;
}

function fieldValue(raw: Buffer, line: Buffer): number | string | boolean {
  if (raw[0] === QUOTE) {
    if (raw.length < 2 || raw[raw.length - 1] !== QUOTE) fail('bad string field', line);
    const inner = raw.subarray(1, raw.length - 1);
    const out: number[] = [];
    for (let i = 0; i < inner.length; i++) {
      if (inner[i] === BS && i + 1 < inner.length && (inner[i + 1] === BS || inner[i + 1] === QUOTE)) {
        out.push(inner[i + 1]!);
        i++;
      } else out.push(inner[i]!);
    }
    return Buffer.from(out).toString('utf8');
  }
  const text = raw.toString('latin1');
  if (/^[tT]/.test(text)) return true;
  if (/^[fF]/.test(text)) return false;
  return Number(text.endsWith('i') ? text.slice(0, -1) : text);
}

/** unescapeTag: `\,` `\ ` `\=` replaced in turn (bytes.Replace). */
function unescapeTag(b: Buffer): Buffer {
  if (!b.includes(BS)) return b;
  let s = b.toString('latin1');
  for (const c of [',', ' ', '=']) if (s.includes(c)) s = s.split(`\\${c}`).join(c);
  return Buffer.from(s, 'latin1');
}

/** escape.Unescape: `\,` `\"` `\ ` `\=` left to right (measurement names, field keys). */
function unescapeField(b: Buffer): Buffer {
  if (!b.includes(BS)) return b;
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const n = b[i + 1];
    if (b[i] === BS && (n === COMMA || n === QUOTE || n === SPACE || n === EQ)) {
      out.push(n);
      i++;
    } else out.push(b[i]!);
  }
  return Buffer.from(out);
}
