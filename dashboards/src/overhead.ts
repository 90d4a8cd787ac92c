// Per-layer overhead: every figure of docs/overhead.md §2 over time, per VM, per container, per node.
import { Board, IDLE_GAP, incidentAnnotation, type PanelOpts, VAR } from './board.ts';
import { cond, type Expect, fromLayers, InfluxQL, overheadSeries, q } from './influxql.ts';
import { type Field, OVERHEAD_FIELDS as O, TAG } from './schema.ts';

/** One figure of a panel; `expect` overrides the panel's scenario for this one target. */
type Fig = { field: Field; as: string; expect?: Expect };

export function overhead(): Board {
  const b = new Board(
    'strata-overhead',
    'strata — per-layer overhead',
    "Every figure of docs/overhead.md §2 over time (a VM's and a container's on strata_vm / strata_container, a node's on strata_overhead): VMs (hypervisor against the guest's own view), containers (cost per unit of work against the host) and nodes (where the CPU goes). A figure is missing, not 0, when there was too little work under it to mean something (overhead.min* settings).",
  );
  b.builder
    .withVariable(VAR.node())
    .withVariable(
      // VMs and containers only: their overhead figures are fields of their own points.
      VAR.entity().query(
        `SHOW TAG VALUES FROM ${fromLayers(['container', 'vm'])} WITH KEY = ${q(TAG.name)} WHERE ${cond.node}`,
      ),
    )
    .annotation(incidentAnnotation());
  const panel = (title: string, o: PanelOpts, figs: Fig[], expect: Expect) => {
    const by = figs[0]!.field.overheadLayer === 'node' ? [TAG.node] : [TAG.node, TAG.name];
    const where = figs[0]!.field.overheadLayer === 'node' ? [] : [cond.entity];
    const targets = figs.map(
      (f, i) =>
        new InfluxQL(overheadSeries([{ field: f.field, as: f.as }], { by, where }), {
          refId: String.fromCharCode(65 + i),
          alias: by.length > 1 ? `$tag_name ${f.as}` : `$tag_node ${f.as}`,
          expect: f.expect ?? expect,
        }),
    );
    b.timeseries(title, o, ...targets);
  };

  b.row('VMs: the hypervisor against the guest (§2.1)');
  panel(
    'Hypervisor CPU per guest CPU',
    {
      unit: 'ratio',
      thresholds: [1.5, 3],
      description:
        "cpu_overhead_ratio = hypervisor CPU ÷ guest busy CPU. 1.0 (100 %) = free virtualization; 2.0 = the VM costs twice its guest's work. Below 1 = host contention (the guest counts time it did not run, TCG reports no steal). Written when the guest is busy ≥ overhead.minGuestBusyCores.",
    },
    [{ field: O.cpuOverheadRatio, as: 'hypervisor/guest' }],
    'vm',
  );
  panel(
    'VM CPU: hypervisor, vCPU threads, guest, overhead',
    {
      unit: 'cores',
      description:
        'Cores: the whole QEMU process, its vCPU threads, the rest of QEMU (I/O threads, emulation), what the guest says it used, the CPU the host took from the guest (steal), and cpu_overhead_cores = hypervisor − guest busy (0 = free; an idle guest costs all of its hypervisor CPU).',
    },
    [
      { field: O.hypervisorCpu, as: 'hypervisor' },
      { field: O.vcpuCores, as: 'vCPU threads' },
      { field: O.hypervisorNonVcpu, as: 'non-vCPU' },
      { field: O.guestBusy, as: 'guest busy' },
      { field: O.guestStealCores, as: 'guest steal' },
      { field: O.cpuOverheadCores, as: 'overhead' },
    ],
    'vm',
  );
  panel(
    'Guest steal',
    {
      unit: 'ratio',
      thresholds: [0.05, 0.2],
      description: "guest_cpu_steal_ratio: share of the guest's CPU time the host took. 0 = none stolen.",
    },
    [{ field: O.guestSteal, as: 'steal' }],
    'vm',
  );
  panel(
    'Guest sample offset',
    {
      unit: 'ms',
      description:
        "guest_interval_offset_ms = end of the joined guest interval − end of the VM's interval (docs/overhead.md §2.1). 0 = both views cover the same time; negative = the guest's interval ended earlier. In a tick where the load changes, the VM figures are off by up to this much.",
    },
    [{ field: O.guestIntervalOffset, as: 'offset' }],
    'vm',
  );
  // The captured VM (testdata/processor/vm-tcg) only reads, and has no known backing device.
  panel(
    'I/O latency per op: guest, hypervisor, host device',
    {
      unit: 'ms',
      description:
        "Mean ms per read/write as the guest sees it (/proc/diskstats inside), as QEMU sees it (QMP blockstats) and as the host disk holding the VM's images does (when the backing device is known: overhead.vmBackingDevices). Written when both sides did ≥ overhead.minOpsPerInterval ops.",
    },
    [
      { field: O.guestReadLatency, as: 'guest read' },
      { field: O.hypervisorReadLatency, as: 'hypervisor read' },
      { field: O.guestWriteLatency, as: 'guest write', expect: 'none' },
      { field: O.hypervisorWriteLatency, as: 'hypervisor write', expect: 'none' },
      { field: O.hostDeviceReadLatency, as: 'host device read', expect: 'none' },
      { field: O.hostDeviceWriteLatency, as: 'host device write', expect: 'none' },
    ],
    'vm',
  );
  panel(
    'Added I/O latency per op',
    {
      unit: 'ms',
      thresholds: [0.5, 2],
      description:
        'ms per op virtualization adds. guest added = guest − hypervisor (guest kernel, virtio, exits); hypervisor added = hypervisor − host device (QEMU block layer, image format, host file system); added = guest − host device. 0 = nothing added. The host-device parts need the backing device (overhead.vmBackingDevices).',
    },
    [
      { field: O.readGuestAdded, as: 'read guest added' },
      { field: O.writeGuestAdded, as: 'write guest added', expect: 'none' },
      { field: O.readHypervisorAdded, as: 'read hypervisor added', expect: 'none' },
      { field: O.writeHypervisorAdded, as: 'write hypervisor added', expect: 'none' },
      { field: O.readAdded, as: 'read added', expect: 'none' },
      { field: O.writeAdded, as: 'write added', expect: 'none' },
    ],
    'vm',
  );
  panel(
    'I/O amplification',
    {
      unit: 'ratio',
      thresholds: [1.5, 3],
      description:
        'QEMU ops per guest op and QEMU bytes per guest byte. 1.0 (100 %) = one host op per guest op.',
    },
    [
      { field: O.opsAmplification, as: 'ops' },
      { field: O.bytesAmplification, as: 'bytes' },
    ],
    'vm',
  );
  panel(
    'Network: packets through taps and in the guest',
    {
      unit: 'pps',
      description: "Packets per second through the VM's taps and seen by the guest (lo excluded).",
    },
    [
      { field: O.tapPackets, as: 'tap' },
      { field: O.guestPackets, as: 'guest' },
    ],
    // The captured VM (testdata/processor/vm-tcg) has user-mode networking: no tap.
    'none',
  );
  panel(
    'Network: tap packets per guest packet',
    {
      unit: 'ratio',
      description: 'net_tap_per_guest_packet_ratio. 1.0 (100 %) = every guest packet crosses the tap once.',
    },
    [{ field: O.tapPerGuestPacket, as: 'tap/guest' }],
    'none',
  );
  panel(
    'Network: hypervisor CPU per guest packet',
    {
      unit: 'us',
      description:
        "µs of hypervisor CPU per guest packet (an upper bound: includes the guest's own work), and of overhead CPU (hypervisor − guest busy) per guest packet. 0 = free.",
    },
    [
      { field: O.hypervisorUsecPerPacket, as: 'hypervisor' },
      { field: O.overheadUsecPerPacket, as: 'overhead' },
    ],
    'none',
  );
  panel(
    'Page faults: guest and hypervisor',
    {
      unit: 'per_second',
      axisLabel: 'faults/s',
      description:
        "Faults per second inside the guest, of the QEMU process, and as the guest's balloon driver reports them to QEMU.",
    },
    [
      { field: O.guestFaults, as: 'guest' },
      { field: O.hypervisorFaults, as: 'hypervisor' },
      { field: O.guestReportedFaults, as: 'guest reported (balloon)' },
    ],
    'vm',
  );
  panel(
    'Hypervisor faults per guest fault',
    {
      unit: 'ratio',
      description:
        "hypervisor_faults_per_guest_fault_ratio. 0 = the guest's faults cost the host none; 1.0 (100 %) = one host fault per guest fault.",
    },
    [{ field: O.faultsPerGuestFault, as: 'hypervisor/guest' }],
    'vm',
  );

  b.row('Containers: cost per unit of work against the host (§2.2)');
  panel(
    'CPU per packet: container and host',
    {
      unit: 'us',
      description: 'µs of CPU per packet: the container (its own interfaces) and the host (physical NICs).',
    },
    [
      { field: O.usecPerPacket, as: 'container' },
      { field: O.hostUsecPerPacket, as: 'host' },
    ],
    'none',
  );
  panel(
    'CPU per packet against the host',
    {
      unit: 'ratio',
      thresholds: [2, 5],
      description:
        'cpu_per_packet_vs_host_ratio = container ÷ host CPU per packet. 1.0 (100 %) = the container costs what the host does per packet.',
    },
    [{ field: O.perPacketVsHost, as: 'container/host' }],
    'none',
  );
  panel(
    'I/O stall per op and host device latency',
    {
      unit: 'ms',
      description:
        "io_stall_ms_per_op = PSI io some × 1000 ÷ the container's IOPS; host_device_latency_ms_per_op = the host devices' latency where the container does I/O.",
    },
    [
      { field: O.ioStallPerOp, as: 'stall per op' },
      { field: O.hostDeviceLatency, as: 'host device' },
    ],
    'container',
  );
  panel(
    'I/O stall per op against device latency',
    {
      unit: 'ratio',
      thresholds: [2, 5],
      description:
        'io_stall_per_op_vs_host_latency_ratio. 1.0 (100 %) = the container waits what the device takes per op; above = queueing behind others.',
    },
    [{ field: O.stallVsHostLatency, as: 'stall/device' }],
    'container',
  );
  b.timeseries(
    'Share of each host device',
    {
      unit: 'ratio',
      thresholds: [0.8],
      description: `iops_share_ratio and bytes_share_ratio: the container's share of a host device's ops and bytes (0 = none, 1.0 = all). Different files read ms apart: may slightly exceed 1. ${IDLE_GAP}`,
    },
    new InfluxQL(
      overheadSeries([{ field: O.iopsShare, as: 'ops' }], {
        by: [TAG.node, TAG.name, TAG.device],
        where: [cond.entity],
      }),
      {
        refId: 'A',
        alias: '$tag_name $tag_device ops',
        expect: 'container',
      },
    ),
    new InfluxQL(
      overheadSeries([{ field: O.bytesShare, as: 'bytes' }], {
        by: [TAG.node, TAG.name, TAG.device],
        where: [cond.entity],
      }),
      {
        refId: 'B',
        alias: '$tag_name $tag_device bytes',
        expect: 'container',
      },
    ),
  );

  b.row('Memory: what each layer costs in RAM (§2.4)');
  // The captured VM (testdata/processor/vm-tcg) predates smaps_rollup: the host pays its VmRSS and
  // there is no KSM figure; the live run's host has KSM's attributes and a container.
  panel(
    'VM memory: what the host pays, what the guest uses',
    {
      unit: 'bytes',
      description:
        "hypervisor = the QEMU process's Pss (merged and shared pages divided among their mappers; VmRSS without smaps_rollup); guest used = MemTotal − MemAvailable inside; overhead = hypervisor − guest used (QEMU's own memory and guest RAM touched then freed; negative when KSM or swap saves more); KSM saving = Anonymous − Pss_Anon + zero pages, the VM's share of what KSM merged.",
    },
    [
      { field: O.hypervisorMemory, as: 'host pays' },
      { field: O.guestMemoryTotal, as: 'guest total' },
      { field: O.guestMemoryUsed, as: 'guest used' },
      { field: O.memoryOverhead, as: 'overhead' },
      { field: O.ksmSaving, as: 'KSM saving', expect: 'none' },
    ],
    'vm',
  );
  panel(
    'Node memory by layer',
    {
      unit: 'bytes',
      stack: true,
      description:
        "Resident memory (MemTotal − MemFree, page cache included), stacked: containers (their memory.current, nested hypervisors taken out), VM hypervisor processes (Pss), the host outside both. Their sum is the node's resident memory.",
    },
    [
      { field: O.containersMemory, as: 'containers', expect: 'host' },
      { field: O.vmsMemory, as: 'VM hypervisors' },
      { field: O.hostOtherMemory, as: 'host other', expect: 'host' },
    ],
    'vm',
  );
  panel(
    'Node: containers’ page cache and anonymous memory, VMs’ overhead',
    {
      unit: 'bytes',
      description:
        "Containers' page cache (memory.stat file) against their anonymous memory: with the overlay storage drivers containers of one image share its files' cache, with devicemapper, btrfs or vfs each holds its own copy (tag storage_driver on strata_container). VMs' overhead: Σ memory_overhead_bytes of the VMs joined with a guest view.",
    },
    [
      { field: O.containersMemoryFile, as: 'containers page cache', expect: 'host' },
      { field: O.containersMemoryAnon, as: 'containers anonymous', expect: 'host' },
      { field: O.vmsMemoryOverhead, as: 'VMs overhead', expect: 'vm' },
    ],
    'host',
  );
  panel(
    'Node: what KSM saves',
    {
      unit: 'bytes',
      description:
        "host = pages_sharing (+ zero pages) × page size: memory KSM folded on the node; VMs = Σ each VM's KSM saving. 0 with KSM stopped. What it costs: ksmd_cpu_cores, next panel.",
    },
    [
      { field: O.hostKsmSaving, as: 'host' },
      { field: O.vmsKsmSaving, as: 'VMs', expect: 'none' },
    ],
    'host',
  );
  panel(
    'Node: ksmd CPU',
    {
      unit: 'cores',
      description:
        'Cores the ksmd kernel thread spends scanning and merging: the price of the saving above. 0 with KSM stopped.',
    },
    [{ field: O.ksmdCpu, as: 'ksmd' }],
    'host',
  );

  b.row('Nodes: where the CPU goes (§2.3)');
  panel(
    'Node CPU by layer',
    {
      unit: 'cores',
      stack: true,
      description:
        "Cores, stacked: containers (nested hypervisors taken out), VM hypervisor processes, the host outside both. Their sum is the node's busy CPU.",
    },
    [
      { field: O.containersCpu, as: 'containers' },
      { field: O.vmsCpu, as: 'VM hypervisors' },
      { field: O.hostOtherCpu, as: 'host other' },
    ],
    'host',
  );
  panel(
    'Node: guests and virtualization overhead',
    {
      unit: 'cores',
      description: 'Cores: what the joined guests say they used, and what the VMs cost beyond it (0 = free).',
    },
    [
      { field: O.guestsBusy, as: 'guests busy' },
      { field: O.virtOverheadCores, as: 'virtualization overhead' },
    ],
    'vm',
  );
  panel(
    'Node: shares of busy CPU',
    {
      unit: 'ratio',
      description: "Containers, VMs and virtualization overhead ÷ the node's busy CPU (0–100 %).",
    },
    [
      { field: O.containersRatio, as: 'containers' },
      { field: O.vmsRatio, as: 'VMs' },
      { field: O.virtOverheadRatio, as: 'virtualization overhead' },
    ],
    'host',
  );
  panel(
    'Node: virtualization overhead share of capacity',
    {
      unit: 'ratio',
      thresholds: [0.1, 0.25],
      description:
        "virtualization_cpu_overhead_capacity_ratio = VM overhead cores ÷ the node's CPUs. 0 = no overhead; 0.25 = a quarter of the machine goes to virtualization.",
    },
    [{ field: O.virtOverheadCapacity, as: 'overhead/capacity' }],
    'vm',
  );
  panel(
    'Node: entities',
    {
      unit: 'count',
      description:
        'Containers, VMs, VMs whose hypervisor runs inside a container, and VMs joined with a guest view, per tick.',
    },
    [
      { field: O.containers, as: 'containers' },
      { field: O.vms, as: 'VMs' },
      { field: O.vmsInContainers, as: 'VMs in containers' },
      { field: O.vmsWithGuest, as: 'VMs with guest view' },
    ],
    'host',
  );
  return b;
}
