// The vm metric catalogue: what the vm collector reports for one QEMU VM seen from the host (the
// hypervisor process, its vCPU threads, QMP replies, its tap devices). Parsers (parsers.ts) and
// the collector (index.ts) take their names from these entries; the processor its rate fields
// (processors/rates/naming.ts); `npm run docs` writes docs/metrics.md, docs/schema.md and
// collectors/vm/README.md from them. Device and interface names match the /proc ones
// (collectors/host/metrics.ts) so that the guest and vm views of one disk compare name for name.
import type { MetricLayer, MetricSpec } from '../../schemas/catalogue.ts';
import {
  RX_BYTES,
  RX_DROPPED,
  RX_ERRORS,
  RX_PACKETS,
  TX_BYTES,
  TX_DROPPED,
  TX_ERRORS,
  TX_PACKETS,
} from '../host/metrics.ts';

const VM: readonly MetricLayer[] = ['vm'];
const PID_STAT = '/proc/PID/stat of the hypervisor process';
const TICKS = 'USER_HZ ticks × 10⁴ → µs';

function cpu(name: string, field: string, source: string, description: string): MetricSpec {
  return {
    name,
    kind: 'counter',
    unit: 'us',
    scope: 'entity',
    layers: VM,
    sources: { Linux: source },
    description,
    rate: { field, unit: '{core}', scale: 1e-6, description: `${description}, CPU seconds per second` },
  };
}
function faults(name: string, source: string, description: string): MetricSpec {
  const base = name.slice(0, -'_total'.length);
  return {
    name,
    kind: 'counter',
    unit: '{fault}',
    scope: 'entity',
    layers: VM,
    sources: source.startsWith('QMP') ? { QEMU: source } : { Linux: source },
    description,
    rate: {
      field: `${base}_per_second`,
      unit: '{fault}/s',
      scale: 1,
      description: `${description}, per second`,
    },
  };
}

export const CPU_USAGE = cpu(
  'cpu_usage_usec_total',
  'cpu_cores',
  `${PID_STAT}: utime + stime (fields 14, 15), ${TICKS}`,
  'CPU time of the whole hypervisor process (vCPUs, I/O threads, emulation)',
);
export const CPU_USER = cpu(
  'cpu_user_usec_total',
  'cpu_user_cores',
  `${PID_STAT}: utime (field 14), ${TICKS}`,
  'CPU time of the hypervisor process in user mode',
);
export const CPU_SYSTEM = cpu(
  'cpu_system_usec_total',
  'cpu_system_cores',
  `${PID_STAT}: stime (field 15), ${TICKS}`,
  'CPU time of the hypervisor process in kernel mode',
);
export const PAGE_FAULTS = faults(
  'page_faults_total',
  `${PID_STAT}: minflt + majflt (fields 10, 12)`,
  'Page faults of the hypervisor process',
);
export const MAJOR_PAGE_FAULTS = faults(
  'major_page_faults_total',
  `${PID_STAT}: majflt (field 12)`,
  'Page faults of the hypervisor process that needed I/O',
);
export const MEMORY_RSS: MetricSpec = {
  name: 'memory_rss_bytes',
  kind: 'gauge',
  unit: 'By',
  scope: 'entity',
  layers: VM,
  sources: { Linux: '/proc/PID/status `VmRSS` (kB × 1024)' },
  description: 'Resident memory of the hypervisor process (guest RAM it touched included)',
};
export const VCPU = cpu(
  'vcpu_usec_total',
  'vcpu_cores',
  `/proc/PID/task/TID/stat of the QMP \`query-cpus-fast\` thread ids: utime + stime, ${TICKS}`,
  'CPU time of the vCPU threads (guest code and the exits they handle)',
);
export const VCPU_COUNT: MetricSpec = {
  name: 'vcpu_count',
  kind: 'gauge',
  unit: '{cpu}',
  scope: 'entity',
  layers: VM,
  sources: { QEMU: 'QMP `query-cpus-fast` threads' },
  description: 'vCPU threads of the VM',
};
export const GUEST_REPORTED_PAGE_FAULTS = faults(
  'guest_reported_page_faults_total',
  'QMP balloon `guest-stats`: stat-minor-faults + stat-major-faults',
  'Page faults inside the guest, as its balloon driver reports them',
);
export const GUEST_REPORTED_MAJOR_PAGE_FAULTS = faults(
  'guest_reported_major_page_faults_total',
  'QMP balloon `guest-stats`: stat-major-faults',
  'Major page faults inside the guest, as its balloon driver reports them',
);
export const GUEST_REPORTED_MEMORY_FREE: MetricSpec = {
  name: 'guest_reported_memory_free_bytes',
  kind: 'gauge',
  unit: 'By',
  scope: 'entity',
  layers: VM,
  sources: { QEMU: 'QMP balloon `guest-stats`: stat-free-memory' },
  description: 'Free memory inside the guest, as its balloon driver reports it',
};

