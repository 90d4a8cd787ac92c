// The collector contract (Telegraf's Gather(acc), OpenTelemetry's start/shutdown):
// - gather() reads one tick's worth of raw counters and adds one EntitySample per entity;
// - a problem with one item (a file, a container) goes to acc.error() and collection carries on;
// - start() may fail fast (bad config); shutdown() is safe to call before start() and twice.
import type { EntitySample } from '../schemas/sample.ts';

export interface Accumulator {
  /** Adds one entity's sample for this tick. */
  add(sample: EntitySample): void;
  /**
   * Reports a per-item problem. `key` identifies the recurring problem (e.g. "cgroup:/x/cpu.stat:ENOENT")
   * so it is logged once and then only counted.
   */
  error(source: string, key: string, err: unknown): void;
}

export interface Collector {
  readonly name: string;
  start?(): Promise<void>;
  gather(acc: Accumulator): Promise<void>;
  shutdown?(): Promise<void>;
}

/** Where the host's /proc, /sys and sockets are (Telegraf's HOST_PROC / HOST_SYS for containerized agents). */
export interface HostPaths {
  proc: string;
  sys: string;
  /** cgroup mount root, normally `${sys}/fs/cgroup`. */
  cgroup: string;
}

export function hostPathsFromEnv(env: NodeJS.ProcessEnv = process.env): HostPaths {
  const proc = env.HOST_PROC ?? '/proc';
  const sys = env.HOST_SYS ?? '/sys';
  return { proc, sys, cgroup: env.HOST_CGROUP ?? `${sys}/fs/cgroup` };
}
