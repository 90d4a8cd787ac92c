// Captures a real pure cgroup v2 tree, and the in-guest agent's records of the guest's containers,
// from the test VM (its /init mounts cgroup2 with cpu, memory, io and pids enabled):
//   npx tsx stack/qemu/capture-cgroup-v2.ts
// Boots the TCG test VM with the busy loop in /strata-test/busy (strata.cgbusy=1; /strata-test/idle
// holds a sleeping process), adds /strata-capture with a worker doing direct 4 KiB writes to
// /dev/vda and CPU work (like testdata/capture.sh on the host), then writes
//   testdata/cgroup/v2-tcg-dd/step{0,1}/   1 s apart, a mirror rooted like the host (as
//       testdata/capture.sh): proc/self/mountinfo, proc/<pid>/net/dev (first pid of each cgroup),
//       sys/dev/block/*/uevent, sys/fs/cgroup/{strata-capture,strata-test,strata-test/busy,
//       strata-test/idle}/* (every readable file)
//   testdata/guest/containers.stream       the raw virtio-serial bytes of the agent: 5 records, from
//       the first that lists /strata-capture (the agent rescans every 5 records)
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestVm, type TestVm } from '../qemu.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CASE = process.env.CGCASE ?? 'v2-tcg-dd';
const cgroupOut = path.join(root, 'testdata', 'cgroup', CASE);
const guestOut = path.join(root, 'testdata', 'guest', 'containers.stream');
const work = await fs.mkdtemp('/tmp/strata-capture-v2-');
const CGROUPS = ['strata-capture', 'strata-test', 'strata-test/busy', 'strata-test/idle'];

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

/** Runs a one-line guest command that prints "=== <path> <bytes>\n<bytes>" per file; returns path → contents. */
async function readGuestFiles(vm: TestVm, globs: string): Promise<Map<string, string>> {
  const cmd =
    `for f in ${globs}; do [ -f "$f" ] || continue; ` +
    'if cat "$f" >/tmp/cap.one 2>/dev/null; then echo "=== $f $(wc -c </tmp/cap.one)"; cat /tmp/cap.one; fi; done';
  const { code, output } = await vm.exec(cmd);
  if (code !== 0) throw new Error(`capture command failed (${code}): ${output.slice(0, 500)}`);
  const buf = Buffer.from(output, 'utf8');
  const files = new Map<string, string>();
  let p = 0;
  while (p < buf.length) {
    const nl = buf.indexOf(10, p);
    const m = /^=== (\S+)\s+(\d+)\s*$/.exec(buf.subarray(p, nl).toString('utf8'));
    if (!m) throw new Error(`unexpected capture output at ${p}: ${buf.subarray(p, p + 80).toString()}`);
    const len = Number(m[2]);
    files.set(m[1]!, buf.subarray(nl + 1, nl + 1 + len).toString('utf8'));
    p = nl + 1 + len;
  }
  return files;
}

async function snapshot(vm: TestVm, dest: string): Promise<void> {
  // One guest command for the cgroup files, so the step is as close to one moment as the guest allows.
  const cg = await readGuestFiles(vm, CGROUPS.map((c) => `/sys/fs/cgroup/${c}/*`).join(' '));
  const other = await readGuestFiles(vm, '/proc/self/mountinfo /sys/dev/block/*/uevent');
  const pids = new Set<string>();
  for (const c of CGROUPS) {
    const first = cg.get(`/sys/fs/cgroup/${c}/cgroup.procs`)?.split('\n')[0]?.trim();
    if (first) pids.add(first);
  }
  const net = pids.size
    ? await readGuestFiles(vm, [...pids].map((p) => `/proc/${p}/net/dev`).join(' '))
    : new Map<string, string>();
  for (const [p, text] of [...cg, ...other, ...net]) {
    const out = path.join(dest, p.replace(/^\/proc\/self\//, '/proc/self/'));
    await fs.mkdir(path.dirname(out), { recursive: true });
    await fs.writeFile(out, text);
  }
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
  const worker =
    "mkdir -p /sys/fs/cgroup/strata-capture && sh -c 'echo $$ >/sys/fs/cgroup/strata-capture/cgroup.procs; " +
    'while :; do dd if=/dev/zero of=/dev/vda bs=4k count=200 oflag=direct 2>/dev/null; ' +
    "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done' >/dev/null 2>&1 </dev/null &";
  const w = await vm.exec(worker);
  if (w.code !== 0) throw new Error(`worker: ${w.output}`);
  // The agent looks for new cgroups every 5 records (STRATA_CGROUP_RESCAN): keep the records from
  // the first one that lists the worker's cgroup, 5 of them.
  const found = (text: string) =>
    text.split(/(?=STRATA-GUEST )/).filter((r) => /\n\/strata-capture\n/.test(r));
  for (let i = 0; i < 300 && found(stream.text()).length < 5; i++) {
    if (i === 20) {
      await fs.rm(cgroupOut, { recursive: true, force: true });
      await snapshot(vm, path.join(cgroupOut, 'step0'));
      await new Promise((r) => setTimeout(r, 1000));
      await snapshot(vm, path.join(cgroupOut, 'step1'));
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
