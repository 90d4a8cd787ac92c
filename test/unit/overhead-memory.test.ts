// Memory overhead (docs/overhead.md §2.4) on captured figures: the host's /proc and KSM attributes,
// one VM's smaps_rollup and ksm_stat while KSM merged it with a twin (testdata/ksm), and a guest
// view from a real guest's /proc (testdata/proc/hybrid-host: this machine is a KVM guest). The
// containers' memory gauges are written by hand. Arithmetic in the comments.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ksmMetrics } from '../../collectors/host/ksm.ts';
import { procSampleFromFiles } from '../../collectors/procfs/parsers.ts';
import { parseKsmStat, parseSmapsRollup } from '../../collectors/vm/parsers.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import type { Entity, EntitySample, SampleMessage } from '../../schemas/sample.ts';
import { overheadPoints } from './overhead.helpers.ts';

const T0 = 1_795_322_559_000;
const PROC = path.join(import.meta.dirname, '../../testdata/proc/hybrid-host');
const KSM = path.join(import.meta.dirname, '../../testdata/ksm');
const PAGE = 4096;
const ksmText = (f: string) => fs.readFileSync(path.join(KSM, f), 'latin1');

function proc(step: 0 | 1, entity: Entity, extraGauges: Record<string, number> = {}): EntitySample {
  const rd = (f: string) => fs.readFileSync(path.join(PROC, `step${step}`, f), 'utf8');
  const parts = procSampleFromFiles({ stat: rd('stat'), vmstat: rd('vmstat'), meminfo: rd('meminfo') });
  return { entity, counters: parts.counters, gauges: { ...parts.gauges, ...extraGauges } };
}
const meminfo = (step: 0 | 1, key: string) =>
  Number(
    new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(
      fs.readFileSync(path.join(PROC, `step${step}`, 'meminfo'), 'utf8'),
    )![1],
  ) * 1024;

const HOST: Entity = { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} };
const VM: Entity = {
  layer: 'vm',
  kind: 'qemu',
  id: 'vm-1',
  name: 'vm1',
  labels: { vm_name: 'vm1', accel: 'tcg' },
  parent: { layer: 'host', id: 'n1' },
};
const GUEST: Entity = {
  layer: 'guest',
  kind: 'guest-agent',
  id: 'vm-1/guest',
  name: 'vm1',
  labels: {},
  parent: { layer: 'vm', id: 'vm-1' },
};
const container = (id: string, usage: number, anon: number, file: number): EntitySample => ({
  entity: {
    layer: 'container',
    kind: 'docker',
    id,
    name: id,
    labels: {},
    parent: { layer: 'host', id: 'n1' },
  },
  counters: { cpu_usage_usec_total: 1000 },
  gauges: { memory_usage_bytes: usage, memory_anon_bytes: anon, memory_file_bytes: file },
});

/** The host's KSM figures of the capture, ksmd at `ksmdTicks` of CPU. */
function hostKsm(ksmdTicks: number) {
  const out = { counters: {} as Record<string, number>, gauges: {} as Record<string, number> };
  const files = [
    'run',
    'pages_shared',
    'pages_sharing',
    'pages_unshared',
    'pages_volatile',
    'full_scans',
  ] as const;
  ksmMetrics(Object.fromEntries(files.map((f) => [f, ksmText(`sys-merged/${f}`)])), PAGE, out);
  out.counters.ksmd_cpu_usec_total = ksmdTicks * 10_000;
  return out;
}

function vmSample(cpuUsec: number): EntitySample {
  const gauges = parseSmapsRollup(ksmText('smaps_rollup'));
  parseKsmStat(ksmText('ksm_stat'), PAGE, gauges);
  gauges.memory_rss_bytes = 209216 * 1024;
  return { entity: VM, counters: { cpu_usage_usec_total: cpuUsec }, gauges };
}

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
const overhead = overheadPoints;

