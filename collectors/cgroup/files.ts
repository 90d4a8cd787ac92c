// The one table of what is read from a cgroup: which file, in which cgroup version, which fields,
// which catalogue entry (metrics.ts) each field becomes and with what unit conversion. The string
// parsers (parsers.ts, v2files.ts) and the byte fast paths (bytes.ts tables, built in reader.ts
// and target.ts) both derive their key tables from these records, so the two paths cannot name a
// field differently. Key order matters: it is the order the values are written into the sample,
// which is the message's key order on the wire.
import type { MetricSpec } from '../../schemas/catalogue.ts';
import * as M from './metrics.ts';

export interface FileField {
  /** The key in the file (flat keyed, io.stat), or the operation (blkio), or "some"/"full" (PSI). */
  readonly key: string;
  readonly metric: MetricSpec;
  /** Multiplier from the file's unit to the metric's (e.g. ns → µs: 1/1000); 1 when absent. */
  readonly factor?: number;
}

export interface CgroupFile {
  /** Its name in the cgroup directory. */
  readonly file: string;
  readonly version: 'v1' | 'v2';
  readonly fields: readonly FileField[];
}

const f = (key: string, metric: MetricSpec, factor?: number): FileField =>
  factor === undefined ? { key, metric } : { key, metric, factor };

// ---------------------------------------------------------------------------------------------
// "key value" files

/** v2 cpu.stat (µs already); nr_* and throttled_usec only where the cpu controller is enabled. */
export const V2_CPU_STAT_FILE: CgroupFile = {
  file: 'cpu.stat',
  version: 'v2',
  fields: [
    f('usage_usec', M.CPU_USAGE),
    f('user_usec', M.CPU_USER),
    f('system_usec', M.CPU_SYSTEM),
    f('nr_periods', M.CPU_PERIODS),
    f('nr_throttled', M.CPU_THROTTLED_PERIODS),
    f('throttled_usec', M.CPU_THROTTLED),
  ],
};

/** v1 cpu.stat: CFS throttling, throttled_time in ns. */
export const V1_CPU_STAT_FILE: CgroupFile = {
  file: 'cpu.stat',
  version: 'v1',
  fields: [
    f('nr_periods', M.CPU_PERIODS),
    f('nr_throttled', M.CPU_THROTTLED_PERIODS),
    f('throttled_time', M.CPU_THROTTLED, 1 / 1000),
  ],
};

/** v1 cpuacct.stat, USER_HZ (100 Hz) ticks → µs. */
export const V1_CPUACCT_STAT_FILE: CgroupFile = {
  file: 'cpuacct.stat',
  version: 'v1',
  fields: [f('user', M.CPU_USER, 10_000), f('system', M.CPU_SYSTEM, 10_000)],
};

/** v2 memory.stat: counters first, then gauges (the sample's key order). */
export const V2_MEMORY_STAT_FILE: CgroupFile = {
  file: 'memory.stat',
  version: 'v2',
  fields: [
    f('pgfault', M.PAGE_FAULTS),
    f('pgmajfault', M.MAJOR_PAGE_FAULTS),
    f('anon', M.MEMORY_ANON),
    f('file', M.MEMORY_FILE),
  ],
};

/** v1 memory.stat: the total_* keys are hierarchical (this cgroup and its children), like v2's. */
export const V1_MEMORY_STAT_FILE: CgroupFile = {
  file: 'memory.stat',
  version: 'v1',
  fields: [
    f('total_pgfault', M.PAGE_FAULTS),
    f('total_pgmajfault', M.MAJOR_PAGE_FAULTS),
    f('total_rss', M.MEMORY_ANON),
    f('total_cache', M.MEMORY_FILE),
  ],
};

// ---------------------------------------------------------------------------------------------
// Files holding one number (key ''): the reader converts with `factor`

/** v1 cpuacct.usage in ns → µs (rounded down). */
export const V1_CPUACCT_USAGE_FILE: CgroupFile = {
  file: 'cpuacct.usage',
  version: 'v1',
  fields: [f('', M.CPU_USAGE, 1 / 1000)],
};
export const V2_MEMORY_CURRENT_FILE: CgroupFile = {
  file: 'memory.current',
  version: 'v2',
  fields: [f('', M.MEMORY_USAGE)],
};
export const V1_MEMORY_USAGE_FILE: CgroupFile = {
  file: 'memory.usage_in_bytes',
  version: 'v1',
  fields: [f('', M.MEMORY_USAGE)],
};
/** "max" (unlimited): no value. */
export const V2_MEMORY_MAX_FILE: CgroupFile = {
  file: 'memory.max',
  version: 'v2',
  fields: [f('', M.MEMORY_LIMIT)],
};
/** From 2^62 (PAGE_COUNTER_MAX × page size): unlimited, no value. */
export const V1_MEMORY_LIMIT_FILE: CgroupFile = {
  file: 'memory.limit_in_bytes',
  version: 'v1',
  fields: [f('', M.MEMORY_LIMIT)],
};

// ---------------------------------------------------------------------------------------------
// Per device

