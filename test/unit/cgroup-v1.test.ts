// Pure cgroup v1 (no cgroup2 mount at all), on a real tree captured from the test VM
// (stack/qemu/capture-cgroup-v1.ts, kernel 6.1.0-57-cloud-amd64 under TCG: the guest's /init
// mounts a tmpfs on /sys/fs/cgroup and the v1 hierarchies cpu,cpuacct, memory, blkio and pids;
// /strata-capture and /strata-capture-norule each run direct 4 KiB writes to /dev/vda + CPU work,
// /strata-capture with a write limit of 1 GiB/s that never binds, /strata-capture-norule without
// any rule; /strata-test/busy a busy loop, /strata-test/idle a sleeping process; two snapshots 1 s
// apart). The cgroup collector reads the tree as it would read the host's (HOST_PROC/HOST_SYS/
// HOST_CGROUP pointed at it); the expected numbers below were read by hand from the captured files.
// That kernel counts v1 blkio only for a cgroup with a throttle rule for the direction (its own or
// an ancestor's): /strata-capture's write rule makes its writes (and discards) counted, not its
// reads; the three others have no rule, and their blkio counters are not sent at all
// (label io_accounting: partial / unavailable; collectors/cgroup/blkio-trust.ts).
import { readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blkioAccounting } from '../../collectors/cgroup/blkio-trust.ts';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { layoutFromMountinfo } from '../../collectors/cgroup/mounts.ts';
import { registry } from '../../lib/metrics.ts';
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

/** The capture's kernel (docs/collectors.md); the tree has no proc/sys/kernel/osrelease. */
const CAPTURED_KERNEL = '6.1.0-57-cloud-amd64';

async function collect(step: string, kernelRelease?: string, extra: Record<string, unknown> = {}) {
  const dir = `${CASE}${step}`;
  const c = new CgroupCollector(
    parseCgroupConfig({
      include: ['/strata-capture*', '/strata-test/*'],
      docker: { enabled: false },
      ...extra,
    }),
    {
      nodeId: 'node-1',
      paths: { proc: `${dir}/proc`, sys: `${dir}/sys`, cgroup: `${dir}/sys/fs/cgroup` },
      mountinfo: readFileSync(`${dir}/proc/self/mountinfo`, 'utf8'),
      ...(kernelRelease === undefined ? {} : { kernelRelease }),
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
          labels: {
            cgroup_version: 'v1',
            cgroup_path: cg,
            io_accounting: cg === '/strata-capture' ? 'partial' : 'unavailable',
          },
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
      // others' blkio files hold only "Total 0". Only the rule-holder's write-side counters are sent
      // (its rule is blkio.throttle.write_bps_device: reads are not counted by this kernel)
      const ops = raw(step, 'blkio', '/strata-capture', 'blkio.throttle.io_serviced_recursive');
      const bytes = raw(step, 'blkio', '/strata-capture', 'blkio.throttle.io_service_bytes_recursive');
      expect(byPath.get('/strata-capture')!.devices).toEqual({
        vda: {
          counters: {
            writes_completed_total: blkio(ops, 'Write'),
            discards_completed_total: blkio(ops, 'Discard'),
            written_bytes_total: blkio(bytes, 'Write'),
            discarded_bytes_total: blkio(bytes, 'Discard'),
          },
        },
      });
      for (const cg of ['/strata-capture-norule', '/strata-test/busy', '/strata-test/idle']) {
        expect(byPath.get(cg)!.devices).toBeUndefined();
      }
      for (const cg of ['/strata-test/busy', '/strata-test/idle']) {
        expect(raw(step, 'blkio', cg, 'blkio.throttle.io_serviced_recursive')).toBe('Total 0\n');
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
    // no read rule: the file's "Read 0" is not a count of its reads, and is not sent
    expect(blkio(raw('step0', 'blkio', '/strata-capture', 'blkio.throttle.io_service_bytes'), 'Read')).toBe(
      0,
    );
    expect(vda(a, '/strata-capture').read_bytes_total).toBeUndefined();
    expect(vda(a, '/strata-capture').reads_completed_total).toBeUndefined();
  });

  it('kernel 6.1 counts v1 blkio.throttle stats only for a cgroup with a throttle rule: the no-rule writer reads 0, and the collector sends no number for it', async () => {
    const a = (await collect('step0', CAPTURED_KERNEL)).byPath;
    const b = (await collect('step1', CAPTURED_KERNEL)).byPath;
    const norule = (m: typeof a) => m.get('/strata-capture-norule')!;
    // it did run its dd loop (CPU time, page faults grow) ...
    expect(norule(b).counters.cpu_usage_usec_total).toBeGreaterThan(norule(a).counters.cpu_usage_usec_total!);
    expect(norule(b).counters.page_faults_total).toBeGreaterThan(norule(a).counters.page_faults_total!);
    // ... and the disk completed more writes than the rule-holding writer's cgroup accounts for
    const ruled = (m: typeof a) => m.get('/strata-capture')!.devices!.vda!.counters.writes_completed_total!;
    const disk = deviceWrites('step1') - deviceWrites('step0');
    expect(disk).toBe(400);
    expect(disk - (ruled(b) - ruled(a))).toBe(200);
    // but its blkio files say 0 writes: the collector sends no device counters for it, and says why
    for (const step of STEPS) {
      const text = raw(step, 'blkio', '/strata-capture-norule', 'blkio.throttle.io_serviced_recursive');
      expect(blkio(text, 'Write')).toBe(0);
    }
    for (const m of [a, b]) {
      expect(norule(m).devices).toBeUndefined();
      expect(norule(m).entity.labels.io_accounting).toBe('unavailable');
      expect(m.get('/strata-capture')!.entity.labels.io_accounting).toBe('partial');
    }
    expect(raw('step1', 'blkio', '/strata-capture-norule', 'blkio.throttle.write_bps_device')).toBe('');
    for (const f of ['read_bps_device', 'read_iops_device', 'write_iops_device']) {
      expect(raw('step1', 'blkio', '/strata-capture', `blkio.throttle.${f}`)).toBe('');
    }
    expect(raw('step1', 'blkio', '/strata-capture', 'blkio.throttle.write_bps_device')).toBe(
      '254:0 1073741824\n',
    );
  });
});

