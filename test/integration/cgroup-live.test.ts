// Live: real cgroups on this machine (v1 cpu, cpuacct, memory, blkio + the cgroup2 hierarchy, or
// pure v2), a child doing CPU work and direct 4K writes inside one of them, and the cgroup
// collector reading them as they run. Also: a cgroup deleted between discovery and read, and a
// garbage file (a real file bind-mounted over a real cgroup's memory.stat / cpu.stat).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blkioAccounting, blkioDevices } from '../../collectors/cgroup/blkio-trust.ts';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { registry } from '../../lib/metrics.ts';
import type { EntitySample } from '../../schemas/sample.ts';

const PARENT = `strata-test-${process.pid}`;
// a: CPU + direct-I/O worker, b: a sleeper in the host's network namespace, c: removed by a test,
// n: a sleeper in a network namespace of its own (unshare -n) with one bridge interface (no dummy
// module on every kernel); p: a sleeper that joined n's namespace (as a pod's containers share one).
const CHILDREN = ['a', 'b', 'c', 'n', 'p'];
const NETNS_IF = 'strd0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function collector(mountinfo?: string): CgroupCollector {
  return new CgroupCollector(
    parseCgroupConfig({ include: [`/${PARENT}/*`], docker: { enabled: false }, discoveryInterval: '1h' }),
    mountinfo === undefined ? { nodeId: 'live-node' } : { nodeId: 'live-node', mountinfo },
  );
}

async function gather(c: CgroupCollector) {
  const samples = new Map<string, EntitySample>();
  const errors: Array<{ key: string; message: string }> = [];
  await c.gather({
    add: (s) => samples.set(s.entity.id, s),
    error: (_src, key, err) => errors.push({ key, message: (err as Error).message }),
  });
  return { samples, errors };
}

async function metricValue(name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  const v = await m?.get();
  return v?.values.reduce((a, x) => a + x.value, 0) ?? 0;
}

// Directories of PARENT in every hierarchy we write to.
let hierarchyDirs: string[] = [];
let v2Pure = false;
let worker: ChildProcess | undefined;
let sleeper: ChildProcess | undefined;
let netnsSleeper: ChildProcess | undefined;
let netnsJoiner: ChildProcess | undefined;
let work: string;
const mounted: string[] = [];

function cg(dir: string, name: string) {
  return `${dir}/${name}`;
}

function spawnInto(name: string, script: string): ChildProcess {
  const procs = hierarchyDirs.map((d) => `${cg(d, name)}/cgroup.procs`).join(' ');
  // The shell moves itself into the cgroups before it starts, so everything it forks is inside.
  return spawn('sh', ['-c', `for f in ${procs}; do echo $$ > $f; done; ${script}`], {
    stdio: 'ignore',
    detached: true,
  });
}

beforeAll(() => {
  const c = collector();
  const l = c.layout;
  v2Pure = l.mode === 'v2';
  const roots = v2Pure
    ? [l.v2!]
    : [...['cpu', 'cpuacct', 'memory', 'blkio'].map((x) => l.v1.get(x)!), ...(l.v2 ? [l.v2] : [])];
  hierarchyDirs = [...new Set(roots)].map((r) => `${r}/${PARENT}`);
  for (const d of hierarchyDirs) {
    mkdirSync(d, { recursive: true });
    if (v2Pure) writeFileSync(`${d}/cgroup.subtree_control`, '+cpu +io +memory');
    for (const child of CHILDREN) mkdirSync(cg(d, child), { recursive: true });
  }
  work = mkdtempSync('/var/tmp/strata-cgroup-live-');
  if (!v2Pure) {
    // Kernels >= 6.10 account v1 blkio.throttle.* only once a throttle rule exists on the device's
    // queue; a limit nothing reaches turns the accounting on without throttling anything.
    const dev = execFileSync('stat', ['-c', '%Hd:%Ld', work], { encoding: 'utf8' }).trim();
    const blkio = hierarchyDirs.find((d) => d.startsWith(l.v1.get('blkio')!))!;
    writeFileSync(`${cg(blkio, 'a')}/blkio.throttle.write_iops_device`, `${dev} 1000000000`);
  }
  worker = spawnInto(
    'a',
    `while :; do dd if=/dev/zero of=${work}/f bs=4k count=200 oflag=direct 2>/dev/null; ` +
      'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done',
  );
  sleeper = spawnInto('b', 'exec sleep 600');
  // unshare without --fork execs in place: the same pid (in cgroup n) then lives in a new netns,
  // which goes away with it.
  netnsSleeper = spawnInto(
    'n',
    `exec unshare -n sh -c 'ip link add ${NETNS_IF} type bridge; exec sleep 600'`,
  );
  // p waits until n's namespace has its interface, then joins it (nsenter execs in place too).
  const npid = netnsSleeper.pid!;
  netnsJoiner = spawnInto(
    'p',
    `while ! grep -q '${NETNS_IF}:' /proc/${npid}/net/dev 2>/dev/null; do sleep 0.05; done; ` +
      `exec nsenter --net=/proc/${npid}/ns/net sleep 600`,
  );
}, 30_000);

