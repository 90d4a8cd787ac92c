// The /proc metric catalogue: every counter and gauge the /proc parsers (collectors/procfs/parsers.ts)
// emit, for the host collector and for the guest collector (which runs the same parsers on the
// files an in-guest agent ships, so host and guest views compare name for name). Parsers take
// their names from these entries; the processor takes its rate fields from them
// (processors/rates/naming.ts); `npm run docs` writes docs/metrics.md, docs/schema.md and
// collectors/host/README.md from them. Adding a counter: one entry here, one line in its parser.
import type { MetricLayer, MetricSpec, RateDerivation } from '../../schemas/catalogue.ts';

const PROC: readonly MetricLayer[] = ['host', 'guest'];

/** USER_HZ ticks × 10 000 = µs (USER_HZ is 100 on every Linux ABI). */
const TICKS = 'USER_HZ ticks × 10⁴ → µs';

function cores(field: string, what: string): RateDerivation {
  return { field, unit: '{core}', scale: 1e-6, description: `CPU seconds per second ${what}` };
}
function perSecond(field: string, unit: string, description: string): RateDerivation {
  return { field, unit, scale: 1, description };
}

// ---------------------------------------------------------------------------------------------
// /proc/stat

function cpuBucket(bucket: string, position: number, what: string, since?: string): MetricSpec {
  return {
    name: `cpu_${bucket}_usec_total`,
    kind: 'counter',
    unit: 'us',
    scope: 'entity',
    layers: PROC,
    sources: { Linux: `/proc/stat \`cpu\` line, field ${position} (${bucket}), ${TICKS}` },
    description: `CPU time of all CPUs ${what}`,
    rate: cores(`cpu_${bucket}_cores`, what),
    ...(since ? { since } : {}),
  };
}

export const CPU_USER = cpuBucket('user', 1, 'in user mode (guest time included)');
export const CPU_NICE = cpuBucket('nice', 2, 'in user mode at low priority (guest_nice included)');
export const CPU_SYSTEM = cpuBucket('system', 3, 'in kernel mode');
export const CPU_IDLE = cpuBucket('idle', 4, 'idle');
export const CPU_IOWAIT = cpuBucket('iowait', 5, 'idle with I/O outstanding');
export const CPU_IRQ = cpuBucket('irq', 6, 'serving hardware interrupts');
export const CPU_SOFTIRQ = cpuBucket('softirq', 7, 'serving softirqs');
export const CPU_STEAL = cpuBucket('steal', 8, 'stolen by the hypervisor (a guest waiting for a host CPU)');
export const CPU_GUEST = cpuBucket('guest', 9, 'running guests (already inside user)', 'Linux 2.6.24');
export const CPU_GUEST_NICE = cpuBucket(
  'guest_nice',
  10,
  'running niced guests (already inside nice)',
  'Linux 2.6.33',
);

/** The `cpu` line's fields in the kernel's order (the parser reads them positionally). */
export const CPU_FIELDS = [
  CPU_USER,
  CPU_NICE,
  CPU_SYSTEM,
  CPU_IDLE,
  CPU_IOWAIT,
  CPU_IRQ,
  CPU_SOFTIRQ,
  CPU_STEAL,
  CPU_GUEST,
  CPU_GUEST_NICE,
] as const;
/** Buckets that are work (guest/guest_nice are already inside user/nice): Σ = `cpu_cores`. */
export const CPU_BUSY = [CPU_USER, CPU_NICE, CPU_SYSTEM, CPU_IRQ, CPU_SOFTIRQ] as const;
/** Buckets that partition CPU time (busy + idle + iowait + steal): the `*_ratio` denominators. */
export const CPU_ALL = [...CPU_BUSY, CPU_IDLE, CPU_IOWAIT, CPU_STEAL] as const;

function statCounter(name: string, source: string, field: string, description: string): MetricSpec {
  return {
    name,
    kind: 'counter',
    unit: '1',
    scope: 'entity',
    layers: PROC,
    sources: { Linux: source },
    description,
    rate: perSecond(field, '1/s', `${description}, per second`),
  };
}
function gauge(name: string, unit: string, source: string, description: string): MetricSpec {
  return {
    name,
    kind: 'gauge',
    unit,
    scope: 'entity',
    layers: PROC,
    sources: { Linux: source },
    description,
  };
}

