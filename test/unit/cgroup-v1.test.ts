// Pure cgroup v1 (no cgroup2 mount at all), on a real tree captured from the test VM
// (stack/qemu/capture-cgroup-v1.ts, kernel 6.1.0-57-cloud-amd64 under TCG: the guest's /init
// mounts a tmpfs on /sys/fs/cgroup and the v1 hierarchies cpu,cpuacct, memory, blkio and pids;
// /strata-capture and /strata-capture-norule each run direct 4 KiB writes to /dev/vda + CPU work,
// /strata-capture with a write limit of 1 GiB/s that never binds, /strata-capture-norule without
// any rule; /strata-test/busy a busy loop, /strata-test/idle a sleeping process; two snapshots 1 s
// apart). The cgroup collector reads the tree as it would read the host's (HOST_PROC/HOST_SYS/
// HOST_CGROUP pointed at it); the expected numbers below were read by hand from the captured files.
import { readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { layoutFromMountinfo } from '../../collectors/cgroup/mounts.ts';
import { EntitySample } from '../../schemas/sample.ts';

const CASE = new URL('../../testdata/cgroup/v1-tcg-dd/', import.meta.url).pathname;
const STEPS = ['step0', 'step1'] as const;
const CGROUPS = [
  '/strata-capture',
  '/strata-capture-norule',
  '/strata-test/busy',
  '/strata-test/idle',
] as const;
const HIERARCHIES = ['cpu,cpuacct', 'memory', 'blkio', 'pids'] as const;
const raw = (step: string, hierarchy: string, cg: string, file: string) =>
  readFileSync(`${CASE}${step}/sys/fs/cgroup/${hierarchy}${cg}/${file}`, 'utf8');
const rawKey = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)![1]);
/** "254:0 Write 600" lines of a blkio.throttle file. */
const blkio = (text: string, op: string) => Number(new RegExp(`^254:0 ${op} (\\d+)$`, 'm').exec(text)![1]);
/** Field 5 of /sys/block/vda/stat: writes completed by the device, from every cgroup. */
const deviceWrites = (step: string) =>
  Number(readFileSync(`${CASE}${step}/sys/block/vda/stat`, 'utf8').trim().split(/\s+/)[4]);

async function collect(step: string) {
  const dir = `${CASE}${step}`;
  const c = new CgroupCollector(
    parseCgroupConfig({ include: ['/strata-capture*', '/strata-test/*'], docker: { enabled: false } }),
    {
      nodeId: 'node-1',
      paths: { proc: `${dir}/proc`, sys: `${dir}/sys`, cgroup: `${dir}/sys/fs/cgroup` },
      mountinfo: readFileSync(`${dir}/proc/self/mountinfo`, 'utf8'),
    },
  );
  await c.start();
  const samples: EntitySample[] = [];
  const errors: string[] = [];
  await c.gather({ add: (s) => samples.push(EntitySample.parse(s)), error: (_s, key) => errors.push(key) });
  await c.shutdown();
  const byPath = new Map(samples.map((s) => [s.entity.labels.cgroup_path!, s]));
  return { samples, byPath, errors, layout: c.layout };
}

