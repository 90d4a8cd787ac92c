// Fleet overview: every node and layer at a glance.
import { Board, IDLE_ZERO, incidentAnnotation, VAR } from './board.ts';
import { cond, InfluxQL, layerSum, overheadSeries, q } from './influxql.ts';
import { ALERT_FIELDS as A, LAYER_FIELDS as L, MEASUREMENT, OVERHEAD_FIELDS as O, TAG } from './schema.ts';

export function fleet(): Board {
  const b = new Board(
    'strata-fleet',
    'strata — fleet overview',
    'Every node and layer (host, containers, VMs, guests): CPU, faults, IOPS, packets and the largest overheads. Red marks are noisy-neighbour incidents (strata_alert). Data: strata_* measurements, docs/schema.md.',
  );
  b.builder.withVariable(VAR.node()).annotation(incidentAnnotation());
  b.row('Per node and layer')
    .timeseries(
      'CPU in use per node and layer',
      {
        unit: 'cores',
        description:
          "CPU cores in use (CPU-seconds per second), summed over the entities of each layer. host = the whole node; containers and VMs are part of it; guests are what the VMs' guests say they use.",
      },
      new InfluxQL(layerSum([{ field: L.cpuCores, as: 'cores' }]), {
        alias: '$tag_node $tag_layer',
        expect: 'host',
      }),
    )
    .timeseries(
      'Page faults per node and layer',
      {
        unit: 'per_second',
        axisLabel: 'faults/s',
        description: 'Page faults per second (minor + major), summed over the entities of each layer.',
      },
      new InfluxQL(layerSum([{ field: L.pageFaults, as: 'faults' }]), {
        alias: '$tag_node $tag_layer',
        expect: 'host',
      }),
    )
    .timeseries(
      'IOPS per node and layer',
      {
        unit: 'iops',
        description: `Reads + writes completed per second, summed over the block devices of the entities of each layer. ${IDLE_ZERO}`,
      },
      new InfluxQL(layerSum([{ field: L.iops, as: 'iops' }]), {
        alias: '$tag_node $tag_layer',
        expect: 'container',
      }),
    )
    .timeseries(
      'Packets per node and layer',
      {
        unit: 'pps',
        description: `Packets received and sent per second, summed over the network interfaces of the entities of each layer. The host row counts every interface the agent reports (collectors.host.interfaces: bridges and veths too, so container traffic shows there more than once). ${IDLE_ZERO}`,
      },
      new InfluxQL(
        layerSum([
          { field: L.rxPackets, as: 'rx' },
          { field: L.txPackets, as: 'tx' },
        ]),
        { alias: '$tag_node $tag_layer $col', expect: 'host' },
      ),
    );
  b.row('Top overheads')
    .bargauge(
      'Hypervisor CPU per guest CPU, worst VMs',
      {
        unit: 'ratio',
        thresholds: [1.5, 3],
        description:
          "cpu_overhead_ratio (docs/overhead.md §2.1): hypervisor CPU ÷ the guest's own busy CPU over the range. 1.0 (100 %) = free virtualization; 2.0 = the VM costs twice what its guest does. Below 1 means host contention (the guest counts time it did not run).",
      },
      new InfluxQL(overheadSeries([O.cpuOverheadRatio], { timeSeries: false }), { expect: 'vm' }),
    )
    .bargauge(
      "Virtualization overhead share of each node's CPUs",
      {
        unit: 'ratio',
        thresholds: [0.1, 0.25],
        description:
          "virtualization_cpu_overhead_capacity_ratio (§2.3): CPU the VMs cost beyond their guests' work ÷ the node's CPUs. 0 = no VM overhead.",
      },
      new InfluxQL(overheadSeries([O.virtOverheadCapacity], { timeSeries: false }), { expect: 'vm' }),
    )
    .bargauge(
      'Container CPU per packet against the host',
      {
        unit: 'ratio',
        thresholds: [2, 5],
        description:
          'cpu_per_packet_vs_host_ratio (§2.2): container CPU per packet ÷ host CPU per packet. 1.0 = the container spends what the host does per packet.',
      },
      new InfluxQL(overheadSeries([O.perPacketVsHost], { timeSeries: false }), { expect: 'none' }),
    )
    .bargauge(
      'Container I/O stall per op against device latency',
      {
        unit: 'ratio',
        thresholds: [2, 5],
        description:
          "io_stall_per_op_vs_host_latency_ratio (§2.2): ms the container stalled per op ÷ the host device's ms per op. 1.0 = the container waits what the device takes; above = it queues behind others.",
      },
      new InfluxQL(overheadSeries([O.stallVsHostLatency], { timeSeries: false }), { expect: 'container' }),
    );
  b.row('Noisy neighbours').table(
    'Incidents',
    {
      unit: 'count',
      description: 'Noisy-neighbour events (strata_alert): firing and resolved, newest first.',
    },
    new InfluxQL(
      `SELECT ${[A.title, A.victims, A.antagonistIopsShare].map(q).join(', ')} FROM ${q(MEASUREMENT.alert)} WHERE ${cond.node} AND $timeFilter GROUP BY ${q(TAG.node)}, ${q(TAG.device)}, ${q(TAG.status)} ORDER BY time DESC LIMIT 50`,
      { table: true, expect: 'noisy' },
    ),
  );
  return b;
}
