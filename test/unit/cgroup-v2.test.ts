// Pure cgroup v2, on a real tree captured from the test VM (stack/qemu/capture-cgroup-v2.ts: the
// guest's /init mounts cgroup2 with cpu, memory, io and pids; /strata-capture runs direct 4 KiB
// writes + CPU work, /strata-test/busy a busy loop, /strata-test/idle a sleeping process; two
// snapshots 1 s apart). The cgroup collector reads the tree as it would read the host's
// (HOST_PROC/HOST_SYS/HOST_CGROUP pointed at it), and the string parsers that the guest
// collector uses (collectors/cgroup/v2files.ts) must give the same numbers.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { layoutFromMountinfo } from '../../collectors/cgroup/mounts.ts';
import {
  parseFlatKeyed,
  parseIoStat,
  parseMemoryMax,
  parseSingle,
  V2_CPU_STAT,
  V2_MEMORY_STAT_COUNTERS,
  V2_MEMORY_STAT_GAUGES,
} from '../../collectors/cgroup/parsers.ts';
import { CGROUP_V2_FILES, type CgroupV2Files, cgroupV2FromFiles } from '../../collectors/cgroup/v2files.ts';
import { EntitySample } from '../../schemas/sample.ts';

const CASE = new URL('../../testdata/cgroup/v2-tcg-dd/', import.meta.url).pathname;
const STEPS = ['step0', 'step1'] as const;
const CGROUPS = ['/strata-capture', '/strata-test/busy', '/strata-test/idle'] as const;
const cgDir = (step: string, cg: string) => `${CASE}${step}/sys/fs/cgroup${cg}`;
const raw = (step: string, cg: string, file: string) => readFileSync(`${cgDir(step, cg)}/${file}`, 'utf8');
const rawKey = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)![1]);

function filesOf(step: string, cg: string): CgroupV2Files {
  const present = new Set(readdirSync(cgDir(step, cg)));
  const files: CgroupV2Files = {};
  for (const f of CGROUP_V2_FILES) if (present.has(f)) files[f] = raw(step, cg, f);
  return files;
}

