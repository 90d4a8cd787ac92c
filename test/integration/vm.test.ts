// A real QEMU guest (TCG, Debian cloud kernel, busybox initramfs running the in-guest agent) seen
// from both sides: the vm collector over QMP + the hypervisor's /proc, the guest collector over
// the virtio-serial port, with the guest's own containers (cgroup v2, nested guest → container).
// Needs qemu-system-x86, busybox-static and cpio (stack/install-apt.sh) and apt access the first
// time (the kernel .deb is cached in ~/.cache/strata/qemu), and root (or CAP_NET_ADMIN) for the tap
// device QEMU creates.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestCollector, parseGuestConfig } from '../../collectors/guest/index.ts';
import type { Accumulator } from '../../collectors/types.ts';
import { parseVmConfig, VmCollector, VmDirectory } from '../../collectors/vm/index.ts';
import { registry } from '../../lib/metrics.ts';
import { EntitySample } from '../../schemas/sample.ts';
import { startTestVm, type TestVm } from '../../stack/qemu.ts';

const execFileP = promisify(execFile);

const UUID = '7f1e2d3c-4b5a-4969-8877-665544332211';
const NODE = 'vm-test-node';
// A tap of this test's own (QEMU creates it; needs root / CAP_NET_ADMIN), on a /30 of its own.
const TAP = `stv${process.pid % 100_000}`;
const NET = `10.203.${process.pid % 250}`;

let vm: TestVm | undefined;
let dir: string;
let vmc: VmCollector;
let guestc: GuestCollector;
const errors: string[] = [];

async function tick(): Promise<EntitySample[]> {
  const out: EntitySample[] = [];
  const acc: Accumulator = {
    add: (s) => out.push(EntitySample.parse(s)),
    error: (_source, key) => {
      if (errors.length < 200) errors.push(key);
    },
  };
  await vmc.gather(acc);
  await guestc.gather(acc);
  return out;
}

/** Ticks once a second until `pick` finds what it wants in a tick's samples. */
async function waitFor<T>(what: string, pick: (s: EntitySample[]) => T | undefined, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = pick(await tick());
    if (got !== undefined) return got;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; collector errors: ${errors.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
const byLayer = (layer: string) => (s: EntitySample[]) => s.find((x) => x.entity.layer === layer);
const c = (s: EntitySample, k: string) => s.counters[k] ?? Number.NaN;
const guestBusy = (s: EntitySample) => c(s, 'cpu_user_usec_total') + c(s, 'cpu_system_usec_total');
const guestAll = (s: EntitySample) =>
  Object.entries(s.counters)
    .filter(([k]) => /^cpu_(user|nice|system|idle|iowait|irq|softirq|steal)_usec_total$/.test(k))
    .reduce((a, [, v]) => a + v, 0);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-vmtest-'));
  vm = await startTestVm({
    memoryMb: 192,
    cpus: 1,
    name: 'strata-it',
    uuid: UUID,
    qmpSocket: path.join(dir, 'qmp', 'strata-it.sock'),
    agentSocket: path.join(dir, 'agent.sock'),
    workDir: dir,
    tap: TAP,
  });
  process.stderr.write(`test VM pid ${vm.pid} (${vm.accel}) ready in ${vm.bootMs} ms\n`);
  const directory = new VmDirectory();
  vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'qmp', '*.sock')] }), {
    nodeId: NODE,
    directory,
  });
  guestc = new GuestCollector(parseGuestConfig({}), { directory });
  await vmc.start();
  await guestc.start();
}, 300_000);