export const CONTEXT_SWITCHES = statCounter(
  'context_switches_total',
  '/proc/stat `ctxt`',
  'context_switches_per_second',
  'Context switches',
);
export const INTERRUPTS = statCounter(
  'interrupts_total',
  '/proc/stat `intr`, first field (the total)',
  'interrupts_per_second',
  'Interrupts serviced',
);
export const PROCESSES_FORKED = statCounter(
  'processes_forked_total',
  '/proc/stat `processes`',
  'processes_forked_per_second',
  'Processes and threads created',
);
export const PROCS_RUNNING = gauge(
  'procs_running',
  '{process}',
  '/proc/stat `procs_running`',
  'Runnable tasks',
);
export const PROCS_BLOCKED = gauge(
  'procs_blocked',
  '{process}',
  '/proc/stat `procs_blocked`',
  'Tasks blocked on I/O',
);
export const CPU_COUNT = gauge('cpu_count', '{cpu}', '/proc/stat `cpuN` lines', 'Online CPUs');

// ---------------------------------------------------------------------------------------------
// /proc/vmstat

function vmstat(key: string, name: string, unit: string, description: string, since?: string): MetricSpec {
  const base = name.slice(0, -'_total'.length);
  return {
    name,
    kind: 'counter',
    unit,
    scope: 'entity',
    layers: PROC,
    sources: { Linux: `/proc/vmstat \`${key}\`` },
    description,
    rate: perSecond(`${base}_per_second`, `${unit}/s`, `${description}, per second`),
    ...(since ? { since } : {}),
  };
}

export const PAGE_FAULTS = vmstat('pgfault', 'page_faults_total', '{fault}', 'Page faults, minor and major');
export const MAJOR_PAGE_FAULTS = vmstat(
  'pgmajfault',
  'major_page_faults_total',
  '{fault}',
  'Page faults that needed I/O',
);
export const SWAP_IN = vmstat('pswpin', 'swap_in_pages_total', '{page}', 'Pages swapped in');
export const SWAP_OUT = vmstat('pswpout', 'swap_out_pages_total', '{page}', 'Pages swapped out');
export const OOM_KILLS = vmstat(
  'oom_kill',
  'oom_kills_total',
  '{process}',
  'Processes killed by the OOM killer (global and cgroup limits)',
  'Linux 4.13',
);

/** The /proc/vmstat keys read, with the entry each feeds; `required`: reported when missing. */
export const VMSTAT_KEYS: ReadonlyArray<{ key: string; metric: MetricSpec; required: boolean }> = [
  { key: 'pgfault', metric: PAGE_FAULTS, required: true },
  { key: 'pgmajfault', metric: MAJOR_PAGE_FAULTS, required: true },
  { key: 'pswpin', metric: SWAP_IN, required: true },
  { key: 'pswpout', metric: SWAP_OUT, required: true },
  { key: 'oom_kill', metric: OOM_KILLS, required: false }, // absent before 4.13
];

// ---------------------------------------------------------------------------------------------
// /proc/meminfo

export const MEMORY_TOTAL = gauge(
  'memory_total_bytes',
  'By',
  '/proc/meminfo `MemTotal` (kB × 1024)',
  'Usable RAM',
);
export const MEMORY_AVAILABLE = gauge(
  'memory_available_bytes',
  'By',
  '/proc/meminfo `MemAvailable` (kB × 1024)',
  'RAM available for new work without swapping (free + reclaimable)',
);

export const MEMORY_FREE = gauge(
  'memory_free_bytes',
  'By',
  '/proc/meminfo `MemFree` (kB × 1024)',
  'RAM holding nothing (page cache and kernel memory count as used): MemTotal − MemFree is what is resident',
);

// ---------------------------------------------------------------------------------------------
// /sys/kernel/mm/ksm (host only: a guest's KSM merges nothing of the host's). Page counts are
// turned into bytes with the page size (exact); HOST_SYS is honoured like every /sys read.

const HOST: readonly MetricLayer[] = ['host'];
const KSM_SYS = '/sys/kernel/mm/ksm/';

function ksmBytes(file: string, name: string, description: string, since?: string): MetricSpec {
  return {
    name,
    kind: 'gauge',
    unit: 'By',
    scope: 'entity',
    layers: HOST,
    sources: { Linux: `${KSM_SYS}${file} (pages × page size)` },
    description,
    ...(since ? { since } : {}),
  };
}

