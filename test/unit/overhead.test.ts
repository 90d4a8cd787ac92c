// Overhead: the vm ↔ guest join (same message, one tick late, too late, missing, idle), container
// vs host, node totals. Arithmetic in the comments. The host view and one guest view are built
// from real /proc files captured on this machine (testdata/proc/hybrid-host, 1 s apart) — this
// machine is itself a KVM guest, so its /proc is a genuine guest's /proc; the QMP side is written
// by hand from a measured run of the same I/O (239 µs/op seen in the guest, 56 µs/op in QEMU).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GuestFrameDecoder } from '../../collectors/guest/framing.ts';
import { procSampleFromFiles } from '../../collectors/procfs/parsers.ts';
import { blockstatsDevices } from '../../collectors/vm/parsers.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import type { Entity, EntitySample, SampleMessage } from '../../schemas/sample.ts';
import { overheadPoints } from './overhead.helpers.ts';

const T0 = 1_795_322_559_000;
const DIR = path.join(import.meta.dirname, '../../testdata/proc/hybrid-host');

function procSample(step: 0 | 1, entity: Entity, ts?: number): EntitySample {
  const rd = (f: string) => fs.readFileSync(path.join(DIR, `step${step}`, f), 'utf8');
  const parts = procSampleFromFiles({
    stat: rd('stat'),
    vmstat: rd('vmstat'),
    meminfo: rd('meminfo'),
    diskstats: rd('diskstats'),
    netdev: rd('net/dev'),
    pressure: { cpu: rd('pressure/cpu'), io: rd('pressure/io'), memory: rd('pressure/memory') },
  });
  expect(parts.problems).toEqual([]);
  return {
    entity,
    ...(ts !== undefined ? { ts } : {}),
    counters: parts.counters,
    gauges: parts.gauges,
    devices: parts.devices,
    interfaces: parts.interfaces,
  };
}

const HOST: Entity = { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} };
const VM: Entity = {
  layer: 'vm',
  kind: 'qemu',
  id: 'vm-uuid-1',
  name: 'vm1',
  labels: { vm_name: 'vm1', accel: 'tcg' },
  parent: { layer: 'host', id: 'n1' },
};
const GUEST: Entity = {
  layer: 'guest',
  kind: 'guest-agent',
  id: 'vm-uuid-1/guest',
  name: 'vm1',
  labels: {},
  parent: { layer: 'vm', id: 'vm-uuid-1' },
};

function msg(ts: number, samples: EntitySample[]): SampleMessage {
  return {
    v: 1,
    node: { id: 'n1', hostname: 'n1', labels: {} },
    ts,
    interval_ms: 1000,
    seq: Math.round((ts - T0) / 1000),
    agent: { version: 't', run_id: 'r1' },
    samples,
  };
}

const vm = (cpuUsec: number, extra: Partial<EntitySample> = {}): EntitySample => ({
  entity: VM,
  counters: {
    cpu_usage_usec_total: cpuUsec,
    vcpu_usec_total: cpuUsec * 0.8,
    page_faults_total: cpuUsec / 100,
  },
  gauges: {},
  ...extra,
});
const guest = (busyUsec: number, extra: Partial<EntitySample> = {}): EntitySample => ({
  entity: GUEST,
  counters: {
    cpu_user_usec_total: busyUsec,
    cpu_nice_usec_total: 0,
    cpu_system_usec_total: 0,
    cpu_irq_usec_total: 0,
    cpu_softirq_usec_total: 0,
    cpu_idle_usec_total: busyUsec, // idle advances with busy: 50 % busy
    cpu_iowait_usec_total: 0,
    cpu_steal_usec_total: busyUsec / 10,
    page_faults_total: busyUsec / 1000,
  },
  gauges: {},
  ...extra,
});

const overhead = overheadPoints;

