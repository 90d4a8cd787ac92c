// Records a real vm + guest tick sequence for the overhead unit tests: boots the TCG test VM
// (stack/qemu.ts, 1 vCPU, 192 MiB), samples it every second with the real host, vm and guest
// collectors, and writes one SampleMessage per tick as NDJSON. Inside the guest: idle, then a CPU
// loop, then O_DIRECT 4 KiB reads of its disk (dd in a loop), then idle.
// Usage (repo root, root for the VM): npx tsx testdata/processor/capture-vm.ts OUT.ndjson [TICKS]
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GuestCollector, parseGuestConfig } from '../../collectors/guest/index.ts';
import { createHostCollector } from '../../collectors/host/index.ts';
import type { Accumulator } from '../../collectors/types.ts';
import { parseVmConfig, VmCollector, VmDirectory } from '../../collectors/vm/index.ts';
import type { EntitySample, SampleMessage } from '../../schemas/sample.ts';
import { startTestVm } from '../../stack/qemu.ts';

const out = process.argv[2];
const TICKS = Number(process.argv[3] ?? 40);
if (!out) throw new Error('usage: capture-vm.ts OUT.ndjson [TICKS]');
const NODE = 'capture-node';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-capvm-'));
const vm = await startTestVm({
  memoryMb: 192,
  cpus: 1,
  name: 'capvm',
  uuid: '5a1e2d3c-4b5a-4969-8877-665544332211',
  qmpSocket: path.join(dir, 'qmp', 'capvm.sock'),
  agentSocket: path.join(dir, 'agent.sock'),
  workDir: dir,
});
const directory = new VmDirectory();
const host = createHostCollector({}, { node: { id: NODE, hostname: NODE, labels: {} } });
const vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'qmp', '*.sock')] }), { nodeId: NODE, directory });
const guestc = new GuestCollector(parseGuestConfig({}), { directory });
await host.start?.();
await vmc.start();
await guestc.start();
const runId = randomUUID();
const lines: string[] = [];
const t0 = Math.ceil(Date.now() / 1000) * 1000;
try {
  for (let seq = 0; seq < TICKS; seq++) {
    const ts = t0 + seq * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, ts - Date.now())));
    if (seq === 8) await vm.exec('(while :; do :; done) & echo $! > /tmp/busy.pid');
    if (seq === 18) await vm.exec('kill $(cat /tmp/busy.pid)');
    if (seq === 20) await vm.exec('(while :; do dd if=/dev/vda of=/dev/null bs=4k count=500 iflag=direct 2>/dev/null; done) & echo $! > /tmp/io.pid');
    if (seq === 32) await vm.exec('kill $(cat /tmp/io.pid)');
    const samples: EntitySample[] = [];
    const acc: Accumulator = { add: (s) => samples.push(s), error: () => {} };
    await host.gather(acc);
    await vmc.gather(acc);
    await guestc.gather(acc);
    const msg: SampleMessage = {
      v: 1,
      node: { id: NODE, hostname: NODE, labels: {} },
      ts,
      interval_ms: 1000,
      seq,
      agent: { version: 'capture', run_id: runId },
      samples,
    };
    lines.push(JSON.stringify(msg));
  }
} finally {
  await guestc.shutdown();
  await vmc.shutdown();
  await host.shutdown?.();
  await vm.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
fs.writeFileSync(out, `${lines.join('\n')}\n`);
process.stderr.write(`recorded ${lines.length} ticks into ${out}\n`);