export const KSM_RUN: MetricSpec = {
  name: 'ksm_run',
  kind: 'gauge',
  unit: '1',
  scope: 'entity',
  layers: HOST,
  sources: { Linux: `${KSM_SYS}run` },
  description: 'KSM state: 0 stopped (merged pages kept), 1 running, 2 unmerging',
};
export const KSM_SHARED = ksmBytes(
  'pages_shared',
  'ksm_shared_bytes',
  'Memory in KSM pages: one copy of each merged content',
);
export const KSM_SHARING = ksmBytes(
  'pages_sharing',
  'ksm_sharing_bytes',
  'Memory KSM saves: further mappings of the merged pages, each a page not allocated',
);
export const KSM_UNSHARED = ksmBytes(
  'pages_unshared',
  'ksm_unshared_bytes',
  'Mergeable memory KSM checked and found unique (scanned, nothing to merge)',
);
export const KSM_VOLATILE = ksmBytes(
  'pages_volatile',
  'ksm_volatile_bytes',
  'Mergeable memory changing too fast to be merged',
);
export const KSM_ZERO_PAGES = ksmBytes(
  'ksm_zero_pages',
  'ksm_zero_page_bytes',
  'Empty pages KSM mapped to the kernel zero page (use_zero_pages=1): saved, not in pages_sharing (where the kernel has the file)',
);
export const KSM_GENERAL_PROFIT: MetricSpec = {
  name: 'ksm_general_profit_bytes',
  kind: 'gauge',
  unit: 'By',
  scope: 'entity',
  layers: HOST,
  sources: { Linux: `${KSM_SYS}general_profit` },
  description:
    "KSM's net saving by the kernel's count: (pages_sharing + ksm_zero_pages) × page size − its rmap_items' memory; negative when scanning costs more than it saves",
  since: 'Linux 6.4',
};
export const KSM_FULL_SCANS: MetricSpec = {
  name: 'ksm_full_scans_total',
  kind: 'counter',
  unit: '{scan}',
  scope: 'entity',
  layers: HOST,
  sources: { Linux: `${KSM_SYS}full_scans` },
  description: 'Passes of ksmd over all mergeable memory',
  rate: perSecond(
    'ksm_full_scans_per_second',
    '{scan}/s',
    'Passes of ksmd over all mergeable memory, per second',
  ),
};
export const KSMD_CPU: MetricSpec = {
  name: 'ksmd_cpu_usec_total',
  kind: 'counter',
  unit: 'us',
  scope: 'entity',
  layers: HOST,
  sources: { Linux: `/proc/PID/stat of the \`ksmd\` kernel thread: utime + stime (fields 14, 15), ${TICKS}` },
  description: 'CPU time ksmd spent scanning and merging',
  rate: cores('ksmd_cpu_cores', 'spent by ksmd scanning and merging'),
};

/** /sys/kernel/mm/ksm files read each tick, with the entry each feeds; `pages`: × page size. */
export const KSM_FILES: ReadonlyArray<{ file: string; metric: MetricSpec; pages: boolean }> = [
  { file: 'run', metric: KSM_RUN, pages: false },
  { file: 'pages_shared', metric: KSM_SHARED, pages: true },
  { file: 'pages_sharing', metric: KSM_SHARING, pages: true },
  { file: 'pages_unshared', metric: KSM_UNSHARED, pages: true },
  { file: 'pages_volatile', metric: KSM_VOLATILE, pages: true },
  { file: 'full_scans', metric: KSM_FULL_SCANS, pages: false },
  { file: 'general_profit', metric: KSM_GENERAL_PROFIT, pages: false },
  { file: 'ksm_zero_pages', metric: KSM_ZERO_PAGES, pages: true },
];

// ---------------------------------------------------------------------------------------------
// /proc/pressure/{cpu,io,memory} (the cgroup collector parses cgroup v2 *.pressure with the same
// parser; the container catalogue declares those)

export type PsiResource = 'cpu' | 'io' | 'memory';
export type PsiKind = 'some' | 'full';

function psiTotal(r: PsiResource, k: PsiKind): MetricSpec {
  const who = k === 'some' ? 'at least one task' : 'all non-idle tasks';
  return {
    name: `psi_${r}_${k}_usec_total`,
    kind: 'counter',
    unit: 'us',
    scope: 'entity',
    layers: PROC,
    sources: { 'Linux 4.20+': `/proc/pressure/${r} \`${k}\` line, \`total=\`` },
    description: `Time ${who} stalled on ${r}`,
    rate: {
      field: `psi_${r}_${k}_stall_ratio`,
      unit: '1',
      scale: 1e-6,
      description: `Share of wall time ${who} stalled on ${r}`,
    },
    since: 'Linux 4.20 (cpu `full`: 5.13)',
  };
}

