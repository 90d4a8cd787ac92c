// What an on-call engineer sees, on real recordings (testdata/processor):
// - noisy-1m-bursty (capture-noisy-bursty.sh): nn-antagonist writes in 3 bursts of 15 s (8 loops of
//   random 1 MiB O_DIRECT writes) with 25 s of silence between them — longer than the resolve time
//   (3 good windows of 5 s) — beside nn-victim (one 4 KiB O_DIRECT write every 50 ms), then 150 s
//   of quiet: one episode, which must be one incident;
// - noisy-1m-direct and the VM recordings: the remedy each alert carries, and the time to fire and
//   to resolve against the bounds the settings imply (timingBounds, docs/overhead.md "Timing").
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { PipelineConfigInput } from '../../processors/config.ts';
import { NoisyNeighborConfig } from '../../processors/noisy-neighbor/config.ts';
import { timingBounds } from '../../processors/noisy-neighbor/detector.ts';
import {
  antagonistUtilization,
  capFactor,
  MAX_UTILIZATION,
  remedyFor,
} from '../../processors/noisy-neighbor/remedy.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import { type AlertEvent, AlertEvent as AlertSchema } from '../../schemas/alert.ts';
import type { Point } from '../../schemas/point.ts';
import type { SampleMessage } from '../../schemas/sample.ts';
import { toAlertmanager } from '../../sinks/webhook/index.ts';

const DIR = path.join(import.meta.dirname, '../../testdata/processor');
const TICK_MS = 1000;

function recording(name: string): SampleMessage[] {
  return zlib
    .gunzipSync(fs.readFileSync(path.join(DIR, name)))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
}

function replay(msgs: SampleMessage[], config: PipelineConfigInput = {}) {
  const p = createPipeline(config);
  const alerts: AlertEvent[] = [];
  const points: Point[] = [];
  for (const m of msgs) {
    const out = p.handle(m);
    alerts.push(...out.alerts);
    points.push(...out.points.filter((pt) => pt.measurement === 'strata_alert'));
  }
  return { alerts, points };
}

/** Sample times of the first and last message in which the named tenant was sampled. */
function presence(msgs: SampleMessage[], name: string): [number, number] {
  const ts = msgs.filter((m) => m.samples.some((s) => s.entity.name === name)).map((m) => m.ts);
  return [ts[0]!, ts.at(-1)!];
}

const bursty = recording('noisy-1m-bursty.ndjson.gz');
const heavy = recording('noisy-1m-direct.ndjson.gz');
const defaults = NoisyNeighborConfig.parse({});

describe('an intermittent antagonist (3 bursts, 25 s apart): one episode, one incident', () => {
  const { alerts, points } = replay(bursty);

  it('without an episode gap, every burst is an incident of its own (what paged 3 times)', () => {
    const ids = new Set(replay(bursty, { noisyNeighbor: { episodeGap: 0 } }).alerts.map((a) => a.id));
    expect(ids.size).toBe(3);
  });

  it('with the default gap: one id, one firing and one resolved point, the bursts announced under the same id', () => {
    expect(new Set(alerts.map((a) => a.id)).size).toBe(1);
    for (const a of alerts) expect(AlertSchema.safeParse(a).success).toBe(true);
    expect(
      alerts.map((a) => [a.status, a.labels.antagonist, a.labels.victims, a.evidence.episode_bursts]),
    ).toEqual([
      ['firing', 'nn-antagonist', 'nn-victim', 1],
      ['firing', 'nn-antagonist', 'nn-victim', 2],
      ['firing', 'nn-antagonist', 'nn-victim', 3],
      ['resolved', 'nn-antagonist', 'nn-victim', 3],
    ]);
    expect(new Set(alerts.map((a) => a.starts_at)).size).toBe(1);
    // Grafana: one region per incident (firing and resolved points), not one per burst.
    expect(points.map((p) => [p.tags.status, p.fields.alert_id])).toEqual([
      ['firing', alerts[0]!.id],
      ['resolved', alerts[0]!.id],
    ]);
    // Alertmanager: one label set for all of them, so one alert.
    expect(new Set(alerts.map((a) => JSON.stringify(toAlertmanager(a).labels))).size).toBe(1);
  });

  it('is marked intermittent with its duty cycle (bad windows ÷ windows from the first bad to the last)', () => {
    const last = alerts.at(-1)!;
    expect(last.evidence.intermittent).toBe(1);
    expect(alerts[0]!.evidence.intermittent).toBe(0);
    // 15 s on, 25 s off: about 40 % of the time, window-rounded.
    expect(last.evidence.episode_duty_cycle_ratio).toBeGreaterThan(0.3);
    expect(last.evidence.episode_duty_cycle_ratio).toBeLessThan(0.75);
    expect(last.summary).toMatch(/Intermittent: 3 bursts in one episode, bad \d+% of the time/);
  });

  it('resolves the episode gap after the last burst, inside the stated bounds', () => {
    const [, stop] = presence(bursty, 'nn-antagonist');
    const r = alerts.at(-1)!;
    const [lo, hi] = timingBounds(defaults, TICK_MS).resolve;
    expect(r.ends_at! - stop).toBeGreaterThanOrEqual(lo);
    expect(r.ends_at! - stop).toBeLessThanOrEqual(hi);
  });
});

