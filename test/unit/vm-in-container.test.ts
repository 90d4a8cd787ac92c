// A VM whose QEMU runs inside a container's cgroup (KubeVirt's virt-launcher pod, libvirt's
// machine.slice scope): the kernel charges that container with the VM's hypervisor CPU and disk
// I/O, which the vm view reports too. Counted per layer they would be counted twice.
// - processCgroupPath on real /proc/PID/cgroup files (testdata/vm/proc-cgroup, README there);
// - node totals: the VM's CPU comes off the containers' (arithmetic in the comments);
// - noisy neighbour: the container is the tenant, the VM is not judged a second time (without
//   this, when shares are of the tenants' sum, the VM and its container split the same I/O and
//   neither dominates the device: an attack goes unseen).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { processCgroupPath } from '../../collectors/vm/parsers.ts';
import { registry } from '../../lib/metrics.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { AlertEvent } from '../../schemas/alert.ts';
import type { Point } from '../../schemas/point.ts';
import type { Entity, EntitySample, SampleMessage } from '../../schemas/sample.ts';

const CAPTURES = path.join(import.meta.dirname, '../../testdata/vm/proc-cgroup');
const capture = (name: string) => fs.readFileSync(path.join(CAPTURES, name), 'utf8');
const DOCKER_ID = '77d40f11fbfa197d52345157e276c9312c0fa3c323e589e28b6c812b9946b301';

describe('processCgroupPath on real /proc/PID/cgroup files', () => {
  it('a Docker container on cgroup v1, read from the host: the cpuacct hierarchy, as the cgroup collector names it', () => {
    expect(processCgroupPath(capture('docker-v1'))).toBe(`/docker/${DOCKER_ID}`);
  });

  it('the same file read from another cgroup namespace: the relative path as it is', () => {
    expect(processCgroupPath(capture('docker-v1-from-other-cgroupns'))).toBe(`/../${DOCKER_ID}`);
  });

  it('a process whose cpuacct cgroup is the root is in no container, whatever its memory cgroup', () => {
    // host-v1: `4:memory:/process_api/…` but `2:cpuacct:/`.
    expect(processCgroupPath(capture('host-v1'))).toBeUndefined();
  });

  it('pure cgroup v2: the unified line', () => {
    expect(processCgroupPath(capture('guest-v2'))).toBe('/strata-test/busy');
  });

  it('v1 without cpuacct falls back to memory, then cpu; empty or garbled text gives nothing', () => {
    const lines = capture('docker-v1').split('\n');
    const without = (...names: string[]) =>
      lines.filter((l) => !names.some((n) => l.split(':')[1]?.split(',').includes(n))).join('\n');
    expect(
      processCgroupPath(without('cpuacct').replace(`4:memory:/docker/${DOCKER_ID}`, '4:memory:/m')),
    ).toBe('/m');
    expect(
      processCgroupPath(without('cpuacct', 'memory').replace(`1:cpu:/docker/${DOCKER_ID}`, '1:cpu:/c')),
    ).toBe('/c');
    expect(processCgroupPath('')).toBeUndefined();
    expect(processCgroupPath('not a cgroup file\n')).toBeUndefined();
  });
});

const T0 = 1_795_322_559_000;
const HOST: Entity = { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} };
const onHost = { layer: 'host', id: 'n1' } as const;

function msg(t: number, samples: EntitySample[]): SampleMessage {
  return {
    v: 1,
    node: { id: 'n1', hostname: 'n1', labels: {} },
    ts: T0 + t * 1000,
    interval_ms: 1000,
    seq: t,
    agent: { version: 't', run_id: 'r1' },
    samples,
  };
}

const container = (
  id: string,
  name: string,
  cgroupPath: string,
  c: { cpuUsec: number; writes?: number; stallUsec?: number },
): EntitySample => ({
  entity: {
    layer: 'container',
    kind: 'docker',
    id,
    name,
    labels: { image: 'busybox', cgroup_path: cgroupPath },
    parent: onHost,
  },
  counters: { cpu_usage_usec_total: c.cpuUsec, psi_io_some_usec_total: c.stallUsec ?? 0 },
  gauges: {},
  devices: {
    vda: {
      counters: {
        reads_completed_total: 0,
        writes_completed_total: c.writes ?? 0,
        read_bytes_total: 0,
        written_bytes_total: (c.writes ?? 0) * 4096,
      },
    },
  },
});