/**
 * PSI entries per resource and line: [counter]. Only `total=` is read and sent: the kernel's
 * `avg10=` is its own 10 s average of what the processor's `*_stall_ratio` rate gives for the
 * exact interval from the totals (docs/schema.md).
 */
export const PSI = {
  cpu: { some: [psiTotal('cpu', 'some')], full: [psiTotal('cpu', 'full')] },
  io: { some: [psiTotal('io', 'some')], full: [psiTotal('io', 'full')] },
  memory: { some: [psiTotal('memory', 'some')], full: [psiTotal('memory', 'full')] },
} as const;

// ---------------------------------------------------------------------------------------------
// /proc/diskstats (devices)

function disk(
  name: string,
  position: number,
  unit: string,
  description: string,
  rate: RateDerivation | null,
  extra: Partial<MetricSpec> = {},
): MetricSpec {
  return {
    name,
    kind: 'counter',
    unit,
    scope: 'device',
    layers: PROC,
    sources: {
      Linux: `/proc/diskstats field ${position}${unit === 'By' ? ' (512-byte sectors × 512)' : ''}`,
    },
    description,
    rate,
    ...extra,
  };
}
function latency(op: string, ops: string): MetricSpec['latency'] {
  return {
    ops,
    field: `${op}_latency_ms_per_op`,
    toMs: 1,
    description: `Mean time per ${op} (queue + service), ms; only when ops were done`,
  };
}
const iops = (op: string) =>
  perSecond(`${op}_iops`, '{op}/s', `${op === 'flush' ? 'flushes' : `${op}s`} completed per second`);

export const READS_COMPLETED = disk('reads_completed_total', 4, '{op}', 'Reads completed', iops('read'));
export const READS_MERGED = disk(
  'reads_merged_total',
  5,
  '{op}',
  'Adjacent reads merged before reaching the device',
  perSecond('reads_merged_per_second', '{op}/s', 'Reads merged per second'),
);
export const READ_BYTES = disk(
  'read_bytes_total',
  6,
  'By',
  'Bytes read',
  perSecond('read_bytes_per_second', 'By/s', 'Bytes read per second'),
);
export const READ_TIME_MS = disk('read_time_ms_total', 7, 'ms', 'Time spent by all reads', null, {
  latency: latency('read', READS_COMPLETED.name),
});
export const WRITES_COMPLETED = disk('writes_completed_total', 8, '{op}', 'Writes completed', iops('write'));
export const WRITES_MERGED = disk(
  'writes_merged_total',
  9,
  '{op}',
  'Adjacent writes merged before reaching the device',
  perSecond('writes_merged_per_second', '{op}/s', 'Writes merged per second'),
);
export const WRITTEN_BYTES = disk(
  'written_bytes_total',
  10,
  'By',
  'Bytes written',
  perSecond('written_bytes_per_second', 'By/s', 'Bytes written per second'),
);
export const WRITE_TIME_MS = disk('write_time_ms_total', 11, 'ms', 'Time spent by all writes', null, {
  latency: latency('write', WRITES_COMPLETED.name),
});
export const IN_FLIGHT: MetricSpec = {
  name: 'in_flight_requests',
  kind: 'gauge',
  unit: '{op}',
  scope: 'device',
  layers: PROC,
  sources: { Linux: '/proc/diskstats field 12' },
  description: 'I/Os issued to the device and not completed yet',
};
export const IO_TIME_MS = disk('io_time_ms_total', 13, 'ms', 'Time the device had I/O in flight (io_ticks)', {
  field: 'utilization_ratio',
  unit: '1',
  scale: 1e-3,
  description: 'Share of wall time the device was busy',
});
export const WEIGHTED_IO_TIME_MS = disk(
  'weighted_io_time_ms_total',
  14,
  'ms',
  'Time in flight weighted by the number of I/Os in flight',
  {
    field: 'avg_queue_depth',
    unit: '{op}',
    scale: 1e-3,
    description: 'Mean I/Os in flight (queued or in service)',
  },
);
export const DISCARDS_COMPLETED = disk(
  'discards_completed_total',
  15,
  '{op}',
  'Discards completed',
  iops('discard'),
  {
    since: 'Linux 4.18',
  },
);
export const DISCARDED_BYTES = disk(
  'discarded_bytes_total',
  17,
  'By',
  'Bytes discarded',
  perSecond('discarded_bytes_per_second', 'By/s', 'Bytes discarded per second'),
  { since: 'Linux 4.18' },
);
export const DISCARD_TIME_MS = disk('discard_time_ms_total', 18, 'ms', 'Time spent by all discards', null, {
  latency: latency('discard', DISCARDS_COMPLETED.name),
  since: 'Linux 4.18',
});
export const FLUSHES_COMPLETED = disk(
  'flushes_completed_total',
  19,
  '{op}',
  'Flushes completed',
  iops('flush'),
  {
    since: 'Linux 5.5',
  },
);
export const FLUSH_TIME_MS = disk('flush_time_ms_total', 20, 'ms', 'Time spent by all flushes', null, {
  latency: latency('flush', FLUSHES_COMPLETED.name),
  since: 'Linux 5.5',
});