afterAll(async () => {
  for (const m of mounted.reverse()) {
    try {
      execFileSync('umount', [m]);
    } catch {
      // already gone
    }
  }
  for (const child of [worker, sleeper, netnsSleeper, netnsJoiner]) {
    if (child?.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // exited
      }
    }
  }
  // dd children left behind: kill whatever is still in our cgroups, then remove them.
  for (const d of hierarchyDirs) {
    for (const child of CHILDREN) {
      const f = `${cg(d, child)}/cgroup.procs`;
      if (!existsSync(f)) continue;
      for (const pid of readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // exited
        }
      }
    }
  }
  await sleep(300);
  for (const d of hierarchyDirs) {
    for (const child of CHILDREN) {
      if (existsSync(cg(d, child))) rmdirSync(cg(d, child));
    }
    if (existsSync(d)) rmdirSync(d);
  }
  if (work) rmSync(work, { recursive: true, force: true });
}, 30_000);

describe('cgroup collector on live cgroups', () => {
  it('sees the worker: cpu usage and write ops grow between two ticks; the idle cgroup also comes out', async () => {
    const c = collector();
    await c.start();
    await sleep(500);
    const first = await gather(c);
    await sleep(1500);
    const second = await gather(c);
    await c.shutdown();
    const a1 = first.samples.get(`/${PARENT}/a`);
    const a2 = second.samples.get(`/${PARENT}/a`);
    expect(a1?.entity).toMatchObject({ layer: 'container', kind: 'cgroup', name: `/${PARENT}/a` });
    expect(second.samples.has(`/${PARENT}/b`)).toBe(true);
    // other engineers' containers may share this machine: only ours are asserted
    expect(second.errors.filter((e) => e.key.includes(PARENT))).toEqual([]);
    expect(a2!.counters.cpu_usage_usec_total).toBeGreaterThan(a1!.counters.cpu_usage_usec_total!);
    const writes = (s: EntitySample) =>
      Object.values(s.devices ?? {}).reduce((n, d) => n + (d.counters.writes_completed_total ?? 0), 0);
    expect(writes(a1!)).toBeGreaterThan(0);
    expect(writes(a2!)).toBeGreaterThan(writes(a1!));
    expect(a2!.gauges.memory_usage_bytes).toBeGreaterThan(0);
    // the sleeper did nothing between the ticks
    const b2 = second.samples.get(`/${PARENT}/b`)!;
    expect(writes(b2)).toBe(0);
  });

  // Kernels >= 6.10 count v1 blkio on a disk only once a throttle rule was written for it on some
  // cgroup (and from then on for every cgroup, even after the rule is removed). A loop device made
  // for the test (a new queue: LOOP_CTL_REMOVE at the end, so the next run gets a new one too) is
  // such a disk: b's direct writes to it are not counted and the collector sends no number for it
  // (label io_accounting: partial); after a never-binding rule on another cgroup (p) they are.
  it('v1 blkio on a kernel >= 6.10: a disk without any throttle rule gets no number; a rule on another cgroup turns counting on', async () => {
    const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    const mode = blkioAccounting(release);
    if (v2Pure || mode !== 'activated') {
      // not this machine's case (6.18, hybrid): the collector must not label anything for it
      const { samples } = await gather(collector());
      expect(samples.get(`/${PARENT}/b`)!.entity.labels.io_accounting).not.toBe('unavailable');
      return;
    }
    const blkioRoot = collector().layout.v1.get('blkio')!;
    let index = 200 + (process.pid % 300);
    while (existsSync(`/sys/block/loop${index}`)) index++;
    const loop = `/dev/loop${index}`;
    const file = `${work}/loop.img`;
    writeFileSync(file, Buffer.alloc(8 << 20));
    execFileSync('losetup', [loop, file]);
    const dev = readFileSync(`/sys/block/loop${index}/dev`, 'utf8').trim();
    const rule = `${cg(hierarchyDirs.find((d) => d.startsWith(blkioRoot))!, 'p')}/blkio.throttle.write_iops_device`;
    const writeFromB = async (count: number) => {
      const dd = spawnInto('b', `dd if=/dev/zero of=${loop} bs=4k count=${count} oflag=direct 2>/dev/null`);
      await new Promise((r) => dd.on('exit', r));
    };
    const bFile = () =>
      readFileSync(
        `${cg(hierarchyDirs.find((d) => d.startsWith(blkioRoot))!, 'b')}/blkio.throttle.io_serviced`,
        'utf8',
      );
    try {
      await writeFromB(100);
      // the kernel: no line for the new disk anywhere, though the disk completed the writes
      expect(blkioDevices(readFileSync(`${blkioRoot}/blkio.throttle.io_serviced`, 'utf8')).has(dev)).toBe(
        false,
      );
      expect(blkioDevices(bFile()).has(dev)).toBe(false);
      expect(
        Number(readFileSync(`/sys/block/loop${index}/stat`, 'utf8').trim().split(/\s+/)[4]),
      ).toBeGreaterThanOrEqual(100);
      const c1 = collector();
      await c1.start();
      const before = (await gather(c1)).samples.get(`/${PARENT}/b`)!;
      await c1.shutdown();
      expect(before.entity.labels.io_accounting).toBe('partial');
      expect(Object.keys(before.devices ?? {})).not.toContain(`loop${index}`);

      writeFileSync(rule, `${dev} 1000000000`);
      await writeFromB(100);
      writeFileSync(rule, `${dev} 0`); // removed: counting stays on for this disk
      expect(readFileSync(rule, 'utf8')).toBe('');
      await writeFromB(50);
      const c2 = collector();
      await c2.start();
      const after = (await gather(c2)).samples.get(`/${PARENT}/b`)!;
      await c2.shutdown();
      // exactly the writes made after the rule was written (before and after its removal)
      expect(after.devices?.[`loop${index}`]?.counters.writes_completed_total).toBe(150);
      expect(after.devices?.[`loop${index}`]?.counters.written_bytes_total).toBe(150 * 4096);
      // b has no rule of its own: counted because p's rule activated the disk's queue
      expect(readFileSync(rule.replace('/p/', '/b/'), 'utf8')).toBe('');

      // Under blkio-still.ts (b's last read sent again while the root's io_serviced_recursive is
      // still): b's real writes move the root, so the very next tick reads them. Whether a tick
      // without them is reused depends on the rest of this host's I/O on activated disks.
      const c3 = collector();
      await c3.start();
      const loopWrites = async () =>
        (await gather(c3)).samples.get(`/${PARENT}/b`)!.devices?.[`loop${index}`]?.counters
          .writes_completed_total;
      expect(await loopWrites()).toBe(150);
      expect(await loopWrites()).toBe(150);
      await writeFromB(20);
      expect(await loopWrites()).toBe(170);
      await writeFromB(5);
      expect(await loopWrites()).toBe(175);
      await c3.shutdown();
    } finally {
      try {
        writeFileSync(rule, `${dev} 0`);
      } catch {
        // already removed
      }
      execFileSync('losetup', ['-d', loop]);
      // LOOP_CTL_REMOVE (0x4C81): the next run's loop device is a new queue, never activated
      execFileSync('python3', [
        '-c',
        `import os,fcntl\nfd=os.open('/dev/loop-control',os.O_RDWR)\nfcntl.ioctl(fd,0x4C81,${index})`,
      ]);
      rmSync(file, { force: true });
    }
  }, 30_000);

  it("network: a process in the host's netns has no interfaces; one in its own netns has its own (lo excluded)", async () => {
    // Wait until n's process is inside its new netns with the bridge interface (readiness, not time).
    const pid = netnsSleeper!.pid!;
    for (let i = 0; i < 100; i++) {
      let dev = '';
      try {
        dev = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
      } catch {
        // not there yet
      }
      if (dev.includes(`${NETNS_IF}:`)) break;
      await sleep(50);
    }
    const c = collector();
    await c.start();
    const { samples } = await gather(c);
    await c.shutdown();
    // b shares the agent's (the host's) network namespace: its interfaces are the host's, reported
    // by the host layer, never under the container (whether or not /proc/1/ns/net is readable).
    const b = samples.get(`/${PARENT}/b`)!;
    expect(b).toBeDefined();
    expect(b.interfaces).toBeUndefined();
    // n: exactly the interfaces of its own namespace, lo excluded.
    const n = samples.get(`/${PARENT}/n`)!;
    expect(Object.keys(n.interfaces ?? {})).toEqual([NETNS_IF]);
    expect(n.interfaces![NETNS_IF]!.counters.rx_bytes_total).toBe(0);
  });

  it('containers sharing one network namespace (a pod) report its interfaces once, on the first by cgroup path', async () => {
    const npid = netnsSleeper!.pid!;
    const joined = () => {
      const pid = readFileSync(`${cg(hierarchyDirs[0]!, 'p')}/cgroup.procs`, 'utf8')
        .trim()
        .split('\n')[0];
      if (!pid) return false;
      try {
        return (
          execFileSync('readlink', [`/proc/${pid}/ns/net`], { encoding: 'utf8' }) ===
          execFileSync('readlink', [`/proc/${npid}/ns/net`], { encoding: 'utf8' })
        );
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 200 && !joined(); i++) await sleep(50);
    expect(joined()).toBe(true);
    const c = collector();
    await c.start();
    const { samples } = await gather(c);
    const again = await gather(c);
    await c.shutdown();
    // n sorts before p: n reports the namespace's interface, p none (and names n).
    for (const tick of [samples, again.samples]) {
      const n = tick.get(`/${PARENT}/n`)!;
      const p = tick.get(`/${PARENT}/p`)!;
      expect(Object.keys(n.interfaces ?? {})).toEqual([NETNS_IF]);
      expect(p.interfaces).toBeUndefined();
      expect(p.entity.labels?.netns_shared_with).toBe(`/${PARENT}/n`);
      expect(n.entity.labels?.netns_shared_with).toBeUndefined();
    }
  });

  it('a cgroup deleted between discovery and read is counted as vanished, not an error; the others come out', async () => {
    const c = collector();
    await c.start();
    c.discover();
    const ours = c.cgroupPaths().filter((p) => p.startsWith(`/${PARENT}/`));
    expect(ours.sort()).toEqual([
      `/${PARENT}/a`,
      `/${PARENT}/b`,
      `/${PARENT}/c`,
      `/${PARENT}/n`,
      `/${PARENT}/p`,
    ]);
    const before = await metricValue('strata_collector_cgroup_vanished_total');
    for (const d of [...hierarchyDirs].reverse()) rmdirSync(cg(d, 'c'));
    const { samples, errors } = await gather(c);
    await c.shutdown();
    expect(errors.filter((e) => e.key.includes(PARENT))).toEqual([]);
    const got = [...samples.keys()].filter((id) => id.startsWith(`/${PARENT}/`));
    expect(got.sort()).toEqual([`/${PARENT}/a`, `/${PARENT}/b`, `/${PARENT}/n`, `/${PARENT}/p`]);
    // ≥: another engineer's container vanishing in the same tick would also count
    expect(await metricValue('strata_collector_cgroup_vanished_total')).toBeGreaterThanOrEqual(before + 1);
  });

  it('a garbage file over a real cgroup file is reported once per problem; both entities still come out', async () => {
    // Bind-mount a garbage file over b's memory.stat (v1/hybrid) or cpu.stat (v2).
    const target = v2Pure
      ? `${cg(hierarchyDirs[0]!, 'b')}/cpu.stat`
      : `${cg(hierarchyDirs.find((d) => d.includes('/memory/'))!, 'b')}/memory.stat`;
    const garbage = `${work}/garbage`;
    writeFileSync(garbage, 'total_pgfault lots\n\u0000\u0001binary\n');
    execFileSync('mount', ['--bind', garbage, target]);
    mounted.push(target);
    const c = collector();
    await c.start();
    const { samples, errors } = await gather(c);
    await c.shutdown();
    execFileSync('umount', [target]);
    mounted.pop();
    expect(samples.has(`/${PARENT}/a`)).toBe(true);
    expect(samples.has(`/${PARENT}/b`)).toBe(true);
    const ours = errors.filter((e) => e.key.includes(PARENT));
    expect(ours.length).toBeGreaterThan(0);
    for (const e of ours) expect(e.key).toContain(`/${PARENT}/b`);
    expect(ours.map((e) => e.message).join('\n')).toMatch(/total_pgfault: not a number|usage_usec/);
  });

  it('v2 code path on the live cgroup2 hierarchy (mountinfo reduced to its cgroup2 line): cpu.stat and PSI', async () => {
    const cgroup2 = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(' - cgroup2 '));
    if (v2Pure) expect(cgroup2).toHaveLength(1);
    expect(cgroup2.length).toBeGreaterThan(0);
    const c = collector(`${cgroup2[0]}\n`);
    expect(c.layout.mode).toBe('v2');
    await c.start();
    const first = (await gather(c)).samples.get(`/${PARENT}/a`);
    await sleep(1000);
    const second = (await gather(c)).samples.get(`/${PARENT}/a`);
    await c.shutdown();
    expect(second!.entity.labels.cgroup_version).toBe('v2');
    expect(second!.counters.cpu_usage_usec_total).toBeGreaterThan(first!.counters.cpu_usage_usec_total!);
    expect(second!.counters.cpu_user_usec_total).toBeGreaterThan(0);
    expect(second!.counters.psi_cpu_some_usec_total).toBeGreaterThanOrEqual(
      first!.counters.psi_cpu_some_usec_total!,
    );
    expect(second!.counters.psi_io_some_usec_total).toBeGreaterThanOrEqual(0);
    // Only the totals are sent, not the kernel's averages.
    expect(Object.keys(second!.gauges).filter((k) => k.startsWith('psi_'))).toEqual([]);
  });
});
