// What the dashboards and alert rules read from InfluxDB, declared once. docs/schema.md is the
// truth; a measurement, tag or field renamed there is renamed here and nowhere else: every panel,
// variable, annotation and alert rule builds its InfluxQL from these tables, and
// test/integration/dashboards.test.ts runs the generated queries against data the real pipeline
// wrote, so drift shows up as a failing query or an empty panel.
import { isRateField } from '../../processors/output/zero-rates.ts';

/** The entity layers, each with its own measurement (tag `layer` carries the same name). */
export const LAYERS = ['host', 'container', 'vm', 'guest'] as const;
export type Layer = (typeof LAYERS)[number];

export const MEASUREMENT = {
  host: 'strata_host',
  container: 'strata_container',
  vm: 'strata_vm',
  guest: 'strata_guest',
  /** Only the node totals (tag layer=node): a VM's or container's overhead is on its own point. */
  overhead: 'strata_overhead',
  alert: 'strata_alert',
  bench: 'strata_bench',
} as const;

/** Tag keys the queries filter and group on. */
export const TAG = {
  node: 'node',
  layer: 'layer',
  name: 'name',
  device: 'device',
  iface: 'interface',
  status: 'status',
  antagonist: 'antagonist',
  alertname: 'alertname',
  workload: 'workload',
  case: 'case',
  mode: 'mode',
  runId: 'run_id',
  benchHost: 'host',
} as const;

/** How a panel shows a field: one unit per axis, so cores and ratios never share one. */
export type Unit =
  | 'cores'
  | 'ratio'
  | 'per_second'
  | 'iops'
  | 'Bps'
  | 'ms'
  | 'pps'
  | 'us'
  | 'bytes'
  | 'count'
  | 's';

/**
 * Which rows of a measurement carry a field: the entity's own row (no `device`/`interface` tag),
 * a block-device row or a network-interface row (docs/schema.md, "one point per").
 */
export type Row = 'entity' | 'device' | 'interface';

export interface Field {
  /** The stored field, or for `sumOf` the name the sum is shown under. */
  readonly field: string;
  /**
   * Not stored: read as the sum of these fields of the same row (InfluxQL arithmetic on their
   * aggregates, e.g. `mean("read_iops") + mean("write_iops")`).
   */
  readonly sumOf?: readonly string[];
  readonly unit: Unit;
  readonly row: Row;
  /** Layers whose measurement carries it (layer measurements only). */
  readonly layers?: readonly Layer[];
  /**
   * The figures of docs/overhead.md §2: the layer they are about. `vm` and `container` figures are
   * fields of that layer's own measurement (strata_vm, strata_container: the entity point, or the
   * device rows for the shares); `node` figures are the layer=node points of strata_overhead.
   */
  readonly overheadLayer?: 'vm' | 'container' | 'node';
  /**
   * Device and interface rows only: what a missing point means. An idle device or interface
   * writes one all-zero row, then one per pipeline.output.idleHeartbeatMs (60 s; docs/schema.md,
   * "When a point is written"), so a rate reads as 0 there (`zero`: panels use fill(0)); a per-op
   * figure such as latency has no value without ops (`gap`: fill(none)). Entity metadata
   * (entity_id, cgroup_path) is on strata_entity, which no panel needs.
   */
  readonly idle?: 'zero' | 'gap';
  /**
   * Rates on the entity point of a layer measurement (strata_host, strata_container, strata_vm,
   * strata_guest; processors/output/zero-rates.ts isRateField() by name): with
   * pipeline.output.zeroRates: skip a 0 is written when the rate turns 0 and then once per
   * idleHeartbeatMs, so a point without the field is a 0 there. Such a field is averaged as
   * sum(field) ÷ count(per), `per` being a field written on exactly the points that carry the rate
   * in `write` mode and never left out: the mean over those points, a missing value counting 0,
   * the same figure in both modes (mean() would average the non-zero ticks only), with fill(0).
   * `interval_seconds` for an entity's own rates (on every point but an entity's first, which has
   * no rates); `guest_interval_offset_ms` for a VM's figures of the guest join (on every joined
   * point). strata_overhead (the node totals) is not filtered: mean() there.
   */
  readonly per?: string;
}

