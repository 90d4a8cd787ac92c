// Captures the files and replies the memory-layer unit tests parse (test/unit/memory-layer.test.ts):
// /sys/kernel/mm/ksm/* before and after KSM merged two test VMs booted from the same kernel and
// initramfs, and one VM's /proc/PID/smaps_rollup, /proc/PID/ksm_stat and QMP query-balloon /
// query-memory-size-summary replies. Root: it switches KSM on and back to its previous state.
//   npx tsx testdata/ksm/capture.ts
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { QmpClient } from '../../collectors/vm/qmp.ts';
import { startTestVm, type TestVm } from '../../stack/qemu.ts';
import { ksmOn, restoreKsm } from '../../test/integration/ksm.helpers.ts';

const OUT = import.meta.dirname;
const KSM = '/sys/kernel/mm/ksm';

function snapshot(dir: string): void {
  for (const f of readdirSync(KSM)) writeFileSync(path.join(dir, f), readFileSync(path.join(KSM, f)));
}

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-ksmcap-'));
const vms: TestVm[] = [];
// Before: this host as found (KSM stopped, nothing merged, on the machine of the capture).
await fs.mkdir(path.join(OUT, 'sys-before'), { recursive: true });
snapshot(path.join(OUT, 'sys-before'));
const saved = ksmOn();
try {
  for (const i of [1, 2]) {
    vms.push(
      await startTestVm({
        name: `ksm${i}`,
        memoryMb: 192,
        qmpSocket: path.join(work, `q${i}.sock`),
        agentSocket: path.join(work, `a${i}.sock`),
        workDir: path.join(work, `vm${i}`),
      }),
    );
  }
  const sharing = () => Number(readFileSync(`${KSM}/pages_sharing`, 'utf8'));
  const deadline = Date.now() + 90_000;
  while (sharing() < 2000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
  await fs.mkdir(path.join(OUT, 'sys-merged'), { recursive: true });
  snapshot(path.join(OUT, 'sys-merged'));
  const pid = vms[0]!.pid;
  writeFileSync(path.join(OUT, 'smaps_rollup'), readFileSync(`/proc/${pid}/smaps_rollup`));
  writeFileSync(path.join(OUT, 'ksm_stat'), readFileSync(`/proc/${pid}/ksm_stat`));
  const ksmd = readdirSync('/proc').find(
    (d) => /^\d+$/.test(d) && readFileSync(`/proc/${d}/comm`, 'utf8') === 'ksmd\n',
  );
  writeFileSync(path.join(OUT, 'ksmd-stat'), readFileSync(`/proc/${ksmd}/stat`));
  const q = new QmpClient({ socketPath: path.join(work, 'q1.sock'), commandTimeoutMs: 2000 });
  await q.connect();
  const replies = {
    'query-balloon': await q.execute('query-balloon'),
    'query-memory-size-summary': await q.execute('query-memory-size-summary'),
  };
  q.close();
  writeFileSync(path.join(OUT, 'qmp-replies.json'), `${JSON.stringify(replies, null, 2)}\n`);
  console.log('pages_sharing', sharing(), 'replies', JSON.stringify(replies));
} finally {
  for (const vm of vms) await vm.stop();
  restoreKsm(saved);
  await fs.rm(work, { recursive: true, force: true });
}
