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

// PSI: a stall in a container is a stall in every ancestor, up to the system-wide
// /proc/pressure/<resource>. While that total is still, a container's totals cannot change (the
// kernel computes them on each read, an ongoing stall included), so a read made since the total
// last moved is not re-read. Only the totals are sent: the averages play no part.
const PROC_PRESSURE = new URL('../../testdata/proc/hybrid-host/step0/pressure', import.meta.url).pathname;
const psi = (avg10: number, total: number) =>
  `some avg10=${avg10.toFixed(2)} avg60=0.00 avg300=0.00 total=${total}\n` +
  `full avg10=0.00 avg60=0.00 avg300=0.00 total=${Math.floor(total / 2)}\n`;

async function psiReused(resource: string): Promise<number> {
  const m = await registry.getSingleMetric('strata_collector_cgroup_pressure_reused_total')?.get();
  return (m?.values ?? []).filter((v) => v.labels.resource === resource).reduce((s, v) => s + v.value, 0);
}

const psiGauges = (s: EntitySample) => Object.keys(s.gauges ?? {}).filter((k) => k.startsWith('psi_'));

describe('cgroup collector: PSI files read again only when the system-wide PSI moved', () => {
  function setup() {
    dir = mkdtempSync(`${tmpdir()}/strata-cgcost-`);
    cpSync(STEP0, dir, { recursive: true });
    cpSync(PROC_PRESSURE, `${dir}/proc/pressure`, { recursive: true });
    let now = 1_000_000;
    const c = new CgroupCollector(
      parseCgroupConfig({ include: ['/strata-capture'], docker: { enabled: false } }),
      {
        nodeId: 'node-1',
        paths: { proc: `${dir}/proc`, sys: `${dir}/sys`, cgroup: `${dir}/sys/fs/cgroup` },
        mountinfo: readFileSync(`${dir}/proc/self/mountinfo`, 'utf8'),
        clock: () => now,
      },
    );
    const unified = `${dir}/sys/fs/cgroup/unified/strata-capture`;
    return {
      c,
      /** One tick, 1 s after the last. */
      next: async () => {
        now += 1000;
        return tick(c);
      },
      /** One tick in the same millisecond as the last. */
      same: () => tick(c),
      setSystem: (r: string, total: number) => writeFileSync(`${dir}/proc/pressure/${r}`, psi(0, total)),
      setContainer: (r: string, avg10: number, total: number) =>
        writeFileSync(`${unified}/${r}.pressure`, psi(avg10, total)),
    };
  }

  it('reused from the tick after a read in a still stretch, at most 10 ticks; read at once when the system total moves', async () => {
    const { c, next, same, setSystem, setContainer } = setup();
    setSystem('memory', 0);
    setContainer('memory', 0, 7);
    await c.start();
    const first = await next();
    expect(first.counters.psi_memory_some_usec_total).toBe(7);
    expect(first.counters.psi_memory_full_usec_total).toBe(3);
    expect(psiGauges(first)).toEqual([]);

    // The system total has not moved since it was read before the container: the container's
    // totals cannot have either. The kernel would not change the file; here a change shows it is
    // not read.
    const reused0 = await psiReused('memory');
    setContainer('memory', 0, 99);
    const reused = await next();
    expect(reused.counters.psi_memory_some_usec_total).toBe(7);
    expect(reused.counters.psi_memory_full_usec_total).toBe(3);
    expect(Object.keys(reused.counters)).toEqual(Object.keys(first.counters)); // same fields, same order
    expect(Object.keys(reused.gauges ?? {})).toEqual(Object.keys(first.gauges ?? {}));
    expect((await psiReused('memory')) - reused0).toBe(1);

    // Another resource's system total moving does not matter.
    setSystem('io', 123);
    expect((await next()).counters.psi_memory_some_usec_total).toBe(7);

    // The system total moved (in the same millisecond as the last tick, even): read this tick.
    // That read, made after the system file showed the new total, is reused from the next tick.
    setSystem('memory', 50);
    expect((await same()).counters.psi_memory_some_usec_total).toBe(99);
    setContainer('memory', 0, 100);
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) seen.push((await next()).counters.psi_memory_some_usec_total!);
    // Still for good: a change the rule cannot see is picked up at the 10th tick after the read.
    expect(seen).toEqual([...Array(9).fill(99), 100]);

    // The system total moves every tick: read every tick.
    for (let i = 1; i <= 3; i++) {
      setSystem('memory', 50 + i);
      setContainer('memory', 0, 100 + i);
      expect((await next()).counters.psi_memory_some_usec_total).toBe(100 + i);
    }
    await c.shutdown();
  });

  it('reuses a read whatever its averages say (they are not sent), never without a readable system file', async () => {
    const { c, next, setSystem, setContainer } = setup();
    setSystem('io', 500);
    setContainer('io', 0.25, 1000);
    await c.start();
    expect((await next()).counters.psi_io_some_usec_total).toBe(1000);
    // avg10 decays on every kernel update without any stall; the total does not move.
    for (let i = 1; i < 6; i++) {
      setContainer('io', 0.25 - i * 0.01, 1000 + i);
      const s = await next();
      expect(s.counters.psi_io_some_usec_total).toBe(1000);
      expect(psiGauges(s)).toEqual([]);
    }
    // The system file is garbage: no proof of stillness, read every tick.
    writeFileSync(`${dir}/proc/pressure/io`, 'some total=x\n');
    for (let i = 0; i < 8; i++) {
      setContainer('io', 0, 2000 + i);
      expect((await next()).counters.psi_io_some_usec_total).toBe(2000 + i);
    }
    await c.shutdown();
  });
});

