// Cost of the vm + guest collectors per tick (not a test: prints figures).
//   npx tsx perf/collectors/vm.ts [vms=1] [ticks=30] [loops=500]
// Boots `vms` TCG test VMs, runs both collectors at 1 s ticks, and reports the agent-side CPU time
// (process.cpuUsage over the whole run, so the socket reads between ticks count too) per tick and
// per entity-sample, and the RSS. On a small loaded VM the kernel charges CPU time in whole
// scheduler ticks, so a second figure comes from `loops` back-to-back vm gathers (QMP round trips +
// /proc reads + parsing) and from decoding + parsing the captured guest stream many times.
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GuestFrameDecoder } from '../../collectors/guest/framing.ts';
import { GuestCollector, parseGuestConfig, procFilesOf } from '../../collectors/guest/index.ts';
import { procSampleFromFiles } from '../../collectors/procfs/parsers.ts';
import type { Accumulator } from '../../collectors/types.ts';
import { parseVmConfig, VmCollector, VmDirectory } from '../../collectors/vm/index.ts';
import { startTestVm, type TestVm } from '../../stack/qemu.ts';

const nVms = Number(process.argv[2] ?? 1);
const ticks = Number(process.argv[3] ?? 30);
const loops = Number(process.argv[4] ?? 500);
const cpuNow = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
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
  const vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'qmp', '*.sock')] }), {
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
  const tickSamples = samples;

  const n0 = samples;
  let t = cpuNow();
  for (let i = 0; i < loops; i++) await vmc.gather(acc);
  const vmUsecPerGather = (cpuNow() - t) / loops;
  const vmSamplesPerGather = (samples - n0) / loops;

  const stream = readFileSync(new URL('../../testdata/guest/busy.stream', import.meta.url));
  let records = 0;
  t = cpuNow();
  for (let i = 0; i < Math.max(1, loops); i++) {
    const d = new GuestFrameDecoder();
    for (let o = 0; o < stream.length; o += 4096) {
      for (const r of d.push(stream.subarray(o, o + 4096))) {
        procSampleFromFiles(procFilesOf(r));
        records++;
      }
    }
  }
  const guestUsecPerRecord = (cpuNow() - t) / records;
  console.log(
    JSON.stringify({
      vms: nVms,
      ticks,
      entity_samples: tickSamples,
      collector_errors: errors,
      cpu_usec_per_tick: Math.round(usec / ticks),
      cpu_usec_per_entity_sample: Math.round(usec / tickSamples),
      rss_mb: Math.round(process.memoryUsage().rss / 1024 / 1024),
      loop_vm_cpu_usec_per_vm_sample: Math.round(vmUsecPerGather / vmSamplesPerGather),
      loop_guest_decode_parse_usec_per_record: Math.round(guestUsecPerRecord),
    }),
  );
  await gc.shutdown();
  await vmc.shutdown();
} finally {
  for (const vm of vms) await vm.stop();
  await fs.rm(dir, { recursive: true, force: true });
}
