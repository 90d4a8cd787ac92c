// Captures a real pure cgroup v2 tree, and the in-guest agent's records of the guest's containers,
// from the test VM (its /init mounts cgroup2 with cpu, memory, io and pids enabled):
//   npx tsx stack/qemu/capture-cgroup-v2.ts
// Boots the TCG test VM with the busy loop in /strata-test/busy (strata.cgbusy=1; /strata-test/idle
// holds a sleeping process), adds /strata-capture with a worker doing direct 4 KiB writes to
// /dev/vda and CPU work (like testdata/capture.sh on the host), then writes
//   testdata/cgroup/v2-tcg-dd/step{0,1}/   1 s apart, a mirror rooted like the host (as
//       testdata/capture.sh): proc/self/mountinfo, proc/<pid>/net/dev (first pid of each cgroup),
//       sys/dev/block/*/uevent, sys/fs/cgroup/{strata-capture,strata-test,strata-test/busy,
//       strata-test/idle}/* (every readable file; capture-cgroup.ts, shared with capture-cgroup-v1.ts)
//   testdata/guest/containers.stream       the raw virtio-serial bytes of the agent: 5 records, from
//       the first that lists /strata-capture (the agent rescans every 5 records)
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestVm } from '../qemu.ts';
import { snapshotSteps, startCaptureWorker } from './capture-cgroup.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CASE = process.env.CGCASE ?? 'v2-tcg-dd';
const cgroupOut = path.join(root, 'testdata', 'cgroup', CASE);
const guestOut = path.join(root, 'testdata', 'guest', 'containers.stream');
const work = await fs.mkdtemp('/tmp/strata-capture-v2-');

/** Reads the agent's port from now on (so the agent never blocks on it) until stop(). */
function captureStream(socketPath: string) {
  const sock = net.createConnection(socketPath);
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  return {
    text: () => Buffer.concat(chunks).toString('latin1'),
    stop: () => sock.destroy(),
  };
}

const vm = await startTestVm({
  memoryMb: 192,
  qmpSocket: path.join(work, 'qmp.sock'),
  agentSocket: path.join(work, 'agent.sock'),
  name: 'strata-cgv2',
  uuid: '5a3c3e2e-1b7e-4a53-9a33-2c0de0a1b002',
  workDir: work,
  cgroupBusyLoop: true,
});
try {
  console.log(`booted in ${vm.bootMs} ms, pid ${vm.pid}`);
  const stream = captureStream(vm.agentSocket);
  await startCaptureWorker(vm, ['/sys/fs/cgroup']);
  // The agent looks for new cgroups every 5 records (STRATA_CGROUP_RESCAN): keep the records from
  // the first one that lists the worker's cgroup, 5 of them.
  const found = (text: string) =>
    text.split(/(?=STRATA-GUEST )/).filter((r) => /\n\/strata-capture\n/.test(r));
  for (let i = 0; i < 300 && found(stream.text()).length < 5; i++) {
    if (i === 20) {
      await snapshotSteps(vm, cgroupOut, ['/sys/fs/cgroup']);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const records = found(stream.text());
  if (records.length < 5) throw new Error('the agent did not report /strata-capture in 30 s');
  await fs.mkdir(path.dirname(guestOut), { recursive: true });
  await fs.writeFile(guestOut, records.slice(0, 5).join(''), 'latin1');
  stream.stop();
  console.log('captured', cgroupOut, guestOut);
} finally {
  await vm.stop();
  await fs.rm(work, { recursive: true, force: true });
}
