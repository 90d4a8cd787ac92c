// cgroup v1/v2 file parsers (collectors/cgroup/parsers.ts, v2files.ts, mounts.ts) and their byte
// fast paths (bytes.ts) on mutated captures of real cgroup trees and on arbitrary text. Besides
// never throwing and finite numbers, a fast path that accepts a file must give exactly what the
// string parser gives (the collector's contract: bytes on the wire do not depend on which ran).
import fc from 'fast-check';
import {
  blkioBytes,
  flatKeyedBytes,
  keyedTable,
  pressureBytes,
  singleBytes,
} from '../../collectors/cgroup/bytes.ts';
import { layoutFromMountinfo } from '../../collectors/cgroup/mounts.ts';
import {
  type DeviceCounters,
  devnameFromUevent,
  type KeyedSpec,
  parseBlkioRw,
  parseFlatKeyed,
  parseIoStat,
  parseMemoryMax,
  parseSingle,
  V1_CPU_STAT,
  V1_CPU_STAT_FACTOR,
  V1_CPUACCT_FACTOR,
  V1_CPUACCT_STAT,
  V1_MEMORY_STAT_COUNTERS,
  V1_MEMORY_STAT_GAUGES,
  V2_CPU_STAT,
  V2_MEMORY_STAT_COUNTERS,
  V2_MEMORY_STAT_GAUGES,
} from '../../collectors/cgroup/parsers.ts';
import { cgroupV2FromFiles } from '../../collectors/cgroup/v2files.ts';
import { PSI_NAMES, parsePressure } from '../../collectors/procfs/parsers.ts';
import { capturedFiles, checkMetricNames, checkNumbers, type FuzzTarget, hostileText } from './harness.ts';

/** As the collector reads them: bytes, and their latin1 text for the string parsers. */
const cg = (suffix: string) =>
  hostileText(capturedFiles('cgroup', (p) => p.endsWith(suffix))).map((t) =>
    Buffer.from(t, 'latin1').toString('latin1'),
  );

const KEYED: { file: string; specs: Pick<KeyedSpec, 'wanted' | 'factor'>[] }[] = [
  { file: '/cpu.stat', specs: [{ wanted: V2_CPU_STAT }] },
  { file: '/cpu.stat', specs: [{ wanted: V1_CPU_STAT, factor: V1_CPU_STAT_FACTOR }] },
  { file: '/cpuacct.stat', specs: [{ wanted: V1_CPUACCT_STAT, factor: V1_CPUACCT_FACTOR }] },
  { file: '/memory.stat', specs: [{ wanted: V2_MEMORY_STAT_COUNTERS }, { wanted: V2_MEMORY_STAT_GAUGES }] },
  { file: '/memory.stat', specs: [{ wanted: V1_MEMORY_STAT_COUNTERS }, { wanted: V1_MEMORY_STAT_GAUGES }] },
];
const keyedCases = KEYED.map((k) => ({ ...k, table: keyedTable(k.specs), texts: cg(k.file) }));

const same = (a: unknown, b: unknown, what: string) => {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`${what}: fast path ${JSON.stringify(a)} vs string parser ${JSON.stringify(b)}`);
  }
};

function checkDevices(d: DeviceCounters): void {
  checkNumbers({ counters: d });
  for (const [dev, c] of Object.entries(d)) {
    if (Object.getPrototypeOf(d) !== Object.prototype) throw new Error('device map prototype changed');
    checkMetricNames(c, dev);
  }
}

