// Pure parsers for the /proc files of a Linux machine. The host collector runs them on the host's
// /proc every tick; the guest collector runs them on the files an in-guest agent ships; the cgroup
// and vm collectors reuse the /proc/net/dev, PSI and number-scanning parts. They live in procfs/,
// beside the file reader and the glob matcher, because no single collector owns them. Names are
// the ones of docs/metrics.md (layer host / guest).
//
// Performance: these run every tick for every node and guest, so they scan the text with
// indexOf/charCodeAt instead of regexes and split(): no per-line arrays, no intermediate strings
// except the keys they emit. A malformed part never throws: it adds one line to `problems` and the
// rest of the file is still used.

import {
  CONTEXT_SWITCHES,
  CPU_COUNT,
  CPU_FIELDS,
  DISK_FIELDS,
  IN_FLIGHT,
  INTERRUPTS,
  MEMORY_AVAILABLE,
  MEMORY_FREE,
  MEMORY_TOTAL,
  NETDEV_FIELDS,
  PROCESSES_FORKED,
  PROCS_BLOCKED,
  PROCS_RUNNING,
  PSI,
  type PsiResource,
  VMSTAT_KEYS,
} from '../host/metrics.ts';

export interface ProcFiles {
  stat?: string;
  vmstat?: string;
  meminfo?: string;
  diskstats?: string;
  netdev?: string;
  pressure?: { cpu?: string; io?: string; memory?: string };
}

export interface ProcSampleOptions {
  /** Which /proc/diskstats devices to report. Default: `defaultIncludeDisk` (name heuristics). */
  includeDisk?: (name: string) => boolean;
  /** Which /proc/net/dev interfaces to report. Default: all but `lo`. */
  includeInterface?: (name: string) => boolean;
}

export interface InstanceParts {
  counters: Record<string, number>;
  gauges?: Record<string, number>;
}

export interface ProcSampleParts {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  devices: Record<string, InstanceParts>;
  interfaces: Record<string, InstanceParts>;
  /** One line per malformed or missing part, e.g. "diskstats line 3: expected ≥14 fields, got 5". */
  problems: string[];
}

/** USER_HZ is 100 on every Linux architecture strata supports (it is an ABI constant, not HZ). */
export const USER_HZ = 100;
const USEC_PER_TICK = 1_000_000 / USER_HZ;

// Wire names come from the /proc catalogue (collectors/host/metrics.ts), turned into plain string
// arrays and constants once at module load: the per-tick loops index arrays as before.
const CPU_NAMES: readonly string[] = CPU_FIELDS.map((m) => m.name);
const CONTEXT_SWITCHES_NAME = CONTEXT_SWITCHES.name;
const INTERRUPTS_NAME = INTERRUPTS.name;
const PROCESSES_FORKED_NAME = PROCESSES_FORKED.name;
const PROCS_RUNNING_NAME = PROCS_RUNNING.name;
const PROCS_BLOCKED_NAME = PROCS_BLOCKED.name;
const CPU_COUNT_NAME = CPU_COUNT.name;
const MEMORY_TOTAL_NAME = MEMORY_TOTAL.name;
const MEMORY_AVAILABLE_NAME = MEMORY_AVAILABLE.name;
const MEMORY_FREE_NAME = MEMORY_FREE.name;
const IN_FLIGHT_NAME = IN_FLIGHT.name;

// ---------------------------------------------------------------------------------------------
// Low-level scanning. `cursor` is module state so that the number scanner can return two values
// without allocating; every parser is still a pure function of its input.
let cursor = 0;

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Largest value a field can have: the kernel prints u64 counters. Anything larger (or negative) is
 * garbage, and could overflow to Infinity once scaled (ticks → µs, sectors → bytes).
 */
export const MAX_KERNEL_VALUE = 2 ** 64;

/**
 * Skips blanks from `pos` and reads a decimal field up to the next blank/newline/end. Returns NaN
 * when there is no field on this line or it is not a number in [0, MAX_KERNEL_VALUE]. Sets
 * `cursor` after the field.
 */