describe('pure cgroup v1 captured from the test VM', () => {
  it('mountinfo: a tmpfs and four v1 hierarchies, no cgroup2 anywhere: mode v1, no unified dir', () => {
    const mi = readFileSync(`${CASE}step0/proc/self/mountinfo`, 'utf8');
    expect(mi).toMatch(/ \/sys\/fs\/cgroup rw,relatime - tmpfs /);
    expect(mi).not.toMatch(/ - cgroup2 /);
    expect(mi.match(/ - cgroup cgroup /g)).toHaveLength(4);
    const layout = layoutFromMountinfo(mi, '/x/cgroup');
    expect(layout).toEqual({
      mode: 'v1',
      v1: new Map([
        ['cpu', '/x/cgroup/cpu,cpuacct'],
        ['cpuacct', '/x/cgroup/cpu,cpuacct'],
        ['memory', '/x/cgroup/memory'],
        ['blkio', '/x/cgroup/blkio'],
        ['pids', '/x/cgroup/pids'],
      ]),
    });
    expect('v2' in layout).toBe(false);
    // Debian 9 / RHEL 7 style: cpu and cpuacct are symlinks to the co-mounted hierarchy
    expect(readlinkSync(`${CASE}step0/sys/fs/cgroup/cpu`)).toBe('cpu,cpuacct');
    expect(readlinkSync(`${CASE}step0/sys/fs/cgroup/cpuacct`)).toBe('cpu,cpuacct');
    // every captured cgroup exists in every hierarchy, with the same process in it
    for (const cg of CGROUPS) {
      const procs = HIERARCHIES.map((h) => raw('step1', h, cg, 'cgroup.procs'));
      expect(new Set(procs).size).toBe(1);
      expect(procs[0]).toMatch(/^\d+\n/);
    }
  });

  it('the kernel has no PSI files and no v2 files in a v1 cgroup', () => {
    for (const h of HIERARCHIES) {
      for (const f of [
        'cpu.pressure',
        'io.pressure',
        'memory.pressure',
        'cpu.max',
        'io.stat',
        'memory.current',
      ]) {
        expect(() => raw('step0', h, '/strata-capture', f)).toThrow(/ENOENT/);
      }
    }
  });

  describe.each(STEPS)('%s', (step) => {
    it('the collector reads every cgroup (mode v1, label "v1"), values as in the files, no PSI, no error', async () => {
      const { samples, byPath, errors, layout } = await collect(step);
      expect(layout.mode).toBe('v1');
      expect(layout.v2).toBeUndefined();
      expect(errors).toEqual([]);
      expect(samples).toHaveLength(CGROUPS.length);
      expect([...byPath.keys()].sort()).toEqual([...CGROUPS].sort());
      for (const cg of CGROUPS) {
        const s = byPath.get(cg)!;
        expect(s.entity).toMatchObject({
          layer: 'container',
          kind: 'cgroup',
          id: cg,
          labels: { cgroup_version: 'v1', cgroup_path: cg },
          parent: { layer: 'host', id: 'node-1' },
        });
        const acct = raw(step, 'cpu,cpuacct', cg, 'cpuacct.stat');
        const cpu = raw(step, 'cpu,cpuacct', cg, 'cpu.stat');
        const mem = raw(step, 'memory', cg, 'memory.stat');
        expect(s.counters).toEqual({
          cpu_periods_total: rawKey(cpu, 'nr_periods'),
          cpu_throttled_periods_total: rawKey(cpu, 'nr_throttled'),
          cpu_throttled_usec_total: rawKey(cpu, 'throttled_time') / 1000,
          // cpuacct.usage is ns; cpuacct.stat is USER_HZ (100) ticks
          cpu_usage_usec_total: Math.floor(Number(raw(step, 'cpu,cpuacct', cg, 'cpuacct.usage')) / 1000),
          cpu_user_usec_total: rawKey(acct, 'user') * 10_000,
          cpu_system_usec_total: rawKey(acct, 'system') * 10_000,
          // hierarchical total_* keys of v1 memory.stat
          page_faults_total: rawKey(mem, 'total_pgfault'),
          major_page_faults_total: rawKey(mem, 'total_pgmajfault'),
        });
        expect(s.gauges).toEqual({
          memory_anon_bytes: rawKey(mem, 'total_rss'),
          memory_file_bytes: rawKey(mem, 'total_cache'),
          memory_usage_bytes: Number(raw(step, 'memory', cg, 'memory.usage_in_bytes')),
          // memory.limit_in_bytes is the "unlimited" 9223372036854771712: no memory_limit_bytes
        });
        expect(raw(step, 'memory', cg, 'memory.limit_in_bytes').trim()).toBe('9223372036854771712');
        expect(Object.keys({ ...s.counters, ...s.gauges }).filter((k) => k.startsWith('psi_'))).toEqual([]);
        // the pid's own net/dev was read: the guest has only lo, which is not reported
        expect(s.interfaces).toEqual({});
      }
      // the writers' cgroups have one device line (named from sys/dev/block/254:0/uevent), the
      // others' blkio files hold only "Total 0"
      for (const cg of ['/strata-capture', '/strata-capture-norule']) {
        const ops = raw(step, 'blkio', cg, 'blkio.throttle.io_serviced_recursive');
        const bytes = raw(step, 'blkio', cg, 'blkio.throttle.io_service_bytes_recursive');
        expect(byPath.get(cg)!.devices).toEqual({
          vda: {
            counters: {
              reads_completed_total: blkio(ops, 'Read'),
              writes_completed_total: blkio(ops, 'Write'),
              discards_completed_total: blkio(ops, 'Discard'),
              read_bytes_total: blkio(bytes, 'Read'),
              written_bytes_total: blkio(bytes, 'Write'),
              discarded_bytes_total: blkio(bytes, 'Discard'),
            },
          },
        });
      }
      for (const cg of ['/strata-test/busy', '/strata-test/idle']) {
        expect(raw(step, 'blkio', cg, 'blkio.throttle.io_serviced_recursive')).toBe('Total 0\n');
        expect(byPath.get(cg)!.devices).toEqual({});
      }
    });
  });

  it('the values read by hand from step0 and step1', async () => {
    const a = (await collect('step0')).byPath;
    const b = (await collect('step1')).byPath;
    const w = a.get('/strata-capture')!;
    expect(w.counters).toMatchObject({
      cpu_usage_usec_total: 654_056, // cpuacct.usage 654056824 ns
      cpu_user_usec_total: 610_000, // cpuacct.stat user 61
      cpu_system_usec_total: 30_000, // system 3
      page_faults_total: 134,
      major_page_faults_total: 0,
    });
    expect(w.gauges).toEqual({
      memory_anon_bytes: 16_384,
      memory_file_bytes: 0,
      memory_usage_bytes: 188_416,
    });
    expect(w.devices!.vda!.counters).toMatchObject({
      writes_completed_total: 600,
      written_bytes_total: 2_457_600,
    });
    const w1 = b.get('/strata-capture')!;
    expect(w1.counters).toMatchObject({
      cpu_usage_usec_total: 1_085_417,
      cpu_user_usec_total: 1_030_000,
      cpu_system_usec_total: 50_000,
      page_faults_total: 178,
      major_page_faults_total: 0,
    });
    expect(w1.devices!.vda!.counters).toMatchObject({
      writes_completed_total: 800,
      written_bytes_total: 3_276_800,
    });
    expect(b.get('/strata-test/busy')!.counters.cpu_usage_usec_total).toBe(1_400_724);
    expect(b.get('/strata-test/idle')!.counters).toMatchObject({
      cpu_usage_usec_total: 0,
      page_faults_total: 0,
    });
  });

  it('step0 → step1: CPU and the rule-holding writer grow; the sleeper does not move', async () => {
    const a = (await collect('step0')).byPath;
    const b = (await collect('step1')).byPath;
    const cpu = (m: typeof a, cg: string) => m.get(cg)!.counters.cpu_usage_usec_total!;
    // one emulated vCPU shared by the busy loop and the two writers: each gets a part of it
    for (const cg of ['/strata-capture', '/strata-capture-norule', '/strata-test/busy']) {
      expect(cpu(b, cg) - cpu(a, cg)).toBeGreaterThan(100_000);
    }
    expect(b.get('/strata-test/idle')).toEqual({
      ...a.get('/strata-test/idle')!,
      ts: b.get('/strata-test/idle')!.ts,
    });
    const vda = (m: typeof a, cg: string) => m.get(cg)!.devices!.vda!.counters;
    const ops =
      vda(b, '/strata-capture').writes_completed_total! - vda(a, '/strata-capture').writes_completed_total!;
    const bytes =
      vda(b, '/strata-capture').written_bytes_total! - vda(a, '/strata-capture').written_bytes_total!;
    expect(ops).toBe(200); // one dd of 200 direct writes
    expect(bytes).toBe(ops * 4096);
    expect(vda(a, '/strata-capture').read_bytes_total).toBe(0);
  });

  it('kernel 6.1 counts v1 blkio.throttle stats only for a cgroup with a throttle rule: the no-rule writer reads 0', async () => {
    const a = (await collect('step0')).byPath;
    const b = (await collect('step1')).byPath;
    const norule = (m: typeof a) => m.get('/strata-capture-norule')!;
    // it did run its dd loop (CPU time, page faults grow) ...
    expect(norule(b).counters.cpu_usage_usec_total).toBeGreaterThan(norule(a).counters.cpu_usage_usec_total!);
    expect(norule(b).counters.page_faults_total).toBeGreaterThan(norule(a).counters.page_faults_total!);
    // ... and the disk completed more writes than the rule-holding writer's cgroup accounts for
    const ruled = (m: typeof a) => m.get('/strata-capture')!.devices!.vda!.counters.writes_completed_total!;
    const disk = deviceWrites('step1') - deviceWrites('step0');
    expect(disk).toBe(400);
    expect(disk - (ruled(b) - ruled(a))).toBe(200);
    // but its blkio counters stay 0, and the collector reports exactly that
    for (const m of [a, b]) {
      expect(Object.values(norule(m).devices!.vda!.counters)).toEqual([0, 0, 0, 0, 0, 0]);
    }
    expect(raw('step1', 'blkio', '/strata-capture-norule', 'blkio.throttle.write_bps_device')).toBe('');
    expect(raw('step1', 'blkio', '/strata-capture', 'blkio.throttle.write_bps_device')).toBe(
      '254:0 1073741824\n',
    );
  });
});
