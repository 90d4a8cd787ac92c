// The cgroup collector over real cgroup trees captured from this hybrid machine
// (testdata/capture.sh: a cgroup with a dd + CPU worker, v1 controllers + the unified hierarchy)
// and a damaged copy (testdata/make-malformed.sh). Expected output beside each step as
// expected.json (UPDATE_EXPECTED=1 rewrites it).
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { CgroupCollector, classifyCgroup, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { layoutFromMountinfo } from '../../collectors/cgroup/mounts.ts';
import {
  devnameFromUevent,
  parseBlkioRw,
  parseIoStat,
  parseMemoryMax,
  parseSingle,
} from '../../collectors/cgroup/parsers.ts';
import { EntitySample } from '../../schemas/sample.ts';

const ROOT = new URL('../../testdata/cgroup/', import.meta.url).pathname;

async function collect(dir: string, config: Record<string, unknown> = {}) {
  const c = new CgroupCollector(
    parseCgroupConfig({ include: ['/strata-capture'], docker: { enabled: false }, ...config }),
    {
      nodeId: 'node-1',
      paths: { proc: `${dir}/proc`, sys: `${dir}/sys`, cgroup: `${dir}/sys/fs/cgroup` },
      mountinfo: readFileSync(`${dir}/proc/self/mountinfo`, 'utf8'),
    },
  );
  await c.start();
  const samples: EntitySample[] = [];
  const errors: Array<{ key: string; message: string }> = [];
  await c.gather({
    add: (s) => samples.push(s),
    error: (_source, key, err) => errors.push({ key, message: (err as Error).message }),
  });
  await c.shutdown();
  return { samples, errors, layout: c.layout };
}

/** ts is the read time; everything else is deterministic. */
function stable(samples: EntitySample[]) {
  return samples.map(({ ts: _ts, ...rest }) => rest);
}

const cases = readdirSync(ROOT).flatMap((c) =>
  readdirSync(`${ROOT}${c}`)
    .filter((s) => s.startsWith('step'))
    .map((s) => [c, s] as const),
);

describe('cgroup collector on captured trees', () => {
  it('has cases', () => {
    expect(cases.map(([c, s]) => `${c}/${s}`)).toEqual(
      expect.arrayContaining([
        'hybrid-dd/step0',
        'hybrid-dd/step1',
        'hybrid-dd-as-v1/step0',
        'malformed/step0',
      ]),
    );
  });

  it.each(cases)('%s/%s matches expected.json', async (c, step) => {
    const dir = `${ROOT}${c}/${step}`;
    const { samples, errors } = await collect(dir);
    const got = { samples: stable(samples), errors: errors.map((e) => e.message.replace(ROOT, '')) };
    const expectedPath = `${dir}/expected.json`;
    if (process.env.UPDATE_EXPECTED) writeFileSync(expectedPath, `${JSON.stringify(got, null, 2)}\n`);
    expect(got).toEqual(JSON.parse(readFileSync(expectedPath, 'utf8')));
  });

  it('hybrid: detects the mode, reads v1 memory/blkio and v2 cpu.stat + PSI, names the disk', async () => {
    const { samples, errors, layout } = await collect(`${ROOT}hybrid-dd/step0`);
    expect(layout.mode).toBe('hybrid');
    expect(errors).toEqual([]);
    expect(samples).toHaveLength(1);
    const s = EntitySample.parse(samples[0]);
    expect(s.entity).toMatchObject({
      layer: 'container',
      kind: 'cgroup',
      id: '/strata-capture',
      parent: { layer: 'host', id: 'node-1' },
      labels: { cgroup_version: 'hybrid', cgroup_path: '/strata-capture' },
    });
    const raw = readFileSync(`${ROOT}hybrid-dd/step0/sys/fs/cgroup/unified/strata-capture/cpu.stat`, 'utf8');
    expect(s.counters.cpu_usage_usec_total).toBe(Number(/usage_usec (\d+)/.exec(raw)![1]));
    expect(s.gauges.memory_usage_bytes).toBeGreaterThan(0);
    // memory.limit_in_bytes is the "unlimited" 9223372036854771712: absent
    expect(s.gauges.memory_limit_bytes).toBeUndefined();
    expect(Object.keys(s.devices ?? {})).toEqual(['vda']);
    expect(s.counters.psi_io_some_usec_total).toBeGreaterThan(0);
  });

  it('between step0 and step1 (1 s of the dd + CPU worker) cpu usage and write ops grow', async () => {
    const [a] = (await collect(`${ROOT}hybrid-dd/step0`)).samples;
    const [b] = (await collect(`${ROOT}hybrid-dd/step1`)).samples;
    expect(b!.counters.cpu_usage_usec_total).toBeGreaterThan(a!.counters.cpu_usage_usec_total!);
    const w = (s: EntitySample) => s.devices!.vda!.counters.writes_completed_total!;
    expect(w(b!)).toBeGreaterThan(w(a!));
    expect(b!.devices!.vda!.counters.written_bytes_total).toBeGreaterThan(
      a!.devices!.vda!.counters.written_bytes_total!,
    );
  });

  it('malformed files are reported one problem each, and the sample still comes out', async () => {
    const { samples, errors } = await collect(`${ROOT}malformed/step0`);
    expect(samples).toHaveLength(1);
    expect(errors.map((e) => e.message)).toEqual([
      'cgroup /strata-capture: cpu.stat line 1: usage_usec: not a number',
      'cgroup /strata-capture: memory.stat line 2: total_rss: not a number',
      'cgroup /strata-capture: blkio.throttle.io_serviced line 1: expected "MAJ:MIN Op N", got 2 fields',
      'cgroup /strata-capture: pressure/cpu: empty file',
    ]);
    const s = samples[0]!;
    expect(s.counters.cpu_usage_usec_total).toBeUndefined();
    expect(s.counters.cpu_user_usec_total).toBeGreaterThan(0);
    expect(s.devices!.vda!.counters.written_bytes_total).toBeGreaterThan(0);
  });

  it('pure v1 (same capture without the cgroup2 mount): cpuacct.usage ns → µs, cpuacct.stat ticks → µs, no PSI', async () => {
    const dir = `${ROOT}hybrid-dd-as-v1/step0`;
    const { samples, errors, layout } = await collect(dir);
    expect(layout.mode).toBe('v1');
    expect(errors).toEqual([]);
    const s = samples[0]!;
    expect(s.entity.labels.cgroup_version).toBe('v1');
    const acct = `${dir}/sys/fs/cgroup/cpuacct/strata-capture`;
    const ns = Number(readFileSync(`${acct}/cpuacct.usage`, 'utf8'));
    expect(s.counters.cpu_usage_usec_total).toBe(Math.floor(ns / 1000));
    const user = Number(/^user (\d+)/m.exec(readFileSync(`${acct}/cpuacct.stat`, 'utf8'))![1]);
    expect(s.counters.cpu_user_usec_total).toBe(user * 10_000);
    expect(Object.keys(s.counters).filter((k) => k.startsWith('psi_'))).toEqual([]);
    expect(s.devices!.vda!.counters.writes_completed_total).toBeGreaterThan(0);
  });

  it('an unreadable file (EISDIR) is reported with its path; the sample still comes out', async () => {
    const dir = mkdtempSync(`${tmpdir()}/strata-cg-unreadable-`);
    try {
      cpSync(`${ROOT}hybrid-dd/step0`, dir, { recursive: true });
      const f = `${dir}/sys/fs/cgroup/memory/strata-capture/memory.usage_in_bytes`;
      rmSync(f);
      mkdirSync(f); // opens fine, read() fails with EISDIR: a file that exists but cannot be read
      const { samples, errors } = await collect(dir);
      expect(errors.map((e) => e.key)).toEqual([`cgroup:${f}:EISDIR`]);
      expect(samples).toHaveLength(1);
      expect(samples[0]!.gauges.memory_usage_bytes).toBeUndefined();
      expect(samples[0]!.counters.cpu_usage_usec_total).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an absent Docker socket is counted (list and events), the containers still come out', async () => {
    const { registry } = await import('../../lib/metrics.ts');
    const value = async (request: string) =>
      (await registry.getSingleMetric('strata_collector_cgroup_docker_errors_total')?.get())?.values.find(
        (v) => v.labels.request === request,
      )?.value ?? 0;
    const before = await value('list');
    const { samples } = await collect(`${ROOT}hybrid-dd/step0`, {
      docker: { socket: '/nonexistent/docker.sock' },
    });
    expect(samples).toHaveLength(1);
    expect(await value('list')).toBe(before + 1);
    // the events stream fails asynchronously: give it up to 1 s
    for (let i = 0; i < 20 && (await value('events')) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await value('events')).toBeGreaterThanOrEqual(1);
  });

  it('without include globs the capture cgroup is not a container', async () => {
    const { samples } = await collect(`${ROOT}hybrid-dd/step0`, { include: [] });
    expect(samples).toEqual([]);
  });
});

describe('layoutFromMountinfo', () => {
  it('this machine (captured): hybrid with separate cpu and cpuacct mounts and unified cgroup2', () => {
    const text = readFileSync(`${ROOT}hybrid-dd/step0/proc/self/mountinfo`, 'utf8');
    const l = layoutFromMountinfo(text, '/host/sys/fs/cgroup');
    expect(l.mode).toBe('hybrid');
    expect(l.v2).toBe('/host/sys/fs/cgroup/unified');
    expect(l.v1.get('cpuacct')).toBe('/host/sys/fs/cgroup/cpuacct');
    expect(l.v1.get('blkio')).toBe('/host/sys/fs/cgroup/blkio');
    expect(l.v1.has('rw')).toBe(false);
  });

  // Single mountinfo lines in the shapes the kernel prints on systemd hosts (pure v2) and on
  // older distributions with co-mounted controllers (pure v1).
  it('pure v2: one cgroup2 mount at /sys/fs/cgroup', () => {
    const l = layoutFromMountinfo(
      '35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n',
    );
    expect(l).toEqual({ mode: 'v2', v1: new Map(), v2: '/sys/fs/cgroup' });
  });

  it('pure v1 with co-mounted cpu,cpuacct', () => {
    const l = layoutFromMountinfo(
      '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct\n' +
        '31 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd\n',
    );
    expect(l.mode).toBe('v1');
    expect(l.v1.get('cpu')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(l.v1.get('cpuacct')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(l.v1.has('name=systemd')).toBe(false);
    expect(l.v1.has('xattr')).toBe(false);
  });

  // systemd's named v1 hierarchy ("rw,xattr,name=systemd") carries no controller: next to a
  // cgroup2 mount it is still v2, not hybrid. Other non-controller options as the kernel prints them.
  it.each([
    [
      'v2 + systemd named hierarchy (xattr)',
      '25 24 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:5 - cgroup cgroup rw,xattr,name=systemd',
      'v2',
      [],
    ],
    [
      'v2 + named hierarchy with noprefix, clone_children, release_agent',
      '26 24 0:24 / /sys/fs/cgroup/x rw - cgroup cgroup rw,noprefix,clone_children,release_agent=/bin/true,name=x',
      'v2',
      [],
    ],
    [
      'v2 + cpuset with cpuset_v2_mode and favordynmods',
      '27 24 0:25 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,cpuset_v2_mode,favordynmods',
      'hybrid',
      ['cpuset'],
    ],
  ] as const)('%s', (_name, line, mode, controllers) => {
    const cgroup2 = '35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n';
    const l = layoutFromMountinfo(`${cgroup2}${line}\n`);
    expect(l.mode).toBe(mode);
    expect([...l.v1.keys()]).toEqual(controllers);
    expect(l.v2).toBe('/sys/fs/cgroup');
  });
});

describe('classifyCgroup', () => {
  const id = 'a'.repeat(52) + '0123456789ab';
  const opts = { systemd: true, include: [/^\/strata-test\/[^/]*$/] };
  it.each([
    [`/docker/${id}`, 'docker', id, {}],
    [`/system.slice/docker-${id}.scope`, 'docker', id, {}],
    [
      `/kubepods/burstable/pod0a1b2c3d-1111-2222-3333-444455556666/${id}`,
      'kubernetes',
      id,
      { qos_class: 'burstable', pod_uid: '0a1b2c3d-1111-2222-3333-444455556666', container_id: id },
    ],
    [
      `/kubepods/pod0a1b2c3d-1111-2222-3333-444455556666/${id}`,
      'kubernetes',
      id,
      { qos_class: 'guaranteed' },
    ],
    [
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_1111_2222_3333_444455556666.slice/cri-containerd-${id}.scope`,
      'kubernetes',
      id,
      { qos_class: 'besteffort', pod_uid: '0a1b2c3d-1111-2222-3333-444455556666', runtime: 'containerd' },
    ],
    [
      `/kubepods.slice/kubepods-pod0a1b2c3d_1111_2222_3333_444455556666.slice/docker-${id}.scope`,
      'kubernetes',
      id,
      { qos_class: 'guaranteed', runtime: 'docker' },
    ],
    [`/system.slice/cri-containerd-${id}.scope`, 'containerd', id, {}],
    [`/machine.slice/libpod-${id}.scope`, 'podman', id, { runtime: 'podman' }],
    ['/system.slice/sshd.service', 'systemd', '/system.slice/sshd.service', {}],
    ['/strata-test/a', 'cgroup', '/strata-test/a', {}],
  ] as const)('%s → %s', (path, kind, wantId, labels) => {
    const c = classifyCgroup(path, opts);
    expect(c?.kind).toBe(kind);
    expect(c?.id).toBe(wantId);
    expect(c?.labels).toMatchObject(labels);
  });

  it.each([
    '/docker',
    '/kubepods/burstable',
    '/kubepods/burstable/pod0a1b2c3d-1111-2222-3333-444455556666',
    `/machine.slice/libpod-conmon-${id}.scope`,
    '/strata-test/a/b',
    '/user.slice',
  ])('%s is not a container', (path) => {
    expect(classifyCgroup(path, opts)).toBeUndefined();
  });

  it('systemd units only when enabled', () => {
    expect(classifyCgroup('/system.slice/sshd.service', { systemd: false, include: [] })).toBeUndefined();
  });
});

describe('cgroup file parsers', () => {
  it('v2 io.stat (the example of the kernel documentation, cgroup-v2.rst)', () => {
    const problems: string[] = [];
    const got = parseIoStat(
      '8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n' +
        '8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n',
      problems,
    );
    expect(problems).toEqual([]);
    expect(got['8:0']).toEqual({
      read_bytes_total: 90430464,
      written_bytes_total: 299008000,
      reads_completed_total: 8950,
      writes_completed_total: 1252,
      discarded_bytes_total: 50331648,
      discards_completed_total: 3021,
    });
  });

  it('v1 blkio: "Total 0" alone (blk-mq, no throttle rule) gives no devices', () => {
    const devices = {};
    const problems: string[] = [];
    parseBlkioRw('Total 0\n', 'ops', devices, problems, 'blkio.throttle.io_serviced');
    expect(devices).toEqual({});
    expect(problems).toEqual([]);
  });

  it('memory limits: "max" and the v1 unlimited value are absent', () => {
    expect(parseMemoryMax('max\n')).toBeUndefined();
    expect(parseMemoryMax('9223372036854771712\n')).toBeUndefined();
    expect(parseMemoryMax('536870912\n')).toBe(536870912);
    expect(parseSingle('garbage')).toBeNaN();
  });

  it('DEVNAME from a captured /sys/dev/block uevent', () => {
    const text = readFileSync(`${ROOT}hybrid-dd/step0/sys/dev/block/254:0/uevent`, 'utf8');
    expect(devnameFromUevent(text)).toBe('vda');
  });
});
