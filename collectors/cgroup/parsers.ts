// Pure parsers for cgroup v1 and v2 files. They return the names of the `container` catalogue
// (metrics.ts), through the key tables of files.ts, and push one line per malformed part to `problems`; they never throw.
// PSI files (*.pressure) use the host's parsePressure (same format).
import { MAX_KERNEL_VALUE } from '../procfs/parsers.ts';
import {
  fieldFactors,
  fieldNames,
  V1_BLKIO_SERVICE_BYTES_FILE,
  V1_BLKIO_SERVICED_FILE,
  V1_CPU_STAT_FILE,
  V1_CPUACCT_STAT_FILE,
  V1_MEMORY_STAT_FILE,
  V2_CPU_STAT_FILE,
  V2_IO_STAT_FILE,
  V2_MEMORY_STAT_FILE,
} from './files.ts';

/** One table of wanted keys → metric names, the record they go into and optional unit factors. */
export interface KeyedSpec {
  wanted: Readonly<Record<string, string>>;
  into: Record<string, number>;
  factor?: Readonly<Record<string, number>>;
}

/**
 * "key value" lines (cpu.stat, memory.stat, cpuacct.stat). Looks each wanted key up with indexOf
 * instead of splitting every line: memory.stat has ~40-80 lines and we want 2-4 of them. Returns how
 * many keys matched; a file with none of the wanted keys, or a wanted key whose value is not a
 * number, is a problem.
 */
export function parseFlatKeyed(
  text: string,
  file: string,
  specs: readonly KeyedSpec[],
  problems: string[],
): number {
  let found = 0;
  let wantedCount = 0;
  for (const spec of specs) {
    for (const key in spec.wanted) {
      wantedCount++;
      const at = findKey(text, key);
      if (at === -1) continue;
      const valueStart = at + key.length + 1;
      let valueEnd = text.indexOf('\n', valueStart);
      if (valueEnd === -1) valueEnd = text.length;
      const v = Number(text.slice(valueStart, valueEnd));
      // ≤ u64: beyond, the value is garbage and factor (× 10_000 for cpuacct) could make it Infinity.
      if (v >= 0 && v <= MAX_KERNEL_VALUE && valueEnd > valueStart) {
        spec.into[spec.wanted[key]!] = v * (spec.factor?.[key] ?? 1);
        found++;
      } else {
        problems.push(`${file} line ${lineNumber(text, at)}: ${key}: not a number`);
      }
    }
  }
  if (found === 0 && wantedCount > 0 && problems.length === 0) {
    problems.push(`${file}: none of ${specs.flatMap((s) => Object.keys(s.wanted)).join(', ')} found`);
  }
  return found;
}

/** Index of the line "key value" in text, or -1. */
function findKey(text: string, key: string): number {
  if (text.startsWith(key) && text.charCodeAt(key.length) === 32) return 0;
  let from = 0;
  for (;;) {
    const i = text.indexOf(key, from);
    if (i === -1) return -1;
    if (text.charCodeAt(i - 1) === 10 && text.charCodeAt(i + key.length) === 32) return i;
    from = i + 1;
  }
}

