// The collector registry (OpenTelemetry's factories): name -> config schema + factory. The agent
// builds its config schema from these schemas (so `collectors.<name>.<key>` typos are named with
// the accepted keys) and creates the enabled collectors through the factories. Adding a collector
// is one entry here.
import type { z } from 'zod';
import type { Logger } from '../lib/log.ts';
import type { NodeIdentity } from '../schemas/sample.ts';
import { CgroupCollectorConfig } from './cgroup/config.ts';
import { CgroupCollector } from './cgroup/index.ts';
import { GuestCollectorConfig } from './guest/config.ts';
import { GuestCollector } from './guest/index.ts';
import { HostCollectorConfig } from './host/config.ts';
import { HostCollector } from './host/index.ts';
import type { Collector, HostPaths } from './types.ts';
import { VmCollectorConfig } from './vm/config.ts';
import { VmDirectory } from './vm/directory.ts';
import { VmCollector } from './vm/index.ts';

/** What every factory gets besides its own config. */
export interface CollectorContext {
  paths: HostPaths;
  /** The node this agent speaks for (resolved once at start). */
  node: NodeIdentity;
  /** Docker Engine API endpoint, when configured (DOCKER_HOST). */
  dockerHost?: string;
  intervalMs: number;
  log: Logger;
  /** State collectors of one agent share (the vm collector's VM directory feeds the guest collector). */
  shared: Map<string, unknown>;
}

/** One VmDirectory per agent: the vm collector publishes the VMs it finds, the guest collector follows them. */
function vmDirectory(ctx: CollectorContext): VmDirectory {
  let dir = ctx.shared.get('vmDirectory') as VmDirectory | undefined;
  if (!dir) {
    dir = new VmDirectory();
    ctx.shared.set('vmDirectory', dir);
  }
  return dir;
}

export interface CollectorFactory<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly description: string;
  /** zod strictObject of the collector's settings, `collectors.<name>` in the agent config. */
  readonly configSchema: S;
  /** Runs when the config does not mention it. */
  readonly defaultEnabled: boolean;
  create(config: z.output<S>, ctx: CollectorContext): Collector;
}

function factory<S extends z.ZodType>(f: CollectorFactory<S>): CollectorFactory {
  return f as unknown as CollectorFactory;
}

export const COLLECTORS: readonly CollectorFactory[] = [
  factory({
    name: 'host',
    description: 'the node itself: /proc/stat, vmstat, meminfo, diskstats, net/dev, pressure',
    configSchema: HostCollectorConfig,
    defaultEnabled: true,
    create: (config, ctx) => new HostCollector(config, { paths: ctx.paths, node: ctx.node }),
  }),
  factory({
    name: 'cgroup',
    description: 'containers: cgroup v1/v2/hybrid counters, Docker names and images, per-netns interfaces',
    configSchema: CgroupCollectorConfig,
    defaultEnabled: true,
    create: (config, ctx) =>
      new CgroupCollector(config, {
        paths: ctx.paths,
        nodeId: ctx.node.id,
        // agent.dockerHost (DOCKER_HOST) unless the collector's own docker.socket says otherwise.
        dockerSocket: config.docker.socket ? undefined : ctx.dockerHost,
      }),
  }),
  factory({
    name: 'vm',
    description:
      'QEMU guests from the host: QMP blockstats, vCPU threads, balloon stats, hypervisor /proc, taps',
    configSchema: VmCollectorConfig,
    defaultEnabled: true,
    // Publishes what it finds to this agent's VM directory, which the guest collector reads.
    create: (config, ctx) =>
      new VmCollector(config, { paths: ctx.paths, nodeId: ctx.node.id, directory: vmDirectory(ctx) }),
  }),
  factory({
    name: 'guest',
    description: "guests from inside: the in-guest agent's /proc records over virtio-serial",
    configSchema: GuestCollectorConfig,
    defaultEnabled: true,
    create: (config, ctx) => new GuestCollector(config, { directory: vmDirectory(ctx) }),
  }),
];

export function collectorSchemas(): Record<string, z.ZodType> {
  return Object.fromEntries(COLLECTORS.map((c) => [c.name, c.configSchema]));
}

export function defaultCollectors(): string[] {
  return COLLECTORS.filter((c) => c.defaultEnabled).map((c) => c.name);
}

export function collectorFactory(name: string): CollectorFactory | undefined {
  return COLLECTORS.find((c) => c.name === name);
}
