// The collector registry (OpenTelemetry's factories): name -> config schema + factory. The agent
// builds its config schema from these schemas (so `collectors.<name>.<key>` typos are named with
// the accepted keys) and creates the enabled collectors through the factories. Adding a collector
// is one entry here.
import type { z } from 'zod';
import type { Logger } from '../lib/log.ts';
import type { NodeIdentity } from '../schemas/sample.ts';
import { CgroupCollectorConfig } from './cgroup/config.ts';
import { CgroupCollector } from './cgroup/index.ts';
import { HostCollectorConfig } from './host/config.ts';
import { HostCollector } from './host/index.ts';
import type { Collector, HostPaths } from './types.ts';

/** What every factory gets besides its own config. */
export interface CollectorContext {
  paths: HostPaths;
  /** The node this agent speaks for (resolved once at start). */
  node: NodeIdentity;
  /** Docker Engine API endpoint, when configured (DOCKER_HOST). */
  dockerHost?: string;
  intervalMs: number;
  log: Logger;
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