/** On every entity point with rates (processors/rates/rates.ts): the count of rate-bearing points. */
export const ENTITY_RATE_POINTS = 'interval_seconds';
/** On every strata_vm point joined with its guest (processors/overhead/overhead.ts). */
export const VM_JOIN_POINTS = 'guest_interval_offset_ms';

const all = LAYERS;
const f = (field: string, unit: Unit, row: Row, layers: readonly Layer[] = all): Field => ({
  field,
  unit,
  row,
  layers,
  ...(row === 'entity' ? {} : { idle: unit === 'ms' ? 'gap' : 'zero' }),
  ...(row === 'entity' && isRateField(field) ? { per: ENTITY_RATE_POINTS } : {}),
});
/**
 * An overhead figure. `per`: for a rate on a VM's or container's entity point, the points that
 * carry it (Field.per): a VM's figures of the guest join by default, a container's on every point.
 */
const o = (
  field: string,
  unit: Unit,
  overheadLayer: 'vm' | 'container' | 'node',
  row: Row = 'entity',
  per: string = overheadLayer === 'vm' ? VM_JOIN_POINTS : ENTITY_RATE_POINTS,
): Field => ({
  field,
  unit,
  row,
  overheadLayer,
  ...(overheadLayer === 'node' ? {} : { layers: [overheadLayer] }),
  // A share of an idle device is undefined (0 ÷ 0), not 0.
  ...(row === 'entity' ? {} : { idle: 'gap' as const }),
  ...(overheadLayer !== 'node' && row === 'entity' && isRateField(field) ? { per } : {}),
});

/** Fields of the layer measurements (strata_host, strata_container, strata_vm, strata_guest). */
export const LAYER_FIELDS = {
  cpuCores: f('cpu_cores', 'cores', 'entity'),
  pageFaults: f('page_faults_per_second', 'per_second', 'entity'),
  majorPageFaults: f('major_page_faults_per_second', 'per_second', 'entity', ['host', 'container', 'guest']),
  psiIoSome: f('psi_io_some_stall_ratio', 'ratio', 'entity', ['host', 'container', 'guest']),
  psiCpuSome: f('psi_cpu_some_stall_ratio', 'ratio', 'entity', ['host', 'container', 'guest']),
  cpuSteal: f('cpu_steal_ratio', 'ratio', 'entity', ['host', 'guest']),
  cpuIowait: f('cpu_iowait_ratio', 'ratio', 'entity', ['host', 'guest']),
  cpuUtilization: f('cpu_utilization_ratio', 'ratio', 'entity', ['host', 'guest']),
  cpuThrottled: f('cpu_throttled_cores', 'cores', 'entity', ['container']),
  vcpuCores: f('vcpu_cores', 'cores', 'entity', ['vm']),
  memoryUsage: f('memory_usage_bytes', 'bytes', 'entity', ['container']),
  memoryRss: f('memory_rss_bytes', 'bytes', 'entity', ['vm']),
  intervalSeconds: f('interval_seconds', 's', 'entity'),
  iops: { ...f('iops', 'iops', 'device'), sumOf: ['read_iops', 'write_iops'] },
  readIops: f('read_iops', 'iops', 'device'),
  writeIops: f('write_iops', 'iops', 'device'),
  readBytes: f('read_bytes_per_second', 'Bps', 'device'),
  writtenBytes: f('written_bytes_per_second', 'Bps', 'device'),
  readLatency: f('read_latency_ms_per_op', 'ms', 'device', ['host', 'vm', 'guest']),
  writeLatency: f('write_latency_ms_per_op', 'ms', 'device', ['host', 'vm', 'guest']),
  deviceUtilization: f('utilization_ratio', 'ratio', 'device', ['host', 'guest']),
  rxPackets: f('rx_packets_per_second', 'pps', 'interface'),
  txPackets: f('tx_packets_per_second', 'pps', 'interface'),
  rxBytes: f('rx_bytes_per_second', 'Bps', 'interface'),
  txBytes: f('tx_bytes_per_second', 'Bps', 'interface'),
} as const satisfies Record<string, Field>;

/**
 * The overhead figures (docs/overhead.md §2), by the layer they are about: VM and container
 * figures on strata_vm / strata_container, node figures on strata_overhead (layer=node).
 */