describe('which kernels count v1 blkio for cgroups without a throttle rule', () => {
  it.each([
    ['3.10.0-1160.el7.x86_64', 'all'],
    ['5.15.0-91-generic', 'all'],
    ['5.16.0', 'ruled'],
    [CAPTURED_KERNEL, 'ruled'],
    ['6.4.16', 'ruled'],
    ['6.5.0-44-generic', 'all'],
    ['6.9.12', 'all'],
    ['6.10.0', 'activated'],
    ['6.18.44-fc-v657', 'activated'],
    ['', 'ruled'],
    [undefined, 'ruled'],
  ] as const)('%s → %s', (release, mode) => {
    expect(blkioAccounting(release)).toBe(mode);
  });

  it('the capture read as the kernel it came from gives the same samples as with the kernel unknown (this tree has no osrelease)', async () => {
    for (const step of STEPS) {
      const known = (await collect(step, CAPTURED_KERNEL)).samples;
      const unknown = (await collect(step)).samples;
      expect(known.map(({ ts: _, ...s }) => s)).toEqual(unknown.map(({ ts: _, ...s }) => s));
    }
  });

  it('a kernel that counts every bio (6.6) sends the files as they are, with no io_accounting label', async () => {
    const { byPath } = await collect('step0', '6.6.30');
    for (const s of byPath.values()) expect(s.entity.labels.io_accounting).toBeUndefined();
    expect(byPath.get('/strata-capture-norule')!.devices!.vda!.counters).toMatchObject({
      writes_completed_total: 0,
      reads_completed_total: 0,
    });
    expect(byPath.get('/strata-test/idle')!.devices).toEqual({});
  });

  it('blkioAccounting overrides the release: "all" on the captured 6.1 sends the files as they are, "ruled" on a 6.6 drops the no-rule writer', async () => {
    const all = (await collect('step0', CAPTURED_KERNEL, { blkioAccounting: 'all' })).byPath;
    expect(all.get('/strata-capture-norule')!.entity.labels.io_accounting).toBeUndefined();
    expect(all.get('/strata-capture-norule')!.devices!.vda!.counters.writes_completed_total).toBe(0);
    const ruled = (await collect('step0', '6.6.30', { blkioAccounting: 'ruled' })).byPath;
    expect(ruled.get('/strata-capture-norule')!.entity.labels.io_accounting).toBe('unavailable');
    expect(ruled.get('/strata-capture-norule')!.devices).toBeUndefined();
    expect(() => parseCgroupConfig({ blkioAccounting: 'sometimes' })).toThrow(
      /collectors\.cgroup\.blkioAccounting: "sometimes" is not accepted; accepted: "auto", "all", "ruled", "activated"/,
    );
  });

  it('every tick counts the samples sent without (some of) their blkio counters', async () => {
    const value = async (label: string) => {
      const v = await registry.getSingleMetric('strata_collector_cgroup_io_accounting_missing_total')?.get();
      return v?.values.find((x) => x.labels.io_accounting === label)?.value ?? 0;
    };
    const before = [await value('partial'), await value('unavailable')];
    await collect('step1', CAPTURED_KERNEL);
    expect((await value('partial')) - before[0]!).toBe(1);
    expect((await value('unavailable')) - before[1]!).toBe(3);
  });
});
