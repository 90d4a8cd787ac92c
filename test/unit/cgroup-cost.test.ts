// The cgroup collector's cost cuts must not change what it emits: v1 cpu.stat (throttling) is only
// re-read every 10th tick while cpu.cfs_quota_us is -1 (the kernel does not count periods without a
// quota), its last values are emitted on every tick in between, and once a quota is set it is read
// every tick. Runs on a copy of the captured hybrid tree (regular files, rewritten between ticks).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
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
