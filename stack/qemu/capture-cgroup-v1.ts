// Captures a real pure cgroup v1 tree (no cgroup2 mount at all) from the test VM:
//   npx tsx stack/qemu/capture-cgroup-v1.ts
// Boots the TCG test VM with strata.cgv1=1 (its /init mounts a tmpfs on /sys/fs/cgroup and the v1
// hierarchies cpu,cpuacct, memory, blkio and pids, with cpu and cpuacct symlinks, Debian 9 / RHEL 7
// style) and strata.cgbusy=1 (a busy loop in /strata-test/busy; /strata-test/idle holds a sleeping
// process). Two cgroups get the same worker, direct 4 KiB writes to /dev/vda and CPU work
// (capture-cgroup.ts, shared with capture-cgroup-v2.ts):
//   /strata-capture         with a write limit on vda that never binds (1 GiB/s)
//   /strata-capture-norule  without any blkio.throttle rule
// because the 6.1 kernel only counts a v1 cgroup's blkio.throttle.io_serviced/io_service_bytes
// when the cgroup (or an ancestor) has a throttle rule on the device: without one they stay 0
// whatever the cgroup writes (docs/collectors.md). Then writes
//   testdata/cgroup/v1-tcg-dd/step{0,1}/   1 s apart, a mirror rooted like the host:
//       proc/self/mountinfo, proc/<pid>/net/dev (first pid of each cgroup), sys/dev/block/*/uevent,
//       sys/block/vda/stat, sys/fs/cgroup/{cpu,cpuacct,memory,blkio,pids}/<cgroup>/* (every
//       readable file of the cgroups above and /strata-test, /strata-test/busy, /strata-test/idle)
//       and the symlinks sys/fs/cgroup/{cpu,cpuacct}
// The in-guest agent sends no cgroups on v1 (it reads cgroup v2 only), so there is no guest stream.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestVm } from '../qemu.ts';
import {
  CAPTURE_CGROUP,
  CAPTURED_CGROUPS,
  guestHierarchies,
  snapshotSteps,
  startCaptureWorker,
} from './capture-cgroup.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CASE = process.env.CGCASE ?? 'v1-tcg-dd';
const cgroupOut = path.join(root, 'testdata', 'cgroup', CASE);
const work = await fs.mkdtemp('/tmp/strata-capture-v1-');
const NORULE = 'strata-capture-norule';
const WRITE_LIMIT = 1024 ** 3; // bytes/s: far above what the emulated disk does

const vm = await startTestVm({
  memoryMb: 192,
  qmpSocket: path.join(work, 'qmp.sock'),
  agentSocket: path.join(work, 'agent.sock'),
  name: 'strata-cgv1',
  uuid: '5a3c3e2e-1b7e-4a53-9a33-2c0de0a1b003',
  workDir: work,
  cgroupBusyLoop: true,
  cgroupV1: true,
});
try {
  console.log(`booted in ${vm.bootMs} ms, pid ${vm.pid}`);
  const kernel = await vm.exec('uname -r; cat /proc/cgroups');
  console.log(kernel.output);
  if ((await vm.exec('grep -q " - cgroup2 " /proc/self/mountinfo')).code === 0) {
    throw new Error('the guest has a cgroup2 mount: not a pure v1 boot');
  }
  const hierarchies = await guestHierarchies(vm, 'cgroup');
  console.log('v1 hierarchies:', hierarchies.join(' '));
  const blkio = hierarchies.find((h) => h.endsWith('/blkio'));
  if (!blkio) throw new Error('no blkio hierarchy');
  const rule = await vm.exec(
    `mkdir -p ${blkio}/${CAPTURE_CGROUP} && echo "$(cat /sys/block/vda/dev) ${WRITE_LIMIT}" ` +
      `>${blkio}/${CAPTURE_CGROUP}/blkio.throttle.write_bps_device`,
  );
  if (rule.code !== 0) throw new Error(`throttle rule: ${rule.output}`);
  await startCaptureWorker(vm, hierarchies);
  await startCaptureWorker(vm, hierarchies, NORULE);
  // Like capture-cgroup-v2.ts: let the workers run ≈ 2 s before the first step.
  await new Promise((r) => setTimeout(r, 2000));
  await snapshotSteps(vm, cgroupOut, hierarchies, {
    cgroups: [...CAPTURED_CGROUPS, NORULE],
    extraFiles: '/sys/block/vda/stat',
  });
  console.log('captured', cgroupOut);
} finally {
  await vm.stop();
  await fs.rm(work, { recursive: true, force: true });
}
