// The `container` layer's catalogue: every counter and gauge a container sample can carry. The
// parsers (files.ts declares which file and field feeds which entry) emit through these entries'
// names; the processor's rate fields and docs/metrics.md come from here.
//
// Sources are given per cgroup layout: `cgroup v2` (unified only), `cgroup v1` (v1 controllers
// only) and `hybrid` (v1 controllers plus the cgroup2 "unified" mount: memory, blkio and CPU
// throttling from v1, PSI and CPU usage from unified, whose cpu.stat is in µs where v1
// cpuacct.stat counts USER_HZ ticks). test/unit/cgroup-metrics.test.ts checks that every field of
// files.ts is named in its entry's sources, and that each rate field is the one the processor
// derives (processors/rates/naming.ts).
import type { MetricSpec, RateDerivation } from '../../schemas/catalogue.ts';
import * as P from '../host/metrics.ts';

const V2 = 'cgroup v2';
const V1 = 'cgroup v1';
const HYBRID = 'hybrid';

const cores = (field: string, what: string): RateDerivation => ({
  field,
  unit: '{core}',
  scale: 1e-6,
  description: `${what}, in cores (CPU seconds per second)`,
});
const perSecond = (field: string, unit: string, what: string): RateDerivation => ({
  field,
  unit,
  scale: 1,
  description: `${what} per second`,
});

// ---------------------------------------------------------------------------------------------
// CPU

export const CPU_USAGE = {
  name: 'cpu_usage_usec_total',
  kind: 'counter',
  unit: 'us',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'cpu.stat usage_usec',
    [V1]: 'cpuacct.usage (ns ÷ 1000, rounded down)',
    [HYBRID]:
      'unified cpu.stat usage_usec (v1 cpuacct.usage, ns ÷ 1000, when the unified cpu.stat is absent)',
  },
  description: 'CPU time used by the cgroup and its descendants, user and system',
  rate: cores('cpu_cores', 'CPU used'),
} as const satisfies MetricSpec;

export const CPU_USER = {
  name: 'cpu_user_usec_total',
  kind: 'counter',
  unit: 'us',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'cpu.stat user_usec',
    [V1]: 'cpuacct.stat user (USER_HZ ticks × 10000)',
    [HYBRID]:
      'unified cpu.stat user_usec (v1 cpuacct.stat user, ticks × 10000, when the unified cpu.stat is absent)',
  },
  description: 'CPU time used in user mode',
  rate: cores('cpu_user_cores', 'CPU used in user mode'),
} as const satisfies MetricSpec;

export const CPU_SYSTEM = {
  name: 'cpu_system_usec_total',
  kind: 'counter',
  unit: 'us',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'cpu.stat system_usec',
    [V1]: 'cpuacct.stat system (USER_HZ ticks × 10000)',
    [HYBRID]:
      'unified cpu.stat system_usec (v1 cpuacct.stat system, ticks × 10000, when the unified cpu.stat is absent)',
  },
  description: 'CPU time used in kernel mode',
  rate: cores('cpu_system_cores', 'CPU used in kernel mode'),
} as const satisfies MetricSpec;

export const CPU_PERIODS = {
  name: 'cpu_periods_total',
  kind: 'counter',
  unit: '{period}',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'cpu.stat nr_periods',
    [V1]: 'cpu.stat nr_periods',
    [HYBRID]: 'v1 cpu.stat nr_periods',
  },
  description: 'CFS bandwidth periods elapsed while the cgroup had runnable tasks (only with a CPU quota)',
  rate: perSecond('cpu_periods_per_second', '{period}/s', 'CFS periods'),
} as const satisfies MetricSpec;

export const CPU_THROTTLED_PERIODS = {
  name: 'cpu_throttled_periods_total',
  kind: 'counter',
  unit: '{period}',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'cpu.stat nr_throttled',
    [V1]: 'cpu.stat nr_throttled',
    [HYBRID]: 'v1 cpu.stat nr_throttled',
  },
  description: 'CFS periods in which the cgroup was throttled (had used up its quota)',
  rate: perSecond('cpu_throttled_periods_per_second', '{period}/s', 'Throttled CFS periods'),
} as const satisfies MetricSpec;

export const CPU_THROTTLED = {
  name: 'cpu_throttled_usec_total',
  kind: 'counter',
  unit: 'us',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'cpu.stat throttled_usec',
    [V1]: 'cpu.stat throttled_time (ns ÷ 1000)',
    [HYBRID]: 'v1 cpu.stat throttled_time (ns ÷ 1000)',
  },
  description: 'Time the cgroup was throttled by its CPU quota',
  rate: cores('cpu_throttled_cores', 'CPU time lost to throttling'),
} as const satisfies MetricSpec;

// ---------------------------------------------------------------------------------------------
// Memory