function tick(p: ReturnType<typeof createPipeline>, step: 0 | 1, containers: EntitySample[]) {
  const k = hostKsm(step === 0 ? 262 : 312);
  const host = proc(step, HOST, k.gauges);
  Object.assign(host.counters, k.counters);
  return p.handle(
    msg(T0 + step * 1000, [host, vmSample(1_000_000 + step * 500_000), proc(step, GUEST), ...containers]),
  );
}

describe('memory overhead (§2.4)', () => {
  it('per VM: what the host pays (Pss) − what the guest uses, and its KSM saving', () => {
    const p = createPipeline();
    tick(p, 0, []);
    const out = tick(p, 1, []);
    const [o] = overhead(out.points, 'vm');
    const f = o!.fields;
    const pss = 155841 * 1024; // smaps_rollup Pss
    const used = meminfo(1, 'MemTotal') - meminfo(1, 'MemAvailable');
    expect(f.hypervisor_memory_bytes).toBe(pss);
    expect(f.guest_memory_total_bytes).toBe(meminfo(1, 'MemTotal'));
    expect(f.guest_memory_used_bytes).toBe(used);
    expect(f.memory_overhead_bytes).toBe(pss - used);
    // Anonymous 185688 kB − Pss_Anon 145776 kB: 39 MiB of merged guest RAM this VM no longer pays for.
    expect(f.ksm_saving_bytes).toBe((185688 - 145776) * 1024);
  });

  it('per node: resident memory by layer, KSM saving against ksmd CPU', () => {
    const p = createPipeline();
    const cs = [container('c1', 300e6, 200e6, 90e6), container('c2', 100e6, 20e6, 75e6)];
    tick(p, 0, cs);
    const out = tick(p, 1, cs);
    const [n] = overhead(out.points, 'node');
    const f = n!.fields;
    const used = meminfo(1, 'MemTotal') - meminfo(1, 'MemFree');
    expect(f.host_memory_used_bytes).toBe(used);
    expect(f.containers_memory_bytes).toBe(400e6); // 300 + 100 MB
    expect(f.containers_memory_anon_bytes).toBe(220e6);
    expect(f.containers_memory_file_bytes).toBe(165e6); // page cache: 90 + 75 MB
    expect(f.vms_hypervisor_memory_bytes).toBe(155841 * 1024);
    expect(f.host_other_memory_bytes).toBe(used - 400e6 - 155841 * 1024);
    expect(f.vms_ksm_saving_bytes).toBe((185688 - 145776) * 1024);
    expect(f.vms_memory_overhead_bytes).toBe(
      155841 * 1024 - (meminfo(1, 'MemTotal') - meminfo(1, 'MemAvailable')),
    );
    // pages_sharing 17926 × 4 KiB = 70 MiB saved on the node, for ksmd's 50 ticks in 1 s = 0.5 core.
    expect(f.host_ksm_saving_bytes).toBe(17926 * PAGE);
    expect(f.ksmd_cpu_cores).toBeCloseTo(0.5, 12);
  });

  it('edge cases: no Pss_Anon → no KSM saving; VmRSS when there is no smaps_rollup; more counted than resident → no host_other', () => {
    const p = createPipeline();
    const bare = (cpu: number): EntitySample => ({
      entity: VM,
      counters: { cpu_usage_usec_total: cpu },
      gauges: { memory_rss_bytes: 200e6 },
    });
    const host = (step: 0 | 1) => proc(step, HOST);
    const huge = container('c1', 1e15, 1e15, 0); // a petabyte: more than the host has
    p.handle(msg(T0, [host(0), bare(1e6), proc(0, GUEST), huge]));
    const out = p.handle(msg(T0 + 1000, [host(1), bare(2e6), proc(1, GUEST), huge]));
    const v = overhead(out.points, 'vm')[0]!.fields;
    expect(v.hypervisor_memory_bytes).toBe(200e6);
    expect(v.ksm_saving_bytes).toBeUndefined();
    const n = overhead(out.points, 'node')[0]!.fields;
    expect(n.host_other_memory_bytes).toBeUndefined();
    expect(n.host_memory_used_bytes).toBeGreaterThan(0);
    expect(n.host_ksm_saving_bytes).toBeUndefined(); // no KSM figures from this host
  });
});
