// Rates: table tests with hand-computed values (arithmetic in the comments).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPipeline } from '../../processors/pipeline.ts';
import { RatesConfig } from '../../processors/rates/config.ts';
import { computeRateSpec, OLDER_AGENT_GAUGES_NOT_WRITTEN } from '../../processors/rates/naming.ts';
import { counterDelta } from '../../processors/rates/rates.ts';
import type { Point } from '../../schemas/point.ts';
import type { EntitySample, SampleMessage } from '../../schemas/sample.ts';

const cfg = RatesConfig.parse({});
const T0 = 1_763_000_000_000;

function msg(ts: number, samples: EntitySample[], over: Partial<SampleMessage> = {}): SampleMessage {
  return {
    v: 1,
    node: { id: 'n1', hostname: 'n1', labels: {} },
    ts,
    interval_ms: 1000,
    seq: Math.round((ts - T0) / 1000),
    agent: { version: 't', run_id: 'r1' },
    samples,
    ...over,
  };
}
const container = (counters: Record<string, number>, extra: Partial<EntitySample> = {}): EntitySample => ({
  entity: {
    layer: 'container',
    kind: 'docker',
    id: 'c0ffee',
    name: 'web',
    labels: { image: 'busybox', cgroup_path: '/docker/c0ffee' },
  },
  counters,
  gauges: { memory_usage_bytes: 42 },
  ...extra,
});
const entityPoint = (points: Point[]) => points.find((p) => !p.tags.device && !p.tags.interface)!;

describe('counterDelta', () => {
  it.each([
    // [prev, cur, allow32, expected, why]
    [100, 250, true, 150, 'plain increase: 250 - 100'],
    [100, 100, true, 0, 'no change'],
    [500, 20, true, -1, 'decrease from a small value: a reset, no rate'],
    // 32-bit wrap: prev = 4_294_967_000 ≥ 0.75·2^32 = 3_221_225_472; Δ = 2^32 - 4_294_967_000 + 704 = 296 + 704 = 1000
    [4_294_967_000, 704, true, 1000, '32-bit wrap'],
    [4_294_967_000, 704, false, -1, 'same values where counters are 64-bit (cgroup): a reset'],
    // prev = 3e9 < 0.75·2^32 = 3.22e9: a reset even though the value is large
    [3_000_000_000, 5, true, -1, 'decrease from below the wrap zone'],
    // Δ = 2^32 - 4_000_000_000 + 2_000_000_000 = 2_294_967_296 > 0.25·2^32 = 1_073_741_824: implausible
    [4_000_000_000, 2_000_000_000, true, -1, 'wrapped delta too large: a reset'],
    // 64-bit: prev = 2^64 - 2048 (≥ 0.75·2^64); Δ = 2048 + 4096 = 6144 (doubles near 2^64 are spaced 2048 apart)
    [2 ** 64 - 2048, 4096, false, 6144, '64-bit wrap'],
  ])('prev %d cur %d allow32 %s → %d (%s)', (prev, cur, allow32, expected) => {
    expect(counterDelta(prev, cur, cfg, allow32)).toBe(expected);
  });
});

describe('rate names', () => {
  it.each([
    ['cpu_user_usec_total', 'cpu_user_cores', 1e-6],
    ['vcpu_usec_total', 'vcpu_cores', 1e-6],
    ['psi_io_some_usec_total', 'psi_io_some_stall_ratio', 1e-6],
    ['cpu_throttled_usec_total', 'cpu_throttled_cores', 1e-6],
    ['reads_completed_total', 'read_iops', 1],
    ['flushes_completed_total', 'flush_iops', 1],
    ['read_bytes_total', 'read_bytes_per_second', 1],
    ['io_time_ms_total', 'utilization_ratio', 1e-3],
    ['weighted_io_time_ms_total', 'avg_queue_depth', 1e-3],
    ['read_time_ms_total', null, 0],
    ['rx_packets_total', 'rx_packets_per_second', 1],
    ['page_faults_total', 'page_faults_per_second', 1],
  ])('%s → %s', (counter, field, scale) => {
    expect(computeRateSpec(counter)).toEqual({ field, scale });
  });
});