describe('a remedy in every alert', () => {
  const { alerts, points } = replay(heavy, { noisyNeighbor: { episodeGap: 0 } });
  const firing = alerts[0]!;
  const ant = heavy.flatMap((m) => m.samples).find((s) => s.entity.name === 'nn-antagonist')!.entity;

  it('for a container on cgroup v1 (hybrid host): blkio.throttle lines in its cgroup, docker run flags', () => {
    expect(ant.labels.cgroup_version).toBe('hybrid');
    const e = firing.evidence;
    const f = e.remedy_rate_fraction_ratio!;
    // The M/G/1 cap from the victim's per-op latency and the antagonist's utilisation of the
    // device's measured capacity: ρ'/(1 − ρ') = ρ/(1 − ρ) × (1.5 − 1)·b ÷ (x − b), f = ρ'/ρ.
    // Its rates when active: the window's mean × its busiest tick ÷ the mean.
    const k = e.antagonist_peak_to_mean_ratio!;
    expect(k).toBeGreaterThanOrEqual(1);
    const rho = Math.min(
      0.95,
      Math.max(
        (k * e.antagonist_iops!) / e.device_capacity_iops!,
        (k * (e.antagonist_read_bytes_per_second! + e.antagonist_write_bytes_per_second!)) /
          e.device_capacity_bytes_per_second!,
      ),
    );
    expect(antagonistUtilization(e)).toBeCloseTo(rho, 12);
    const b = e.victim_baseline_latency_ms_per_op!;
    const odds = ((rho / (1 - rho)) * 0.5 * b) / (e.victim_latency_ms_per_op! - b);
    expect(f).toBeCloseTo(odds / (1 + odds) / rho, 12);
    expect(f).toBeGreaterThan(0);
    expect(f).toBeLessThan(1);
    // A writer: only the write direction is capped, at f of its write rate when active.
    expect(e.remedy_write_iops).toBe(Math.floor(f * k * e.antagonist_write_iops!));
    expect(e.remedy_write_bytes_per_second).toBe(Math.floor(f * k * e.antagonist_write_bytes_per_second!));
    expect(e.remedy_read_iops).toBeUndefined();
    const dir = `/sys/fs/cgroup/blkio${ant.labels.cgroup_path}`;
    expect(firing.remedy).toContain(
      `echo "$(cat /sys/class/block/vda/dev) ${e.remedy_write_iops}" > ${dir}/blkio.throttle.write_iops_device`,
    );
    expect(firing.remedy).toContain(`${dir}/blkio.throttle.write_bps_device`);
    expect(firing.remedy).toContain(`--device-write-iops /dev/vda:${e.remedy_write_iops}`);
    expect(firing.summary).toContain(`Fix: ${firing.remedy}`);
  });

  it('is in the webhook annotations, the strata_alert point (title and field) and the resolved event', () => {
    expect(toAlertmanager(firing).annotations.remedy).toBe(firing.remedy);
    expect(points[0]!.fields.remedy).toBe(firing.remedy);
    expect(points[0]!.fields.title).toContain(
      `cap nn-antagonist at ${firing.evidence.remedy_write_iops} write IOPS`,
    );
    expect(alerts[1]!.remedy).toBeDefined();
  });

  it('names the device number when it is configured', () => {
    const a = replay(heavy, { noisyNeighbor: { episodeGap: 0, deviceNumbers: { vda: '254:0' } } }).alerts[0]!;
    expect(a.remedy).toContain(`echo "254:0 ${a.evidence.remedy_write_iops}" > /sys/fs/cgroup/blkio/`);
  });

  it('for a VM: libvirt iotune and QEMU throttling on its disk, reads and writes together', () => {
    const vm = recording('noisy-vm-antagonist.ndjson.gz');
    const a = replay(vm, { noisyNeighbor: { episodeGap: 0 } }).alerts[0]!;
    expect(a.labels.antagonist_layer).toBe('vm');
    const n = a.evidence.remedy_total_iops!;
    expect(n).toBeGreaterThanOrEqual(1);
    expect(a.remedy).toMatch(
      new RegExp(
        `virsh blkdeviotune ${a.labels.antagonist} \\S+ --total-iops-sec ${n} --total-bytes-sec \\d+ --live`,
      ),
    );
    expect(a.remedy).toContain(`throttling.iops-total=${n}`);
    expect(a.remedy).toContain(`<total_iops_sec>${n}</total_iops_sec>`);
  });

  it('for a container on cgroup v2: one io.max line with the cgroup path (hand-computed caps)', () => {
    // Victim 0.1 → 0.4 ms/op; 900 writes/s, 100 reads/s, 9 MB/s of a device that did at most
    // 2000 ops/s and 10 MB/s: ρ = max(0.5, 0.9) = 0.9; ρ'/(1 − ρ') = 9 × 0.05 ÷ 0.3 = 1.5, ρ' = 0.6,
    // f = 0.6 ÷ 0.9 = 2/3.
    const ev = {
      victim_latency_ms_per_op: 0.4,
      victim_baseline_latency_ms_per_op: 0.1,
      antagonist_iops: 1000,
      antagonist_read_iops: 100,
      antagonist_write_iops: 900,
      antagonist_read_bytes_per_second: 0,
      antagonist_write_bytes_per_second: 9_000_000,
      device_capacity_iops: 2000,
      device_capacity_bytes_per_second: 10_000_000,
    };
    expect(capFactor(ev, 1.5, 0.5)).toBeCloseTo(2 / 3, 12);
    const r = remedyFor(
      {
        layer: 'container',
        kind: 'kubernetes',
        name: 'c',
        labels: { cgroup_version: 'v2', cgroup_path: '/kubepods.slice/x.scope', pod: 'p', namespace: 'ns' },
        disks: [],
      },
      'nvme0n1',
      ev,
      { targetRatio: 1.5, dominantShare: 0.5, deviceNumbers: { nvme0n1: '259:0' } },
    );
    expect(r.caps).toMatchObject({ readIops: 66, writeIops: 600, writeBps: 6_000_000 });
    expect(r.text).toContain(
      'echo "259:0 riops=66 wiops=600 rbps=4096 wbps=6000000" > /sys/fs/cgroup/kubepods.slice/x.scope/io.max',
    );
    expect(r.text).toContain('io.weight');
    expect(r.text).toContain('schedule pod ns/p apart');
  });

  it('caps a fraction of the rate when active: the busiest tick over the window mean (hand-computed)', () => {
    // The evidence above with a busiest tick 1.2 × the window's mean: 10.8 MB/s when active on a
    // 10 MB/s device: ρ = 0.95 (bound); ρ'/(1 − ρ') = 19 × 0.05 ÷ 0.3 = 19/6, ρ' = 19/25,
    // f = ρ'/ρ = 0.8; write cap 0.8 × 1.2 × 900 = 864 IOPS, 0.8 × 1.2 × 9 MB/s = 8.64 MB/s.
    const ev = {
      victim_latency_ms_per_op: 0.4,
      victim_baseline_latency_ms_per_op: 0.1,
      antagonist_iops: 1000,
      antagonist_read_iops: 100,
      antagonist_write_iops: 900,
      antagonist_read_bytes_per_second: 0,
      antagonist_write_bytes_per_second: 9_000_000,
      antagonist_peak_to_mean_ratio: 1.2,
      device_capacity_iops: 2000,
      device_capacity_bytes_per_second: 10_000_000,
    };
    expect(antagonistUtilization(ev)).toBe(MAX_UTILIZATION);
    expect(capFactor(ev, 1.5, 0.5)).toBeCloseTo(0.8, 12);
    const r = remedyFor(
      {
        layer: 'container',
        kind: 'docker',
        name: 'c',
        labels: { cgroup_version: 'v2', cgroup_path: '/x' },
        disks: [],
      },
      'vda',
      ev,
      { targetRatio: 1.5, dominantShare: 0.5, deviceNumbers: {} },
    );
    // Floored: f is 0.8 to the last bit or one below it.
    expect(r.caps.readIops! - 96).toBeGreaterThanOrEqual(-1);
    expect(r.caps.readIops! - 96).toBeLessThanOrEqual(0);
    expect(864 - r.caps.writeIops!).toBeLessThanOrEqual(1);
    expect(8_640_000 - r.caps.writeBps!).toBeLessThanOrEqual(1);
    expect(8_640_000 - r.caps.writeBps!).toBeGreaterThanOrEqual(0);
  });

  it('cuts deep when large requests saturate the disk on bandwidth (the evidence of a live firing)', () => {
    // Evidence of the live run (test/integration/noisy-neighbor-remedy.test.ts): 8 loops of 1 MiB
    // O_DIRECT writes at 392 MiB/s on a disk whose best window was 395 MiB/s; the victim at
    // 11.57 ms stalled per op against 0.097. One M/M/1 queue allowed (1 − 1/1.5) ÷ (1 − b/x) = 34 %
    // of that rate, and the victim stayed at 13× its baseline under it; the M/G/1 cap keeps 7.8 %.
    const ev = {
      victim_latency_ms_per_op: 11.568,
      victim_baseline_latency_ms_per_op: 0.097,
      antagonist_iops: 540,
      antagonist_read_iops: 0,
      antagonist_write_iops: 540,
      antagonist_read_bytes_per_second: 0,
      antagonist_write_bytes_per_second: 391.9 * 2 ** 20,
      device_capacity_iops: 610,
      device_capacity_bytes_per_second: 395 * 2 ** 20,
    };
    expect(antagonistUtilization(ev)).toBe(MAX_UTILIZATION);
    const f = capFactor(ev, 1.5, 0.5);
    expect(f).toBeGreaterThan(0.07);
    expect(f).toBeLessThan(0.085);
    // Under that cap (30.6 MiB/s, ρ = 0.078) the victim was at 0.41 ms/op against 0.132: the next
    // alert's f cuts the capped rate again, to about a quarter.
    const under = {
      ...ev,
      victim_latency_ms_per_op: 0.408,
      victim_baseline_latency_ms_per_op: 0.132,
      antagonist_iops: 33,
      antagonist_write_iops: 33,
      antagonist_write_bytes_per_second: 30.6 * 2 ** 20,
    };
    expect(antagonistUtilization(under)).toBeCloseTo(30.6 / 395, 12);
    expect(capFactor(under, 1.5, 0.5)).toBeGreaterThan(0.2);
    expect(capFactor(under, 1.5, 0.5)).toBeLessThan(0.3);
  });
});