export const PAGE_FAULTS = {
  name: 'page_faults_total',
  kind: 'counter',
  unit: '{fault}',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'memory.stat pgfault',
    [V1]: 'memory.stat total_pgfault',
    [HYBRID]: 'v1 memory.stat total_pgfault',
  },
  description: 'Page faults (minor and major) taken by the cgroup and its descendants',
  rate: perSecond('page_faults_per_second', '{fault}/s', 'Page faults'),
} as const satisfies MetricSpec;

export const MAJOR_PAGE_FAULTS = {
  name: 'major_page_faults_total',
  kind: 'counter',
  unit: '{fault}',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'memory.stat pgmajfault',
    [V1]: 'memory.stat total_pgmajfault',
    [HYBRID]: 'v1 memory.stat total_pgmajfault',
  },
  description: 'Major page faults (that needed I/O) taken by the cgroup and its descendants',
  rate: perSecond('major_page_faults_per_second', '{fault}/s', 'Major page faults'),
} as const satisfies MetricSpec;

export const MEMORY_ANON = {
  name: 'memory_anon_bytes',
  kind: 'gauge',
  unit: 'By',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'memory.stat anon',
    [V1]: 'memory.stat total_rss',
    [HYBRID]: 'v1 memory.stat total_rss',
  },
  description: 'Anonymous memory (heap, stacks, private mappings) charged to the cgroup',
} as const satisfies MetricSpec;

export const MEMORY_FILE = {
  name: 'memory_file_bytes',
  kind: 'gauge',
  unit: 'By',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'memory.stat file',
    [V1]: 'memory.stat total_cache',
    [HYBRID]: 'v1 memory.stat total_cache',
  },
  description: 'Page cache charged to the cgroup',
} as const satisfies MetricSpec;

export const MEMORY_USAGE = {
  name: 'memory_usage_bytes',
  kind: 'gauge',
  unit: 'By',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'memory.current',
    [V1]: 'memory.usage_in_bytes',
    [HYBRID]: 'v1 memory.usage_in_bytes',
  },
  description: 'Memory charged to the cgroup (anonymous, page cache, kernel)',
} as const satisfies MetricSpec;

export const MEMORY_LIMIT = {
  name: 'memory_limit_bytes',
  kind: 'gauge',
  unit: 'By',
  scope: 'entity',
  layers: ['container'],
  sources: {
    [V2]: 'memory.max (absent when "max")',
    [V1]: 'memory.limit_in_bytes (absent from 2^62: unlimited)',
    [HYBRID]: 'v1 memory.limit_in_bytes (absent from 2^62: unlimited)',
  },
  description: 'Memory limit of the cgroup; absent when unlimited. Read every 10th tick',
} as const satisfies MetricSpec;

// ---------------------------------------------------------------------------------------------
// PSI (cgroup v2 and hybrid hosts: the unified hierarchy's cpu/io/memory.pressure)

type PsiResource = 'cpu' | 'io' | 'memory';
type PsiKind = 'some' | 'full';

function psiTotal<R extends PsiResource, K extends PsiKind>(r: R, k: K) {
  return {
    name: `psi_${r}_${k}_usec_total`,
    kind: 'counter',
    unit: 'us',
    scope: 'entity',
    layers: ['container'],
    sources: { [V2]: `${r}.pressure ${k} total`, [HYBRID]: `unified ${r}.pressure ${k} total` },
    description: `Time ${k === 'some' ? 'at least one' : 'all non-idle'} of the cgroup's tasks stalled on ${r}`,
    rate: {
      field: `psi_${r}_${k}_stall_ratio`,
      unit: '1',
      scale: 1e-6,
      description: `Share of time ${k === 'some' ? 'some' : 'all'} of the cgroup's tasks stalled on ${r} (stalled s per s)`,
    },
  } as const satisfies MetricSpec;
}

export const PSI_CPU_SOME = psiTotal('cpu', 'some');
export const PSI_CPU_FULL = psiTotal('cpu', 'full');
export const PSI_IO_SOME = psiTotal('io', 'some');
export const PSI_IO_FULL = psiTotal('io', 'full');
export const PSI_MEMORY_SOME = psiTotal('memory', 'some');
export const PSI_MEMORY_FULL = psiTotal('memory', 'full');

/**
 * Per resource: [some total, full total], the order pressure files list them in. Only `total=` is
 * read and sent: the kernel's `avg10=` is its own 10 s average of what the processor's
 * `*_stall_ratio` rate gives for the exact interval (docs/schema.md).
 */
export const PSI_METRICS = {
  cpu: [PSI_CPU_SOME, PSI_CPU_FULL],
  io: [PSI_IO_SOME, PSI_IO_FULL],
  memory: [PSI_MEMORY_SOME, PSI_MEMORY_FULL],
} as const;