const vm = (
  hypervisorCgroup: string | undefined,
  c: { cpuUsec: number; writes?: number; writeNs?: number },
) =>
  ({
    entity: {
      layer: 'vm',
      kind: 'qemu',
      id: 'vm-uuid-1',
      name: 'vm1',
      labels: {
        vm_name: 'vm1',
        accel: 'kvm',
        host_device: 'vda',
        ...(hypervisorCgroup ? { hypervisor_cgroup: hypervisorCgroup } : {}),
      },
      parent: onHost,
    },
    counters: { cpu_usage_usec_total: c.cpuUsec, vcpu_usec_total: c.cpuUsec * 0.8 },
    gauges: {},
    devices: {
      'virtio-disk0': {
        counters: {
          reads_completed_total: 0,
          writes_completed_total: c.writes ?? 0,
          flushes_completed_total: 0,
          read_bytes_total: 0,
          written_bytes_total: (c.writes ?? 0) * 4096,
          read_time_ns_total: 0,
          write_time_ns_total: c.writeNs ?? 0,
          flush_time_ns_total: 0,
        },
      },
    },
  }) satisfies EntitySample;

const host = (busyUsec: number, writes = 0, writeMs = 0): EntitySample => ({
  entity: HOST,
  counters: {
    cpu_user_usec_total: busyUsec,
    cpu_nice_usec_total: 0,
    cpu_system_usec_total: 0,
    cpu_irq_usec_total: 0,
    cpu_softirq_usec_total: 0,
  },
  gauges: { cpu_count: 4 },
  devices: {
    vda: {
      counters: {
        reads_completed_total: 0,
        writes_completed_total: writes,
        read_bytes_total: 0,
        written_bytes_total: writes * 4096,
        read_time_ms_total: 0,
        write_time_ms_total: writeMs,
      },
    },
  },
});

const nodeTotals = (points: Point[]) =>
  points.find((p) => p.measurement === 'strata_overhead' && p.tags.layer === 'node')!.fields;

describe('node totals: a hypervisor inside a container is counted once, as the VM', () => {
  const LAUNCHER = `/docker/${DOCKER_ID}`;
  const run = (hypervisorCgroup: string | undefined) => {
    const at = (t: number, us: { host: number; launcher: number; web: number; vm: number }) =>
      msg(t, [
        host(us.host),
        container('launcher', 'virt-launcher-vm1', LAUNCHER, { cpuUsec: us.launcher }),
        container('web', 'web', '/docker/web', { cpuUsec: us.web }),
        vm(hypervisorCgroup, { cpuUsec: us.vm }),
      ]);
    const p = createPipeline();
    p.handle(at(0, { host: 0, launcher: 0, web: 0, vm: 0 }));
    // host 2.0 cores busy; the launcher's cgroup 1.6 cores (QEMU's 1.5 + its own 0.1); web 0.2
    return nodeTotals(
      p.handle(at(1, { host: 2_000_000, launcher: 1_600_000, web: 200_000, vm: 1_500_000 })).points,
    );
  };

  it('the container holding QEMU (path read from the host) loses the VM’s CPU', () => {
    const n = run(processCgroupPath(capture('docker-v1')));
    expect(n.vms_in_containers).toBe(1);
    expect(n.containers_cpu_cores).toBeCloseTo(0.3, 12); // 1.6 + 0.2 − 1.5
    expect(n.vms_hypervisor_cpu_cores).toBeCloseTo(1.5, 12);
    expect(n.host_other_cpu_cores).toBeCloseTo(0.2, 12); // 2.0 − 0.3 − 1.5
    expect(n.containers_cpu_ratio).toBeCloseTo(0.15, 12); // 0.3 ÷ 2.0
    expect(n.vms_cpu_ratio).toBeCloseTo(0.75, 12);
  });

  it('the same with the path read from another cgroup namespace (matched by the container id)', () => {
    const n = run(processCgroupPath(capture('docker-v1-from-other-cgroupns')));
    expect(n.vms_in_containers).toBe(1);
    expect(n.containers_cpu_cores).toBeCloseTo(0.3, 12);
    expect(n.host_other_cpu_cores).toBeCloseTo(0.2, 12);
  });

  it('QEMU in a child cgroup of the container (a vcpu or emulator sub-cgroup) still counts', () => {
    const n = run(`${LAUNCHER}/emulator`);
    expect(n.vms_in_containers).toBe(1);
    expect(n.containers_cpu_cores).toBeCloseTo(0.3, 12);
  });

  it('a hypervisor outside every container (no label, or another cgroup) takes nothing off', () => {
    for (const label of [undefined, '/machine.slice/machine-qemu-1-vm1.scope', `${LAUNCHER}-other`]) {
      const n = run(label);
      expect(n.vms_in_containers).toBe(0);
      expect(n.containers_cpu_cores).toBeCloseTo(1.8, 12); // 1.6 + 0.2, as they are
      // 2.0 − 1.8 − 1.5 < 0: the double count shows, and no host_other number is written.
      expect(n.host_other_cpu_cores).toBeUndefined();
    }
  });

  it('never more than the container’s own CPU comes off (sampling skew: QEMU read a little later)', () => {
    const p = createPipeline();
    const launcher = (cpuUsec: number) => container('launcher', 'virt-launcher-vm1', LAUNCHER, { cpuUsec });
    p.handle(msg(0, [host(0), launcher(0), vm(LAUNCHER, { cpuUsec: 0 })]));
    const n = nodeTotals(
      p.handle(msg(1, [host(2_000_000), launcher(1_400_000), vm(LAUNCHER, { cpuUsec: 1_500_000 })])).points,
    );
    expect(n.containers_cpu_cores).toBeCloseTo(0, 12); // 1.4 − min(1.5, 1.4)
    expect(n.host_other_cpu_cores).toBeCloseTo(0.5, 12); // 2.0 − 0 − 1.5
  });
});