function scanNumber(text: string, pos: number, end: number): number {
  let i = pos;
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  const start = i;
  let value = 0;
  let plain = true;
  let fracDigits = -1; // -1: no '.' seen
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (fracDigits >= 0) fracDigits++;
    } else if (isSpace(c)) break;
    else if (c === 46 /* . */ && fracDigits < 0) fracDigits = 0;
    else plain = false; // '-', 'e', garbage: let Number() decide below
    i++;
  }
  cursor = i;
  if (i === start) return Number.NaN;
  if (plain) {
    // A long run of digits accumulates to a huge value or Infinity: out of range, like Number's.
    if (fracDigits < 0) return value <= MAX_KERNEL_VALUE ? value : Number.NaN;
    // "3.63" → 363 / 100: one correctly rounded division gives the same double as Number("3.63").
    if (fracDigits > 0 && fracDigits < POW10.length && value <= Number.MAX_SAFE_INTEGER) {
      return value / POW10[fracDigits]!;
    }
  }
  const n = Number(text.slice(start, i));
  return n >= 0 && n <= MAX_KERNEL_VALUE ? n : Number.NaN;
}

const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/** End of the line starting at `pos` (index of '\n' or text.length). */
function lineEnd(text: string, pos: number): number {
  const nl = text.indexOf('\n', pos);
  return nl === -1 ? text.length : nl;
}

// ---------------------------------------------------------------------------------------------
// /proc/stat

export interface CountersAndGauges {
  counters: Record<string, number>;
  gauges: Record<string, number>;
}

function target(out?: CountersAndGauges): CountersAndGauges {
  return out ?? { counters: {}, gauges: {} };
}

/** /proc/stat: the aggregate `cpu` line (USER_HZ → µs), cpu_count, ctxt, intr, processes, procs_*. */
export function parseProcStat(
  text: string,
  problems: string[] = [],
  out?: CountersAndGauges,
): CountersAndGauges {
  const o = target(out);
  let cpuCount = 0;
  let sawCpu = false;
  let lineNo = 0;
  for (let pos = 0; pos < text.length; ) {
    const end = lineEnd(text, pos);
    lineNo++;
    if (text.startsWith('cpu', pos)) {
      const c = text.charCodeAt(pos + 3);
      if (c === 32) {
        sawCpu = true;
        let p = pos + 3;
        let got = 0;
        for (const name of CPU_NAMES) {
          const v = scanNumber(text, p, end);
          if (Number.isNaN(v)) break;
          p = cursor;
          o.counters[name] = v * USEC_PER_TICK;
          got++;
        }
        // Kernels before 2.6.33 lack guest_nice, before 2.6.24 guest: fewer fields are fine; fewer than
        // the first four (user nice system idle) is not a cpu line.
        if (got < 4) {
          problems.push(`stat line ${lineNo}: cpu line has ${got} numeric fields, expected ≥4`);
          for (let f = 0; f < got; f++) delete o.counters[CPU_NAMES[f]!];
        }
      } else if (c >= 48 && c <= 57) {
        cpuCount++;
      }
    } else if (text.startsWith('ctxt ', pos)) {
      emitCounter(text, pos + 5, end, CONTEXT_SWITCHES_NAME, o.counters, problems, 'stat', lineNo);
    } else if (text.startsWith('intr ', pos)) {
      // Only the first field (the total); the per-IRQ list can be thousands of numbers long.
      emitCounter(text, pos + 5, end, INTERRUPTS_NAME, o.counters, problems, 'stat', lineNo);
    } else if (text.startsWith('processes ', pos)) {
      emitCounter(text, pos + 10, end, PROCESSES_FORKED_NAME, o.counters, problems, 'stat', lineNo);
    } else if (text.startsWith('procs_running ', pos)) {
      emitCounter(text, pos + 14, end, PROCS_RUNNING_NAME, o.gauges, problems, 'stat', lineNo);
    } else if (text.startsWith('procs_blocked ', pos)) {
      emitCounter(text, pos + 14, end, PROCS_BLOCKED_NAME, o.gauges, problems, 'stat', lineNo);
    }
    pos = end + 1;
  }
  if (!sawCpu) problems.push('stat: no aggregate "cpu " line');
  if (cpuCount > 0) o.gauges[CPU_COUNT_NAME] = cpuCount;
  return o;
}

function emitCounter(
  text: string,
  pos: number,
  end: number,
  name: string,
  into: Record<string, number>,
  problems: string[],
  file: string,
  lineNo: number,
): void {
  const v = scanNumber(text, pos, end);
  if (Number.isNaN(v) || v < 0) problems.push(`${file} line ${lineNo}: ${name}: not a number`);
  else into[name] = v;
}

// ---------------------------------------------------------------------------------------------
// /proc/vmstat

// [key + ' ', '\n' + key + ' ', wire name], from the catalogue's VMSTAT_KEYS.
const VMSTAT: ReadonlyArray<readonly [string, string, string]> = VMSTAT_KEYS.map((k) => [
  `${k.key} `,
  `\n${k.key} `,
  k.metric.name,
]);
const VMSTAT_REQUIRED: ReadonlyArray<readonly [string, string]> = VMSTAT_KEYS.filter((k) => k.required).map(
  (k) => [k.key, k.metric.name],
);

