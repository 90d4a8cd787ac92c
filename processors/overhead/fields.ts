// The overhead fields, declared once: overhead.ts can only write names of this table (its field
// objects are typed by it), and `npm run docs` lists it in docs/schema.md. The formula column
// points at docs/overhead.md, where each one is derived and justified. A VM's and a container's
// fields are written on the entity's own point (`strata_vm`, `strata_container` and its device
// rows), the node's on `strata_overhead`: one line per entity-sample fewer for InfluxDB to index
// (docs/cost.md). Figures the entity's point already carries (a VM's cpu_cores, vcpu_cores, page
// faults) are not repeated under another name.

export interface OverheadField<N extends string = string> {
  readonly name: N;
  readonly unit: string;
  /** Which rows carry it: `strata_vm` (vm), `strata_container` (container, container device), `strata_overhead` (node). */
  readonly layer: 'vm' | 'container' | 'container device' | 'node';
  readonly formula: string;
  readonly description: string;
}

function def<const N extends string>(
  name: N,
  unit: string,
  layer: OverheadField['layer'],
  formula: string,
  description: string,
): OverheadField<N> {
  return { name, unit, layer, formula, description };
}

// Per-op I/O fields of a VM, for reads and for writes (§2.1).
function ioOp<const O extends 'read' | 'write'>(op: O) {
  return [
    def(
      `guest_${op}_latency_ms_per_op`,
      'ms',
      'vm',
      '§2.1: Σ guest disks Δtime ÷ Σ Δops',
      `Mean ${op} latency the guest sees`,
    ),
    def(
      `hypervisor_${op}_latency_ms_per_op`,
      'ms',
      'vm',
      '§2.1: Σ QMP devices Δtime ÷ Σ Δops',
      `Mean ${op} latency QEMU sees for the same VM`,
    ),
    def(
      `io_${op}_guest_added_latency_ms_per_op`,
      'ms',
      'vm',
      `§2.1: guest_${op}_latency − hypervisor_${op}_latency`,
      `${op} latency added between the guest's block layer and QEMU's`,
    ),
    def(
      `host_device_${op}_latency_ms_per_op`,
      'ms',
      'vm',
      "§2.1: the backing host device's own latency",
      `Mean ${op} latency of the host disk holding the VM's images (when known)`,
    ),
    def(
      `io_${op}_hypervisor_added_latency_ms_per_op`,
      'ms',
      'vm',
      `§2.1: hypervisor_${op}_latency − host_device_${op}_latency`,
      `${op} latency added by QEMU over the host device`,
    ),
    def(
      `io_${op}_added_latency_ms_per_op`,
      'ms',
      'vm',
      `§2.1: guest_${op}_latency − host_device_${op}_latency`,
      `${op} latency added by the whole virtual I/O path`,
    ),
  ] as const;
}

export const IO_READ = ioOp('read');
export const IO_WRITE = ioOp('write');