describe('vm overhead', () => {
  it('joins vm and guest views of the same tick: CPU, I/O latency per op, amplification, packets, faults', () => {
    const p = createPipeline();
    const disk = (ops: number, timeMs: number) => ({
      vda: {
        counters: { reads_completed_total: ops, read_time_ms_total: timeMs, read_bytes_total: ops * 4096 },
      },
    });
    const qmp = (ops: number, timeNs: number) => ({
      'virtio-disk0': {
        counters: { reads_completed_total: ops, read_time_ns_total: timeNs, read_bytes_total: ops * 4096 },
      },
    });
    const nic = (rx: number, tx: number) => ({
      eth0: { counters: { rx_packets_total: rx, tx_packets_total: tx } },
      lo: { counters: { rx_packets_total: rx * 9, tx_packets_total: tx * 9 } },
    });
    const tap = (rx: number, tx: number) => ({
      tap0: { counters: { rx_packets_total: rx, tx_packets_total: tx } },
    });
    p.handle(
      msg(T0, [
        vm(10_000_000, { devices: qmp(1000, 0), interfaces: tap(0, 0) }),
        guest(5_000_000, { devices: disk(1000, 0), interfaces: nic(0, 0) }),
      ]),
    );
    const out = p.handle(
      msg(T0 + 2000, [
        // hypervisor: Δ 3_000_000 µs / 2 s = 1.5 cores; vCPU threads 0.8 × that = 1.2 cores
        // QMP: 2000 reads, 112_000_000 ns → 56_000 ns = 0.056 ms per op; 2000 ops / 2 s = 1000 IOPS
        // tap: tx (to the guest) 1200, rx 800 → 2000 packets / 2 s = 1000 packets/s
        vm(13_000_000, { devices: qmp(3000, 112_000_000), interfaces: tap(800, 1200) }),
        // guest: busy Δ 2_000_000 µs / 2 s = 1.0 core; steal Δ 200_000 µs / 2 s = 0.1 core
        // guest disk: 2000 reads, 478 ms → 0.239 ms per op; eth0 1200 + 800 = 2000 / 2 s = 1000 packets/s
        guest(7_000_000, { devices: disk(3000, 478), interfaces: nic(1200, 800) }),
      ]),
    );
    const [o] = overhead(out.points, 'vm');
    expect(o?.timeMs).toBe(T0 + 2000);
    expect(o?.tags).toMatchObject({ node: 'n1', layer: 'vm', name: 'vm1', vm_name: 'vm1' });
    const f = o!.fields;
    expect(f.cpu_cores).toBeCloseTo(1.5, 12);
    expect(f.vcpu_cores).toBeCloseTo(1.2, 12);
    expect(f.hypervisor_non_vcpu_cpu_cores).toBeCloseTo(0.3, 12); // 1.5 - 1.2
    expect(f.guest_cpu_busy_cores).toBeCloseTo(1.0, 12);
    expect(f.cpu_overhead_ratio).toBeCloseTo(1.5, 12); // 1.5 / 1.0
    expect(f.cpu_overhead_cores).toBeCloseTo(0.5, 12); // 1.5 - 1.0
    expect(f.guest_cpu_steal_cores).toBeCloseTo(0.1, 12);
    // steal ratio = Δsteal ÷ Δ(all buckets) = 200_000 ÷ (2_000_000 busy + 2_000_000 idle + 200_000 steal)
    expect(f.guest_cpu_steal_ratio).toBeCloseTo(200_000 / 4_200_000, 12);
    expect(f.guest_read_latency_ms_per_op).toBeCloseTo(0.239, 12);
    expect(f.hypervisor_read_latency_ms_per_op).toBeCloseTo(0.056, 12);
    expect(f.io_read_guest_added_latency_ms_per_op).toBeCloseTo(0.183, 12); // 0.239 - 0.056
    expect(f.io_read_added_latency_ms_per_op).toBeUndefined(); // backing host device unknown
    expect(f.io_ops_amplification_ratio).toBeCloseTo(1, 12); // 1000 IOPS ÷ 1000 IOPS
    expect(f.io_bytes_amplification_ratio).toBeCloseTo(1, 12);
    expect(f.net_tap_packets_per_second).toBeCloseTo(1000, 12);
    expect(f.net_guest_packets_per_second).toBeCloseTo(1000, 12); // lo excluded
    expect(f.net_tap_per_guest_packet_ratio).toBeCloseTo(1, 12);
    expect(f.hypervisor_cpu_usec_per_guest_packet).toBeCloseTo(1500, 9); // 1.5e6 µs/s ÷ 1000 packets/s
    expect(f.hypervisor_overhead_cpu_usec_per_guest_packet).toBeCloseTo(500, 9); // (1.5 - 1.0)e6 ÷ 1000
    // faults: hypervisor Δ(3_000_000/100) = 30_000 / 2 s = 15_000/s; guest Δ 2000 / 2 s = 1000/s (≥ 100 per interval)
    expect(f.page_faults_per_second).toBeCloseTo(15_000, 9);
    expect(f.guest_page_faults_per_second).toBeCloseTo(1000, 9);
    expect(f.hypervisor_faults_per_guest_fault_ratio).toBeCloseTo(15, 12);
  });

  it('subtracts the backing host device latency when it is known', () => {
    const p = createPipeline({ overhead: { vmBackingDevices: { vm1: 'sdb' } } });
    const hostDisk = (ops: number, ms: number): EntitySample => ({
      entity: HOST,
      counters: {},
      gauges: {},
      devices: { sdb: { counters: { reads_completed_total: ops, read_time_ms_total: ms } } },
    });
    const g = (ops: number, ms: number) =>
      guest(ops * 1000, {
        devices: { vda: { counters: { reads_completed_total: ops, read_time_ms_total: ms } } },
      });
    const v = (ops: number, ns: number) =>
      vm(ops * 2000, {
        devices: { d0: { counters: { reads_completed_total: ops, read_time_ns_total: ns } } },
      });
    p.handle(msg(T0, [hostDisk(0, 0), v(0, 0), g(0, 0)]));
    // 100 ops everywhere; guest 30 ms → 0.3 ms/op; QEMU 12_000_000 ns → 0.12 ms/op; sdb 5 ms → 0.05 ms/op
    const out = p.handle(msg(T0 + 1000, [hostDisk(100, 5), v(100, 12_000_000), g(100, 30)]));
    const f = overhead(out.points, 'vm')[0]!.fields;
    expect(f.host_device).toBe('sdb');
    expect(f.host_device_read_latency_ms_per_op).toBeCloseTo(0.05, 12);
    expect(f.io_read_guest_added_latency_ms_per_op).toBeCloseTo(0.18, 12); // 0.3 - 0.12
    expect(f.io_read_hypervisor_added_latency_ms_per_op).toBeCloseTo(0.07, 12); // 0.12 - 0.05
    expect(f.io_read_added_latency_ms_per_op).toBeCloseTo(0.25, 12); // 0.3 - 0.05
  });

  it('a real idle guest /proc: CPU ratio present (busy ≥ 0.02 core), no I/O or packet figures (0 ÷ 0)', () => {
    const p = createPipeline();
    // Real files: Δuser 2 + Δsystem 2 ticks = 40_000 µs busy over 1 s = 0.04 cores; Δidle 198 ticks.
    // Disks and NICs did nothing between the two captures.
    p.handle(msg(T0, [vm(1_000_000), procSample(0, GUEST)]));
    // hypervisor Δ 100_000 µs / 1 s = 0.1 cores → 0.1 / 0.04 = 2.5
    const out = p.handle(msg(T0 + 1000, [vm(1_100_000), procSample(1, GUEST)]));
    const f = overhead(out.points, 'vm')[0]!.fields;
    expect(f.guest_cpu_busy_cores).toBeCloseTo(0.04, 12);
    expect(f.cpu_overhead_ratio).toBeCloseTo(2.5, 12);
    // util: 4 busy ticks of 202 (2 + 2 + 198); steal 0 ticks → 0
    expect(f.guest_cpu_steal_ratio).toBe(0);
    expect(f.guest_read_latency_ms_per_op).toBeUndefined();
    expect(f.io_ops_amplification_ratio).toBeUndefined();
    expect(f.net_tap_per_guest_packet_ratio).toBeUndefined();
    expect(f.hypervisor_cpu_usec_per_guest_packet).toBeUndefined();
  });

  it('an idle guest (busy < minGuestBusyCores) gives overhead cores but no ratio', () => {
    const p = createPipeline();
    p.handle(msg(T0, [vm(1_000_000), guest(1_000_000)]));
    // guest busy Δ 10_000 µs / 1 s = 0.01 core < 0.02; hypervisor 0.05 core
    const f = overhead(p.handle(msg(T0 + 1000, [vm(1_050_000), guest(1_010_000)])).points, 'vm')[0]!.fields;
    expect(f.cpu_overhead_ratio).toBeUndefined();
    expect(f.cpu_overhead_cores).toBeCloseTo(0.04, 12); // 0.05 - 0.01: an idle VM's whole cost
  });

  it('a guest reboot (its counters restart low) gives no CPU ratio for that interval, then resumes', () => {
    const p = createPipeline();
    p.handle(msg(T0, [vm(10_000_000), guest(5_000_000)]));
    // reboot: guest busy 5_000_000 → 100_000 µs: a reset, not -4.9 s of work
    const f = overhead(p.handle(msg(T0 + 1000, [vm(10_500_000), guest(100_000)])).points, 'vm')[0]!.fields;
    expect(f.cpu_cores).toBeCloseTo(0.5, 12);
    expect(f.guest_cpu_busy_cores).toBeUndefined();
    expect(f.cpu_overhead_ratio).toBeUndefined();
    expect(f.cpu_overhead_cores).toBeUndefined();
    // next tick: hypervisor 0.6 cores, guest Δ 300_000 µs = 0.3 cores → 2.0
    const g = overhead(p.handle(msg(T0 + 2000, [vm(11_100_000), guest(400_000)])).points, 'vm')[0]!.fields;
    expect(g.cpu_overhead_ratio).toBeCloseTo(2, 12);
  });

  it('a missing guest view gives no vm overhead point', () => {
    const p = createPipeline();
    p.handle(msg(T0, [vm(0)]));
    expect(overhead(p.handle(msg(T0 + 1000, [vm(500_000)])).points, 'vm')).toEqual([]);
  });

  it('a guest view one tick late is joined with the vm view of its own tick', () => {
    const p = createPipeline();
    p.handle(msg(T0, [vm(0), guest(0, { ts: T0 })]));
    // tick 1: the guest's view is late
    const tick1 = p.handle(msg(T0 + 1000, [vm(600_000)])).points;
    expect(overhead(tick1, 'vm')).toEqual([]);
    // tick 2: the guest view of tick 1 arrives (ts T0+1000): joined with vm interval T0→T0+1000
    const out = p.handle(msg(T0 + 2000, [vm(1_000_000), guest(300_000, { ts: T0 + 1000 })]));
    const [o] = overhead(out.points, 'vm');
    // The VM's point of T0+1000 went out at tick 1: this is a second line of the same series and
    // time with the overhead fields only, which InfluxDB merges into it.
    const vmPoint = tick1.find(
      (pt) => pt.measurement === 'strata_vm' && !pt.tags.device && !pt.tags.interface,
    )!;
    expect(o?.measurement).toBe('strata_vm');
    expect(o?.tags).toBe(vmPoint.tags);
    expect(o?.timeMs).toBe(vmPoint.timeMs);
    expect(o?.timeMs).toBe(T0 + 1000);
    expect(vmPoint.fields.cpu_cores).toBeCloseTo(0.6, 12); // 600_000 µs / 1 s
    expect(o?.fields.cpu_cores).toBeUndefined();
    expect(o?.fields.cpu_overhead_cores).toBeCloseTo(0.3, 12); // 0.6 − 0.3
    expect(o?.fields.cpu_overhead_ratio).toBeCloseTo(2, 12); // 0.6 / 0.3
    // tick 3: guest of tick 2 (late again) joins vm tick 2: (1_000_000-600_000)/1 s = 0.4; guest 0.1
    const out3 = p.handle(msg(T0 + 3000, [vm(1_500_000), guest(400_000, { ts: T0 + 2000 })]));
    const [o3] = overhead(out3.points, 'vm');
    expect(o3?.timeMs).toBe(T0 + 2000);
    expect(o3?.fields.cpu_overhead_ratio).toBeCloseTo(4, 12); // 0.4 / 0.1
  });

  it('guest records at their own phase: joined with the vm interval they overlap by ≥ half', () => {
    // Records received 300 ms before each tick: guest [t-1.3, t-0.3] covers 0.7 s of vm [t-1, t]
    const p = createPipeline();
    p.handle(msg(T0, [vm(0), guest(0, { ts: T0 - 300 })]));
    const o = overhead(
      p.handle(msg(T0 + 1000, [vm(400_000), guest(200_000, { ts: T0 + 700 })])).points,
      'vm',
    );
    expect(o.map((pt) => pt.timeMs)).toEqual([T0 + 1000]);
    expect(o[0]!.fields.guest_interval_offset_ms).toBe(-300);
    expect(o[0]!.fields.cpu_overhead_ratio).toBeCloseTo(2, 12); // 0.4 / 0.2
  });

  it('a record received 700 ms before the tick pairs with the next record, one message later', () => {
    const p = createPipeline();
    p.handle(msg(T0, [vm(0), guest(0, { ts: T0 - 700 })]));
    // tick 1: guest [T0-0.7, T0+0.3] covers only 0.3 s of vm [T0, T0+1]: wait
    expect(
      overhead(p.handle(msg(T0 + 1000, [vm(400_000), guest(100_000, { ts: T0 + 300 })])).points, 'vm'),
    ).toEqual([]);
    // tick 2: guest [T0+0.3, T0+1.3] covers 0.7 s of vm [T0, T0+1]: joined, written at T0+1000;
    // vm [T0+1, T0+2] waits in turn for [T0+1.3, T0+2.3]
    const o = overhead(
      p.handle(msg(T0 + 2000, [vm(900_000), guest(300_000, { ts: T0 + 1300 })])).points,
      'vm',
    );
    expect(o.map((pt) => pt.timeMs)).toEqual([T0 + 1000]);
    expect(o[0]!.fields.cpu_overhead_ratio).toBeCloseTo(2, 12); // 0.4 / 0.2
    expect(o[0]!.fields.guest_interval_offset_ms).toBe(300);
  });

  it('a guest view later than the grace window is not joined', () => {
    const p = createPipeline({ overhead: { joinGraceTicks: 1 } });
    p.handle(msg(T0, [vm(0), guest(0, { ts: T0 })]));
    p.handle(msg(T0 + 1000, [vm(100_000)]));
    p.handle(msg(T0 + 2000, [vm(200_000)]));
    // vm interval ending T0+1000 has left the 2-deep queue by now
    const out = p.handle(msg(T0 + 3000, [vm(300_000), guest(50_000, { ts: T0 + 1000 })]));
    expect(overhead(out.points, 'vm')).toEqual([]);
  });
});

