// CPU counters of a layer read through the project's own collectors (the same code the agent runs),
// so `strata bench` and the live pipeline measure a container or a VM the same way:
//   container: collectors/cgroup `cpu_usage_usec_total` of the container's entity;
//   vm:        collectors/vm `cpu_usage_usec_total` (QEMU utime+stime) and `vcpu_usec_total`.
// When a collector cannot see the entity (or fails to load), the caller falls back to reading the
// kernel files directly and says so in cpu_source.
import type { Collector } from '../../collectors/types.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { EntitySample } from '../../schemas/sample.ts';

export interface CounterProbe {
  source: string;
  read(): Promise<Record<string, number> | undefined>;
  close(): Promise<void>;
}

async function gatherOne(collector: Collector, match: (s: EntitySample) => boolean) {
  const found: EntitySample[] = [];
  const errors: string[] = [];
  await collector.gather({
    add: (s) => {
      if (match(s)) found.push(s);
    },
    error: (_source, key, err) => {
      if (errors.length < 5) errors.push(`${key}: ${errorMessage(err)}`);
    },
  });
  return { sample: found[0], errors };
}

/** The container's entity in collectors/cgroup; undefined when the collector does not report it. */
export async function cgroupCollectorProbe(
  containerId: string,
  dockerHost: string,
): Promise<CounterProbe | undefined> {
  const { createCgroupCollector } = await import('../../collectors/cgroup/index.ts');
  const collector = createCgroupCollector(
    { pressure: false, network: false, docker: { enabled: false } },
    { nodeId: 'strata-bench', dockerSocket: dockerHost },
  );
  await collector.start?.();
  const match = (s: EntitySample) =>
    s.entity.layer === 'container' &&
    (s.entity.id === containerId ||
      containerId.startsWith(s.entity.id) ||
      (s.entity.labels.cgroup_path ?? '').includes(containerId));
  const first = await gatherOne(collector, match);
  if (first.sample?.counters.cpu_usage_usec_total === undefined) {
    await collector.shutdown?.();
    return undefined;
  }
  return {
    source: `collectors/cgroup cpu_usage_usec_total of container ${containerId.slice(0, 12)} (${first.sample.entity.labels.cgroup_version ?? 'cgroup'})`,
    read: async () => (await gatherOne(collector, match)).sample?.counters,
    close: async () => {
      await collector.shutdown?.();
    },
  };
}

/** The test VM in collectors/vm, found by its QMP socket. */
export async function vmCollectorProbe(qmpSocket: string): Promise<CounterProbe | undefined> {
  const { createVmCollector } = await import('../../collectors/vm/index.ts');
  const { VmDirectory } = await import('../../collectors/vm/directory.ts');
  const collector = createVmCollector(
    { qmpSockets: [qmpSocket], balloonPollingInterval: 0 },
    { nodeId: 'strata-bench', directory: new VmDirectory() },
  );
  await collector.start?.();
  const match = (s: EntitySample) => s.entity.layer === 'vm';
  // The first tick connects QMP and asks for the vCPU threads; counters come with it or the next.
  let first = await gatherOne(collector, match);
  if (first.sample?.counters.cpu_usage_usec_total === undefined) first = await gatherOne(collector, match);
  if (first.sample?.counters.cpu_usage_usec_total === undefined) {
    await collector.shutdown?.();
    return undefined;
  }
  return {
    source:
      'collectors/vm cpu_usage_usec_total (QEMU process utime+stime) and vcpu_usec_total (vCPU threads)',
    read: async () => (await gatherOne(collector, match)).sample?.counters,
    close: async () => {
      await collector.shutdown?.();
    },
  };
}
