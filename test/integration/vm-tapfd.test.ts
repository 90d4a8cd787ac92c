// A tap handed to QEMU as a file descriptor, the way libvirt does it (-netdev {"type":"tap","fd":"N"},
// no ifname on the command line): the vm collector must still attribute it to the VM, from the
// kernel's side (/proc/PID/fd → /dev/net/tun, /proc/PID/fdinfo/N `iff:`). Real QEMU (TCG test VM)
// started through a python3 wrapper that opens the tap and execs QEMU (stack/qemu.ts `tapFd`).
// Needs what test/integration/vm.test.ts needs, plus python3; root (CAP_NET_ADMIN) for the tap.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Accumulator } from '../../collectors/types.ts';
import { parseVmConfig, VmCollector, VmDirectory } from '../../collectors/vm/index.ts';
import { parseQemuCmdline } from '../../collectors/vm/parsers.ts';
import { tunFdTaps } from '../../collectors/vm/tapfds.ts';
import { registry } from '../../lib/metrics.ts';
import { EntitySample } from '../../schemas/sample.ts';
import { startTestVm, type TestVm } from '../../stack/qemu.ts';

const execFileP = promisify(execFile);

const UUID = '5c0ffee0-1d2e-4f3a-9b8c-7d6e5f4a3b2c';
const NODE = 'vm-tapfd-node';
const TAP = `stratafd${process.pid % 100_000}`;
const NET = `10.204.${process.pid % 250}`;

let vm: TestVm | undefined;
let dir: string;
let vmc: VmCollector | undefined;
const errors: string[] = [];

async function vmSample(): Promise<EntitySample | undefined> {
  const out: EntitySample[] = [];
  const acc: Accumulator = {
    add: (s) => out.push(EntitySample.parse(s)),
    error: (_source, key) => {
      if (errors.length < 200) errors.push(key);
    },
  };
  await vmc!.gather(acc);
  return out.find((s) => s.entity.layer === 'vm');
}

async function waitFor<T>(what: string, pick: (s: EntitySample) => T | undefined, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await vmSample();
    const got = s && pick(s);
    if (got !== undefined) return got;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; collector errors: ${errors.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
const tapCounter = (s: EntitySample, k: string) => s.interfaces?.[TAP]?.counters[k] ?? Number.NaN;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-vmtapfd-'));
  vm = await startTestVm({
    memoryMb: 160,
    cpus: 1,
    name: 'strata-tapfd',
    uuid: UUID,
    qmpSocket: path.join(dir, 'qmp', 'strata-tapfd.sock'),
    agentSocket: path.join(dir, 'agent.sock'),
    workDir: dir,
    tap: TAP,
    tapFd: true,
  });
  process.stderr.write(`tap-fd test VM pid ${vm.pid} (${vm.accel}) ready in ${vm.bootMs} ms\n`);
  vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'qmp', '*.sock')] }), {
    nodeId: NODE,
    directory: new VmDirectory(),
  });
  await vmc.start();
}, 300_000);