describe('pipeline rates', () => {
  it('first sample gives gauges only; the second gives rates over the real elapsed time', () => {
    const p = createPipeline();
    const a = p.handle(msg(T0, [container({ cpu_usage_usec_total: 1_000_000, page_faults_total: 10 })]));
    const first = entityPoint(a.points);
    expect(first.measurement).toBe('strata_container');
    expect(first.tags).toEqual({
      node: 'n1',
      layer: 'container',
      kind: 'docker',
      name: 'web',
      image: 'busybox',
    });
    // Ids and paths are not on the point: on the entity's strata_entity point (same tags).
    expect(first.fields).toEqual({ memory_usage_bytes: 42 });
    const meta = a.points.find((x) => x.measurement === 'strata_entity')!;
    expect(meta.tags).toBe(first.tags);
    expect(meta.fields).toEqual({ entity_id: 'c0ffee', cgroup_path: '/docker/c0ffee' });
    // A container whose v1 block I/O the kernel does not count says so in a field, not a tag.
    const uncounted = container({ cpu_usage_usec_total: 1 });
    uncounted.entity = {
      ...uncounted.entity,
      id: 'bead',
      name: 'db',
      labels: { io_accounting: 'unavailable' },
    };
    const u = createPipeline().handle(msg(T0, [uncounted])).points;
    expect(entityPoint(u).tags).not.toHaveProperty('io_accounting');
    expect(u.find((x) => x.measurement === 'strata_entity')!.fields.io_accounting).toBe('unavailable');
    // 1.25 s later (a late tick): Δcpu = 500_000 µs → 0.5 s / 1.25 s = 0.4 cores; faults 10→60: 50 / 1.25 = 40/s
    const b = p.handle(
      msg(T0 + 1250, [container({ cpu_usage_usec_total: 1_500_000, page_faults_total: 60 })]),
    );
    const f = entityPoint(b.points);
    expect(f.timeMs).toBe(T0 + 1250);
    expect(f.fields.cpu_cores).toBeCloseTo(0.4, 12);
    // Schema version 3: cpu_cores is the container's CPU, not repeated as cpu_usage_cores.
    expect(f.fields.cpu_usage_cores).toBeUndefined();
    expect(f.fields.page_faults_per_second).toBeCloseTo(40, 12);
    expect(f.fields.interval_seconds).toBe(1.25);
  });

  it('a reset gives no rate for that interval, then rates resume', () => {
    const p = createPipeline();
    p.handle(msg(T0, [container({ cpu_usage_usec_total: 9_000_000 })]));
    // restart: 9_000_000 → 200_000 is a decrease (64-bit cgroup counter): no rate, never negative
    const b = entityPoint(p.handle(msg(T0 + 1000, [container({ cpu_usage_usec_total: 200_000 })])).points);
    expect(b.fields.cpu_cores).toBeUndefined();
    // next: 200_000 → 700_000 over 1 s = 0.5 cores
    const c = entityPoint(p.handle(msg(T0 + 2000, [container({ cpu_usage_usec_total: 700_000 })])).points);
    expect(c.fields.cpu_cores).toBeCloseTo(0.5, 12);
  });

  it('a gap longer than maxGapIntervals × interval gives no rate across it', () => {
    const p = createPipeline({ rates: { maxGapIntervals: 5 } });
    p.handle(msg(T0, [container({ cpu_usage_usec_total: 0 })]));
    // 6 s > 5 × 1 s: gap
    const b = entityPoint(p.handle(msg(T0 + 6000, [container({ cpu_usage_usec_total: 6_000_000 })])).points);
    expect(b.fields.cpu_cores).toBeUndefined();
    // 5 s = 5 × 1 s is not a gap: Δ 1_000_000 µs / 5 s = 0.2 cores
    const c = entityPoint(
      p.handle(msg(T0 + 11_000, [container({ cpu_usage_usec_total: 7_000_000 })])).points,
    );
    expect(c.fields.cpu_cores).toBeCloseTo(0.2, 12);
  });

  it('a duplicate or older sample (replay) is ignored and does not disturb the next rate', () => {
    const p = createPipeline();
    p.handle(msg(T0, [container({ cpu_usage_usec_total: 0 })]));
    p.handle(msg(T0 + 1000, [container({ cpu_usage_usec_total: 1_000_000 })]));
    expect(p.handle(msg(T0 + 1000, [container({ cpu_usage_usec_total: 1_000_000 })])).points).toEqual([]);
    expect(p.handle(msg(T0, [container({ cpu_usage_usec_total: 0 })])).points).toEqual([]);
    // next real tick: (1_300_000 - 1_000_000) / 1 s = 0.3 cores, measured from T0+1000 not from the replay
    const c = entityPoint(p.handle(msg(T0 + 2000, [container({ cpu_usage_usec_total: 1_300_000 })])).points);
    expect(c.fields.cpu_cores).toBeCloseTo(0.3, 12);
  });

  it('an agent restart (new run_id) gives no rate for that interval', () => {
    const p = createPipeline();
    p.handle(msg(T0, [container({ cpu_usage_usec_total: 0 })]));
    const b = p.handle(
      msg(T0 + 1000, [container({ cpu_usage_usec_total: 1_000_000 })], {
        agent: { version: 't', run_id: 'r2' },
      }),
    );
    expect(entityPoint(b.points).fields.cpu_cores).toBeUndefined();
  });

  it('uses the entity sample ts over the message ts', () => {
    const p = createPipeline();
    p.handle(msg(T0, [container({ cpu_usage_usec_total: 0 }, { ts: T0 - 200 })]));
    // entity interval = (T0+1000) - (T0-200) = 1.2 s; 600_000 µs / 1.2 s = 0.5 cores
    const b = entityPoint(p.handle(msg(T0 + 1000, [container({ cpu_usage_usec_total: 600_000 })])).points);
    expect(b.fields.cpu_cores).toBeCloseTo(0.5, 12);
  });

  it('interface rows: packets/s and bytes/s, a 32-bit wrap on a NIC counter, lo kept as the agent sent it', () => {
    const p = createPipeline();
    const host = (rxBytes: number, rxPackets: number): EntitySample => ({
      entity: { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} },
      counters: {},
      gauges: {},
      interfaces: { eth0: { counters: { rx_bytes_total: rxBytes, rx_packets_total: rxPackets } } },
    });
    p.handle(msg(T0, [host(4_294_000_000, 10)]));
    // rx_bytes wraps at 2^32: Δ = 4_294_967_296 - 4_294_000_000 + 32_704 = 967_296 + 32_704 = 1_000_000 B / 0.5 s
    const out = p.handle(msg(T0 + 500, [host(32_704, 510)]));
    const nic = out.points.find((pt) => pt.tags.interface === 'eth0')!;
    expect(nic.fields.rx_bytes_per_second).toBe(2_000_000);
    expect(nic.fields.rx_packets_per_second).toBe(1000); // 500 packets / 0.5 s
    expect(nic.tags).toMatchObject({ node: 'n1', layer: 'host', interface: 'eth0' });
  });

  it('counters and devices that change order, appear or vanish between samples still pair by name', () => {
    // Pairing is by counter and device name: a changed layout never pairs a counter with a
    // neighbour, and what the previous sample lacked gives no rate.
    const p = createPipeline();
    const host = (counters: Record<string, number>, devices: Record<string, Record<string, number>>) =>
      ({
        entity: { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} },
        counters,
        gauges: {},
        devices: Object.fromEntries(Object.entries(devices).map(([d, c]) => [d, { counters: c }])),
      }) as EntitySample;
    p.handle(
      msg(T0, [
        host(
          { context_switches_total: 1000, processes_forked_total: 10 },
          { sda: { reads_completed_total: 100 }, sdb: { reads_completed_total: 5000 } },
        ),
      ]),
    );
    const b = p.handle(
      msg(T0 + 2000, [
        host(
          // Order swapped, and a counter the previous sample did not have (no rate for it yet).
          { processes_forked_total: 30, page_faults_total: 7, context_switches_total: 3000 },
          // sdb first now, sda gone, sdc new.
          { sdb: { reads_completed_total: 5400 }, sdc: { reads_completed_total: 1 } },
        ),
      ]),
    );
    const e = entityPoint(b.points);
    expect(e.fields.context_switches_per_second).toBe(1000); // 2000 / 2 s
    expect(e.fields.processes_forked_per_second).toBe(10); // 20 / 2 s
    expect(e.fields).not.toHaveProperty('page_faults_per_second');
    const dev = (d: string) => b.points.find((pt) => pt.tags.device === d);
    expect(dev('sdb')?.fields.read_iops).toBe(200); // 400 / 2 s
    expect(dev('sdc')).toBeUndefined(); // first sample of sdc: no rate, no gauges, no row
    expect(dev('sda')).toBeUndefined();
    // Third sample: back to the first layout; sda reappears (paired with nothing: no rate).
    const c = p.handle(
      msg(T0 + 3000, [
        host(
          { context_switches_total: 3500, processes_forked_total: 31, page_faults_total: 17 },
          { sda: { reads_completed_total: 150 }, sdb: { reads_completed_total: 5500 } },
        ),
      ]),
    );
    const e3 = entityPoint(c.points);
    expect(e3.fields.context_switches_per_second).toBe(500);
    expect(e3.fields.page_faults_per_second).toBe(10);
    expect(c.points.find((pt) => pt.tags.device === 'sdb')?.fields.read_iops).toBe(100);
    expect(c.points.find((pt) => pt.tags.device === 'sda')).toBeUndefined();
  });

  it('device rows: IOPS, bytes/s, latency per op only when ops > 0, utilisation, 32-bit wrap', () => {
    const p = createPipeline();
    const host = (d: Record<string, number>): EntitySample => ({
      entity: { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} },
      counters: {},
      gauges: {},
      devices: { sda: { counters: d, gauges: { in_flight_requests: 1 } } },
    });
    p.handle(
      msg(T0, [
        host({
          reads_completed_total: 100,
          read_time_ms_total: 50,
          read_bytes_total: 4_294_967_000,
          writes_completed_total: 7,
          write_time_ms_total: 3,
          io_time_ms_total: 1000,
        }),
      ]),
    );
    const b = p.handle(
      msg(T0 + 2000, [
        host({
          reads_completed_total: 300, // 200 ops / 2 s = 100 IOPS
          read_time_ms_total: 450, // 400 ms / 200 ops = 2 ms/op
          read_bytes_total: 818_904, // wrap: 2^32 - 4_294_967_000 + 818_904 = 296 + 818_904 = 819_200 B / 2 s = 409_600 B/s
          writes_completed_total: 7, // idle: 0 IOPS, and no write latency (0 ÷ 0)
          write_time_ms_total: 3,
          io_time_ms_total: 1500, // 500 ms busy / 2000 ms = 0.25
        }),
      ]),
    );
    const dev = b.points.find((pt) => pt.tags.device === 'sda')!;
    expect(dev.measurement).toBe('strata_host');
    expect(dev.tags).toMatchObject({ node: 'n1', layer: 'host', name: 'n1', device: 'sda' });
    expect(dev.fields).toMatchObject({
      read_iops: 100,
      write_iops: 0,
      read_latency_ms_per_op: 2,
      read_bytes_per_second: 409_600,
      utilization_ratio: 0.25,
      in_flight_requests: 1,
    });
    expect(dev.fields.write_latency_ms_per_op).toBeUndefined();
    // Schema version 3: no `iops` field, it is read_iops + write_iops.
    expect(dev.fields.iops).toBeUndefined();
  });

  it("writes none of the gauges older agents send that are not written (the kernel's PSI avg10), and the exact stall share instead", () => {
    const msgs = fs
      .readFileSync(path.join(import.meta.dirname, '../../testdata/processor/agent-host-1s.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SampleMessage);
    const sent = msgs.flatMap((m) => m.samples.flatMap((x) => Object.keys(x.gauges ?? {})));
    expect(sent.filter((k) => k.endsWith('_avg10_pct')).length).toBeGreaterThan(0);
    const p = createPipeline();
    const written = new Set<string>();
    for (const m of msgs) for (const pt of p.handle(m).points) for (const k in pt.fields) written.add(k);
    expect([...written].filter((k) => k.endsWith('_avg10_pct'))).toEqual([]);
    expect(new Set(sent.filter((k) => k.endsWith('_avg10_pct')))).toEqual(
      new Set(OLDER_AGENT_GAUGES_NOT_WRITTEN),
    );
    expect(written.has('psi_cpu_some_stall_ratio')).toBe(true);
  });
});
