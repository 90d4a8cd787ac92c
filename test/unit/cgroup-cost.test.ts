// The cgroup collector's cost cuts must not change what it emits. memory.stat is not re-read while
// the container is idle (its CPU time and memory usage both unchanged since the last read), at most
// for 10 ticks. v1 cpu.stat (throttling) is only
// re-read every 10th tick while cpu.cfs_quota_us is -1 (the kernel does not count periods without a
// quota), its last values are emitted on every tick in between, and once a quota is set it is read
// every tick. Runs on a copy of the captured hybrid tree (regular files, rewritten between ticks).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { registry } from '../../lib/metrics.ts';
import type { EntitySample } from '../../schemas/sample.ts';

const STEP0 = new URL('../../testdata/cgroup/hybrid-dd/step0', import.meta.url).pathname;
let dir = '';

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

function collector(root: string): CgroupCollector {
  return new CgroupCollector(
    parseCgroupConfig({ include: ['/strata-capture'], docker: { enabled: false } }),
    {
      nodeId: 'node-1',
      paths: { proc: `${root}/proc`, sys: `${root}/sys`, cgroup: `${root}/sys/fs/cgroup` },
      mountinfo: readFileSync(`${root}/proc/self/mountinfo`, 'utf8'),
    },
  );
}

async function tick(c: CgroupCollector): Promise<EntitySample> {
  const samples: EntitySample[] = [];
  await c.gather({ add: (s) => samples.push(s), error: (_s, key) => expect.fail(`unexpected error ${key}`) });
  expect(samples).toHaveLength(1);
  return samples[0]!;
}

const cpuStat = (periods: number) =>
  `nr_periods ${periods}\nnr_throttled ${periods}\nthrottled_time ${periods * 1000}\nnr_bursts 0\nburst_time 0\n`;

describe('cgroup collector: v1 throttling read only when a CFS quota can move it', () => {
  it('without a quota the last values go out every tick; a quota set is picked up within 10 ticks, then read every tick', async () => {
    dir = mkdtempSync(`${tmpdir()}/strata-cgcost-`);
    cpSync(STEP0, dir, { recursive: true });
    const cpu = `${dir}/sys/fs/cgroup/cpu/strata-capture`;
    const c = collector(dir);
    await c.start();
    const first = await tick(c);
    expect(first.counters).toMatchObject({
      cpu_periods_total: 0,
      cpu_throttled_periods_total: 0,
      cpu_throttled_usec_total: 0,
    });
    // Not something the kernel does without a quota; here it shows the file is not re-read.
    writeFileSync(`${cpu}/cpu.stat`, cpuStat(5));
    const second = await tick(c);
    expect(second.counters.cpu_periods_total).toBe(0);
    expect(second.counters.cpu_throttled_usec_total).toBe(0);
    // Everything else of the sample is as on every tick.
    expect(Object.keys(second.counters).sort()).toEqual(Object.keys(first.counters).sort());

    writeFileSync(`${cpu}/cpu.cfs_quota_us`, '50000\n');
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) seen.push((await tick(c)).counters.cpu_periods_total!);
    expect(seen.at(-1)).toBe(5);
    expect(seen.every((v) => v === 0 || v === 5)).toBe(true);
    // With a quota: every tick.
    writeFileSync(`${cpu}/cpu.stat`, cpuStat(7));
    const withQuota = await tick(c);
    expect(withQuota.counters).toMatchObject({
      cpu_periods_total: 7,
      cpu_throttled_periods_total: 7,
      cpu_throttled_usec_total: 7,
    });
    await c.shutdown();
  });
});

const memStat = (faults: number, anon: number) =>
  `cache 0\nrss ${anon}\npgfault ${faults}\npgmajfault 1\ntotal_cache 0\ntotal_rss ${anon}\n` +
  `total_pgfault ${faults}\ntotal_pgmajfault 1\n`;

async function reusedTotal(): Promise<number> {
  const m = await registry.getSingleMetric('strata_collector_cgroup_memory_stat_reused_total')?.get();
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

describe('cgroup collector: memory.stat read again only when the container did something', () => {
  it('idle (same CPU time, same memory usage): last values reused, at most 10 ticks; CPU or usage moving: read at once', async () => {
    dir = mkdtempSync(`${tmpdir()}/strata-cgcost-`);
    cpSync(STEP0, dir, { recursive: true });
    const mem = `${dir}/sys/fs/cgroup/memory/strata-capture`;
    const unified = `${dir}/sys/fs/cgroup/unified/strata-capture`;
    const setCpu = (usec: number) =>
      writeFileSync(
        `${unified}/cpu.stat`,
        `usage_usec ${usec}\nuser_usec ${usec}\nsystem_usec 0\nnice_usec 0\n`,
      );
    setCpu(1000);
    writeFileSync(`${mem}/memory.stat`, memStat(100, 4096));
    const c = collector(dir);
    await c.start();
    const first = await tick(c);
    expect(first.counters.page_faults_total).toBe(100);
    expect(first.gauges?.memory_anon_bytes).toBe(4096);
    const reused0 = await reusedTotal();

    // Idle: the kernel would not change memory.stat; a changed file shows it is not read.
    writeFileSync(`${mem}/memory.stat`, memStat(150, 8192));
    const idle = await tick(c);
    expect(idle.counters.page_faults_total).toBe(100);
    expect(idle.counters.major_page_faults_total).toBe(1);
    expect(idle.gauges?.memory_anon_bytes).toBe(4096);
    expect(Object.keys(idle.gauges ?? {})).toEqual(Object.keys(first.gauges ?? {})); // same fields, same order
    expect((await reusedTotal()) - reused0).toBe(1);

    // Its CPU time moved: read this tick.
    setCpu(1001);
    const busy = await tick(c);
    expect(busy.counters.page_faults_total).toBe(150);
    expect(busy.gauges?.memory_anon_bytes).toBe(8192);

    // Only its memory usage moved (pages reclaimed, say): read this tick too.
    writeFileSync(`${mem}/memory.stat`, memStat(150, 0));
    writeFileSync(`${mem}/memory.usage_in_bytes`, '12345\n');
    const reclaimed = await tick(c);
    expect(reclaimed.gauges?.memory_anon_bytes).toBe(0);
    expect(reclaimed.gauges?.memory_usage_bytes).toBe(12345);

    // Idle for good: a change the rule cannot see is picked up within 10 ticks.
    writeFileSync(`${mem}/memory.stat`, memStat(160, 0));
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) seen.push((await tick(c)).counters.page_faults_total!);
    expect(seen.at(-1)).toBe(160);
    expect(seen.every((v) => v === 150 || v === 160)).toBe(true);
    expect(seen.filter((v) => v === 150).length).toBeGreaterThan(0);
    await c.shutdown();
  });

  it('garbage in memory.stat is read and reported on every tick, never reused', async () => {
    dir = mkdtempSync(`${tmpdir()}/strata-cgcost-`);
    cpSync(STEP0, dir, { recursive: true });
    writeFileSync(`${dir}/sys/fs/cgroup/memory/strata-capture/memory.stat`, 'total_pgfault x1\n');
    const c = collector(dir);
    await c.start();
    const errors: string[] = [];
    for (let i = 0; i < 3; i++) {
      await c.gather({ add: () => undefined, error: (_s, key) => errors.push(key) });
    }
    expect(errors.filter((k) => k.includes('memory.stat'))).toHaveLength(3);
    await c.shutdown();
  });
});
