// The messages perf:processor sends: one per node per tick, as `strata agent` publishes them.
// The host sample of every node is a real one recorded on this machine
// (testdata/processor/agent-host-1s.ndjson) with its counters advancing; containers have the shape
// the cgroup collector emits (1 device, 1 interface each).
import fs from 'node:fs';
import path from 'node:path';
import type { EntitySample, SampleMessage } from '../schemas/sample.ts';

const recorded = fs
  .readFileSync(path.join(import.meta.dirname, '../testdata/processor/agent-host-1s.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as SampleMessage);
const host = recorded[0]?.samples[0] as EntitySample;

function grow(counters: Record<string, number>, t: number, k: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key in counters) out[key] = (counters[key] as number) + t * (k + 1) * 1000;
  return out;
}

/**
 * A recorded tick's sample time: t0 + t s, give or take a few ms. Real agents' ticks are never
 * exactly 1000 ms apart, so their rates are not whole numbers; with exact seconds every rate of
 * these synthetic counters would be an integer, which the line-protocol encoder prints ~10× faster
 * than a real rate, flattering the figures.
 */
export function jitteredTs(t0: number, node: number, t: number): number {
  return t0 + t * 1000 + ((node * 7 + t * 13) % 9) - 4;
}

/** Node `<prefix>-<node>`'s message for tick t (sample time ts): its host and `containers` containers. */
export function tick(prefix: string, node: number, t: number, ts: number, containers: number): SampleMessage {
  const id = `${prefix}-${node}`;
  const samples: EntitySample[] = [
    {
      ...host,
      entity: { ...host.entity, id, name: id },
      ts,
      counters: grow(host.counters, t, 0),
      devices: Object.fromEntries(
        Object.entries(host.devices ?? {}).map(([d, m]) => [
          d,
          { counters: grow(m.counters, t, 1), gauges: m.gauges ?? {} },
        ]),
      ),
      interfaces: Object.fromEntries(
        Object.entries(host.interfaces ?? {}).map(([d, m]) => [d, { counters: grow(m.counters, t, 2) }]),
      ),
    },
  ];
  for (let c = 0; c < containers; c++) {
    samples.push({
      entity: {
        layer: 'container',
        kind: 'docker',
        id: `${id}-c${c}`,
        name: `app-${c}`,
        labels: { image: 'busybox', cgroup_version: 'hybrid', cgroup_path: `/docker/${id}-c${c}` },
        parent: { layer: 'host', id },
      },
      ts,
      counters: {
        cpu_usage_usec_total: t * 10_000 * (c + 1),
        cpu_user_usec_total: t * 6000 * (c + 1),
        cpu_system_usec_total: t * 4000 * (c + 1),
        page_faults_total: t * 100,
        psi_io_some_usec_total: t * 1000,
        psi_io_full_usec_total: t * 500,
      },
      gauges: { memory_usage_bytes: 1e7 },
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
  return {
    v: 1,
    node: { id, hostname: id, labels: {} },
    ts,
    interval_ms: 1000,
    seq: t,
    agent: { version: 'bench', run_id: `${prefix}-r${node}` },
    samples,
  };
}
