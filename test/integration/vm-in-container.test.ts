// A real QEMU (the stack's TCG test VM) moved into the cgroups of a real container on the stack's
// Docker engine, as KubeVirt runs QEMU in its virt-launcher pod: the vm collector labels the VM
// with the cgroup its hypervisor runs in, that label is the cgroup collector's cgroup_path of the
// container, and the processor's node totals count the hypervisor's CPU once, as the VM's.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { layoutFromMountinfo } from '../../collectors/cgroup/mounts.ts';
import { createHostCollector } from '../../collectors/host/index.ts';
import type { Collector } from '../../collectors/types.ts';
import { parseVmConfig, VmCollector, VmDirectory } from '../../collectors/vm/index.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { EntitySample, SampleMessage } from '../../schemas/sample.ts';
import { startTestVm, type TestVm } from '../../stack/qemu.ts';

const dockerHost = inject('dockerHost');
const image = inject('dockerImage');
const NODE = 'vm-in-container-node';
const NAME = `strata-launcher-${process.pid}`;
const docker = (...args: string[]) =>
  execFileSync('docker', ['-H', dockerHost, ...args], { encoding: 'utf8' }).trim();

let id = '';
let vm: TestVm | undefined;
let dir = '';
let collectors: Collector[] = [];

/** Writes pid into every hierarchy's copy of the cgroup that `like` (a pid) is in. */
async function moveIntoCgroupsOf(pid: number, like: number): Promise<string[]> {
  const layout = layoutFromMountinfo(await fs.readFile('/proc/self/mountinfo', 'utf8'));
  const moved: string[] = [];
  for (const line of (await fs.readFile(`/proc/${like}/cgroup`, 'utf8')).trim().split('\n')) {
    const [hid, ctrls, p] = line.split(':') as [string, string, string];
    const dirs =
      hid === '0' ? (layout.v2 ? [layout.v2] : []) : ctrls.split(',').flatMap((c) => layout.v1.get(c) ?? []);
    for (const d of new Set(dirs)) {
      await fs.writeFile(path.join(d, p, 'cgroup.procs'), String(pid));
      moved.push(path.join(d, p));
    }
  }
  return moved;
}

beforeAll(async () => {
  id = docker('run', '-d', '--name', NAME, image, 'sleep', '600');
  const containerPid = Number(docker('inspect', '-f', '{{.State.Pid}}', id));
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-vmcg-'));
  vm = await startTestVm({
    memoryMb: 128,
    cpus: 1,
    name: 'strata-vmcg',
    uuid: '3b7d2c1e-8a6f-4e21-9c3d-5f4e3d2c1b0a',
    qmpSocket: path.join(dir, 'qmp', 'strata-vmcg.sock'),
    agentSocket: path.join(dir, 'agent.sock'),
    workDir: dir,
  });
  const moved = await moveIntoCgroupsOf(vm.pid, containerPid);
  expect(moved.length).toBeGreaterThan(0);
  collectors = [
    createHostCollector({ nodeId: NODE }),
    new CgroupCollector(parseCgroupConfig({ docker: { socket: dockerHost } }), { nodeId: NODE }),
    new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'qmp', '*.sock')] }), {
      nodeId: NODE,
      directory: new VmDirectory(),
    }),
  ];
  for (const c of collectors) await c.start?.();
}, 300_000);

afterAll(async () => {
  for (const c of collectors) await c.shutdown?.();
  await vm?.stop(); // first: the container's cgroup can be removed only once QEMU left it
  if (id) docker('rm', '-f', id);
  if (dir) await fs.rm(dir, { recursive: true, force: true });
}, 60_000);

async function tick(seq: number): Promise<SampleMessage> {
  const samples: EntitySample[] = [];
  for (const c of collectors) await c.gather({ add: (s) => samples.push(s), error: () => {} });
  return {
    v: 1,
    node: { id: NODE, hostname: NODE, labels: {} },
    ts: Date.now(),
    interval_ms: 1000,
    seq,
    agent: { version: 'test', run_id: 'vmcg' },
    samples,
  };
}

describe('QEMU inside a container’s cgroup', () => {
  it('is labelled with the container’s cgroup_path, and counted once in the node totals', async () => {
    const p = createPipeline();
    const msgs: SampleMessage[] = [];
    let node: Record<string, unknown> | undefined;
    for (let i = 0; i < 15 && node === undefined; i++) {
      const m = await tick(i);
      msgs.push(m);
      const out = p.handle(m);
      const n = out.points.find((x) => x.measurement === 'strata_overhead' && x.tags.layer === 'node');
      const hasVm = m.samples.some((s) => s.entity.layer === 'vm' && s.counters.cpu_usage_usec_total);
      if (n && hasVm && (n.fields.vms as number) > 0) node = n.fields;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const last = msgs.at(-1)!;
    const vmSample = last.samples.find((s) => s.entity.layer === 'vm');
    const container = last.samples.find((s) => s.entity.layer === 'container' && s.entity.id === id);
    expect(container?.entity.labels.cgroup_path).toBeTruthy();
    expect(vmSample?.entity.labels.hypervisor_cgroup).toBe(container?.entity.labels.cgroup_path);
    expect(node).toBeDefined();
    expect(node!.vms_in_containers).toBe(1);
    // The container only sleeps: without QEMU's CPU it is ~0 cores, while QEMU (TCG, booting or
    // idle) uses a measurable share of a core. Counted twice, the containers would hold it all.
    expect(node!.vms_hypervisor_cpu_cores as number).toBeGreaterThan(0.005);
    expect(node!.containers_cpu_cores as number).toBeLessThan((node!.vms_hypervisor_cpu_cores as number) / 2);
  }, 120_000);
});