describe('container and node overhead', () => {
  const container = (cpu: number, rx: number, ops: number, stallUsec: number): EntitySample => ({
    entity: {
      layer: 'container',
      kind: 'docker',
      id: 'abc123',
      name: 'web',
      labels: { image: 'nginx' },
      parent: { layer: 'host', id: 'n1' },
    },
    counters: { cpu_usage_usec_total: cpu, psi_io_some_usec_total: stallUsec },
    gauges: {},
    devices: {
      sda: {
        counters: {
          reads_completed_total: ops,
          writes_completed_total: 0,
          read_bytes_total: ops * 4096,
          written_bytes_total: 0,
        },
      },
    },
    interfaces: { eth0: { counters: { rx_packets_total: rx, tx_packets_total: rx } } },
  });
  const host = (busy: number, pkts: number, ops: number, readMs: number): EntitySample => ({
    entity: HOST,
    counters: {
      cpu_user_usec_total: busy,
      cpu_nice_usec_total: 0,
      cpu_system_usec_total: 0,
      cpu_irq_usec_total: 0,
      cpu_softirq_usec_total: 0,
    },
    gauges: { cpu_count: 2 },
    devices: {
      sda: {
        counters: {
          reads_completed_total: ops,
          writes_completed_total: 0,
          read_bytes_total: ops * 4096,
          written_bytes_total: 0,
          read_time_ms_total: readMs,
          write_time_ms_total: 0,
        },
      },
    },
    interfaces: {
      eth0: { counters: { rx_packets_total: pkts, tx_packets_total: 0 } },
      veth1: { counters: { rx_packets_total: pkts * 5, tx_packets_total: 0 } },
    },
  });

  it('CPU per packet and I/O stall per op against the host, device shares, node totals', () => {
    const p = createPipeline();
    p.handle(msg(T0, [host(0, 0, 0, 0), container(0, 0, 0, 0), vm(0), guest(0)]));
    const out = p.handle(
      msg(T0 + 1000, [
        // host: 1.2 cores busy, eth0 4000 packets (veth excluded), sda 1000 reads in 500 ms → 0.5 ms/op
        host(1_200_000, 4000, 1000, 500),
        // container: 0.4 cores, 1000 rx + 1000 tx packets, 250 reads on sda, 50_000 µs io stall
        container(400_000, 1000, 250, 50_000),
        vm(500_000), // 0.5 cores
        guest(300_000), // 0.3 cores
      ]),
    );
    const c = overhead(out.points, 'container')[0]!;
    expect(c.tags).toMatchObject({ node: 'n1', layer: 'container', name: 'web', image: 'nginx' });
    expect(c.fields.cpu_usec_per_packet).toBeCloseTo(200, 9); // 400_000 µs/s ÷ 2000 packets/s
    expect(c.fields.host_cpu_usec_per_packet).toBeCloseTo(300, 9); // 1_200_000 ÷ 4000
    expect(c.fields.cpu_per_packet_vs_host_ratio).toBeCloseTo(2 / 3, 12);
    expect(c.fields.io_stall_ms_per_op).toBeCloseTo(0.2, 12); // 50 ms stalled ÷ 250 ops
    expect(c.fields.host_device_latency_ms_per_op).toBeCloseTo(0.5, 12);
    expect(c.fields.io_stall_per_op_vs_host_latency_ratio).toBeCloseTo(0.4, 12);
    const share = out.points.find((pt) => pt.measurement === 'strata_container' && pt.tags.device === 'sda')!;
    expect(share.fields.iops_share_ratio).toBeCloseTo(0.25, 12); // 250 ÷ 1000
    expect(share.fields.bytes_share_ratio).toBeCloseTo(0.25, 12);
    const n = overhead(out.points, 'node')[0]!.fields;
    expect(n).toMatchObject({ containers: 1, vms: 1, vms_with_guest_view: 1 });
    expect(n.host_cpu_busy_cores).toBeCloseTo(1.2, 12);
    expect(n.containers_cpu_cores).toBeCloseTo(0.4, 12);
    expect(n.vms_hypervisor_cpu_cores).toBeCloseTo(0.5, 12);
    expect(n.host_other_cpu_cores).toBeCloseTo(0.3, 12); // 1.2 - 0.4 - 0.5
    expect(n.guests_cpu_busy_cores).toBeCloseTo(0.3, 12);
    expect(n.virtualization_cpu_overhead_cores).toBeCloseTo(0.2, 12); // 0.5 - 0.3
    expect(n.virtualization_cpu_overhead_ratio).toBeCloseTo(0.2 / 1.2, 12);
    expect(n.virtualization_cpu_overhead_capacity_ratio).toBeCloseTo(0.1, 12); // 0.2 ÷ 2 CPUs
    expect(n.containers_cpu_ratio).toBeCloseTo(0.4 / 1.2, 12);
  });

  it('on the real idle host capture, a container gets no device share (host did 0 ops: 0 ÷ 0)', () => {
    const p = createPipeline();
    const c = (ops: number): EntitySample => ({
      ...container(ops * 100, 0, 0, 0),
      devices: { vda: { counters: { reads_completed_total: ops, writes_completed_total: 0 } } },
    });
    p.handle(msg(T0, [procSample(0, HOST), c(0)]));
    const out = p.handle(msg(T0 + 1000, [procSample(1, HOST), c(3)]));
    expect(out.points.filter((pt) => pt.tags.device && pt.fields.iops_share_ratio !== undefined)).toEqual([]);
    expect(
      out.points.filter((pt) => pt.measurement === 'strata_overhead' && pt.tags.layer !== 'node'),
    ).toEqual([]);
    const n = overhead(out.points, 'node')[0]!.fields;
    expect(n.host_cpu_busy_cores).toBeCloseTo(0.04, 12); // (2 + 2 ticks) × 10_000 µs / 1 s
    expect(n.containers_cpu_cores).toBeCloseTo(0.0003, 12); // 300 µs / 1 s
    expect(n.virtualization_cpu_overhead_cores).toBeUndefined(); // no VM: no number
  });
});