// ---------------------------------------------------------------------------------------------
// Block I/O, per device (keyed by kernel name from MAJ:MIN)

const BLKIO_OPS = 'blkio.throttle.io_serviced_recursive (io_serviced on kernels without it)';
const BLKIO_BYTES = 'blkio.throttle.io_service_bytes_recursive (io_service_bytes on kernels without it)';

function device(
  name: string,
  unit: string,
  v2Key: string,
  v1File: string,
  v1Op: string,
  description: string,
  rate: RateDerivation,
) {
  return {
    name,
    kind: 'counter',
    unit,
    scope: 'device',
    layers: ['container'],
    sources: { [V2]: `io.stat ${v2Key}`, [V1]: `${v1File} ${v1Op}`, [HYBRID]: `v1 ${v1File} ${v1Op}` },
    description: `${description}; v1: only what blk-throttle counts (label io_accounting)`,
    rate,
  } as const satisfies MetricSpec;
}

export const READS_COMPLETED = device(
  'reads_completed_total',
  '{op}',
  'rios',
  BLKIO_OPS,
  'Read',
  'Read requests the cgroup issued to the device',
  perSecond('read_iops', '{op}/s', 'Read requests'),
);
export const WRITES_COMPLETED = device(
  'writes_completed_total',
  '{op}',
  'wios',
  BLKIO_OPS,
  'Write',
  'Write requests the cgroup issued to the device',
  perSecond('write_iops', '{op}/s', 'Write requests'),
);
export const DISCARDS_COMPLETED = device(
  'discards_completed_total',
  '{op}',
  'dios',
  BLKIO_OPS,
  'Discard',
  'Discard requests the cgroup issued to the device',
  perSecond('discard_iops', '{op}/s', 'Discard requests'),
);
export const READ_BYTES = device(
  'read_bytes_total',
  'By',
  'rbytes',
  BLKIO_BYTES,
  'Read',
  'Bytes the cgroup read from the device',
  perSecond('read_bytes_per_second', 'By/s', 'Bytes read'),
);
export const WRITTEN_BYTES = device(
  'written_bytes_total',
  'By',
  'wbytes',
  BLKIO_BYTES,
  'Write',
  'Bytes the cgroup wrote to the device',
  perSecond('written_bytes_per_second', 'By/s', 'Bytes written'),
);
export const DISCARDED_BYTES = device(
  'discarded_bytes_total',
  'By',
  'dbytes',
  BLKIO_BYTES,
  'Discard',
  'Bytes the cgroup discarded on the device',
  perSecond('discarded_bytes_per_second', 'By/s', 'Bytes discarded'),
);

// ---------------------------------------------------------------------------------------------
// Network, per interface: the container's own network namespace, read as the host's /proc/net/dev
// with the same parser (collectors/procfs/parsers.ts parseNetDev, `lo` excluded), so the entries
// are the /proc catalogue's, carried by containers.

function iface(m: MetricSpec): MetricSpec {
  const source = `/proc/PID/net/dev of a process of the cgroup, in its own network namespace (${m.sources[Object.keys(m.sources)[0]!]})`;
  return { ...m, layers: ['container'], sources: { [V2]: source, [V1]: source, [HYBRID]: source } };
}

export const RX_BYTES = iface(P.RX_BYTES);
export const RX_PACKETS = iface(P.RX_PACKETS);
export const RX_ERRORS = iface(P.RX_ERRORS);
export const RX_DROPPED = iface(P.RX_DROPPED);
export const TX_BYTES = iface(P.TX_BYTES);
export const TX_PACKETS = iface(P.TX_PACKETS);
export const TX_ERRORS = iface(P.TX_ERRORS);
export const TX_DROPPED = iface(P.TX_DROPPED);

/** Every metric a `container` sample can carry, in docs/metrics.md's order. */
export const CGROUP_METRICS: readonly MetricSpec[] = [
  CPU_USAGE,
  CPU_USER,
  CPU_SYSTEM,
  CPU_PERIODS,
  CPU_THROTTLED_PERIODS,
  CPU_THROTTLED,
  PAGE_FAULTS,
  MAJOR_PAGE_FAULTS,
  MEMORY_ANON,
  MEMORY_FILE,
  MEMORY_USAGE,
  MEMORY_LIMIT,
  ...Object.values(PSI_METRICS).flat(),
  READS_COMPLETED,
  WRITES_COMPLETED,
  READ_BYTES,
  WRITTEN_BYTES,
  DISCARDS_COMPLETED,
  DISCARDED_BYTES,
  RX_BYTES,
  RX_PACKETS,
  RX_ERRORS,
  RX_DROPPED,
  TX_BYTES,
  TX_PACKETS,
  TX_ERRORS,
  TX_DROPPED,
];