// ---------------------------------------------------------------------------------------------
// Memory: what the host pays for the VM (/proc/PID/smaps_rollup, /proc/PID/ksm_stat) and the
// balloon (QMP). Formulas built on them: docs/overhead.md, "Memory".

const ROLLUP = '/proc/PID/smaps_rollup of the hypervisor process';
const KSM_STAT = '/proc/PID/ksm_stat of the hypervisor process';

function bytes(
  name: string,
  sources: Record<string, string>,
  description: string,
  since?: string,
): MetricSpec {
  return {
    name,
    kind: 'gauge',
    unit: 'By',
    scope: 'entity',
    layers: VM,
    sources,
    description,
    ...(since ? { since } : {}),
  };
}

export const MEMORY_PSS = bytes(
  'memory_pss_bytes',
  { Linux: `${ROLLUP}: \`Pss\` (kB × 1024)` },
  'Proportional resident memory: each page divided by the processes mapping it (KSM-merged guest pages included), what the host pays for this VM',
  'Linux 4.14',
);
export const MEMORY_ANON = bytes(
  'memory_anon_bytes',
  { Linux: `${ROLLUP}: \`Anonymous\` (kB × 1024)` },
  'Anonymous resident memory (guest RAM with the default backend, QEMU heap, TCG code buffer)',
  'Linux 4.14',
);
export const MEMORY_PSS_ANON = bytes(
  'memory_pss_anon_bytes',
  { Linux: `${ROLLUP}: \`Pss_Anon\` (kB × 1024)` },
  'Anonymous memory divided by its sharers: below memory_anon_bytes by what KSM merged with other processes (where the kernel prints it)',
);
export const MEMORY_FILE = bytes(
  'memory_file_bytes',
  { Linux: `${ROLLUP}: \`Rss\` − \`Anonymous\` (kB × 1024)` },
  'File-backed and shared-memory resident pages (binaries, libraries; guest RAM with a file or memfd backend)',
  'Linux 4.14',
);
export const MEMORY_KSM = bytes(
  'memory_ksm_bytes',
  { Linux: `${ROLLUP}: \`KSM\` (kB × 1024)` },
  'Resident memory backed by KSM pages, merged with identical pages of this or other processes (where the kernel prints it)',
);
export const MEMORY_SWAP = bytes(
  'memory_swap_bytes',
  { Linux: `${ROLLUP}: \`Swap\` (kB × 1024)` },
  'Memory of the hypervisor process swapped out',
  'Linux 4.14',
);
export const KSM_MERGING = bytes(
  'ksm_merging_bytes',
  { Linux: `${KSM_STAT}: \`ksm_merging_pages\` × page size` },
  'Pages of this process KSM merged (each still mapped, now shared)',
  'Linux 6.1',
);
export const KSM_ZERO_PAGES = bytes(
  'ksm_zero_page_bytes',
  { Linux: `${KSM_STAT}: \`ksm_zero_pages\` × page size` },
  'Empty pages of this process KSM mapped to the zero page (use_zero_pages=1): no longer resident (where the kernel prints it)',
);
export const KSM_PROCESS_PROFIT = bytes(
  'ksm_process_profit_bytes',
  { Linux: `${KSM_STAT}: \`ksm_process_profit\`` },
  "The kernel's count of what KSM saves for this process: (merging + zero pages) × page size − its rmap_items' memory; may be negative (where the kernel prints it)",
);
export const BALLOON_ACTUAL = bytes(
  'balloon_actual_bytes',
  { QEMU: 'QMP `query-balloon` `actual`' },
  'Memory the guest has now: its RAM minus what the balloon holds (equals the RAM when not inflated)',
);
export const MEMORY_CONFIGURED = bytes(
  'guest_memory_configured_bytes',
  { QEMU: 'QMP `query-memory-size-summary` `base-memory` + `plugged-memory` (once per connection)' },
  'RAM the VM was given (boot RAM plus hot-plugged DIMMs)',
);

/** smaps_rollup lines read, with the entry each feeds (Rss only feeds memory_file_bytes). */
export const ROLLUP_FIELDS: ReadonlyArray<readonly [string, MetricSpec]> = [
  ['Pss', MEMORY_PSS],
  ['Anonymous', MEMORY_ANON],
  ['Pss_Anon', MEMORY_PSS_ANON],
  ['KSM', MEMORY_KSM],
  ['Swap', MEMORY_SWAP],
];

// ---------------------------------------------------------------------------------------------
// QMP query-blockstats (devices)