/**
 * /proc/vmstat: the keys of the catalogue's VMSTAT_KEYS (pgfault, pgmajfault, pswpin, pswpout,
 * oom_kill). The file has ~190 lines and we want 5 of them: one indexOf per key (a native scan)
 * costs less than walking every line, and does not grow with where the kernel puts the key.
 */
export function parseVmstat(
  text: string,
  problems: string[] = [],
  counters: Record<string, number> = {},
): Record<string, number> {
  let found = 0;
  for (const [key, nlKey, name] of VMSTAT) {
    const at = text.startsWith(key) ? 0 : text.indexOf(nlKey) + 1; // 0: not found (or at the start)
    if (at === 0 && !text.startsWith(key)) continue;
    found++;
    const v = scanNumber(text, at + key.length, lineEnd(text, at));
    if (Number.isNaN(v)) problems.push(`vmstat line ${lineNumber(text, at)}: ${name}: not a number`);
    else counters[name] = v;
  }
  if (found < VMSTAT.length) {
    // Optional keys (oom_kill, absent before 4.13) are not problems when missing.
    const missing = VMSTAT_REQUIRED.filter(([, n]) => !(n in counters)).map(([k]) => k);
    if (missing.length) problems.push(`vmstat: missing ${missing.join(', ')}`);
  }
  return counters;
}

