// Captures real /proc/PID/cgroup files from the test VM's pure cgroup v2 guest, for the vm
// collector's processCgroupPath (collectors/vm/parsers.ts):
//   npx tsx stack/qemu/capture-proc-cgroup.ts
// Boots the TCG test VM with the busy loop in /strata-test/busy (strata.cgbusy=1) and writes
//   testdata/vm/proc-cgroup/guest-v2     the busy loop's /proc/PID/cgroup
// (The guest's busybox has no `unshare -C`: the view from another cgroup namespace is captured on
// the stack's Docker engine instead, with the other Docker files: testdata/vm/README.md.)
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestVm } from '../qemu.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = path.join(root, 'testdata', 'vm', 'proc-cgroup');
const work = await fs.mkdtemp('/tmp/strata-capture-proc-cgroup-');
const vm = await startTestVm({
  memoryMb: 192,
  qmpSocket: path.join(work, 'qmp.sock'),
  agentSocket: path.join(work, 'agent.sock'),
  name: 'strata-proc-cgroup',
  uuid: '5a3c3e2e-1b7e-4a53-9a33-2c0de0a1b003',
  workDir: work,
  cgroupBusyLoop: true,
});
try {
  const run = async (cmd: string) => {
    const { code, output } = await vm.exec(cmd);
    if (code !== 0) throw new Error(`guest command failed (${code}): ${cmd}\n${output.slice(0, 500)}`);
    return output;
  };
  const pid = (await run('head -n 1 /sys/fs/cgroup/strata-test/busy/cgroup.procs')).trim();
  if (!/^\d+$/.test(pid)) throw new Error(`no process in /strata-test/busy: ${pid}`);
  const own = await run(`cat /proc/${pid}/cgroup`);
  await fs.mkdir(out, { recursive: true });
  await fs.writeFile(path.join(out, 'guest-v2'), own);
  console.log(`pid ${pid}:\n${own}`);
} finally {
  await vm.stop();
  await fs.rm(work, { recursive: true, force: true });
}
