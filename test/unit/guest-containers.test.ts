// Containers inside a guest (nested guest → container): the in-guest agent's cgroup sections,
// parsed on the host with the cgroup collector's v2 parsers.
//  - testdata/guest/containers.stream: the raw virtio-serial bytes of the real test VM
//    (stack/qemu/capture-cgroup-v2.ts: pure cgroup v2, /strata-test/busy with a busy loop,
//    /strata-test/idle with a sleeping process, /strata-capture with a disk writer);
//  - the agent script itself (POSIX sh: /bin/sh, and busybox sh where installed) run over the real
//    pure-v2 tree of testdata/cgroup/v2-tcg-dd and over a synthetic tree for the discovery rules.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import {
  devnamesFromDiskstats,
  guestCgroupList,
  guestContainerSamples,
} from '../../collectors/guest/containers.ts';
import { decodeGuestStream, type GuestRecord } from '../../collectors/guest/framing.ts';
import { GuestCollector, parseGuestConfig } from '../../collectors/guest/index.ts';
import type { Accumulator } from '../../collectors/types.ts';
import { registry } from '../../lib/metrics.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import { EntitySample, SCHEMA_VERSION, validateSampleMessage } from '../../schemas/sample.ts';

const STREAM = readFileSync('testdata/guest/containers.stream');
const { records, stats } = decodeGuestStream(STREAM);
const AGENT = path.resolve('collectors/guest/strata-guest-agent.sh');
const V2 = path.resolve('testdata/cgroup/v2-tcg-dd');
const CGROUPS = ['/strata-capture', '/strata-test/busy', '/strata-test/idle'];
const T = { vmId: 'vm-1', name: 'web' };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'strata-guest-cg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Shells to run the agent with: POSIX sh always, busybox's ash where installed (the test VM's). */
const SHELLS: string[][] = [['/bin/sh']];
for (const b of ['/bin/busybox', '/usr/bin/busybox']) {
  if (existsSync(b)) {
    SHELLS.push([b, 'sh']);
    break;
  }
}

/** One record from the agent script over a cgroup root (PORT "-" writes to stdout). */
function runAgent(shell: string[], env: Record<string, string>): GuestRecord {
  const out = execFileSync(shell[0]!, [...shell.slice(1), AGENT, '-', '1'], {
    env: { PATH: process.env.PATH, TMPDIR: tmp, STRATA_RECORDS: '1', ...env },
    encoding: 'latin1',
  });
  const { records: rs } = decodeGuestStream(out);
  expect(rs).toHaveLength(1);
  return rs[0]!;
}

describe('the real test VM stream (pure cgroup v2 guest)', () => {
  it('every record lists the three cgroups and they come out as containers parented to the guest', () => {
    expect(stats).toMatchObject({ truncated: 0, malformed: 0, oversized: 0 });
    expect(records.length).toBeGreaterThanOrEqual(4);
    for (const r of records) {
      expect(guestCgroupList(r)).toEqual({
        root: '/sys/fs/cgroup',
        dropped: 0,
        paths: CGROUPS,
        problems: [],
      });
      const parts = guestContainerSamples(r, T, 1000);
      expect(parts.problems).toEqual([]);
      expect(parts.dropped).toBe(0);
      expect(parts.samples.map((s) => EntitySample.parse(s).entity)).toEqual(
        CGROUPS.map((p) => ({
          layer: 'container',
          kind: 'cgroup',
          id: `vm-1:guest:${p}`,
          name: p,
          labels: { cgroup_version: 'v2', cgroup_path: p, vm_name: 'web' },
          parent: { layer: 'guest', id: 'vm-1:guest' },
        })),
      );
      const [writer, busy, idle] = parts.samples;
      // the raw numbers of the record's sections
      const cpu = (p: string) => Number(/^usage_usec (\d+)$/m.exec(r.files[`cgroup${p}/cpu.stat`]!)![1]);
      expect(busy!.counters.cpu_usage_usec_total).toBe(cpu('/strata-test/busy'));
      expect(idle!.counters.cpu_usage_usec_total).toBe(cpu('/strata-test/idle'));
      expect(idle!.gauges.memory_usage_bytes).toBe(Number(r.files['cgroup/strata-test/idle/memory.current']));
      expect(idle!.gauges.memory_limit_bytes).toBeUndefined(); // memory.max "max"
      expect(busy!.counters.psi_cpu_some_usec_total).toBeGreaterThan(0);
      // io.stat names devices MAJ:MIN; the guest's own /proc/diskstats says 254:0 is vda
      expect(Object.keys(writer!.devices ?? {})).toEqual(['vda']);
      expect(writer!.devices!.vda!.counters.writes_completed_total).toBeGreaterThan(0);
      expect(idle!.devices).toEqual({}); // no I/O yet: the kernel's io.stat is empty
    }
  });

  it('record to record the busy cgroup uses CPU and the idle one does not', () => {
    const cpu = (r: GuestRecord, i: number) =>
      guestContainerSamples(r, T, 0).samples[i]!.counters.cpu_usage_usec_total!;
    const first = records[0]!;
    const last = records[records.length - 1]!;
    const seconds = last.uptimeSec - first.uptimeSec;
    expect(seconds).toBeGreaterThan(2);
    expect(cpu(last, 1) - cpu(first, 1)).toBeGreaterThan(seconds * 100_000); // > 0.1 vCPU
    expect(cpu(last, 2)).toBe(cpu(first, 2));
  });

  it('the processor makes rates for them with no change: busy > 0.1 cores, idle 0', () => {
    const p = createPipeline();
    const base = 1_800_000_000_000;
    const gc = new GuestCollector(parseGuestConfig({}));
    const points = records.flatMap((r, seq) => {
      const ts = base + Math.round(r.uptimeSec * 1000);
      const target = { ...T, socket: '/x' };
      const samples = [gc.sample(undefined, target, r, ts), ...guestContainerSamples(r, T, ts).samples];
      const v = validateSampleMessage({
        v: SCHEMA_VERSION,
        node: { id: 'node-1', hostname: 'h', labels: {} },
        ts,
        interval_ms: 1000,
        seq,
        agent: { version: 'test', run_id: 'run-1' },
        samples,
      });
      if (!v.ok) throw new Error(v.reason);
      return p.handle(v.message).points;
    });
    const rows = (name: string) =>
      points.filter((x) => x.measurement === 'strata_container' && x.tags.name === name && !x.tags.device);
    const busy = rows('/strata-test/busy');
    const idle = rows('/strata-test/idle');
    expect(busy).toHaveLength(records.length);
    expect(busy[0]!.tags).toMatchObject({ layer: 'container', kind: 'cgroup', vm_name: 'web' });
    // Ids and paths are on the entity's metadata point, once (docs/schema.md, strata_entity).
    const meta = points.filter(
      (x) => x.measurement === 'strata_entity' && x.tags.name === '/strata-test/busy',
    );
    expect(meta).toHaveLength(1);
    expect(meta[0]!.fields).toEqual({
      entity_id: 'vm-1:guest:/strata-test/busy',
      cgroup_path: '/strata-test/busy',
    });
    for (const x of busy.slice(1)) expect(x.fields.cpu_cores).toBeGreaterThan(0.1);
    for (const x of idle.slice(1)) expect(x.fields.cpu_cores).toBe(0);
    const writes = points.filter(
      (x) =>
        x.measurement === 'strata_container' && x.tags.name === '/strata-capture' && x.tags.device === 'vda',
    );
    expect(writes.slice(1).some((x) => (x.fields.write_iops as number) > 0)).toBe(true);
    // the guest itself is there too, as its own layer
    expect(
      points.filter((x) => x.measurement === 'strata_guest' && !x.tags.device && !x.tags.interface),
    ).toHaveLength(records.length);
  });
});

describe.each(SHELLS.map((s) => [s.join(' '), s] as const))('the agent script under %s', (_name, shell) => {
  it('over the captured pure-v2 tree: the host reads what the cgroup collector reads there', async () => {
    for (const step of ['step0', 'step1']) {
      const root = path.join(tmp, `v2-${shell.length}-${step}`);
      cpSync(`${V2}/${step}/sys/fs/cgroup`, root, { recursive: true });
      writeFileSync(`${root}/cgroup.controllers`, 'cpu io memory pids\n'); // the root's, not captured
      const record = runAgent(shell, { STRATA_CGROUP_ROOT: root });
      expect(guestCgroupList(record)).toEqual({ root, dropped: 0, paths: CGROUPS, problems: [] });
      // io.stat names 254:0; the test VM's diskstats (from its stream) says vda, as its uevent does
      record.files.diskstats = records[0]!.files.diskstats!;
      const guest = guestContainerSamples(record, T, 0);
      expect(guest.problems).toEqual([]);

      const dir = `${V2}/${step}`;
      const c = new CgroupCollector(
        parseCgroupConfig({ include: ['/strata-capture', '/strata-test/*'], docker: { enabled: false } }),
        {
          nodeId: 'node-1',
          paths: { proc: `${dir}/proc`, sys: `${dir}/sys`, cgroup: `${dir}/sys/fs/cgroup` },
          mountinfo: readFileSync(`${dir}/proc/self/mountinfo`, 'utf8'),
        },
      );
      await c.start();
      const host: EntitySample[] = [];
      await c.gather({ add: (s) => host.push(s), error: (_s, k) => expect.fail(k) });
      await c.shutdown();
      for (const g of guest.samples) {
        const h = host.find((x) => x.entity.labels.cgroup_path === g.entity.labels.cgroup_path)!;
        expect(JSON.stringify(g.counters)).toBe(JSON.stringify(h.counters));
        expect(JSON.stringify(g.gauges)).toBe(JSON.stringify(h.gauges));
        expect(g.devices).toEqual(h.devices);
      }
    }
  });

  it('discovery: container-named cgroups (not descended into), others with processes, bounded', () => {
    const root = path.join(tmp, `synthetic-${shell.length}`);
    const hex = (n: number) => n.toString(16).padStart(64, 'a');
    const dirs: Record<string, string> = {
      // path → cgroup.procs content
      '/system.slice': '',
      [`/system.slice/docker-${hex(1)}.scope`]: '',
      [`/system.slice/docker-${hex(1)}.scope/init.scope`]: '41\n', // the container's own business
      '/system.slice/ssh.service': '12\n',
      '/system.slice/libpod-conmon-x.scope': '',
      '/kubepods': '',
      '/kubepods/burstable': '',
      '/kubepods/burstable/pod1234-5678': '',
      [`/kubepods/burstable/pod1234-5678/${hex(2)}`]: '',
      '/empty': '',
      '/a': '',
      '/a/b': '',
      '/a/b/c': '',
      '/a/b/c/d': '',
      '/a/b/c/d/e': '',
      '/a/b/c/d/e/too-deep': '77\n',
    };
    for (const [p, procs] of Object.entries(dirs)) {
      mkdirSync(`${root}${p}`, { recursive: true });
      writeFileSync(`${root}${p}/cgroup.procs`, procs);
      writeFileSync(`${root}${p}/cpu.stat`, 'usage_usec 5\nuser_usec 3\nsystem_usec 2\n');
    }
    writeFileSync(`${root}/cgroup.procs`, '1\n'); // the root is never reported
    writeFileSync(`${root}/cgroup.controllers`, 'cpu\n');

    const record = runAgent(shell, { STRATA_CGROUP_ROOT: root });
    const list = guestCgroupList(record)!;
    expect(list.paths).toEqual([
      `/system.slice/docker-${hex(1)}.scope`,
      '/system.slice/ssh.service',
      `/kubepods/burstable/pod1234-5678/${hex(2)}`,
    ]);
    const parts = guestContainerSamples(record, T, 0);
    expect(parts.samples.map((s) => [s.entity.kind, s.entity.id, s.entity.name])).toEqual([
      ['docker', `vm-1:guest:${hex(1)}`, hex(1).slice(0, 12)],
      ['systemd', 'vm-1:guest:/system.slice/ssh.service', 'ssh.service'],
      ['kubernetes', `vm-1:guest:${hex(2)}`, `pod1234-567/${hex(2).slice(0, 12)}`],
    ]);
    expect(parts.samples[0]!.counters).toEqual({
      cpu_usage_usec_total: 5,
      cpu_user_usec_total: 3,
      cpu_system_usec_total: 2,
    });

    // Deeper scan; at most 2 per record, the rest counted as dropped.
    const bounded = runAgent(shell, {
      STRATA_CGROUP_ROOT: root,
      STRATA_CGROUP_DEPTH: '6',
      STRATA_CGROUP_MAX: '2',
    });
    expect(guestCgroupList(bounded)).toMatchObject({ dropped: 2, paths: list.paths.slice(0, 2) });
    expect(guestContainerSamples(bounded, T, 0, 1)).toMatchObject({ dropped: 3 });

    // Patterns replace the default rule (no process needed); `*` crosses "/".
    const included = runAgent(shell, { STRATA_CGROUP_ROOT: root, STRATA_CGROUP_INCLUDE: '/empty /a/*/c' });
    expect(guestCgroupList(included)!.paths).toEqual(['/empty', '/a/b/c']);

    // No cgroup v2 there (no cgroup.controllers at the root, as on a v1 guest), or turned off.
    rmSync(`${root}/cgroup.controllers`);
    expect(runAgent(shell, { STRATA_CGROUP_ROOT: root }).files.cgroups).toBeUndefined();
    writeFileSync(`${root}/cgroup.controllers`, 'cpu\n');
    expect(runAgent(shell, { STRATA_CGROUP_ROOT: 'off' }).files.cgroups).toBeUndefined();
    // the /proc part is unchanged
    expect(Object.keys(record.files).slice(0, 5)).toEqual([
      'stat',
      'vmstat',
      'meminfo',
      'diskstats',
      'net/dev',
    ]);
  });
  it('rescans every STRATA_CGROUP_RESCAN records; a removed cgroup leaves the list at once', async () => {
    const root = path.join(tmp, `rescan-${shell.length}`);
    for (const d of ['/keep', '/remove']) {
      mkdirSync(`${root}${d}`, { recursive: true });
      writeFileSync(`${root}${d}/cgroup.procs`, '5\n');
      writeFileSync(`${root}${d}/cpu.stat`, 'usage_usec 1\n');
    }
    writeFileSync(`${root}/cgroup.controllers`, 'cpu\n');
    const twoRecords = async (rescan: string) => {
      const child = spawn(shell[0]!, [...shell.slice(1), AGENT, '-', '1'], {
        env: {
          PATH: process.env.PATH,
          TMPDIR: tmp,
          STRATA_RECORDS: '2',
          STRATA_CGROUP_ROOT: root,
          STRATA_CGROUP_RESCAN: rescan,
        },
      });
      let out = '';
      let changed = false;
      child.stdout.setEncoding('latin1').on('data', (d: string) => {
        out += d;
        if (!changed && out.includes('STRATA-END 1\n')) {
          // between record 1 and record 2
          changed = true;
          rmSync(`${root}/remove`, { recursive: true });
          mkdirSync(`${root}/added`);
          writeFileSync(`${root}/added/cgroup.procs`, '6\n');
          writeFileSync(`${root}/added/cpu.stat`, 'usage_usec 1\n');
        }
      });
      await once(child, 'close');
      rmSync(`${root}/added`, { recursive: true });
      mkdirSync(`${root}/remove`);
      writeFileSync(`${root}/remove/cgroup.procs`, '5\n');
      writeFileSync(`${root}/remove/cpu.stat`, 'usage_usec 1\n');
      return decodeGuestStream(out).records.map((r) => guestCgroupList(r)!.paths);
    };
    expect(await twoRecords('5')).toEqual([['/keep', '/remove'], ['/keep']]);
    expect(await twoRecords('1')).toEqual([
      ['/keep', '/remove'],
      ['/added', '/keep'],
    ]);
  });
});

describe('host-side parsing of the cgroups section', () => {
  it('reports malformed list lines and files, keeps the rest', () => {
    const record: GuestRecord = {
      version: 1,
      seq: 1,
      uptimeSec: 1,
      files: {
        cgroups: 'root /sys/fs/cgroup\ndropped x\nbogus line\n/ok\n/bad\n/ok\n/gone\n',
        'cgroup/ok/cpu.stat': 'usage_usec 10\n',
        'cgroup/bad/cpu.stat': 'usage_usec ten\n',
        'cgroup/bad/memory.current': 'lots\n',
      },
    };
    const parts = guestContainerSamples(record, T, 5);
    // once each; /gone (listed, no file read: removed meanwhile) is no container and no error
    expect(parts.samples.map((s) => s.entity.id)).toEqual(['vm-1:guest:/ok', 'vm-1:guest:/bad']);
    expect(parts.samples[0]!.counters).toEqual({ cpu_usage_usec_total: 10 });
    expect(parts.problems).toEqual([
      { path: '', problem: 'cgroups line 2: dropped: not a count' },
      { path: '', problem: 'cgroups line 3: expected "root …", "dropped N" or a cgroup path' },
      { path: '/bad', problem: 'cpu.stat line 1: usage_usec: not a number' },
      { path: '/bad', problem: 'memory.current: not a number' },
    ]);
  });

  it('names devices from the guest diskstats, MAJ:MIN when unknown', () => {
    const names = devnamesFromDiskstats(
      ' 254       0 vda 1 2 3 4 5 6 7 8 9 10 11\n   7 0 loop0 0 0 0 0 0 0 0 0 0 0 0\n',
    );
    expect([...names]).toEqual([
      ['254:0', 'vda'],
      ['7:0', 'loop0'],
    ]);
    const record: GuestRecord = {
      version: 1,
      seq: 1,
      uptimeSec: 1,
      files: {
        diskstats: ' 254       0 vda 1 2 3 4 5 6 7 8 9 10 11\n',
        cgroups: '/c\n',
        'cgroup/c/io.stat':
          '254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n8:0 rbytes=5 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
      },
    };
    const [s] = guestContainerSamples(record, T, 5).samples;
    expect(Object.keys(s!.devices!)).toEqual(['vda', '8:0']);
    expect(s!.devices!.vda!.counters.read_bytes_total).toBe(1);
  });

  it('a record without a cgroups section (older agent, cgroup v1 guest) gives no containers', () => {
    const { records: idle } = decodeGuestStream(readFileSync('testdata/guest/idle.stream'));
    expect(guestContainerSamples(idle[0]!, T, 5)).toEqual({ samples: [], problems: [], dropped: 0 });
  });
});

describe('guest collector publishes the guest and its containers', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function serve(config: Record<string, unknown>) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-guest-c-'));
    const socket = path.join(dir, 'agent.sock');
    const conns: net.Socket[] = [];
    const server = net.createServer((c) => conns.push(c));
    await new Promise<void>((r) => server.listen(socket, r));
    const c = new GuestCollector(
      parseGuestConfig({ agents: [{ vmId: 'vm-9', name: 'db', socket }], ...config }),
    );
    cleanups.push(async () => {
      await c.shutdown();
      for (const x of conns) x.destroy();
      await new Promise((r) => server.close(r));
      await fs.rm(dir, { recursive: true, force: true });
    });
    const tick = async () => {
      const samples: EntitySample[] = [];
      const errors: string[] = [];
      const acc: Accumulator = {
        add: (s) => samples.push(EntitySample.parse(s)),
        error: (_s, k) => errors.push(k),
      };
      await c.gather(acc);
      return { samples, errors };
    };
    await tick();
    for (let i = 0; i < 200 && conns.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    conns[0]!.write(STREAM.subarray(0, STREAM.indexOf('STRATA-GUEST 1', 10)));
    for (let i = 0; i < 200; i++) {
      const got = await tick();
      if (got.samples.length) return got;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('no record');
  }

  it('one guest sample and its three containers, same ts, parented to it', async () => {
    const { samples, errors } = await serve({});
    expect(errors).toEqual([]);
    expect(samples.map((s) => [s.entity.layer, s.entity.id, s.entity.parent])).toEqual([
      ['guest', 'vm-9:guest', { layer: 'vm', id: 'vm-9' }],
      ...CGROUPS.map((p) => ['container', `vm-9:guest:${p}`, { layer: 'guest', id: 'vm-9:guest' }]),
    ]);
    expect(new Set(samples.map((s) => s.ts)).size).toBe(1);
    expect(samples[1]!.entity.labels.vm_name).toBe('db');
  });

  it('containers: false publishes the guest only; maxContainers bounds and counts', async () => {
    expect((await serve({ containers: false })).samples.map((s) => s.entity.layer)).toEqual(['guest']);
    const dropped = async () =>
      (await registry.getSingleMetric('strata_guest_containers_dropped_total')!.get()).values[0]?.value ?? 0;
    const before = await dropped();
    const { samples } = await serve({ maxContainers: 1 });
    expect(samples.map((s) => s.entity.id)).toEqual(['vm-9:guest', 'vm-9:guest:/strata-capture']);
    expect((await dropped()) - before).toBe(2);
  });
});
