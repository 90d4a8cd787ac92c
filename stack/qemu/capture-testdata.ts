// Regenerates testdata/qmp and testdata/guest from a real test VM:
//   npx tsx stack/qemu/capture-testdata.ts
// Boots the TCG test VM, records the raw QMP wire lines of one session (greeting, replies,
// events), the hypervisor's /proc/PID files, and the raw virtio-serial byte stream of the
// in-guest agent while idle and while a busy loop and direct disk reads run inside the guest.
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestVm } from '../qemu.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const qmpDir = path.join(root, 'testdata', 'qmp');
const guestDir = path.join(root, 'testdata', 'guest');
const work = await fs.mkdtemp('/tmp/strata-capture-');

async function qmpTranscript(socketPath: string, commands: object[]): Promise<string> {
  const sock = net.createConnection(socketPath);
  sock.setEncoding('utf8');
  let data = '';
  sock.on('data', (d: string) => {
    data += d;
  });
  const waitFor = async (n: number) => {
    for (let i = 0; i < 200 && data.split('\n').filter(Boolean).length < n; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitFor(1);
  let expected = 1;
  for (const cmd of commands) {
    sock.write(`${JSON.stringify(cmd)}\n`);
    expected++;
    await waitFor(expected);
  }
  await new Promise((r) => setTimeout(r, 300));
  sock.destroy();
  return data;
}

async function captureStream(socketPath: string, ms: number): Promise<Buffer> {
  const sock = net.createConnection(socketPath);
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => setTimeout(r, ms));
  sock.destroy();
  return Buffer.concat(chunks);
}

const vm = await startTestVm({
  memoryMb: 192,
  qmpSocket: path.join(work, 'qmp.sock'),
  agentSocket: path.join(work, 'agent.sock'),
  name: 'strata-test',
  uuid: '5a3c3e2e-1b7e-4a53-9a33-2c0de0a1b001',
  workDir: work,
});
try {
  console.log(`booted in ${vm.bootMs} ms, pid ${vm.pid}`);
  await fs.mkdir(path.join(qmpDir, 'proc'), { recursive: true });
  await fs.mkdir(guestDir, { recursive: true });
  await fs.writeFile(path.join(guestDir, 'idle.stream'), await captureStream(vm.agentSocket, 3500));

  const session = [
    { execute: 'qmp_capabilities', id: 'c0' },
    { execute: 'query-version', id: 'c1' },
    { execute: 'query-name', id: 'c2' },
    { execute: 'query-uuid', id: 'c3' },
    { execute: 'query-kvm', id: 'c4' },
    { execute: 'query-cpus-fast', id: 'c5' },
    { execute: 'query-blockstats', id: 'c6' },
    { execute: 'qom-list', arguments: { path: '/machine/peripheral' }, id: 'c7' },
    {
      execute: 'qom-set',
      arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats-polling-interval', value: 1 },
      id: 'c8',
    },
    { execute: 'query-status', id: 'c9' },
    { execute: 'no-such-command', id: 'c10' },
  ];
  const t1 = await qmpTranscript(vm.qmpSocket, session);
  await fs.writeFile(path.join(qmpDir, 'session-idle.jsonl'), t1);
  await fs.writeFile(
    path.join(qmpDir, 'query-block.jsonl'),
    await qmpTranscript(vm.qmpSocket, [
      { execute: 'qmp_capabilities', id: 'c0' },
      { execute: 'query-block', id: 'c1' },
    ]),
  );

  // Busy loop + direct reads inside the guest, captured from both sides.
  const stream = captureStream(vm.agentSocket, 9000);
  await vm.exec('(while :; do :; done) & echo $! > /tmp/busy.pid');
  await new Promise((r) => setTimeout(r, 2000));
  console.log(await vm.exec('dd if=/dev/vda of=/dev/null bs=4k count=2000 iflag=direct'));
  await new Promise((r) => setTimeout(r, 2500));
  const t2 = await qmpTranscript(vm.qmpSocket, [
    { execute: 'qmp_capabilities', id: 'c0' },
    { execute: 'query-blockstats', id: 'c1' },
    {
      execute: 'qom-get',
      arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats' },
      id: 'c2',
    },
    { execute: 'query-cpus-fast', id: 'c3' },
  ]);
  await fs.writeFile(path.join(qmpDir, 'session-busy.jsonl'), t2);
  await fs.writeFile(path.join(guestDir, 'busy.stream'), await stream);
  await vm.exec('kill $(cat /tmp/busy.pid)');

  const pid = vm.pid;
  for (const f of ['stat', 'status', 'cmdline']) {
    await fs.writeFile(path.join(qmpDir, 'proc', f), await fs.readFile(`/proc/${pid}/${f}`));
  }
  const cpus = JSON.parse(t2.split('\n').find((l) => l.includes('"c3"'))!).return as {
    'thread-id': number;
  }[];
  for (const c of cpus) {
    const tid = c['thread-id'];
    await fs.mkdir(path.join(qmpDir, 'proc', 'task', String(tid)), { recursive: true });
    await fs.writeFile(
      path.join(qmpDir, 'proc', 'task', String(tid), 'stat'),
      await fs.readFile(`/proc/${pid}/task/${tid}/stat`),
    );
  }
  await fs.writeFile(
    path.join(qmpDir, 'proc', 'README'),
    `/proc/${pid} of the TCG test VM (qemu-system-x86_64), captured by stack/qemu/capture-testdata.ts\n`,
  );
  console.log('captured into', qmpDir, guestDir);
} finally {
  await vm.stop();
  await fs.rm(work, { recursive: true, force: true });
}