export const OVERHEAD_FIELDS = {
  // §2.1 VM
  // The VM's own figures, on the same point: the QEMU process's CPU and its vCPU threads'.
  hypervisorCpu: o('cpu_cores', 'cores', 'vm', 'entity', ENTITY_RATE_POINTS),
  vcpuCores: o('vcpu_cores', 'cores', 'vm', 'entity', ENTITY_RATE_POINTS),
  hypervisorNonVcpu: o('hypervisor_non_vcpu_cpu_cores', 'cores', 'vm'),
  guestBusy: o('guest_cpu_busy_cores', 'cores', 'vm'),
  guestSteal: o('guest_cpu_steal_ratio', 'ratio', 'vm'),
  guestStealCores: o('guest_cpu_steal_cores', 'cores', 'vm'),
  guestIntervalOffset: o('guest_interval_offset_ms', 'ms', 'vm'),
  cpuOverheadCores: o('cpu_overhead_cores', 'cores', 'vm'),
  cpuOverheadRatio: o('cpu_overhead_ratio', 'ratio', 'vm'),
  guestReadLatency: o('guest_read_latency_ms_per_op', 'ms', 'vm'),
  hypervisorReadLatency: o('hypervisor_read_latency_ms_per_op', 'ms', 'vm'),
  guestWriteLatency: o('guest_write_latency_ms_per_op', 'ms', 'vm'),
  hypervisorWriteLatency: o('hypervisor_write_latency_ms_per_op', 'ms', 'vm'),
  hostDeviceReadLatency: o('host_device_read_latency_ms_per_op', 'ms', 'vm'),
  hostDeviceWriteLatency: o('host_device_write_latency_ms_per_op', 'ms', 'vm'),
  readGuestAdded: o('io_read_guest_added_latency_ms_per_op', 'ms', 'vm'),
  writeGuestAdded: o('io_write_guest_added_latency_ms_per_op', 'ms', 'vm'),
  readHypervisorAdded: o('io_read_hypervisor_added_latency_ms_per_op', 'ms', 'vm'),
  writeHypervisorAdded: o('io_write_hypervisor_added_latency_ms_per_op', 'ms', 'vm'),
  readAdded: o('io_read_added_latency_ms_per_op', 'ms', 'vm'),
  writeAdded: o('io_write_added_latency_ms_per_op', 'ms', 'vm'),
  opsAmplification: o('io_ops_amplification_ratio', 'ratio', 'vm'),
  bytesAmplification: o('io_bytes_amplification_ratio', 'ratio', 'vm'),
  tapPackets: o('net_tap_packets_per_second', 'pps', 'vm'),
  guestPackets: o('net_guest_packets_per_second', 'pps', 'vm'),
  tapPerGuestPacket: o('net_tap_per_guest_packet_ratio', 'ratio', 'vm'),
  hypervisorUsecPerPacket: o('hypervisor_cpu_usec_per_guest_packet', 'us', 'vm'),
  overheadUsecPerPacket: o('hypervisor_overhead_cpu_usec_per_guest_packet', 'us', 'vm'),
  guestFaults: o('guest_page_faults_per_second', 'per_second', 'vm'),
  // The VM's own figures, on the same point: the QEMU process's faults and the balloon's report.
  hypervisorFaults: o('page_faults_per_second', 'per_second', 'vm', 'entity', ENTITY_RATE_POINTS),
  guestReportedFaults: o(
    'guest_reported_page_faults_per_second',
    'per_second',
    'vm',
    'entity',
    ENTITY_RATE_POINTS,
  ),
  faultsPerGuestFault: o('hypervisor_faults_per_guest_fault_ratio', 'ratio', 'vm'),
  // §2.4 VM memory
  hypervisorMemory: o('hypervisor_memory_bytes', 'bytes', 'vm'),
  guestMemoryTotal: o('guest_memory_total_bytes', 'bytes', 'vm'),
  guestMemoryUsed: o('guest_memory_used_bytes', 'bytes', 'vm'),
  memoryOverhead: o('memory_overhead_bytes', 'bytes', 'vm'),
  ksmSaving: o('ksm_saving_bytes', 'bytes', 'vm'),
  // §2.2 container
  usecPerPacket: o('cpu_usec_per_packet', 'us', 'container'),
  hostUsecPerPacket: o('host_cpu_usec_per_packet', 'us', 'container'),
  perPacketVsHost: o('cpu_per_packet_vs_host_ratio', 'ratio', 'container'),
  ioStallPerOp: o('io_stall_ms_per_op', 'ms', 'container'),
  hostDeviceLatency: o('host_device_latency_ms_per_op', 'ms', 'container'),
  stallVsHostLatency: o('io_stall_per_op_vs_host_latency_ratio', 'ratio', 'container'),
  iopsShare: o('iops_share_ratio', 'ratio', 'container', 'device'),
  bytesShare: o('bytes_share_ratio', 'ratio', 'container', 'device'),
  // §2.3 node
  hostBusy: o('host_cpu_busy_cores', 'cores', 'node'),
  containersCpu: o('containers_cpu_cores', 'cores', 'node'),
  vmsCpu: o('vms_hypervisor_cpu_cores', 'cores', 'node'),
  hostOtherCpu: o('host_other_cpu_cores', 'cores', 'node'),
  guestsBusy: o('guests_cpu_busy_cores', 'cores', 'node'),
  virtOverheadCores: o('virtualization_cpu_overhead_cores', 'cores', 'node'),
  containersRatio: o('containers_cpu_ratio', 'ratio', 'node'),
  vmsRatio: o('vms_cpu_ratio', 'ratio', 'node'),
  virtOverheadRatio: o('virtualization_cpu_overhead_ratio', 'ratio', 'node'),
  virtOverheadCapacity: o('virtualization_cpu_overhead_capacity_ratio', 'ratio', 'node'),
  containers: o('containers', 'count', 'node'),
  vms: o('vms', 'count', 'node'),
  vmsInContainers: o('vms_in_containers', 'count', 'node'),
  vmsWithGuest: o('vms_with_guest_view', 'count', 'node'),
  // §2.4 node memory
  hostMemoryUsed: o('host_memory_used_bytes', 'bytes', 'node'),
  containersMemory: o('containers_memory_bytes', 'bytes', 'node'),
  containersMemoryAnon: o('containers_memory_anon_bytes', 'bytes', 'node'),
  containersMemoryFile: o('containers_memory_file_bytes', 'bytes', 'node'),
  vmsMemory: o('vms_hypervisor_memory_bytes', 'bytes', 'node'),
  hostOtherMemory: o('host_other_memory_bytes', 'bytes', 'node'),
  vmsMemoryOverhead: o('vms_memory_overhead_bytes', 'bytes', 'node'),
  vmsKsmSaving: o('vms_ksm_saving_bytes', 'bytes', 'node'),
  hostKsmSaving: o('host_ksm_saving_bytes', 'bytes', 'node'),
  ksmdCpu: o('ksmd_cpu_cores', 'cores', 'node'),
} as const satisfies Record<string, Field>;

