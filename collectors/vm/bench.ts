// Cost of the vm + guest collectors per tick (not a test: prints figures).
//   npx tsx collectors/vm/bench.ts [vms=1] [ticks=30]
// Boots `vms` TCG test VMs, runs both collectors at 1 s ticks, and reports the agent-side CPU time
// (process.cpuUsage over the whole run, so the socket reads between ticks count too) per tick and
// per entity-sample, and the RSS.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestVm, type TestVm } from '../../stack/qemu.ts';
import { GuestCollector, parseGuestConfig } from '../guest/index.ts';
import type { Accumulator } from '../types.ts';
import { parseVmConfig, VmCollector, VmDirectory } from './index.ts';

const nVms = Number(process.argv[2] ?? 1);
const ticks = Number(process.argv[3] ?? 30);
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-vmbench-'));
const vms: TestVm[] = [];
try {
  for (let i = 0; i < nVms; i++) {
    vms.push(
      await startTestVm({
        memoryMb: 128,
        name: `bench-${i}`,
        qmpSocket: path.join(dir, 'qmp', `bench-${i}.sock`),
        agentSocket: path.join(dir, `agent-${i}.sock`),
        workDir: path.join(dir, `vm-${i}`),
      }),
    );
  }
  const directory = new VmDirectory();
  const vmc = new VmCollector(parseVmConfig({ qmp_sockets: [path.join(dir, 'qmp', '*.sock')] }), {
    nodeId: 'bench',
    directory,
  });
  const gc = new GuestCollector(parseGuestConfig({}), { directory });
  await vmc.start();
  await gc.start();
  let samples = 0;
  let errors = 0;
  const acc: Accumulator = { add: () => samples++, error: () => errors++ };
  // Warm up (JIT, first connections), then measure.
  for (let i = 0; i < 3; i++) {
    await vmc.gather(acc);
    await gc.gather(acc);
    await new Promise((r) => setTimeout(r, 1000));
  }
  samples = 0;
  errors = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ticks; i++) {
    const t = Date.now();
    await vmc.gather(acc);
    await gc.gather(acc);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t))));
  }
  const cpu = process.cpuUsage(cpu0);
  const usec = cpu.user + cpu.system;
  console.log(
    JSON.stringify({
      vms: nVms,
      ticks,
      entity_samples: samples,
      collector_errors: errors,
      cpu_usec_per_tick: Math.round(usec / ticks),
      cpu_usec_per_entity_sample: Math.round(usec / samples),
      rss_mb: Math.round(process.memoryUsage().rss / 1024 / 1024),
    }),
  );
  await gc.shutdown();
  await vmc.shutdown();
} finally {
  for (const vm of vms) await vm.stop();
  await fs.rm(dir, { recursive: true, force: true });
}