/** 1-based line number of offset `at` (for problem messages only: it scans the text). */
function lineNumber(text: string, at: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// /proc/meminfo

/** /proc/meminfo: MemTotal, MemFree, MemAvailable (kB → bytes). */
export function parseMeminfo(
  text: string,
  problems: string[] = [],
  gauges: Record<string, number> = {},
): Record<string, number> {
  let lineNo = 0;
  let found = 0;
  // The three are the first lines of every kernel's meminfo: the scan stops after them.
  for (let pos = 0; pos < text.length && found < 3; ) {
    const end = lineEnd(text, pos);
    lineNo++;
    let name: string | undefined;
    let p = 0;
    if (text.startsWith('MemTotal:', pos)) {
      name = MEMORY_TOTAL_NAME;
      p = pos + 9;
    } else if (text.startsWith('MemAvailable:', pos)) {
      name = MEMORY_AVAILABLE_NAME;
      p = pos + 13;
    } else if (text.startsWith('MemFree:', pos)) {
      name = MEMORY_FREE_NAME;
      p = pos + 8;
    }
    if (name) {
      found++;
      const v = scanNumber(text, p, end);
      if (Number.isNaN(v)) problems.push(`meminfo line ${lineNo}: ${name}: not a number`);
      else {
        // The unit is always "kB" (really KiB); a line without it would be bytes (never seen).
        const unit = text.slice(cursor, end).trim();
        gauges[name] = unit === 'kB' ? v * 1024 : v;
      }
    }
    pos = end + 1;
  }
  if (!(MEMORY_TOTAL_NAME in gauges)) problems.push('meminfo: missing MemTotal');
  if (!(MEMORY_AVAILABLE_NAME in gauges)) problems.push('meminfo: missing MemAvailable');
  return gauges;
}

// ---------------------------------------------------------------------------------------------
// /proc/diskstats

// Fields after "major minor name", in order (Documentation/admin-guide/iostats.rst), from the
// catalogue's DISK_FIELDS: [wire name or null (not exported), multiplier].
const DISK: ReadonlyArray<readonly [string | null, number]> = DISK_FIELDS.map(([m, f]) => [
  m?.name ?? null,
  f,
]);
const IN_FLIGHT_INDEX = DISK_FIELDS.findIndex(([m]) => m === IN_FLIGHT);

/**
 * Default disk filter without /sys: whole disks only. Skips loop*, ram*, zram*, dm-*, md partitions
 * and partitions recognised by name: sda1, vda1, xvda1, hda1 (letters then digits), nvme0n1p1,
 * mmcblk0p1 (`p` + digits after a name that ends in a digit).
 */
export function defaultIncludeDisk(name: string): boolean {
  if (
    name.startsWith('loop') ||
    name.startsWith('ram') ||
    name.startsWith('zram') ||
    name.startsWith('dm-')
  ) {
    return false;
  }
  return !looksLikePartition(name);
}

/** Partition by name only (used when /sys is not available, e.g. for a guest's files). */
export function looksLikePartition(name: string): boolean {
  const n = name.length;
  let i = n;
  while (i > 0 && isDigit(name.charCodeAt(i - 1))) i--;
  if (i === n || i === 0) return false; // no trailing digits, or all digits
  const before = name.charCodeAt(i - 1);
  // nvme0n1p1, mmcblk0p1, loop0p1, md0p1: "p" + digits after a digit
  if (before === 112 /* p */ && i >= 2 && isDigit(name.charCodeAt(i - 2))) return true;
  // sda1, vdb2, xvda1, hda3: classic letters-then-digits disk names
  const prefixes = ['sd', 'vd', 'xvd', 'hd'];
  for (const prefix of prefixes) {
    if (name.startsWith(prefix) && i > prefix.length) {
      let allLetters = true;
      for (let j = prefix.length; j < i; j++) {
        const c = name.charCodeAt(j);
        if (c < 97 || c > 122) allLetters = false;
      }
      if (allLetters) return true;
    }
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** /proc/diskstats: one entry per included device, keyed by kernel name. */
export function parseDiskstats(
  text: string,
  problems: string[] = [],
  includeDisk: (name: string) => boolean = defaultIncludeDisk,
  devices: Record<string, InstanceParts> = {},
): Record<string, InstanceParts> {
  let lineNo = 0;
  for (let pos = 0; pos < text.length; ) {
    const end = lineEnd(text, pos);
    lineNo++;
    const lineStart = pos;
    pos = end + 1;
    // major, minor
    const major = scanNumber(text, lineStart, end);
    if (Number.isNaN(major)) {
      if (text.slice(lineStart, end).trim() !== '') {
        problems.push(`diskstats line ${lineNo}: major number is not a number`);
      }
      continue;
    }
    const minor = scanNumber(text, cursor, end);
    if (Number.isNaN(minor)) {
      problems.push(`diskstats line ${lineNo}: expected ≥14 fields, got 1`);
      continue;
    }
    let p = cursor;
    while (p < end && isSpace(text.charCodeAt(p))) p++;
    let q = p;
    while (q < end && !isSpace(text.charCodeAt(q))) q++;
    if (q === p) {
      problems.push(`diskstats line ${lineNo}: expected ≥14 fields, got 2`);
      continue;
    }
    const name = text.slice(p, q);
    if (!includeDisk(name)) continue;
    const counters: Record<string, number> = {};
    let inFlight = Number.NaN;
    let got = 0;
    let bad = false;
    p = q;
    for (let f = 0; f < DISK.length; f++) {
      const v = scanNumber(text, p, end);
      if (cursor === p || (Number.isNaN(v) && cursor >= end)) break;
      p = cursor;
      if (Number.isNaN(v)) {
        bad = true;
        break;
      }
      got++;
      const [metric, factor] = DISK[f]!;
      if (f === IN_FLIGHT_INDEX) inFlight = v;
      else if (metric) counters[metric] = v * factor;
    }
    if (bad) {
      problems.push(`diskstats line ${lineNo}: ${name}: field ${got + 4} is not a number`);
      continue;
    }
    if (got < 11) {
      problems.push(`diskstats line ${lineNo}: expected ≥14 fields, got ${got + 3}`);
      continue;
    }
    devices[name] = { counters, gauges: { [IN_FLIGHT_NAME]: inFlight } };
  }
  return devices;
}

// ---------------------------------------------------------------------------------------------
// /proc/net/dev

// The 16 columns after "name:", from the catalogue's NETDEV_FIELDS (null: not exported).
const NETDEV: ReadonlyArray<string | null> = NETDEV_FIELDS.map((m) => m?.name ?? null);

/** /proc/net/dev: one entry per included interface (default: all but `lo`). */
export function parseNetDev(
  text: string,
  problems: string[] = [],
  includeInterface: (name: string) => boolean = defaultIncludeInterface,
  interfaces: Record<string, InstanceParts> = {},
): Record<string, InstanceParts> {
  let lineNo = 0;
  for (let pos = 0; pos < text.length; ) {
    const end = lineEnd(text, pos);
    lineNo++;
    const lineStart = pos;
    pos = end + 1;
    const colon = text.indexOf(':', lineStart);
    if (colon === -1 || colon > end) {
      // The two header lines have '|' and no ':'; anything else without ':' is garbage.
      if (lineNo > 2 && text.slice(lineStart, end).trim() !== '') {
        problems.push(`net/dev line ${lineNo}: no "name:" prefix`);
      }
      continue;
    }
    const name = text.slice(lineStart, colon).trim();
    if (name === '' || !includeInterface(name)) continue;
    const counters: Record<string, number> = {};
    let p = colon + 1;
    let got = 0;
    let bad = false;
    for (const metric of NETDEV) {
      const v = scanNumber(text, p, end);
      if (cursor === p) break;
      p = cursor;
      if (Number.isNaN(v)) {
        bad = true;
        break;
      }
      got++;
      if (metric) counters[metric] = v;
    }
    if (bad || got < 16) {
      problems.push(
        bad
          ? `net/dev line ${lineNo}: ${name}: field ${got + 1} is not a number`
          : `net/dev line ${lineNo}: ${name}: expected 16 counters, got ${got}`,
      );
      continue;
    }
    interfaces[name] = { counters };
  }
  return interfaces;
}

export function defaultIncludeInterface(name: string): boolean {
  return name !== 'lo';
}

// ---------------------------------------------------------------------------------------------
// /proc/pressure/* and cgroup v2 *.pressure

// Metric names taken from the catalogue once: template strings per tick would allocate and
// re-intern every key. The `total=` counter per resource and line.
export const PSI_NAMES = {
  cpu: psiNames('cpu'),
  io: psiNames('io'),
  memory: psiNames('memory'),
} as const;
function psiNames(r: PsiResource) {
  return { some: PSI[r].some[0].name, full: PSI[r].full[0].name } as const;
}

/**
 * PSI: `some avg10=0.12 avg60=… avg300=… total=<µs>` and `full …`. Emits
 * psi_<res>_{some,full}_usec_total from `total=`; the averages are not read (the processor's
 * stall ratio of the exact interval comes from the totals). The host's cpu "full" line is absent
 * before 5.13 and all zeros after; whatever is there is reported.
 */
export function parsePressure(
  text: string,
  resource: 'cpu' | 'io' | 'memory',
  problems: string[] = [],
  out?: CountersAndGauges,
): CountersAndGauges {
  const o = target(out);
  let lineNo = 0;
  let lines = 0;
  for (let pos = 0; pos < text.length; ) {
    const end = lineEnd(text, pos);
    lineNo++;
    const lineStart = pos;
    pos = end + 1;
    let kind: 'some' | 'full';
    if (text.startsWith('some ', lineStart)) kind = 'some';
    else if (text.startsWith('full ', lineStart)) kind = 'full';
    else {
      if (text.slice(lineStart, end).trim() !== '') {
        problems.push(`pressure/${resource} line ${lineNo}: expected "some …" or "full …"`);
      }
      continue;
    }
    const t = text.indexOf('total=', lineStart);
    if (t === -1 || t > end) {
      problems.push(`pressure/${resource} line ${lineNo}: missing total=`);
      continue;
    }
    const total = scanNumber(text, t + 6, end);
    if (Number.isNaN(total)) {
      problems.push(`pressure/${resource} line ${lineNo}: total not a number`);
      continue;
    }
    lines++;
    o.counters[PSI_NAMES[resource][kind]] = total;
  }
  if (lines === 0 && text.trim() === '') problems.push(`pressure/${resource}: empty file`);
  return o;
}

// ---------------------------------------------------------------------------------------------

/** Parses whichever files are present into one sample's parts. Missing files are not problems. */
export function procSampleFromFiles(files: ProcFiles, opts: ProcSampleOptions = {}): ProcSampleParts {
  const parts: ProcSampleParts = { counters: {}, gauges: {}, devices: {}, interfaces: {}, problems: [] };
  const cg: CountersAndGauges = { counters: parts.counters, gauges: parts.gauges };
  if (files.stat !== undefined) parseProcStat(files.stat, parts.problems, cg);
  if (files.vmstat !== undefined) parseVmstat(files.vmstat, parts.problems, parts.counters);
  if (files.meminfo !== undefined) parseMeminfo(files.meminfo, parts.problems, parts.gauges);
  if (files.diskstats !== undefined) {
    parseDiskstats(files.diskstats, parts.problems, opts.includeDisk ?? defaultIncludeDisk, parts.devices);
  }
  if (files.netdev !== undefined) {
    parseNetDev(
      files.netdev,
      parts.problems,
      opts.includeInterface ?? defaultIncludeInterface,
      parts.interfaces,
    );
  }
  const pressure = files.pressure;
  if (pressure) {
    if (pressure.cpu !== undefined) parsePressure(pressure.cpu, 'cpu', parts.problems, cg);
    if (pressure.io !== undefined) parsePressure(pressure.io, 'io', parts.problems, cg);
    if (pressure.memory !== undefined) parsePressure(pressure.memory, 'memory', parts.problems, cg);
  }
  return parts;
}