async function collect(step: string) {
  const dir = `${CASE}${step}`;
  const c = new CgroupCollector(
    parseCgroupConfig({ include: ['/strata-capture', '/strata-test/*'], docker: { enabled: false } }),
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

describe('pure cgroup v2 captured from the test VM', () => {
  it('mountinfo has one cgroup2 mount at /sys/fs/cgroup and no v1 controller: mode v2', () => {
    const mi = readFileSync(`${CASE}step0/proc/self/mountinfo`, 'utf8');
    expect(mi).toMatch(/ \/sys\/fs\/cgroup .* - cgroup2 /);
    const layout = layoutFromMountinfo(mi, '/x/cgroup');
    expect(layout).toEqual({ mode: 'v2', v1: new Map(), v2: '/x/cgroup' });
    // the controllers the VM's /init enabled for its children
    expect(raw('step0', '/strata-test', 'cgroup.subtree_control').trim().split(' ').sort()).toEqual([
      'cpu',
      'io',
      'memory',
      'pids',
    ]);
  });

  describe.each(STEPS)('%s', (step) => {
    it.each(CGROUPS)('%s: the string parsers read the real files exactly', (cg) => {
      const cpu = raw(step, cg, 'cpu.stat');
      const counters: Record<string, number> = {};
      const problems: string[] = [];
      expect(parseFlatKeyed(cpu, 'cpu.stat', [{ wanted: V2_CPU_STAT, into: counters }], problems)).toBe(6);
      expect(counters).toEqual({
        cpu_usage_usec_total: rawKey(cpu, 'usage_usec'),
        cpu_user_usec_total: rawKey(cpu, 'user_usec'),
        cpu_system_usec_total: rawKey(cpu, 'system_usec'),
        cpu_periods_total: rawKey(cpu, 'nr_periods'),
        cpu_throttled_periods_total: rawKey(cpu, 'nr_throttled'),
        cpu_throttled_usec_total: rawKey(cpu, 'throttled_usec'),
      });
      const mem = raw(step, cg, 'memory.stat');
      const mc: Record<string, number> = {};
      const mg: Record<string, number> = {};
      parseFlatKeyed(
        mem,
        'memory.stat',
        [
          { wanted: V2_MEMORY_STAT_COUNTERS, into: mc },
          { wanted: V2_MEMORY_STAT_GAUGES, into: mg },
        ],
        problems,
      );
      expect(mc).toEqual({
        page_faults_total: rawKey(mem, 'pgfault'),
        major_page_faults_total: rawKey(mem, 'pgmajfault'),
      });
      expect(mg).toEqual({ memory_anon_bytes: rawKey(mem, 'anon'), memory_file_bytes: rawKey(mem, 'file') });
      expect(parseSingle(raw(step, cg, 'memory.current'))).toBe(Number(raw(step, cg, 'memory.current')));
      expect(raw(step, cg, 'memory.max').trim()).toBe('max');
      expect(parseMemoryMax(raw(step, cg, 'memory.max'))).toBeUndefined();
      expect(problems).toEqual([]);
    });

    it('io.stat of the writer: one device line, 4 KiB per write', () => {
      const problems: string[] = [];
      const io = parseIoStat(raw(step, '/strata-capture', 'io.stat'), problems);
      expect(problems).toEqual([]);
      expect(Object.keys(io)).toEqual(['254:0']);
      const d = io['254:0']!;
      expect(d.writes_completed_total).toBeGreaterThan(0);
      expect(d.written_bytes_total).toBe(d.writes_completed_total! * 4096);
      expect(d.reads_completed_total).toBe(0);
      // the idle cgroup did no I/O: the kernel leaves its io.stat empty
      expect(parseIoStat(raw(step, '/strata-test/idle', 'io.stat'), problems)).toEqual({});
    });

    it('the cgroup collector on the tree (mode v2) and the guest parsers give the same numbers', async () => {
      const { samples, byPath, errors, layout } = await collect(step);
      expect(layout.mode).toBe('v2');
      expect(errors).toEqual([]);
      expect([...byPath.keys()].sort()).toEqual([...CGROUPS]);
      for (const cg of CGROUPS) {
        const s = byPath.get(cg)!;
        expect(s.entity).toMatchObject({
          layer: 'container',
          kind: 'cgroup',
          id: cg,
          labels: { cgroup_version: 'v2', cgroup_path: cg },
          parent: { layer: 'host', id: 'node-1' },
        });
        const parts = cgroupV2FromFiles(filesOf(step, cg), (d) => (d === '254:0' ? 'vda' : d));
        expect(parts.problems).toEqual([]);
        // Same values, same key order (the message is JSON: order is bytes on the wire).
        expect(JSON.stringify(parts.counters)).toBe(JSON.stringify(s.counters));
        expect(JSON.stringify(parts.gauges)).toBe(JSON.stringify(s.gauges));
        const devices = Object.fromEntries(
          Object.entries(parts.devices ?? {}).map(([k, v]) => [k, { counters: v }]),
        );
        expect(devices).toEqual(s.devices ?? {});
      }
      expect(samples).toHaveLength(3);
      // PSI is there per cgroup on v2
      expect(byPath.get('/strata-test/busy')!.counters.psi_cpu_some_usec_total).toBeGreaterThan(0);
      // the device is named from sys/dev/block/254:0/uevent
      expect(Object.keys(byPath.get('/strata-capture')!.devices!)).toEqual(['vda']);
    });
  });

  it('step0 → step1 (1 s): the busy loop and the writer use CPU, the sleeper does not; writes grow', async () => {
    const a = (await collect('step0')).byPath;
    const b = (await collect('step1')).byPath;
    const cpu = (m: typeof a, cg: string) => m.get(cg)!.counters.cpu_usage_usec_total!;
    const busy = cpu(b, '/strata-test/busy') - cpu(a, '/strata-test/busy');
    const writer = cpu(b, '/strata-capture') - cpu(a, '/strata-capture');
    // one emulated vCPU shared by the busy loop, the writer and the agent: each gets a part of it
    expect(busy).toBeGreaterThan(100_000);
    expect(writer).toBeGreaterThan(100_000);
    expect(cpu(b, '/strata-test/idle')).toBe(cpu(a, '/strata-test/idle'));
    const w = (m: typeof a) => m.get('/strata-capture')!.devices!.vda!.counters.writes_completed_total!;
    expect(w(b)).toBeGreaterThan(w(a));
  });
});