describe('noisy neighbour: the container holding QEMU is the tenant, the VM is not judged twice', () => {
  // 80 ticks of 1 s. A light container `db` writes 20 × 4 KiB/s throughout; its I/O stall is
  // 0.002 of the time until tick 40, then 0.1. From tick 40 the VM writes 2000 × 4 KiB/s
  // (cache=none: the launcher container's cgroup counts the same 2000 writes), its QMP latency
  // 5 ms per write (0.1 before, at 10 writes/s).
  const LAUNCHER = '/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope';
  function scenario(hypervisorCgroup: string | undefined, hostReportsVda: boolean) {
    const p = createPipeline();
    const alerts: AlertEvent[] = [];
    let dbW = 0;
    let dbStall = 0;
    let vmW = 0;
    let vmNs = 0;
    for (let t = 0; t < 80; t++) {
      const attack = t >= 40;
      if (t > 0) {
        dbW += 20;
        dbStall += attack ? 100_000 : 2_000;
        const w = attack ? 2000 : 10;
        vmW += w;
        vmNs += w * (attack ? 5_000_000 : 100_000);
      }
      const h = host(t * 1_000_000, dbW + vmW, t * 500);
      if (!hostReportsVda) delete h.devices;
      const out = p.handle(
        msg(t, [
          h,
          container('db', 'db', '/kubepods.slice/kubepods-pod2.slice/cri-containerd-db.scope', {
            cpuUsec: t * 100_000,
            writes: dbW,
            stallUsec: dbStall,
          }),
          container('launcher', 'virt-launcher-vm1/compute', LAUNCHER, {
            cpuUsec: t * 900_000,
            writes: vmW,
            stallUsec: t * 1_000,
          }),
          vm(hypervisorCgroup, { cpuUsec: t * 800_000, writes: vmW, writeNs: vmNs }),
        ]),
      );
      alerts.push(...out.alerts);
    }
    p.evict(Date.now()); // flushes the stages' counters to prom-client
    return alerts.filter((a) => a.status === 'firing');
  }
  const victims = (a: AlertEvent) => (a.labels.victims ?? '').split(',').filter(Boolean).sort();

  it.each([
    ['the host reports the device', true],
    ['the host does not report the device (shares of the tenants’ sum)', false],
  ])(
    'with the hypervisor’s cgroup known (%s): the container is the antagonist, db the only victim',
    async (_, hostReportsVda) => {
      const before = await inContainerSamples();
      const firing = scenario(LAUNCHER, hostReportsVda);
      expect(firing.length).toBeGreaterThan(0);
      for (const a of firing) {
        expect(a.labels.antagonist).toBe('virt-launcher-vm1/compute');
        expect(victims(a)).toEqual(['db']);
      }
      // 79 ticks with rates, one VM sample each, left to its container.
      expect((await inContainerSamples()) - before).toBe(79);
    },
  );

  it('without it, when the host does not report the device, the attack goes unseen', () => {
    // The VM and its container each hold 2000 ÷ 4020 = 0.498 of the device's ops: neither
    // dominates (dominantShare 0.5), so nobody is accused although db is hurt.
    expect(scenario(undefined, false)).toEqual([]);
  });
});

async function inContainerSamples(): Promise<number> {
  const m = await registry
    .getSingleMetric('strata_processor_noisy_neighbor_vm_in_container_samples_total')
    ?.get();
  return Number(m?.values[0]?.value ?? 0);
}