describe('vm overhead on a real TCG VM capture (stack/qemu/capture-testdata.ts)', () => {
  // One VM run: the QMP query-blockstats replies before (session-idle) and after (session-busy)
  // 2000 O_DIRECT 4 KiB reads in the guest, and the guest agent's own /proc records over the same
  // run (idle.stream, busy.stream). The two samples are placed at the guests' uptime difference.
  const root = path.join(import.meta.dirname, '../../testdata');
  const blockstats = (name: string) => {
    for (const line of fs
      .readFileSync(path.join(root, 'qmp', name), 'utf8')
      .trim()
      .split('\n')) {
      const ret = (JSON.parse(line) as { return?: unknown }).return;
      if (Array.isArray(ret) && ret[0]?.stats) return blockstatsDevices(ret);
    }
    throw new Error(`no query-blockstats reply in ${name}`);
  };
  const lastRecord = (name: string) => {
    const recs = new GuestFrameDecoder().push(fs.readFileSync(path.join(root, 'guest', name)));
    return recs[recs.length - 1]!;
  };
  const guestSample = (name: string) => {
    const r = lastRecord(name);
    const f = r.files;
    const parts = procSampleFromFiles({
      stat: f.stat,
      vmstat: f.vmstat,
      meminfo: f.meminfo,
      diskstats: f.diskstats,
      netdev: f['net/dev'],
    });
    return {
      uptime: r.uptimeSec,
      sample: {
        entity: GUEST,
        counters: parts.counters,
        gauges: parts.gauges,
        devices: parts.devices,
      } as EntitySample,
    };
  };

  it('guest 0.1915 ms/op vs QEMU 0.0359 ms/op: 0.1556 ms added per read by the guest side', () => {
    const g0 = guestSample('idle.stream'); // uptime 6.67 s: vda reads 1, read time 7 ms
    const g1 = guestSample('busy.stream'); // uptime 16.06 s: vda reads 2001, read time 390 ms
    const dtMs = Math.round((g1.uptime - g0.uptime) * 1000); // 9390 ms
    const v = (devices: EntitySample['devices']): EntitySample => ({
      entity: VM,
      counters: {},
      gauges: {},
      devices,
    });
    const p = createPipeline();
    // One 9.39 s interval: told as such (interval_ms 10 s), else it would be a gap of > 5 ticks.
    const tick = (ts: number, samples: EntitySample[]) => ({ ...msg(ts, samples), interval_ms: 10_000 });
    p.handle(tick(T0, [v(blockstats('session-idle.jsonl')), g0.sample]));
    const out = p.handle(tick(T0 + dtMs, [v(blockstats('session-busy.jsonl')), g1.sample]));
    const f = overhead(out.points, 'vm')[0]!.fields;
    // guest: Δreads 2000, Δread time 383 ms → 0.1915 ms/op
    expect(f.guest_read_latency_ms_per_op).toBeCloseTo(383 / 2000, 12);
    // QEMU: Δrd_operations 2002 - 2 = 2000, Δrd_total_time_ns 71_877_757 - 161_771 = 71_715_986 → 0.035858 ms/op
    expect(f.hypervisor_read_latency_ms_per_op).toBeCloseTo(71_715_986 / 2000 / 1e6, 12);
    expect(f.io_read_guest_added_latency_ms_per_op).toBeCloseTo(383 / 2000 - 71_715_986 / 2000 / 1e6, 12);
    expect(f.io_ops_amplification_ratio).toBeCloseTo(1, 12); // 2000 QEMU reads per 2000 guest reads
    // guest CPU (real /proc/stat of a 1-vCPU guest): Δuser 765-12 = 753, Δsystem 352-277 = 75,
    // Δsoftirq 3-2 = 1 → 829 ticks = 8.29 s over 9.39 s = 0.88286 cores
    expect(f.guest_cpu_busy_cores).toBeCloseTo(8.29 / 9.39, 12);
    // the hypervisor's CPU was captured once only (no rate): no CPU overhead figure, not 0
    expect(f.cpu_cores).toBeUndefined();
    expect(f.cpu_overhead_ratio).toBeUndefined();
    expect(f.cpu_overhead_cores).toBeUndefined();
  });
});