function lineNumber(text: string, pos: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < pos; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** A file holding one number (cpuacct.usage, memory.current, memory.usage_in_bytes). NaN when not. */
export function parseSingle(text: string): number {
  const t = text.trim();
  if (t === '') return Number.NaN;
  const v = Number(t);
  return Number.isFinite(v) ? v : Number.NaN;
}

/** v1 memory.limit_in_bytes: PAGE_COUNTER_MAX × page size (≈ 2^63) means unlimited → undefined. */
export const V1_UNLIMITED_FROM = 2 ** 62;

/** v2 memory.max: "max" → undefined (unlimited). */
export function parseMemoryMax(text: string): number | undefined {
  const t = text.trim();
  if (t === 'max') return undefined;
  const v = Number(t);
  return Number.isFinite(v) && v < V1_UNLIMITED_FROM ? v : undefined;
}

export interface DeviceCounters {
  [majMin: string]: Record<string, number>;
}

/** io.stat key → metric name (files.ts). */
const IO_STAT_KEYS = fieldNames(V2_IO_STAT_FILE);
const BLKIO_OPS = fieldNames(V1_BLKIO_SERVICED_FILE);
const BLKIO_BYTES = fieldNames(V1_BLKIO_SERVICE_BYTES_FILE);

/** v2 io.stat: "MAJ:MIN rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…" per device. */
export function parseIoStat(text: string, problems: string[], file = 'io.stat'): DeviceCounters {
  const out: DeviceCounters = {};
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line === '') continue;
    const fields = line.split(' ');
    const dev = fields[0]!;
    if (!dev.includes(':')) {
      problems.push(`${file} line ${lineNo}: expected "MAJ:MIN key=value…"`);
      continue;
    }
    const counters: Record<string, number> = {};
    for (let i = 1; i < fields.length; i++) {
      const f = fields[i]!;
      const eq = f.indexOf('=');
      if (eq === -1) continue;
      const name = IO_STAT_KEYS[f.slice(0, eq)];
      if (!name) continue; // cost.*, depth, avg_lat: io controller extras, not on the wire
      const v = Number(f.slice(eq + 1));
      if (Number.isFinite(v) && v >= 0) counters[name] = v;
      else problems.push(`${file} line ${lineNo}: ${f}: not a number`);
    }
    out[dev] = counters;
  }
  return out;
}

/**
 * v1 blkio.throttle.io_serviced / io_service_bytes: "MAJ:MIN Read N", "… Write N", "… Discard N",
 * and a final "Total N". `kind` picks the metric names (ops or bytes).
 */
export function parseBlkioRw(
  text: string,
  kind: 'ops' | 'bytes',
  into: DeviceCounters,
  problems: string[],
  file: string,
): void {
  const names = kind === 'ops' ? BLKIO_OPS : BLKIO_BYTES;
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line === '') continue;
    const fields = line.split(' ');
    if (fields.length === 2 && fields[0] === 'Total') continue;
    if (fields.length !== 3) {
      problems.push(`${file} line ${lineNo}: expected "MAJ:MIN Op N", got ${fields.length} fields`);
      continue;
    }
    const name = names[fields[1]!];
    if (!name) continue; // Sync, Async, Total
    const v = Number(fields[2]);
    if (!Number.isFinite(v) || v < 0 || !fields[0]!.includes(':')) {
      problems.push(`${file} line ${lineNo}: not "MAJ:MIN Op N"`);
      continue;
    }
    const dev = fields[0]!;
    const counters = into[dev] ?? {};
    counters[name] = v;
    into[dev] = counters;
  }
}

/** DEVNAME from /sys/dev/block/MAJ:MIN/uevent. */
export function devnameFromUevent(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('DEVNAME=')) return line.slice(8).trim() || undefined;
  }
  return undefined;
}

// -------------------------------------------------------------------------------------------
// Key tables: views of files.ts, for the string parsers and tests

export const V2_CPU_STAT = fieldNames(V2_CPU_STAT_FILE);
export const V1_CPU_STAT = fieldNames(V1_CPU_STAT_FILE);
export const V1_CPU_STAT_FACTOR = fieldFactors(V1_CPU_STAT_FILE);
export const V1_CPUACCT_STAT = fieldNames(V1_CPUACCT_STAT_FILE);
export const V1_CPUACCT_FACTOR = fieldFactors(V1_CPUACCT_STAT_FILE);
export const V2_MEMORY_STAT_COUNTERS = fieldNames(V2_MEMORY_STAT_FILE, 'counter');
export const V2_MEMORY_STAT_GAUGES = fieldNames(V2_MEMORY_STAT_FILE, 'gauge');
export const V1_MEMORY_STAT_COUNTERS = fieldNames(V1_MEMORY_STAT_FILE, 'counter');
export const V1_MEMORY_STAT_GAUGES = fieldNames(V1_MEMORY_STAT_FILE, 'gauge');