describe('time to fire and to resolve stay inside the bounds the settings imply', () => {
  it.each([
    ['noisy-1m-direct, no episode gap', heavy, { episodeGap: 0 }],
    ['noisy-1m-direct, 3 bad windows to fire', heavy, { episodeGap: 0, fireAfterWindows: 3 }],
    ['noisy-1m-direct, 4 ticks per window', heavy, { episodeGap: 0, windowTicks: 4 }],
    ['noisy-1m-bursty, defaults (episode gap 2 min)', bursty, {}],
  ] as const)('%s', (_, msgs, nn) => {
    const cfg = NoisyNeighborConfig.parse(nn);
    const { alerts } = replay(msgs, { noisyNeighbor: nn });
    expect(alerts[0]!.status).toBe('firing');
    expect(alerts.at(-1)!.status).toBe('resolved');
    const [start, stop] = presence(msgs, 'nn-antagonist');
    const b = timingBounds(cfg, TICK_MS);
    // Its I/O started between the tick before its first sample and that sample.
    expect(alerts[0]!.starts_at - start).toBeGreaterThanOrEqual(b.fire[0] - TICK_MS);
    expect(alerts[0]!.starts_at - start).toBeLessThanOrEqual(b.fire[1]);
    const resolve = alerts.at(-1)!.ends_at! - stop;
    expect(resolve).toBeGreaterThanOrEqual(b.resolve[0]);
    expect(resolve).toBeLessThanOrEqual(b.resolve[1]);
  });

  it('the formula with the defaults: fire 6–15 s, resolve 115–125 s (10–20 s without the gap)', () => {
    expect(timingBounds(defaults, 1000)).toEqual({ fire: [6000, 15000], resolve: [115000, 125000] });
    expect(timingBounds({ ...defaults, episodeGap: 0 }, 1000).resolve).toEqual([10000, 20000]);
  });
});