export const OVERHEAD_FIELDS = [
  // layer=vm
  def('guest_entity_id', '', 'vm', 'the guest entity joined', 'Id of the guest view this row joins'),
  def(
    'guest_interval_offset_ms',
    'ms',
    'vm',
    '§2.1: guest ts − vm interval end',
    'Phase of the joined guest interval',
  ),
  def(
    'hypervisor_non_vcpu_cpu_cores',
    '{core}',
    'vm',
    '§2.1: hypervisor − vcpu',
    'CPU of QEMU outside the vCPU threads',
  ),
  def('guest_cpu_busy_cores', '{core}', 'vm', '§2.1: guest cpu_cores', 'CPU the guest says it used'),
  def('guest_cpu_steal_cores', '{core}', 'vm', '§2.1: guest cpu_steal_cores', 'CPU stolen from the guest'),
  def(
    'guest_cpu_steal_ratio',
    '1',
    'vm',
    '§2.1: guest cpu_steal_ratio',
    "Share of the guest's CPU time stolen",
  ),
  def(
    'cpu_overhead_cores',
    '{core}',
    'vm',
    '§2.1: hypervisor − guest busy',
    'CPU the VM costs beyond its own work',
  ),
  def(
    'cpu_overhead_ratio',
    '1',
    'vm',
    '§2.1: hypervisor ÷ guest busy (busy ≥ minGuestBusyCores)',
    'Hypervisor CPU per guest CPU (1.0 = free)',
  ),
  def(
    'host_device',
    '',
    'vm',
    '§2.1: configured or found backing device',
    "Host disk holding the VM's images",
  ),
  ...IO_READ,
  ...IO_WRITE,
  def('io_ops_amplification_ratio', '1', 'vm', '§2.1: Σ QMP iops ÷ Σ guest iops', 'QEMU ops per guest op'),
  def(
    'io_bytes_amplification_ratio',
    '1',
    'vm',
    '§2.1: Σ QMP bytes/s ÷ Σ guest bytes/s',
    'QEMU bytes per guest byte',
  ),
  def('net_tap_packets_per_second', '{packet}/s', 'vm', '§2.1: Σ tap rx + tx', 'Packets through the VM taps'),
  def(
    'net_guest_packets_per_second',
    '{packet}/s',
    'vm',
    '§2.1: Σ guest rx + tx, lo excluded',
    'Packets the guest sees',
  ),
  def(
    'net_tap_per_guest_packet_ratio',
    '1',
    'vm',
    '§2.1: tap ÷ guest packets',
    'Tap packets per guest packet',
  ),
  def(
    'hypervisor_cpu_usec_per_guest_packet',
    'us',
    'vm',
    '§2.1: hypervisor cores × 10⁶ ÷ guest packets/s',
    'Hypervisor CPU per guest packet',
  ),
  def(
    'hypervisor_overhead_cpu_usec_per_guest_packet',
    'us',
    'vm',
    '§2.1: (hypervisor − guest busy) × 10⁶ ÷ guest packets/s',
    'Overhead CPU per guest packet',
  ),
  def(
    'guest_page_faults_per_second',
    '{fault}/s',
    'vm',
    '§2.1: guest page_faults_per_second',
    'Faults inside the guest',
  ),
  def(
    'hypervisor_faults_per_guest_fault_ratio',
    '1',
    'vm',
    '§2.1: hypervisor ÷ guest faults',
    'QEMU faults per guest fault',
  ),
  // layer=vm, memory (§2.4)
  def(
    'hypervisor_memory_bytes',
    'By',
    'vm',
    '§2.4: vm memory_pss_bytes (else memory_rss_bytes)',
    'Memory the host pays for the VM: its hypervisor process, shared pages divided among sharers',
  ),
  def('guest_memory_total_bytes', 'By', 'vm', '§2.4: guest memory_total_bytes', 'RAM the guest kernel sees'),
  def(
    'guest_memory_used_bytes',
    'By',
    'vm',
    '§2.4: guest memory_total − memory_available',
    'Memory the guest uses (its reclaimable cache excluded)',
  ),
  def(
    'memory_overhead_bytes',
    'By',
    'vm',
    '§2.4: hypervisor_memory − guest_memory_used (signed)',
    'Memory the VM costs the host beyond what its guest uses; negative when KSM or swap saves more',
  ),
  def(
    'ksm_saving_bytes',
    'By',
    'vm',
    '§2.4: vm (memory_anon − memory_pss_anon) + ksm_zero_page_bytes',
    "The VM's share of what KSM saves: its merged anonymous memory it no longer pays for",
  ),
  // layer=container
  def(
    'cpu_usec_per_packet',
    'us',
    'container',
    '§2.2: cpu_cores × 10⁶ ÷ packets/s',
    'Container CPU per packet',
  ),
  def(
    'host_cpu_usec_per_packet',
    'us',
    'container',
    '§2.2: host busy × 10⁶ ÷ host packets/s',
    'Host CPU per packet (physical NICs)',
  ),
  def(
    'cpu_per_packet_vs_host_ratio',
    '1',
    'container',
    '§2.2: container ÷ host CPU per packet',
    'Container CPU per packet against the host',
  ),
  def(
    'io_stall_ms_per_op',
    'ms',
    'container',
    '§2.2: psi_io_some_stall_ratio × 1000 ÷ iops',
    'I/O stall time per op',
  ),
  def(
    'host_device_latency_ms_per_op',
    'ms',
    'container',
    "§2.2: host devices' latency weighted by the container's ops",
    'Host device latency where the container does I/O',
  ),
  def(
    'io_stall_per_op_vs_host_latency_ratio',
    '1',
    'container',
    '§2.2: io_stall_ms_per_op ÷ host_device_latency_ms_per_op',
    'Stall per op against the device latency',
  ),
  def(
    'iops_share_ratio',
    '1',
    'container device',
    '§2.2: container iops ÷ host device iops',
    "Container's share of a host device's ops",
  ),
  def(
    'bytes_share_ratio',
    '1',
    'container device',
    '§2.2: container bytes/s ÷ host device bytes/s',
    "Container's share of a host device's bytes",
  ),
  // layer=node
  def('host_cpu_busy_cores', '{core}', 'node', '§2.3: host cpu_cores', 'Busy CPU of the node'),
  def(
    'containers_cpu_cores',
    '{core}',
    'node',
    '§2.3: Σ containers (nested hypervisors taken out)',
    'CPU of containers',
  ),
  def(
    'vms_hypervisor_cpu_cores',
    '{core}',
    'node',
    '§2.3: Σ VMs hypervisor_cpu_cores',
    'CPU of hypervisor processes',
  ),
  def('containers', '{container}', 'node', '§2.3: count', 'Containers this tick'),
  def('vms', '{vm}', 'node', '§2.3: count', 'VMs this tick'),
  def('vms_in_containers', '{vm}', 'node', '§2.3: count', 'VMs whose hypervisor runs in a container'),
  def('vms_with_guest_view', '{vm}', 'node', '§2.3: count', 'VMs joined with a guest view this tick'),
  def(
    'host_other_cpu_cores',
    '{core}',
    'node',
    '§2.3: host busy − containers − VMs (≥ 0)',
    'CPU of the host outside containers and VMs',
  ),
  def(
    'guests_cpu_busy_cores',
    '{core}',
    'node',
    '§2.3: Σ joined guests busy',
    'CPU the guests say they used',
  ),
  def(
    'virtualization_cpu_overhead_cores',
    '{core}',
    'node',
    '§2.3: Σ cpu_overhead_cores',
    'CPU the VMs cost beyond their own work',
  ),
  def('containers_cpu_ratio', '1', 'node', '§2.3: containers ÷ host busy', "Containers' share of busy CPU"),
  def('vms_cpu_ratio', '1', 'node', '§2.3: VMs ÷ host busy', "VMs' share of busy CPU"),
  def(
    'virtualization_cpu_overhead_ratio',
    '1',
    'node',
    '§2.3: overhead ÷ host busy',
    'Virtualization overhead share of busy CPU',
  ),
  def(
    'virtualization_cpu_overhead_capacity_ratio',
    '1',
    'node',
    '§2.3: overhead ÷ cpu_count',
    "Virtualization overhead share of the node's CPUs",
  ),
  // layer=node, memory (§2.4)
  def(
    'host_memory_used_bytes',
    'By',
    'node',
    '§2.4: host memory_total − memory_free',
    'Resident memory of the node (page cache and kernel included)',
  ),
  def(
    'containers_memory_bytes',
    'By',
    'node',
    '§2.4: Σ containers memory_usage (nested hypervisors taken out)',
    'Memory charged to containers',
  ),
  def(
    'containers_memory_anon_bytes',
    'By',
    'node',
    '§2.4: Σ containers memory_anon',
    "Containers' anonymous memory",
  ),
  def(
    'containers_memory_file_bytes',
    'By',
    'node',
    '§2.4: Σ containers memory_file',
    "Containers' page cache (shared between containers only where the storage driver shares files)",
  ),
  def(
    'vms_hypervisor_memory_bytes',
    'By',
    'node',
    '§2.4: Σ VMs hypervisor memory (Pss, else RSS)',
    'Memory of hypervisor processes',
  ),
  def(
    'host_other_memory_bytes',
    'By',
    'node',
    '§2.4: host used − containers − VMs (≥ 0)',
    'Memory of the host outside containers and VMs (kernel, daemons, uncharged cache)',
  ),
  def(
    'vms_memory_overhead_bytes',
    'By',
    'node',
    '§2.4: Σ joined VMs memory_overhead_bytes',
    'Memory the VMs cost beyond what their guests use',
  ),
  def(
    'vms_ksm_saving_bytes',
    'By',
    'node',
    '§2.4: Σ VMs ksm_saving_bytes',
    "What KSM saves on the VMs' memory",
  ),
  def(
    'host_ksm_saving_bytes',
    'By',
    'node',
    '§2.4: host ksm_sharing_bytes + ksm_zero_page_bytes',
    'What KSM saves on the whole node',
  ),
  def('ksmd_cpu_cores', '{core}', 'node', '§2.4: host ksmd_cpu_cores', 'CPU ksmd pays for the saving'),
] as const;

export type OverheadFieldName = (typeof OVERHEAD_FIELDS)[number]['name'];
/** Overhead fields (of a VM's, a container's or the node's point): only names of the table. */
export type OverheadFields = { [K in OverheadFieldName]?: number | string };