/** strata_alert: one point per incident event (firing, resolved); tags node, alertname, status, device, antagonist. */
export const ALERT_FIELDS = {
  title: 'title',
  text: 'text',
  alertId: 'alert_id',
  victims: 'victims',
  startsAtMs: 'starts_at_ms',
  /** Present on resolved points only: counting it against alert_id gives the incidents still open. */
  endsAtMs: 'ends_at_ms',
  antagonistIopsShare: 'antagonist_iops_share_ratio',
  antagonistBytesShare: 'antagonist_bytes_share_ratio',
  victimStall: 'victim_io_stall_ratio',
  victimBaselineStall: 'victim_baseline_io_stall_ratio',
  correlation: 'antagonist_victim_stall_correlation_ratio',
} as const;

/** strata_bench (bench/report/files.ts): one point per run; tags run_id, workload, case, layer, mode, host. */
export const BENCH_FIELDS = {
  throughput: 'throughput',
  ops: 'ops',
  latencyAvg: 'latency_avg',
  latencyP50: 'latency_p50',
  latencyP99: 'latency_p99',
  wallMs: 'wall_ms',
  cpuUsec: 'cpu_usec',
  cpuPerOp: 'cpu_per_op_us',
  qemuPerVcpu: 'qemu_per_vcpu',
  ok: 'ok',
} as const;