/**
 * /proc/diskstats fields after "major minor name", in order, with the multiplier to the unit of
 * the name (sectors are 512 bytes whatever the device's block size). `null`: not exported
 * (merged discards).
 */
export const DISK_FIELDS: ReadonlyArray<readonly [MetricSpec | null, number]> = [
  [READS_COMPLETED, 1],
  [READS_MERGED, 1],
  [READ_BYTES, 512],
  [READ_TIME_MS, 1],
  [WRITES_COMPLETED, 1],
  [WRITES_MERGED, 1],
  [WRITTEN_BYTES, 512],
  [WRITE_TIME_MS, 1],
  [IN_FLIGHT, 1], // gauge
  [IO_TIME_MS, 1],
  [WEIGHTED_IO_TIME_MS, 1],
  [DISCARDS_COMPLETED, 1],
  [null, 1], // discards merged
  [DISCARDED_BYTES, 512],
  [DISCARD_TIME_MS, 1],
  [FLUSHES_COMPLETED, 1],
  [FLUSH_TIME_MS, 1],
];

// ---------------------------------------------------------------------------------------------
// /proc/net/dev (interfaces)

function net(
  dir: 'rx' | 'tx',
  what: string,
  position: number,
  unit: string,
  description: string,
): MetricSpec {
  return {
    name: `${dir}_${what}_total`,
    kind: 'counter',
    unit,
    scope: 'interface',
    layers: PROC,
    sources: { Linux: `/proc/net/dev column ${position} (some drivers wrap at 2³²)` },
    description,
    rate: perSecond(`${dir}_${what}_per_second`, `${unit}/s`, `${description}, per second`),
  };
}

export const RX_BYTES = net('rx', 'bytes', 1, 'By', 'Bytes received');
export const RX_PACKETS = net('rx', 'packets', 2, '{packet}', 'Packets received');
export const RX_ERRORS = net('rx', 'errors', 3, '{packet}', 'Receive errors');
export const RX_DROPPED = net('rx', 'dropped', 4, '{packet}', 'Received packets dropped');
export const TX_BYTES = net('tx', 'bytes', 9, 'By', 'Bytes sent');
export const TX_PACKETS = net('tx', 'packets', 10, '{packet}', 'Packets sent');
export const TX_ERRORS = net('tx', 'errors', 11, '{packet}', 'Send errors');
export const TX_DROPPED = net('tx', 'dropped', 12, '{packet}', 'Packets dropped on send');

/** /proc/net/dev's 16 columns after "name:", in order; `null`: not exported. */
export const NETDEV_FIELDS: ReadonlyArray<MetricSpec | null> = [
  RX_BYTES,
  RX_PACKETS,
  RX_ERRORS,
  RX_DROPPED,
  null, // fifo
  null, // frame
  null, // compressed
  null, // multicast
  TX_BYTES,
  TX_PACKETS,
  TX_ERRORS,
  TX_DROPPED,
  null, // fifo
  null, // colls
  null, // carrier
  null, // compressed
];

// ---------------------------------------------------------------------------------------------

/** Every entry of this catalogue, in documentation order. */
export const PROC_METRICS: readonly MetricSpec[] = [
  ...CPU_FIELDS,
  CONTEXT_SWITCHES,
  INTERRUPTS,
  PROCESSES_FORKED,
  PROCS_RUNNING,
  PROCS_BLOCKED,
  CPU_COUNT,
  ...VMSTAT_KEYS.map((k) => k.metric),
  MEMORY_TOTAL,
  MEMORY_AVAILABLE,
  MEMORY_FREE,
  ...KSM_FILES.map((k) => k.metric),
  KSMD_CPU,
  ...(['cpu', 'io', 'memory'] as const).flatMap((r) => [...PSI[r].some, ...PSI[r].full]),
  ...DISK_FIELDS.flatMap(([m]) => (m ? [m] : [])),
  ...NETDEV_FIELDS.flatMap((m) => (m ? [m] : [])),
];