// v1 blkio: the root's blkio.throttle.io_serviced_recursive sums every cgroup's counters. While
// its bytes do not change, no container's blkio files can have: they are parsed again from the
// last read instead of re-read, at most for 10 ticks.
describe('cgroup collector: v1 blkio files read again only when the root counters moved', () => {
  const serviced = (writes: number) =>
    `254:0 Read 0\n254:0 Write ${writes}\n254:0 Sync ${writes}\n254:0 Async 0\n254:0 Discard 0\n254:0 Total ${writes}\nTotal ${writes}\n`;

  function setup() {
    dir = mkdtempSync(`${tmpdir()}/strata-cgcost-`);
    cpSync(STEP0, dir, { recursive: true });
    const root = `${dir}/sys/fs/cgroup/blkio`;
    const c = new CgroupCollector(
      // every disk counted (this capture's kernel); the rule-based filtering is tested in cgroup-v1
      parseCgroupConfig({
        include: ['/strata-capture'],
        docker: { enabled: false },
        blkioAccounting: 'all',
      }),
      {
        nodeId: 'node-1',
        paths: { proc: `${dir}/proc`, sys: `${dir}/sys`, cgroup: `${dir}/sys/fs/cgroup` },
        mountinfo: readFileSync(`${dir}/proc/self/mountinfo`, 'utf8'),
      },
    );
    const writes = (s: EntitySample) => Object.values(s.devices ?? {})[0]?.counters.writes_completed_total;
    return {
      c,
      writes,
      setRoot: (n: number) => writeFileSync(`${root}/blkio.throttle.io_serviced_recursive`, serviced(n)),
      setContainer: (n: number) =>
        writeFileSync(`${root}/strata-capture/blkio.throttle.io_serviced_recursive`, serviced(n)),
    };
  }

  async function blkioReused(): Promise<number> {
    const m = await registry.getSingleMetric('strata_collector_cgroup_blkio_reused_total')?.get();
    return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
  }

  it('root still: the last read is sent (same values, same fields); root moved: read at once; at most 10 ticks', async () => {
    const { c, writes, setRoot, setContainer } = setup();
    setRoot(10_000);
    setContainer(7600);
    await c.start();
    const first = await tick(c);
    expect(writes(first)).toBe(7600);

    // The kernel would not change a container's counters without the root's; here it shows the
    // file is not re-read.
    const reused0 = await blkioReused();
    setContainer(9999);
    const reused = await tick(c);
    expect(reused.devices).toEqual(first.devices);
    expect((await blkioReused()) - reused0).toBe(1);

    setRoot(12_399);
    expect(writes(await tick(c))).toBe(9999);

    // Still for good: a change the rule cannot see is picked up within 10 ticks.
    setContainer(10_000);
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) seen.push(writes(await tick(c))!);
    expect(seen.at(-1)).toBe(10_000);
    expect(seen.every((v) => v === 9999 || v === 10_000)).toBe(true);
    expect(seen.filter((v) => v === 9999).length).toBeGreaterThan(0);
    await c.shutdown();
  });

  it('without a readable root file, or with garbage in the container file, read every tick', async () => {
    const { c, writes, setContainer } = setup();
    setContainer(100); // no root file: this kernel has no _recursive files at the root, say
    await c.start();
    for (let i = 1; i <= 3; i++) {
      setContainer(100 + i);
      expect(writes(await tick(c))).toBe(100 + i);
    }
    await c.shutdown();
    rmSync(dir, { recursive: true, force: true });

    const again = setup();
    again.setRoot(5);
    writeFileSync(
      `${dir}/sys/fs/cgroup/blkio/strata-capture/blkio.throttle.io_serviced_recursive`,
      '254:0 Write x\n',
    );
    const errors: string[] = [];
    await again.c.start();
    for (let i = 0; i < 3; i++) {
      await again.c.gather({ add: () => undefined, error: (_s, key) => errors.push(key) });
    }
    expect(errors.filter((k) => k.includes('blkio'))).toHaveLength(3);
    await again.c.shutdown();
  });
});