function block(
  name: string,
  qmp: string,
  unit: string,
  description: string,
  rate: MetricSpec['rate'],
  latency?: MetricSpec['latency'],
): MetricSpec {
  return {
    name,
    kind: 'counter',
    unit,
    scope: 'device',
    layers: VM,
    sources: { QEMU: `QMP \`query-blockstats\` \`${qmp}\`` },
    description,
    rate,
    ...(latency ? { latency } : {}),
  };
}
const iops = (op: string) => ({
  field: `${op}_iops`,
  unit: '{op}/s',
  scale: 1,
  description: `${op === 'flush' ? 'flushes' : `${op}s`} per second`,
});
const nsLatency = (op: string, ops: string) => ({
  ops,
  field: `${op}_latency_ms_per_op`,
  toMs: 1e-6,
  description: `Mean time per ${op} as QEMU sees it (ns → ms); only when ops were done`,
});

export const READS_COMPLETED = block(
  'reads_completed_total',
  'rd_operations',
  '{op}',
  'Reads the guest issued',
  iops('read'),
);
export const WRITES_COMPLETED = block(
  'writes_completed_total',
  'wr_operations',
  '{op}',
  'Writes the guest issued',
  iops('write'),
);
export const FLUSHES_COMPLETED = block(
  'flushes_completed_total',
  'flush_operations',
  '{op}',
  'Flushes the guest issued',
  iops('flush'),
);
export const READ_BYTES = block('read_bytes_total', 'rd_bytes', 'By', 'Bytes read', {
  field: 'read_bytes_per_second',
  unit: 'By/s',
  scale: 1,
  description: 'Bytes read per second',
});
export const WRITTEN_BYTES = block('written_bytes_total', 'wr_bytes', 'By', 'Bytes written', {
  field: 'written_bytes_per_second',
  unit: 'By/s',
  scale: 1,
  description: 'Bytes written per second',
});
export const READ_TIME_NS = block(
  'read_time_ns_total',
  'rd_total_time_ns',
  'ns',
  'Time spent by all reads, as QEMU sees it',
  null,
  nsLatency('read', READS_COMPLETED.name),
);
export const WRITE_TIME_NS = block(
  'write_time_ns_total',
  'wr_total_time_ns',
  'ns',
  'Time spent by all writes, as QEMU sees it',
  null,
  nsLatency('write', WRITES_COMPLETED.name),
);
export const FLUSH_TIME_NS = block(
  'flush_time_ns_total',
  'flush_total_time_ns',
  'ns',
  'Time spent by all flushes, as QEMU sees it',
  null,
  nsLatency('flush', FLUSHES_COMPLETED.name),
);

/** `query-blockstats` `stats` keys → the entry each feeds, in reply order. */
export const BLOCKSTATS: ReadonlyArray<readonly [string, MetricSpec]> = [
  ['rd_operations', READS_COMPLETED],
  ['wr_operations', WRITES_COMPLETED],
  ['flush_operations', FLUSHES_COMPLETED],
  ['rd_bytes', READ_BYTES],
  ['wr_bytes', WRITTEN_BYTES],
  ['rd_total_time_ns', READ_TIME_NS],
  ['wr_total_time_ns', WRITE_TIME_NS],
  ['flush_total_time_ns', FLUSH_TIME_NS],
];

// ---------------------------------------------------------------------------------------------
// Tap devices (interfaces): the host's /proc/net/dev line of each tap. A tap's tx is what the host
// sent to the guest (the guest's rx).

const tap = (m: MetricSpec): MetricSpec => ({
  ...m,
  layers: VM,
  sources: { Linux: `${m.sources.Linux} of the host, the VM's tap device (tx = towards the guest)` },
});
export const TAP_METRICS: readonly MetricSpec[] = [
  RX_BYTES,
  RX_PACKETS,
  RX_ERRORS,
  RX_DROPPED,
  TX_BYTES,
  TX_PACKETS,
  TX_ERRORS,
  TX_DROPPED,
].map(tap);

/** Every entry of this catalogue, in documentation order. */
export const VM_METRICS: readonly MetricSpec[] = [
  CPU_USAGE,
  CPU_USER,
  CPU_SYSTEM,
  PAGE_FAULTS,
  MAJOR_PAGE_FAULTS,
  MEMORY_RSS,
  VCPU,
  VCPU_COUNT,
  GUEST_REPORTED_PAGE_FAULTS,
  GUEST_REPORTED_MAJOR_PAGE_FAULTS,
  GUEST_REPORTED_MEMORY_FREE,
  MEMORY_PSS,
  MEMORY_ANON,
  MEMORY_PSS_ANON,
  MEMORY_FILE,
  MEMORY_KSM,
  MEMORY_SWAP,
  KSM_MERGING,
  KSM_ZERO_PAGES,
  KSM_PROCESS_PROFIT,
  BALLOON_ACTUAL,
  MEMORY_CONFIGURED,
  ...BLOCKSTATS.map(([, m]) => m),
  ...TAP_METRICS,
];