/** v2 io.stat: "MAJ:MIN rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…"; other keys are skipped. */
export const V2_IO_STAT_FILE: CgroupFile = {
  file: 'io.stat',
  version: 'v2',
  fields: [
    f('rbytes', M.READ_BYTES),
    f('wbytes', M.WRITTEN_BYTES),
    f('rios', M.READS_COMPLETED),
    f('wios', M.WRITES_COMPLETED),
    f('dbytes', M.DISCARDED_BYTES),
    f('dios', M.DISCARDS_COMPLETED),
  ],
};

/**
 * v1 blkio.throttle.io_serviced ("MAJ:MIN Op N"); the reader prefers the _recursive file (child
 * cgroups included, like io.stat) where the kernel has it. Ops in this order: Read, Write, Discard.
 */
export const V1_BLKIO_SERVICED_FILE: CgroupFile = {
  file: 'blkio.throttle.io_serviced',
  version: 'v1',
  fields: [f('Read', M.READS_COMPLETED), f('Write', M.WRITES_COMPLETED), f('Discard', M.DISCARDS_COMPLETED)],
};
/** v1 blkio.throttle.io_service_bytes, as io_serviced. */
export const V1_BLKIO_SERVICE_BYTES_FILE: CgroupFile = {
  file: 'blkio.throttle.io_service_bytes',
  version: 'v1',
  fields: [f('Read', M.READ_BYTES), f('Write', M.WRITTEN_BYTES), f('Discard', M.DISCARDED_BYTES)],
};

// ---------------------------------------------------------------------------------------------
// PSI (v2; the unified hierarchy on hybrid hosts): "some|full avg10=… total=N" lines, of which
// only total= is read (the averages are not sent: metrics.ts PSI_METRICS)

function pressure(r: keyof typeof M.PSI_METRICS): CgroupFile {
  const [someTotal, fullTotal] = M.PSI_METRICS[r];
  return {
    file: `${r}.pressure`,
    version: 'v2',
    fields: [f('some total', someTotal), f('full total', fullTotal)],
  };
}
export const PRESSURE_FILES = {
  cpu: pressure('cpu'),
  io: pressure('io'),
  memory: pressure('memory'),
} as const;

/** Every file of the table. */
export const CGROUP_FILES: readonly CgroupFile[] = [
  V2_CPU_STAT_FILE,
  V1_CPU_STAT_FILE,
  V1_CPUACCT_USAGE_FILE,
  V1_CPUACCT_STAT_FILE,
  V2_MEMORY_STAT_FILE,
  V1_MEMORY_STAT_FILE,
  V2_MEMORY_CURRENT_FILE,
  V1_MEMORY_USAGE_FILE,
  V2_MEMORY_MAX_FILE,
  V1_MEMORY_LIMIT_FILE,
  V2_IO_STAT_FILE,
  V1_BLKIO_SERVICED_FILE,
  V1_BLKIO_SERVICE_BYTES_FILE,
  PRESSURE_FILES.cpu,
  PRESSURE_FILES.io,
  PRESSURE_FILES.memory,
];

// ---------------------------------------------------------------------------------------------
// Derived views, built once at import

/**
 * Key → metric name, of the fields whose metric is of `kind` (all fields when absent). Without a
 * prototype: the parsers look up keys read from the file, and a line keyed "constructor" or
 * "__proto__" must find nothing, not an Object.prototype member that would become a metric name.
 */
export function fieldNames(file: CgroupFile, kind?: 'counter' | 'gauge'): Readonly<Record<string, string>> {
  const out: Record<string, string> = Object.create(null);
  for (const x of file.fields) if (kind === undefined || x.metric.kind === kind) out[x.key] = x.metric.name;
  return out;
}

/** Key → factor, of the fields that have one. */
export function fieldFactors(file: CgroupFile): Readonly<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const x of file.fields) if (x.factor !== undefined) out[x.key] = x.factor;
  return out;
}

/**
 * The key tables of a "key value" file for parseFlatKeyed and keyedTable: counters (record 0),
 * then gauges (record 1) when it has any.
 */
export function keyedSpecs(
  file: CgroupFile,
): { wanted: Readonly<Record<string, string>>; factor?: Readonly<Record<string, number>> }[] {
  const factor = fieldFactors(file);
  const withFactor = Object.keys(factor).length ? { factor } : {};
  const gauges = fieldNames(file, 'gauge');
  const specs = [{ wanted: fieldNames(file, 'counter'), ...withFactor }];
  if (Object.keys(gauges).length) specs.push({ wanted: gauges, ...withFactor });
  return specs;
}

/** The [Read, Write, Discard] metric names of a v1 blkio file. */
export function blkioNames(file: CgroupFile): readonly [string, string, string] {
  const n = fieldNames(file);
  return [n.Read!, n.Write!, n.Discard!];
}

/** The [some total, full total] names of a pressure file. */
export function pressureNames(file: CgroupFile): readonly [string, string] {
  const n = fieldNames(file);
  return [n['some total']!, n['full total']!];
}