afterAll(async () => {
  await guestc?.shutdown();
  await vmc?.shutdown();
  await vm?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('vm + guest collectors on a real TCG guest', () => {
  it('discovers the VM over QMP and publishes the vm and guest views, parented', async () => {
    const vmSample = await waitFor('a vm sample', byLayer('vm'));
    expect(vmSample.entity).toMatchObject({
      layer: 'vm',
      kind: 'qemu',
      id: UUID,
      name: 'strata-it',
      parent: { layer: 'host', id: NODE },
      labels: { vm_name: 'strata-it', accel: 'tcg' },
    });
    expect(c(vmSample, 'cpu_usage_usec_total')).toBeGreaterThan(0);
    expect(vmSample.gauges.vcpu_count).toBe(1);
    expect(c(vmSample, 'vcpu_usec_total')).toBeGreaterThan(0);
    expect(vmSample.gauges.memory_rss_bytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(Object.keys(vmSample.devices ?? {})).toEqual(['disk0']);
    // The host disk holding the image (what findmnt/lsblk say), for the overhead processor.
    const source = (await execFileP('findmnt', ['-no', 'SOURCE', '--target', dir])).stdout.trim();
    const disk = source.startsWith('/dev/')
      ? (await execFileP('lsblk', ['-no', 'PKNAME', source])).stdout.trim() || path.basename(source)
      : undefined;
    expect(vmSample.entity.labels.host_device).toBe(disk);

    const guest = await waitFor('a guest sample', byLayer('guest'));
    expect(guest.entity).toMatchObject({
      layer: 'guest',
      kind: 'guest-agent',
      id: `${UUID}:guest`,
      parent: { layer: 'vm', id: vmSample.entity.id },
    });
    expect(guest.gauges.cpu_count).toBe(1);
    expect(guest.gauges.memory_total_bytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(guest.gauges.memory_total_bytes).toBeLessThan(192 * 1024 * 1024);
    expect(Object.keys(guest.devices ?? {})).toContain('vda');
    expect(c(guest, 'psi_cpu_some_usec_total')).toBeGreaterThanOrEqual(0);

    // The balloon driver reports the guest's faults once polling is on.
    const withBalloon = await waitFor('balloon guest-stats', (s) => {
      const v = byLayer('vm')(s);
      return v && v.counters.guest_reported_page_faults_total !== undefined ? v : undefined;
    });
    expect(c(withBalloon, 'guest_reported_page_faults_total')).toBeGreaterThan(0);
    expect(withBalloon.gauges.guest_reported_memory_free_bytes).toBeGreaterThan(0);
  });

  it('guest CPU grows while a busy loop runs inside the guest', async () => {
    const idle0 = await waitFor('a fresh guest sample', byLayer('guest'));
    const vmIdle0 = await waitFor('a vm sample', byLayer('vm'));
    await new Promise((r) => setTimeout(r, 3000));
    const idle1 = await waitFor('a fresh guest sample', byLayer('guest'));
    const vmIdle1 = await waitFor('a vm sample', byLayer('vm'));
    await vm!.exec('(while :; do :; done) & echo $! > /tmp/busy.pid');
    try {
      const busy0 = await waitFor('a fresh guest sample', byLayer('guest'));
      const vm0 = await waitFor('a vm sample', byLayer('vm'));
      await new Promise((r) => setTimeout(r, 4000));
      const busy1 = await waitFor('a fresh guest sample', byLayer('guest'));
      const vm1 = await waitFor('a vm sample', byLayer('vm'));
      const idleFrac = (guestBusy(idle1) - guestBusy(idle0)) / (guestAll(idle1) - guestAll(idle0));
      const busyFrac = (guestBusy(busy1) - guestBusy(busy0)) / (guestAll(busy1) - guestAll(busy0));
      const vcpuUsec = c(vm1, 'vcpu_usec_total') - c(vm0, 'vcpu_usec_total');
      // vCPU thread CPU per wall second (µs/s), idle vs busy: TCG burns host CPU even for an idle
      // guest, and on a crowded host the thread gets only part of a core, so compare the two.
      const rate = (a: EntitySample, b: EntitySample) =>
        ((c(b, 'vcpu_usec_total') - c(a, 'vcpu_usec_total')) * 1000) / (b.ts! - a.ts!);
      const vcpuIdleRate = rate(vmIdle0, vmIdle1);
      const vcpuBusyRate = rate(vm0, vm1);
      process.stderr.write(
        `guest busy fraction idle ${idleFrac.toFixed(2)}, with busy loop ${busyFrac.toFixed(2)}; ` +
          `guest user+system grew ${(guestBusy(busy1) - guestBusy(busy0)) / 1000} ms, vCPU thread ${vcpuUsec / 1000} ms ` +
          `(vCPU thread ${Math.round(vcpuIdleRate / 1000)} ms/s idle, ${Math.round(vcpuBusyRate / 1000)} ms/s busy)\n`,
      );
      expect(guestBusy(busy1) - guestBusy(busy0)).toBeGreaterThan(1_000_000);
      expect(busyFrac).toBeGreaterThan(0.9);
      expect(busyFrac).toBeGreaterThan(idleFrac);
      expect(vcpuBusyRate).toBeGreaterThan(vcpuIdleRate);
    } finally {
      await vm!.exec('kill $(cat /tmp/busy.pid)');
    }
  });

  it('containers inside the guest (pure cgroup v2) arrive parented to the guest; only the busy one burns CPU', async () => {
    const byPath = (s: EntitySample[], p: string) =>
      s.find((x) => x.entity.layer === 'container' && x.entity.labels.cgroup_path === p);
    const both = (s: EntitySample[]) => {
      const busy = byPath(s, '/strata-test/busy');
      const idle = byPath(s, '/strata-test/idle');
      const guest = byLayer('guest')(s);
      return busy && idle && guest ? { busy, idle, guest } : undefined;
    };
    const first = await waitFor('the guest and its two containers', both);
    for (const [p, s] of [
      ['/strata-test/busy', first.busy],
      ['/strata-test/idle', first.idle],
    ] as const) {
      expect(s.entity).toEqual({
        layer: 'container',
        kind: 'cgroup',
        id: `${UUID}:guest:${p}`,
        name: p,
        labels: { cgroup_version: 'v2', cgroup_path: p, vm_name: 'strata-it' },
        parent: { layer: 'guest', id: first.guest.entity.id },
      });
      expect(s.ts).toBe(first.guest.ts); // from the same record
      expect(s.gauges.memory_usage_bytes).toBeGreaterThan(0);
      expect(s.counters.psi_cpu_some_usec_total).toBeGreaterThanOrEqual(0);
    }
    expect(first.guest.entity.parent).toEqual({ layer: 'vm', id: UUID });
    // A busy loop moved into /strata-test/busy (its sleeping process stays, like the idle one's).
    await vm!.exec(
      "sh -c 'echo $$ >/sys/fs/cgroup/strata-test/busy/cgroup.procs; while :; do :; done' " +
        '>/dev/null 2>&1 </dev/null & echo $! >/tmp/cgbusy.pid',
    );
    try {
      const a = await waitFor('a fresh record with both containers', both);
      await new Promise((r) => setTimeout(r, 4000));
      const b = await waitFor('a fresh record with both containers', both);
      const cpu = (s: EntitySample) => c(s, 'cpu_usage_usec_total');
      const seconds = (b.guest.ts! - a.guest.ts!) / 1000;
      process.stderr.write(
        `guest containers over ${seconds.toFixed(1)} s: busy +${((cpu(b.busy) - cpu(a.busy)) / 1000).toFixed(0)} ms CPU, ` +
          `idle +${((cpu(b.idle) - cpu(a.idle)) / 1000).toFixed(0)} ms\n`,
      );
      expect(cpu(b.busy) - cpu(a.busy)).toBeGreaterThan(1_000_000);
      expect(cpu(b.idle) - cpu(a.idle)).toBeLessThan(50_000);
    } finally {
      await vm!.exec('kill $(cat /tmp/cgbusy.pid)');
    }
  });

  it('vm blockstats and guest diskstats both count the guest reading its disk', async () => {
    const g0 = await waitFor('a fresh guest sample', byLayer('guest'));
    const v0 = await waitFor('a vm sample', byLayer('vm'));
    const r = await vm!.exec('dd if=/dev/vda of=/dev/null bs=4k count=2000 iflag=direct');
    expect(r.code).toBe(0);
    const gd = (s: EntitySample, k: string) => s.devices!.vda!.counters[k]!;
    const vd = (s: EntitySample, k: string) => s.devices!.disk0!.counters[k]!;
    // The record built while dd ran may still be in flight: wait for one that has all its reads.
    const g1 = await waitFor('guest diskstats with the 2000 reads', (s) => {
      const g = byLayer('guest')(s);
      return g && gd(g, 'reads_completed_total') - gd(g0, 'reads_completed_total') >= 2000 ? g : undefined;
    });
    const v1 = await waitFor('QEMU blockstats with the 2000 reads', (s) => {
      const v = byLayer('vm')(s);
      return v && vd(v, 'reads_completed_total') - vd(v0, 'reads_completed_total') >= 2000 ? v : undefined;
    });
    const guestOps = gd(g1, 'reads_completed_total') - gd(g0, 'reads_completed_total');
    const qemuOps = vd(v1, 'reads_completed_total') - vd(v0, 'reads_completed_total');
    expect(guestOps).toBeGreaterThanOrEqual(2000);
    expect(qemuOps).toBeGreaterThanOrEqual(2000);
    expect(vd(v1, 'read_bytes_total') - vd(v0, 'read_bytes_total')).toBeGreaterThanOrEqual(2000 * 4096);
    const guestUs = ((gd(g1, 'read_time_ms_total') - gd(g0, 'read_time_ms_total')) * 1000) / guestOps;
    const qemuUs = (vd(v1, 'read_time_ns_total') - vd(v0, 'read_time_ns_total')) / 1000 / qemuOps;
    process.stderr.write(
      `direct 4K reads: guest-observed ${guestUs.toFixed(1)} µs/op (${guestOps} ops), ` +
        `QEMU-observed ${qemuUs.toFixed(1)} µs/op (${qemuOps} ops): virtualization adds ${(guestUs - qemuUs).toFixed(1)} µs/op\n`,
    );
    expect(qemuUs).toBeGreaterThan(0);
    // The guest's time per op contains QEMU's: the layer can only add latency.
    expect(guestUs).toBeGreaterThan(qemuUs);
  });

  it('the tap at the host and eth0 in the guest count the same packets', async () => {
    await execFileP('ip', ['addr', 'add', `${NET}.1/30`, 'dev', TAP]);
    await execFileP('ip', ['link', 'set', TAP, 'up']);
    const up = await vm!.exec(
      `ip addr add ${NET}.2/30 dev eth0 && ip link set eth0 up && ping -c 3 -w 10 ${NET}.1`,
    );
    expect(up.code).toBe(0);
    const g0 = await waitFor('a fresh guest sample', byLayer('guest'));
    const v0 = await waitFor('a vm sample with the tap', (s) => {
      const v = byLayer('vm')(s);
      return v?.interfaces?.[TAP] ? v : undefined;
    });
    const ping = await vm!.exec(`ping -c 40 -i 0.05 -q ${NET}.1`);
    expect(ping.output).toMatch(/40 packets transmitted, 40 packets received/);
    const tx = (s: EntitySample) => s.interfaces!.eth0!.counters.tx_packets_total!;
    const g1 = await waitFor('guest eth0 with the pings', (s) => {
      const g = byLayer('guest')(s);
      return g && tx(g) - tx(g0) >= 40 ? g : undefined;
    });
    const v1 = await waitFor('a vm sample', byLayer('vm'));
    const tapRx = (s: EntitySample) => s.interfaces![TAP]!.counters.rx_packets_total!;
    const tapTx = (s: EntitySample) => s.interfaces![TAP]!.counters.tx_packets_total!;
    // The tap's rx is what the guest sent; its tx what the host sent to the guest.
    expect(tapRx(v1) - tapRx(v0)).toBeGreaterThanOrEqual(40);
    expect(tapTx(v1) - tapTx(v0)).toBeGreaterThanOrEqual(40);
    expect(Math.abs(tapRx(v1) - tapRx(v0) - (tx(g1) - tx(g0)))).toBeLessThanOrEqual(4);
  });

  it('reaches `strata agent --once` output through the collector registry, vm and guest parented', async () => {
    // The collectors of this file hold the VM's single QMP and agent-socket client slots: free them.
    await guestc.shutdown();
    await vmc.shutdown();
    const config = path.join(dir, 'agent.yaml');
    await fs.writeFile(
      config,
      `agent:\n  collectors:\n    vm:\n      qmpSockets: ["${path.join(dir, 'qmp', '*.sock')}"]\n    guest: {}\n`,
    );
    const { stdout } = await execFileP(
      process.execPath,
      [
        'bin/strata.js',
        'agent',
        '--once',
        '--output',
        'ndjson',
        '--config',
        config,
        '--node-id',
        NODE,
        '--collectors',
        'vm,guest',
      ],
      { timeout: 60_000 },
    );
    const msg = JSON.parse(stdout.trim().split('\n').pop()!);
    const samples = (msg.samples as EntitySample[]).map((x) => EntitySample.parse(x));
    const v = samples.find((x) => x.entity.layer === 'vm');
    const g = samples.find((x) => x.entity.layer === 'guest');
    expect(v?.entity).toMatchObject({ id: UUID, parent: { layer: 'host', id: NODE } });
    expect(g?.entity).toMatchObject({ id: `${UUID}:guest`, parent: { layer: 'vm', id: UUID } });
    expect(g!.counters.cpu_user_usec_total).toBeGreaterThan(0);
    const nested = samples.filter((x) => x.entity.layer === 'container');
    expect(nested.map((x) => [x.entity.id, x.entity.parent])).toEqual([
      [`${UUID}:guest:/strata-test/busy`, { layer: 'guest', id: `${UUID}:guest` }],
      [`${UUID}:guest:/strata-test/idle`, { layer: 'guest', id: `${UUID}:guest` }],
    ]);
    // Back to this file's collectors for the remaining test.
    const directory = new VmDirectory();
    vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'qmp', '*.sock')] }), {
      nodeId: NODE,
      directory,
    });
    guestc = new GuestCollector(parseGuestConfig({}), { directory });
    await vmc.start();
    await guestc.start();
  });

  it('does not re-publish a stale record after the guest agent stops', async () => {
    await waitFor('a fresh guest sample', byLayer('guest'));
    await vm!.exec('pkill -f strata-guest-agent; true');
    // Records already in flight (virtio queue, QEMU's chardev, the socket) may still arrive, later
    // on a loaded machine: wait for the first tick without a guest sample. A collector that
    // re-published its last record would never give one, and time out here.
    await waitFor('a tick without a guest sample', (s) =>
      s.some((x) => x.entity.layer === 'guest') ? undefined : true,
    );
    const staleTicks = async () =>
      (await registry.getSingleMetric('strata_guest_stale_ticks_total')!.get()).values[0]?.value ?? 0;
    const stale0 = await staleTicks();
    const later = [await tick(), await tick()].flat();
    expect(later.filter((s) => s.entity.layer === 'guest')).toEqual([]);
    expect((await staleTicks()) - stale0).toBe(2);
    expect(later.some((s) => s.entity.layer === 'vm')).toBe(true);
  });
});
