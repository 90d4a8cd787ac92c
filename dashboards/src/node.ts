// Node drill-down: one node's host, containers, VMs and guests, entity by entity.
import { Board, IDLE_GAP, IDLE_ZERO, incidentAnnotation, VAR } from './board.ts';
import { cond, fillFor, fromLayers, InfluxQL, meanFor, rowCond, select } from './influxql.ts';
import { type Field, LAYER_FIELDS as L, type Layer, TAG } from './schema.ts';

/**
 * One field per entity of the selected layers, node, entities (and devices on device rows):
 * rates of devices and interfaces averaged over time, everything else over the rows.
 */
function drill(
  field: Field,
  extra: string[] = [],
  by: string[] = [TAG.layer, TAG.name],
  layers: readonly Layer[] | undefined = field.layers,
): string {
  return select({
    select: [{ field, agg: meanFor(field) }],
    from: fromLayers(layers),
    where: [cond.node, cond.layer, cond.entity, ...rowCond(field), ...extra],
    groupBy: by,
    fill: fillFor(field),
  });
}

export function node(): Board {
  const b = new Board(
    'strata-node',
    'strata — node drill-down',
    'One node layer by layer: the host, its containers, its VMs (the hypervisor process seen from the host) and their guests (seen from inside). Variables: node, layer, entity, device.',
  );
  b.builder
    .withVariable(VAR.node())
    .withVariable(VAR.layer())
    .withVariable(VAR.entity())
    .withVariable(VAR.device())
    .annotation(incidentAnnotation());
  const dev = [cond.device];
  b.row('CPU')
    .timeseries(
      'CPU cores per entity',
      { unit: 'cores', description: 'CPU in use, cores (CPU-seconds per second).' },
      new InfluxQL(drill(L.cpuCores), { expect: 'host' }),
    )
    .timeseries(
      'CPU stall and steal',
      {
        unit: 'ratio',
        thresholds: [0.1, 0.3],
        description:
          'Share of time (0–100 %): PSI cpu some (tasks waiting for a CPU), steal (guest time taken by the hypervisor, host and guest rows), iowait.',
      },
      new InfluxQL(drill(L.psiCpuSome), { refId: 'A', alias: '$tag_name psi cpu', expect: 'host' }),
      new InfluxQL(drill(L.cpuSteal), { refId: 'B', alias: '$tag_name steal', expect: 'host' }),
      new InfluxQL(drill(L.cpuIowait), { refId: 'C', alias: '$tag_name iowait', expect: 'host' }),
    )
    .timeseries(
      'Container CPU throttled',
      { unit: 'cores', description: 'CPU time lost to the CFS quota, cores. 0 = never throttled.' },
      new InfluxQL(drill(L.cpuThrottled), { expect: 'container' }),
    )
    .timeseries(
      'VM: hypervisor process and vCPU threads',
      {
        unit: 'cores',
        description:
          'strata_vm: CPU of the whole QEMU process and of its vCPU threads; the gap is emulation, I/O threads and the main loop.',
      },
      new InfluxQL(drill(L.cpuCores, [], [TAG.name], ['vm']), {
        refId: 'A',
        alias: '$tag_name process',
        expect: 'vm',
      }),
      new InfluxQL(drill(L.vcpuCores, [], [TAG.name]), { refId: 'B', alias: '$tag_name vCPU', expect: 'vm' }),
    );
  b.row('Memory')
    .timeseries(
      'Page faults per entity',
      { unit: 'per_second', axisLabel: 'faults/s', description: 'Page faults per second (minor + major).' },
      new InfluxQL(drill(L.pageFaults), { expect: 'host' }),
    )
    .timeseries(
      'Major page faults per entity',
      { unit: 'per_second', axisLabel: 'faults/s', description: 'Faults that read from disk, per second.' },
      new InfluxQL(drill(L.majorPageFaults), { expect: 'host' }),
    )
    .timeseries(
      'Memory per entity',
      {
        unit: 'bytes',
        description: 'Containers: memory charged to the cgroup; VMs: RSS of the QEMU process.',
      },
      new InfluxQL(drill(L.memoryUsage), { refId: 'A', expect: 'container' }),
      new InfluxQL(drill(L.memoryRss), { refId: 'B', expect: 'vm' }),
    );
  b.row('Block devices')
    .timeseries(
      'IOPS per device',
      {
        unit: 'iops',
        description: `Reads and writes completed per second, per entity and device. ${IDLE_ZERO}`,
      },
      new InfluxQL(drill(L.readIops, dev, [TAG.layer, TAG.name, TAG.device]), {
        refId: 'A',
        alias: '$tag_name $tag_device read',
        expect: 'host',
      }),
      new InfluxQL(drill(L.writeIops, dev, [TAG.layer, TAG.name, TAG.device]), {
        refId: 'B',
        alias: '$tag_name $tag_device write',
        expect: 'host',
      }),
    )
    .timeseries(
      'Throughput per device',
      {
        unit: 'Bps',
        description: `Bytes read and written per second, per entity and device. ${IDLE_ZERO}`,
      },
      new InfluxQL(drill(L.readBytes, dev, [TAG.layer, TAG.name, TAG.device]), {
        refId: 'A',
        alias: '$tag_name $tag_device read',
        expect: 'host',
      }),
      new InfluxQL(drill(L.writtenBytes, dev, [TAG.layer, TAG.name, TAG.device]), {
        refId: 'B',
        alias: '$tag_name $tag_device write',
        expect: 'host',
      }),
    )
    .timeseries(
      'Latency per op per device',
      {
        unit: 'ms',
        thresholds: [10, 50],
        description: `ms per read and per write (host and guest /proc/diskstats, VM QMP devices). ${IDLE_GAP}`,
      },
      new InfluxQL(drill(L.readLatency, dev, [TAG.layer, TAG.name, TAG.device]), {
        refId: 'A',
        alias: '$tag_name $tag_device read',
        expect: 'vm',
      }),
      new InfluxQL(drill(L.writeLatency, dev, [TAG.layer, TAG.name, TAG.device]), {
        refId: 'B',
        alias: '$tag_name $tag_device write',
        expect: 'host',
      }),
    )
    .timeseries(
      'Device utilization and I/O stall',
      {
        unit: 'ratio',
        thresholds: [0.5, 0.9],
        description: `Share of time (0–100 %): device busy (host, guest) and PSI io some of each entity (tasks waiting on I/O). Device busy: ${IDLE_ZERO}`,
      },
      new InfluxQL(drill(L.deviceUtilization, dev, [TAG.layer, TAG.name, TAG.device]), {
        refId: 'A',
        alias: '$tag_name $tag_device busy',
        expect: 'host',
      }),
      new InfluxQL(drill(L.psiIoSome), { refId: 'B', alias: '$tag_name io stall', expect: 'container' }),
    );
  b.row('Network')
    .timeseries(
      'Packets per interface',
      {
        unit: 'pps',
        description: `Packets received and sent per second, per entity and interface. ${IDLE_ZERO}`,
      },
      new InfluxQL(drill(L.rxPackets, [], [TAG.layer, TAG.name, TAG.iface]), {
        refId: 'A',
        alias: '$tag_name $tag_interface rx',
        expect: 'host',
      }),
      new InfluxQL(drill(L.txPackets, [], [TAG.layer, TAG.name, TAG.iface]), {
        refId: 'B',
        alias: '$tag_name $tag_interface tx',
        expect: 'host',
      }),
    )
    .timeseries(
      'Bytes per interface',
      {
        unit: 'Bps',
        description: `Bytes received and sent per second, per entity and interface. ${IDLE_ZERO}`,
      },
      new InfluxQL(drill(L.rxBytes, [], [TAG.layer, TAG.name, TAG.iface]), {
        refId: 'A',
        alias: '$tag_name $tag_interface rx',
        expect: 'host',
      }),
      new InfluxQL(drill(L.txBytes, [], [TAG.layer, TAG.name, TAG.iface]), {
        refId: 'B',
        alias: '$tag_name $tag_interface tx',
        expect: 'host',
      }),
    );
  return b;
}
