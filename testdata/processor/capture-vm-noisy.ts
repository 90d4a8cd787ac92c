// Records a real noisy-neighbour tick sequence with a VM tenant: the stack's TCG test VM (its raw
// disk image in /var/tmp, on the same host disk as the Docker engine's data root) and a container
// on the stack's Docker engine, sampled by the real agent (host, cgroup and vm collectors, 1 s
// ticks, NDJSON). Only the host, the VM and the container are kept (other engineers' containers
// run on the same engine). QEMU runs with its default cache=writeback: a guest write lands in the
// host page cache; only a guest flush (fsync) or the host's writeback puts it on the host disk.
// MODE (env):
// - vm-antagonist-cached: container = victim (one 4 KiB O_DIRECT write every 50 ms, all along);
//   from T+WARM for HEAVY s the guest writes 1 MiB O_DIRECT blocks from 4 loops, never flushing;
// - vm-antagonist (default): the same, each loop flushing (dd conv=fsync) after 16 MiB;
// - vm-victim: the guest is the victim (one 4 KiB O_DIRECT write + fsync every 50 ms, all along);
//   from T+WARM for HEAVY s the container writes 1 MiB O_DIRECT blocks from 8 loops.
// Usage (repo root, root, stack up):
//   MODE=... DOCKER_HOST=... npx tsx testdata/processor/capture-vm-noisy.ts OUT.ndjson [WARM HEAVY COOL]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { dockerRequest } from '../../stack/index.ts';
import { startTestVm } from '../../stack/qemu.ts';

const [out, warmS = '40', heavyS = '30', coolS = '35'] = process.argv.slice(2);
if (!out) throw new Error('usage: capture-vm-noisy.ts OUT.ndjson [WARM HEAVY COOL]');
const socketPath = (process.env.DOCKER_HOST ?? '').replace(/^unix:\/\//, '');
if (!socketPath) throw new Error('set DOCKER_HOST');
const image = process.env.STRATA_DOCKER_IMAGE ?? 'strata/busybox';
const MODE = process.env.MODE ?? 'vm-antagonist';
const VICTIM = MODE === 'vm-victim' ? 'nnvm-antagonist' : 'nnvm-victim'; // the container's name
const LIGHT =
  'while :; do dd if=/dev/zero of=/v bs=4k count=1 oflag=direct conv=notrunc 2>/dev/null; sleep 0.05; done';
const HEAVY =
  'dd if=/dev/zero of=/a bs=1M count=256 2>/dev/null; for i in 1 2 3 4 5 6 7 8; do (while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & done; wait';
const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

fs.mkdirSync('/var/tmp', { recursive: true });
const dir = fs.mkdtempSync(path.join('/var/tmp', 'strata-capvmnn-'));
const disk = `/dev/${fs.readFileSync(`/sys/dev/block/${major(fs.statSync(dir).dev)}/uevent`, 'utf8').match(/DEVNAME=(\S+)/)?.[1]}`;
function major(dev: number): string {
  return `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((Math.floor(dev / 4096) & 0xfff00) >>> 0)}`;
}
await dockerRequest(socketPath, 'DELETE', `/containers/${VICTIM}?force=true`).catch(() => {});
const vm = await startTestVm({
  memoryMb: 192,
  cpus: 1,
  name: 'nnvm',
  uuid: '6b2f3e4d-5c6b-4a7a-9988-776655443322',
  qmpSocket: path.join(dir, 'qmp', 'nnvm.sock'),
  agentSocket: path.join(dir, 'agent.sock'),
  workDir: dir,
  diskMb: 512,
});
const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${VICTIM}`, {
  Image: image,
  Cmd: ['sh', '-c', MODE === 'vm-victim' ? 'sleep 100000' : LIGHT],
  Labels: { 'strata.test': 'noisy-neighbor-vm' },
  // Kernels ≥ 6.9 account v1 blkio.throttle.* only once a throttle rule exists on the queue.
  HostConfig: { BlkioDeviceWriteIOps: [{ Path: disk, Rate: 1_000_000_000 }] },
});
if (created.status !== 201) throw new Error(created.body);
await dockerRequest(socketPath, 'POST', `/containers/${VICTIM}/start`);
if (MODE === 'vm-victim') {
  await vm.exec(
    '(while :; do dd if=/dev/zero of=/dev/vda bs=4k count=1 oflag=direct conv=fsync 2>/dev/null; sleep 0.05; done) & echo $! > /tmp/light.pid',
  );
}
const cfg = path.join(dir, 'agent.yaml');
fs.writeFileSync(cfg, `agent:\n  collectors:\n    vm:\n      qmpSockets: ["${path.join(dir, 'qmp', '*.sock')}"]\n`);
const agent = spawn(
  process.execPath,
  ['bin/strata.js', 'agent', '--config', cfg, '--output', 'ndjson', '--interval', '1s', '--collectors', 'host,cgroup,vm'],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, STRATA_LOG_LEVEL: 'warn' } },
);
const lines: string[] = [];
readline.createInterface({ input: agent.stdout! }).on('line', (l) => {
  const m = JSON.parse(l) as { samples: { entity: { layer: string; name: string } }[] };
  m.samples = m.samples.filter((s) => s.entity.layer !== 'container' || s.entity.name === VICTIM);
  lines.push(JSON.stringify(m));
});
try {
  await sleep(Number(warmS));
  if (MODE === 'vm-victim') {
    const r = await dockerRequest(socketPath, 'POST', `/containers/${VICTIM}/exec`, {
      Cmd: ['sh', '-c', HEAVY],
    });
    const execId = (JSON.parse(r.body) as { Id: string }).Id;
    await dockerRequest(socketPath, 'POST', `/exec/${execId}/start`, { Detach: true });
  } else {
    const fsync = MODE === 'vm-antagonist' ? ' conv=fsync' : '';
    await vm.exec(
      `for i in 1 2 3 4; do (while :; do dd if=/dev/zero of=/dev/vda bs=1M count=16 seek=$((RANDOM % 496)) oflag=direct${fsync} 2>/dev/null; done) & echo $! >> /tmp/io.pids; done`,
      { timeoutMs: 120_000 },
    );
  }
  process.stderr.write(`antagonist started at tick ${lines.length}\n`);
  await sleep(Number(heavyS));
  if (MODE === 'vm-victim') {
    // The container's loops die with it; a new one keeps the entity for the cool-down.
    await dockerRequest(socketPath, 'POST', `/containers/${VICTIM}/restart?t=0`);
  } else {
    await vm.exec('kill $(cat /tmp/io.pids); killall dd 2>/dev/null; true').catch(() => {});
  }
  process.stderr.write(`antagonist stopped at tick ${lines.length}\n`);
  await sleep(Number(coolS));
} finally {
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  await dockerRequest(socketPath, 'DELETE', `/containers/${VICTIM}?force=true`).catch(() => {});
  await vm.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
fs.writeFileSync(out, `${lines.join('\n')}\n`);
process.stderr.write(`recorded ${lines.length} ticks into ${out} (host disk ${disk}, ${os.hostname()})\n`);
