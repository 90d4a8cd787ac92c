// One cgroup v2 directory's files (text) → the `container` layer's counters, gauges and devices,
// with the cgroup collector's string parsers (parsers.ts) and the host's PSI parser. The cgroup
// collector reads a live tree with its byte parsers (bytes.ts, equal output by test); this is for
// files that arrive as text: the guest collector's in-guest cgroups (collectors/guest/), tools and
// tests. Pure: never throws, one line per malformed part in `problems`.
import { parsePressure } from '../procfs/parsers.ts';
import { MEMORY_LIMIT, MEMORY_USAGE } from './metrics.ts';
import {
  type DeviceCounters,
  parseFlatKeyed,
  parseIoStat,
  parseMemoryMax,
  parseSingle,
  V2_CPU_STAT,
  V2_MEMORY_STAT_COUNTERS,
  V2_MEMORY_STAT_GAUGES,
} from './parsers.ts';

/** The v2 files read per cgroup, by their names in the cgroup directory. */
export const CGROUP_V2_FILES = [
  'cpu.stat',
  'memory.stat',
  'memory.current',
  'memory.max',
  'io.stat',
  'cpu.pressure',
  'io.pressure',
  'memory.pressure',
] as const;
export type CgroupV2FileName = (typeof CGROUP_V2_FILES)[number];
export type CgroupV2Files = Partial<Record<CgroupV2FileName, string>>;

export interface CgroupV2Parts {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  /** io.stat per device (MAJ:MIN, or the name `devname` gave); absent without io.stat. */
  devices?: DeviceCounters;
  problems: string[];
}

/**
 * Parses what is there; an absent file contributes nothing. Keys come out in the cgroup
 * collector's order (cpu, memory, limit, PSI), so equal inputs give byte-equal JSON.
 */
export function cgroupV2FromFiles(
  files: CgroupV2Files,
  devname: (majMin: string) => string = (d) => d,
): CgroupV2Parts {
  const counters: Record<string, number> = {};
  const gauges: Record<string, number> = {};
  const problems: string[] = [];
  const cpu = files['cpu.stat'];
  if (cpu !== undefined) parseFlatKeyed(cpu, 'cpu.stat', [{ wanted: V2_CPU_STAT, into: counters }], problems);
  const mem = files['memory.stat'];
  if (mem !== undefined) {
    parseFlatKeyed(
      mem,
      'memory.stat',
      [
        { wanted: V2_MEMORY_STAT_COUNTERS, into: counters },
        { wanted: V2_MEMORY_STAT_GAUGES, into: gauges },
      ],
      problems,
    );
  }
  const current = files['memory.current'];
  if (current !== undefined) {
    const v = parseSingle(current);
    if (Number.isNaN(v)) problems.push('memory.current: not a number');
    else gauges[MEMORY_USAGE.name] = v;
  }
  const max = files['memory.max'];
  if (max !== undefined) {
    const v = parseMemoryMax(max);
    if (v !== undefined) gauges[MEMORY_LIMIT.name] = v;
  }
  let devices: DeviceCounters | undefined;
  const io = files['io.stat'];
  if (io !== undefined) {
    devices = {};
    const byMajMin = parseIoStat(io, problems);
    for (const d in byMajMin) devices[devname(d)] = byMajMin[d]!;
  }
  for (const r of ['cpu', 'io', 'memory'] as const) {
    const text = files[`${r}.pressure`];
    if (text !== undefined) parsePressure(text, r, problems, { counters, gauges });
  }
  const parts: CgroupV2Parts = { counters, gauges, problems };
  if (devices) parts.devices = devices;
  return parts;
}
