// Micro-benchmark of the processing pipeline (rates → overhead → noisy-neighbor): prints CPU-µs per
// entity-sample. Target: ≤ 10 µs, i.e. ≥ 100k entity-samples/s per core.
// Usage: npm run perf:pipeline [-- --nodes 20 --containers 50 --ticks 300]
// The host sample of every node is a real one recorded from `strata agent --output ndjson` on this
// machine (testdata/processor/agent-host-1s.ndjson), replayed with its counters advancing; the
// containers, VMs and guests have the shape the collectors emit (1 device, 1 interface each).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPipeline } from '../processors/pipeline.ts';
import type { EntitySample, SampleMessage } from '../schemas/sample.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '20' },
    containers: { type: 'string', default: '50' },
    vms: { type: 'string', default: '2' },
    ticks: { type: 'string', default: '300' },
    /** Turn noisy-neighbor detection off, to see its share of the cost. */
    'no-noisy': { type: 'boolean', default: false },
  },
});
const NODES = Number(values.nodes);
const CONTAINERS = Number(values.containers);
const VMS = Number(values.vms);
const TICKS = Number(values.ticks);

const recorded = fs
  .readFileSync(path.join(import.meta.dirname, '../testdata/processor/agent-host-1s.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as SampleMessage);
const hostTemplate = recorded[0]!.samples[0]!;

function grow(counters: Record<string, number>, t: number, k: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key in counters) out[key] = counters[key]! + t * (k + 1) * 1000;
  return out;
}

function buildTick(node: number, t: number): SampleMessage {
  const ts = 1_795_322_559_000 + t * 1000;
  const samples: EntitySample[] = [];
  samples.push({
    ...hostTemplate,
    entity: { ...hostTemplate.entity, id: `node-${node}` },
    ts,
    counters: grow(hostTemplate.counters, t, 0),
    devices: Object.fromEntries(
      Object.entries(hostTemplate.devices ?? {}).map(([d, m]) => [
        d,
        { counters: grow(m.counters, t, 1), gauges: m.gauges ?? {} },
      ]),
    ),
    interfaces: Object.fromEntries(
      Object.entries(hostTemplate.interfaces ?? {}).map(([d, m]) => [
        d,
        { counters: grow(m.counters, t, 2) },
      ]),
    ),
  });
  for (let c = 0; c < CONTAINERS; c++) {
    samples.push({
      entity: {
        layer: 'container',
        kind: 'docker',
        id: `c${c}`,
        name: `app-${c}`,
        labels: { image: 'busybox', cgroup_version: 'hybrid', cgroup_path: `/docker/c${c}` },
        parent: { layer: 'host', id: `node-${node}` },
      },
      ts,
      counters: {
        cpu_usage_usec_total: t * 10_000 * (c + 1),
        cpu_user_usec_total: t * 6000 * (c + 1),
        cpu_system_usec_total: t * 4000 * (c + 1),
        cpu_periods_total: t * 10,
        cpu_throttled_periods_total: 0,
        cpu_throttled_usec_total: 0,
        page_faults_total: t * 100,
        major_page_faults_total: 0,
        psi_io_some_usec_total: t * 1000,
        psi_io_full_usec_total: t * 500,
        psi_cpu_some_usec_total: t * 2000,
        psi_cpu_full_usec_total: t * 100,
        psi_memory_some_usec_total: 0,
        psi_memory_full_usec_total: 0,
      },
      gauges: {
        memory_usage_bytes: 1e7,
        memory_anon_bytes: 5e6,
        memory_file_bytes: 5e6,
      },
      devices: {
        vda: {
          counters: {
            reads_completed_total: t * 10,
            writes_completed_total: t * 20 * (c % 3),
            read_bytes_total: t * 40960,
            written_bytes_total: t * 81920 * (c % 3),
          },
        },
      },
      interfaces: {
        eth0: {
          counters: {
            rx_bytes_total: t * 1e5,
            rx_packets_total: t * 100,
            tx_bytes_total: t * 5e4,
            tx_packets_total: t * 80,
          },
        },
      },
    });
  }
  for (let v = 0; v < VMS; v++) {
    const vmId = `vm-${v}`;
    samples.push({
      entity: {
        layer: 'vm',
        kind: 'qemu',
        id: vmId,
        name: vmId,
        labels: { accel: 'tcg' },
        parent: { layer: 'host', id: `node-${node}` },
      },
      ts,
      counters: {
        cpu_usage_usec_total: t * 300_000,
        vcpu_usec_total: t * 250_000,
        page_faults_total: t * 50,
      },
      gauges: { memory_rss_bytes: 5e8, vcpu_count: 1 },
      devices: {
        'virtio-disk0': {
          counters: {
            reads_completed_total: t * 100,
            read_time_ns_total: t * 5_600_000,
            read_bytes_total: t * 409600,
          },
        },
      },
      interfaces: { tap0: { counters: { rx_packets_total: t * 100, tx_packets_total: t * 100 } } },
    });
    samples.push({
      entity: {
        layer: 'guest',
        kind: 'guest-agent',
        id: `${vmId}/g`,
        name: vmId,
        labels: {},
        parent: { layer: 'vm', id: vmId },
      },
      ts,
      counters: grow(hostTemplate.counters, t, 3),
      gauges: hostTemplate.gauges,
      devices: { vda: { counters: { reads_completed_total: t * 100, read_time_ms_total: t * 24 } } },
      interfaces: { eth0: { counters: { rx_packets_total: t * 100, tx_packets_total: t * 100 } } },
    });
  }
  return {
    v: 1,
    node: { id: `node-${node}`, hostname: `node-${node}`, labels: {} },
    ts,
    interval_ms: 1000,
    seq: t,
    agent: { version: 'bench', run_id: `r${node}` },
    samples,
  };
}

// Messages are built in chunks of a few ticks, untimed, then fed to the pipeline, timed: the figure
// is the pipeline's, not the generator's, and the heap holds what a processor holds (a few ticks),
// not the whole run (which would make every GC look expensive).
const CHUNK_TICKS = 5;
const perTick = 1 + CONTAINERS + 2 * VMS;
const entitySamples = TICKS * NODES * perTick;

function run(): { cpuUs: number; points: number; alerts: number } {
  const p = createPipeline({ noisyNeighbor: { enabled: !values['no-noisy'] } });
  let points = 0;
  let alerts = 0;
  let cpuUs = 0;
  for (let t0 = 0; t0 < TICKS; t0 += CHUNK_TICKS) {
    const chunk: SampleMessage[] = [];
    for (let t = t0; t < Math.min(TICKS, t0 + CHUNK_TICKS); t++)
      for (let n = 0; n < NODES; n++) chunk.push(buildTick(n, t));
    const start = process.cpuUsage();
    for (const m of chunk) {
      const out = p.handle(m);
      points += out.points.length;
      alerts += out.alerts.length;
    }
    const used = process.cpuUsage(start);
    cpuUs += used.user + used.system;
  }
  return { cpuUs, points, alerts };
}

run(); // warm-up (JIT)
const results = [run(), run(), run()];
const perSample = results.map((r) => r.cpuUs / entitySamples).sort((a, b) => a - b);
const best = perSample[0]!;
const median = perSample[1]!;
console.log(
  JSON.stringify(
    {
      nodes: NODES,
      ticks: TICKS,
      entity_samples: entitySamples,
      points_per_run: results[0]!.points,
      cpu_us_per_entity_sample_median: Number(median.toFixed(3)),
      cpu_us_per_entity_sample_best: Number(best.toFixed(3)),
      entity_samples_per_cpu_second: Math.round(1e6 / median),
      cpu_us_per_point: Number(((median * entitySamples) / results[0]!.points).toFixed(3)),
    },
    null,
    2,
  ),
);