describe('vm overhead on a recorded tick sequence of a real TCG VM (capture-vm.ts)', () => {
  // 40 ticks of the real host, vm and guest collectors around the 1-vCPU test VM: idle (ticks 0-7),
  // a CPU loop in the guest (8-17), idle, O_DIRECT 4 KiB reads of its disk (20-31), idle (32-39).
  // The guest agent's records arrive at their own phase (-450..-220 ms, sometimes later than the tick).
  const msgs = zlib
    .gunzipSync(fs.readFileSync(path.join(import.meta.dirname, '../../testdata/processor/vm-tcg.ndjson.gz')))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
  const p = createPipeline();
  const byTick = msgs.map((m) => ({ ts: m.ts, points: overhead(p.handle(m).points, 'vm') }));
  const all = byTick.flatMap((t) => t.points);
  const tickOf = (timeMs: number) => Math.round((timeMs - msgs[0]!.ts) / 1000);

  it('joins nearly every vm interval with a guest interval, late records included', () => {
    // 39 intervals; two ticks had no new guest record (the agent's loop drifts against the tick)
    expect(all.length).toBeGreaterThanOrEqual(36);
    expect(new Set(all.map((pt) => pt.timeMs)).size).toBe(all.length); // each vm interval once
    const late = byTick.filter((t) => t.points.some((pt) => pt.timeMs < t.ts));
    expect(late.length).toBeGreaterThan(5); // joined a message later, within the grace window
    for (const pt of all) {
      const off = pt.fields.guest_interval_offset_ms as number;
      expect(Math.abs(off)).toBeLessThanOrEqual(1000);
    }
  });

  it('during the direct reads: the guest sees more time per op than QEMU, ~1 QEMU op per guest op', () => {
    const io = all.filter((pt) => tickOf(pt.timeMs) >= 23 && tickOf(pt.timeMs) <= 31);
    expect(io.length).toBeGreaterThanOrEqual(7);
    for (const pt of io) {
      const g = pt.fields.guest_read_latency_ms_per_op as number;
      const h = pt.fields.hypervisor_read_latency_ms_per_op as number;
      expect(g).toBeGreaterThan(h);
      expect(pt.fields.io_read_guest_added_latency_ms_per_op).toBeCloseTo(g - h, 12);
      expect(g - h).toBeGreaterThan(0.05);
      expect(g - h).toBeLessThan(0.5);
      expect(pt.fields.io_ops_amplification_ratio).toBeGreaterThan(0.8);
      expect(pt.fields.io_ops_amplification_ratio).toBeLessThan(1.3);
    }
  });

  it('idle disk at the end: no latency or amplification figure (0 ÷ 0), CPU figures still there', () => {
    const idle = all.filter((pt) => tickOf(pt.timeMs) >= 35);
    expect(idle.length).toBeGreaterThanOrEqual(4);
    for (const pt of idle) {
      expect(pt.fields.guest_read_latency_ms_per_op).toBeUndefined();
      expect(pt.fields.io_ops_amplification_ratio).toBeUndefined();
      expect(pt.fields.cpu_cores).toBeGreaterThan(0);
      expect(pt.fields.cpu_overhead_cores).toBeCloseTo(
        (pt.fields.cpu_cores as number) - (pt.fields.guest_cpu_busy_cores as number),
        12,
      );
    }
  });

  it('node totals count the VM', () => {
    const p2 = createPipeline();
    const nodes = msgs.flatMap((m) => overhead(p2.handle(m).points, 'node'));
    expect(nodes.length).toBe(msgs.length - 1);
    for (const n of nodes) expect(n.fields.vms).toBe(1);
    expect(nodes.filter((n) => n.fields.vms_with_guest_view === 1).length).toBeGreaterThan(15);
  });
});