afterAll(async () => {
  await vmc?.shutdown();
  await vm?.stop();
  // The tap is not persistent (it goes with QEMU's fd); delete it anyway if something kept it.
  await execFileP('ip', ['link', 'del', TAP]).catch(() => {});
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('vm collector: a tap passed to QEMU as an fd (libvirt style)', () => {
  it('QEMU runs with the tap as fd only: no ifname on its command line, the fd on /dev/net/tun', async () => {
    const cmdline = await fs.readFile(`/proc/${vm!.pid}/cmdline`, 'latin1');
    expect(cmdline).toMatch(/\{"type":"tap","id":"net0","fd":"\d+"\}/);
    expect(cmdline).not.toContain(TAP);
    expect(parseQemuCmdline(cmdline).taps).toEqual([]);
    const scan = await tunFdTaps('/proc', vm!.pid);
    expect(scan.taps).toEqual([TAP]);
    expect(scan.tunFds).toBe(1);
    // What the scan costs (once per PID lookup, not per tick): one readdir + one readlink per fd.
    const runs = 20;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) await tunFdTaps('/proc', vm!.pid);
    const us = Number(process.hrtime.bigint() - t0) / 1000 / runs;
    process.stderr.write(`tunFdTaps: ${scan.fds} fds, ${scan.tunFds} tun fd, ${us.toFixed(0)} us per scan\n`);
  });

  it('attributes the tap to the vm entity with its counters, which grow with traffic', async () => {
    const v0 = await waitFor('a vm sample with the tap', (s) => (s.interfaces?.[TAP] ? s : undefined));
    expect(v0.entity).toMatchObject({ layer: 'vm', id: UUID, parent: { layer: 'host', id: NODE } });
    expect(Object.keys(v0.interfaces!)).toEqual([TAP]);
    for (const k of ['rx_packets_total', 'tx_packets_total', 'rx_bytes_total', 'tx_bytes_total']) {
      expect(tapCounter(v0, k)).toBeGreaterThanOrEqual(0);
    }
    // The wrapper brought the tap up; give it an address and let the guest ping it over eth0.
    await execFileP('ip', ['addr', 'add', `${NET}.1/30`, 'dev', TAP]);
    const ping = await vm!.exec(
      `ip addr add ${NET}.2/30 dev eth0 && ip link set eth0 up && ping -c 20 -i 0.1 -w 20 -q ${NET}.1`,
    );
    expect(ping.output).toMatch(/20 packets transmitted, 20 packets received/);
    // The tap's rx is what the guest sent (pings + ARP), its tx what the host sent back.
    const v1 = await waitFor('tap counters with the pings', (s) =>
      tapCounter(s, 'rx_packets_total') - tapCounter(v0, 'rx_packets_total') >= 20 ? s : undefined,
    );
    expect(tapCounter(v1, 'tx_packets_total') - tapCounter(v0, 'tx_packets_total')).toBeGreaterThanOrEqual(
      20,
    );
    expect(tapCounter(v1, 'rx_bytes_total') - tapCounter(v0, 'rx_bytes_total')).toBeGreaterThanOrEqual(
      20 * 98,
    );
  });

  it('falls back to command-line names when /proc/PID/fd cannot be read, counted', async () => {
    // A HOST_PROC mirror of the QEMU process without its fd directory (as under hidepid or for a
    // non-root agent): the VM is still published, without the tap, and the failure is counted.
    await vmc!.shutdown(); // frees the VM's single QMP client slot
    const mirror = path.join(dir, 'proc-mirror');
    await fs.mkdir(path.join(mirror, String(vm!.pid)), { recursive: true });
    await fs.mkdir(path.join(mirror, '1', 'net'), { recursive: true });
    for (const f of ['cmdline', 'stat', 'status']) {
      await fs.symlink(`/proc/${vm!.pid}/${f}`, path.join(mirror, String(vm!.pid), f));
    }
    await fs.symlink('/proc/1/net/dev', path.join(mirror, '1', 'net', 'dev'));
    const scanErrors = async () =>
      (await registry.getSingleMetric('strata_vm_tap_fd_scan_errors_total')!.get()).values.find(
        (x) => x.labels.code === 'ENOENT',
      )?.value ?? 0;
    const before = await scanErrors();
    vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'qmp', '*.sock')] }), {
      nodeId: NODE,
      directory: new VmDirectory(),
      paths: { proc: mirror, sys: '/sys', cgroup: '/sys/fs/cgroup' },
    });
    await vmc.start();
    const v = await waitFor('a vm sample with hypervisor CPU', (s) =>
      s.counters.cpu_usage_usec_total !== undefined ? s : undefined,
    );
    expect(v.entity.id).toBe(UUID);
    expect(v.interfaces).toBeUndefined();
    expect((await scanErrors()) - before).toBe(1);
  });

  it('`strata agent --once --output ndjson` attributes the tap too', async () => {
    // This file's collector holds the VM's single QMP client slot: free it.
    await vmc!.shutdown();
    vmc = undefined;
    const config = path.join(dir, 'agent.yaml');
    await fs.writeFile(
      config,
      `agent:\n  collectors:\n    vm:\n      qmpSockets: ["${path.join(dir, 'qmp', '*.sock')}"]\n`,
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
        'vm',
      ],
      { timeout: 60_000 },
    );
    const msg = JSON.parse(stdout.trim().split('\n').pop()!);
    const v = (msg.samples as EntitySample[])
      .map((x) => EntitySample.parse(x))
      .find((x) => x.entity.layer === 'vm');
    expect(v?.entity.id).toBe(UUID);
    expect(Object.keys(v?.interfaces ?? {})).toEqual([TAP]);
    expect(tapCounter(v!, 'rx_packets_total')).toBeGreaterThanOrEqual(20);
  });
});