export const targets: FuzzTarget[] = [
  {
    name: 'cgroup: keyed files (cpu.stat, cpuacct.stat, memory.stat), bytes = string',
    property: () =>
      fc.property(
        fc
          .integer({ min: 0, max: keyedCases.length - 1 })
          .chain((i) => fc.tuple(fc.constant(i), keyedCases[i]!.texts)),
        ([i, text]) => {
          const k = keyedCases[i]!;
          const a0: Record<string, number> = {};
          const a1: Record<string, number> = {};
          const specs = [{ ...k.specs[0]!, into: a0 }, ...(k.specs[1] ? [{ ...k.specs[1], into: a1 }] : [])];
          parseFlatKeyed(text, k.file, specs, []);
          checkNumbers({ counters: a0, gauges: a1 });
          checkMetricNames(a0, 'into0');
          checkMetricNames(a1, 'into1');
          const buf = Buffer.from(text, 'latin1');
          const b0: Record<string, number> = {};
          const b1: Record<string, number> = {};
          if (flatKeyedBytes(buf, buf.length, k.table, b0, k.specs[1] ? b1 : undefined)) {
            same(b0, a0, k.file);
            same(b1, a1, k.file);
          }
        },
      ),
  },
  {
    name: 'cgroup: single-number files and memory.max, bytes = string',
    property: () =>
      fc.property(cg('memory.current'), cg('memory.max'), (cur, max) => {
        const v = parseSingle(cur);
        if (!Number.isNaN(v)) checkNumbers(v);
        const buf = Buffer.from(cur, 'latin1');
        const b = singleBytes(buf, buf.length);
        if (b !== undefined) same(b, v, 'memory.current');
        const m = parseMemoryMax(max);
        if (m !== undefined) checkNumbers(m);
      }),
  },
  {
    name: 'cgroup: *.pressure, bytes = string',
    property: () =>
      fc.property(cg('.pressure'), (text) => {
        const s = parsePressure(text, 'io');
        checkNumbers(s);
        const buf = Buffer.from(text, 'latin1');
        const b = { counters: {}, gauges: {} };
        if (pressureBytes(buf, buf.length, [PSI_NAMES.io.some, PSI_NAMES.io.full], b.counters)) {
          same(b, s, 'pressure');
        }
      }),
  },
  {
    name: 'cgroup: io.stat',
    property: () => fc.property(cg('/io.stat'), (text) => checkDevices(parseIoStat(text, []))),
  },
  {
    name: 'cgroup: blkio.throttle.*, bytes = string',
    property: () =>
      fc.property(cg('blkio.throttle.io_serviced'), fc.boolean(), (text, ops) => {
        const s: DeviceCounters = {};
        parseBlkioRw(text, ops ? 'ops' : 'bytes', s, [], 'blkio');
        checkDevices(s);
        const names = ops
          ? (['reads_completed_total', 'writes_completed_total', 'discards_completed_total'] as const)
          : (['read_bytes_total', 'written_bytes_total', 'discarded_bytes_total'] as const);
        const b: DeviceCounters = {};
        const buf = Buffer.from(text, 'latin1');
        if (blkioBytes(buf, buf.length, names, b)) same(b, s, 'blkio');
      }),
  },
  {
    name: 'cgroup: a v2 directory from files',
    property: () =>
      fc.property(
        fc.record({
          'cpu.stat': cg('/cpu.stat'),
          'memory.stat': cg('/memory.stat'),
          'memory.current': cg('/memory.current'),
          'memory.max': cg('/memory.max'),
          'io.stat': cg('/io.stat'),
          'cpu.pressure': cg('/cpu.pressure'),
        }),
        (files) => {
          const p = cgroupV2FromFiles(files);
          checkNumbers(p);
          checkMetricNames(p.counters, 'counters');
          checkMetricNames(p.gauges, 'gauges');
          if (p.devices) checkDevices(p.devices);
        },
      ),
  },
  {
    name: 'cgroup: mountinfo and uevent',
    property: () =>
      fc.property(cg('/mountinfo'), cg('/uevent'), (mountinfo, uevent) => {
        const l = layoutFromMountinfo(mountinfo, '/host/sys/fs/cgroup');
        if (!['v1', 'v2', 'hybrid'].includes(l.mode)) throw new Error(`mode ${l.mode}`);
        for (const [c, dir] of l.v1)
          if (typeof c !== 'string' || typeof dir !== 'string') throw new Error('v1 map');
        const d = devnameFromUevent(uevent);
        if (d !== undefined && (typeof d !== 'string' || d === '')) throw new Error('devname');
      }),
  },
];
