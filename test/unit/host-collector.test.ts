// The host collector end to end on captured /proc snapshots (HOST_PROC pointed at testdata) and
// this machine's real /sys for the partition test; config validation; node identity.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { HostCollector, parseHostConfig, resolveNodeIdentity } from '../../collectors/host/index.ts';
import { ConfigError, InvalidDataError } from '../../lib/errors.ts';
import { EntitySample } from '../../schemas/sample.ts';

const STEP0 = new URL('../../testdata/proc/hybrid-host/step0', import.meta.url).pathname;
const node = { id: 'node-1', hostname: 'vm', labels: { os: 'test' } };

async function tick(proc: string, config: Record<string, unknown> = {}) {
  // KSM off: this machine's real /sys/kernel/mm/ksm would not match the captured /proc (the KSM
  // test below points HOST_SYS at a capture).
  const c = new HostCollector(parseHostConfig({ ksm: false, ...config }), {
    node,
    paths: { proc, sys: '/sys', cgroup: '/sys/fs/cgroup' },
  });
  await c.start();
  const samples: EntitySample[] = [];
  const errors: string[] = [];
  await c.gather({ add: (s) => samples.push(s), error: (_s, key) => errors.push(key) });
  await c.shutdown();
  return { samples, errors };
}

describe('host collector', () => {
  it('one valid host entity from the captured /proc, whole disks and non-lo interfaces', async () => {
    const { samples, errors } = await tick(STEP0);
    expect(errors).toEqual([]);
    expect(samples).toHaveLength(1);
    const s = EntitySample.parse(samples[0]);
    expect(s.entity).toEqual({
      layer: 'host',
      kind: 'node',
      id: 'node-1',
      name: 'vm',
      labels: { os: 'test' },
    });
    expect(Object.keys(s.devices!)).toEqual(['vda']);
    expect(Object.keys(s.interfaces!)).not.toContain('lo');
    expect(s.counters.psi_io_some_usec_total).toBeGreaterThanOrEqual(0);
    const expected = JSON.parse(readFileSync(`${STEP0}/expected.json`, 'utf8'));
    expect(s.counters).toEqual(expected.counters);
  });

  it('include/exclude globs for disks and interfaces', async () => {
    const { samples } = await tick(STEP0, {
      disks: { include: ['*'], exclude: ['loop[1-7]'] },
      interfaces: { include: ['eth*', 'lo'], exclude: [] },
    });
    expect(Object.keys(samples[0]!.devices!).sort()).toEqual(['loop0', 'vda', 'zram0']);
    expect(Object.keys(samples[0]!.interfaces!).sort()).toEqual(['eth0', 'lo']);
  });

  it('a /proc without PSI: pressure is dropped quietly, the rest is collected', async () => {
    const dir = mkdtempSync(`${os.tmpdir()}/strata-host-nopsi-`);
    try {
      cpSync(STEP0, dir, { recursive: true });
      rmSync(`${dir}/pressure`, { recursive: true });
      const { samples, errors } = await tick(dir);
      expect(errors).toEqual([]);
      expect(Object.keys(samples[0]!.counters).filter((k) => k.startsWith('psi_'))).toEqual([]);
      expect(samples[0]!.counters.context_switches_total).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing file is an error for that file only', async () => {
    const dir = mkdtempSync(`${os.tmpdir()}/strata-host-novmstat-`);
    try {
      cpSync(STEP0, dir, { recursive: true });
      rmSync(`${dir}/vmstat`);
      const { samples, errors } = await tick(dir);
      expect(errors).toEqual([`host:${dir}/vmstat:ENOENT`]);
      expect(samples[0]!.counters.page_faults_total).toBeUndefined();
      expect(samples[0]!.counters.cpu_user_usec_total).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('start() fails fast on a wrong HOST_PROC and says which variable to set', async () => {
    const c = new HostCollector(parseHostConfig({}), {
      node,
      paths: { proc: '/nonexistent/proc', sys: '/sys', cgroup: '/sys/fs/cgroup' },
    });
    await expect(c.start()).rejects.toThrow(InvalidDataError);
    await expect(c.start()).rejects.toThrow(/\/nonexistent\/proc\/stat.*HOST_PROC/);
    await c.shutdown();
  });

  it('config: unknown keys are named with the accepted ones', () => {
    expect(() => parseHostConfig({ disk: {} })).toThrow(ConfigError);
    expect(() => parseHostConfig({ disk: {} })).toThrow(
      /collectors\.host\.disk: unknown key; accepted keys: enabled, nodeId, disks/,
    );
    expect(() => parseHostConfig({ disks: { includes: [] } })).toThrow(
      /collectors\.host\.disks\.includes: unknown key/,
    );
  });
});

describe('node identity', () => {
  it('STRATA_NODE_ID wins over machine-id; config wins over both', async () => {
    expect((await resolveNodeIdentity({ env: { STRATA_NODE_ID: 'from-env' }, inventory: false })).id).toBe(
      'from-env',
    );
    expect(
      (await resolveNodeIdentity({ nodeId: 'cfg', env: { STRATA_NODE_ID: 'x' }, inventory: false })).id,
    ).toBe('cfg');
  });

  it('machine-id under HOST_ETC, else the hostname', async () => {
    const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    expect((await resolveNodeIdentity({ env: {}, inventory: false })).id).toBe(machineId);
    const none = await resolveNodeIdentity({
      env: { HOST_ETC: '/nonexistent', HOST_VAR: '/nonexistent' },
      inventory: false,
    });
    expect(none).toEqual({ id: os.hostname(), hostname: os.hostname(), labels: {} });
  });

  it('inventory labels from systeminformation', async () => {
    const id = await resolveNodeIdentity({ env: {}, inventory: true });
    expect(id.labels.cpu_cores).toBe(String(os.cpus().length));
    expect(id.labels.kernel).toBe(os.release());
    expect(id.labels.arch).toBe(os.arch());
    expect(id.labels.virtualization).toBeDefined();
  });
});

describe('KernelFile fd budget', () => {
  it('keeps files open up to the budget, then reads open/read/close, and gives fds back on close', async () => {
    const { KernelFile, keptOpenCount, setKeptOpenLimit } = await import('../../collectors/procfs/fileio.ts');
    const base = keptOpenCount();
    setKeptOpenLimit(base + 1);
    try {
      const a = new KernelFile(`${STEP0}/stat`);
      const b = new KernelFile(`${STEP0}/vmstat`);
      expect(a.read()).toMatch(/^cpu /);
      expect(keptOpenCount()).toBe(base + 1);
      expect(b.read()).toMatch(/^nr_free_pages /);
      expect(keptOpenCount()).toBe(base + 1); // over budget: read without keeping the fd
      a.close();
      a.close(); // twice is safe
      expect(keptOpenCount()).toBe(base);
      b.close();
      expect(keptOpenCount()).toBe(base);
    } finally {
      setKeptOpenLimit(8192);
    }
  });
});
