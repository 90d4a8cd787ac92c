// Configuration of the cgroup (container) collector (`collectors.cgroup` in the agent config).
import { z } from 'zod';
import { durationMs, parseConfig } from '../../lib/config.ts';

export const CgroupCollectorConfig = z.strictObject({
  /** Turns the collector off. */
  enabled: z.boolean().default(true),
  /** Re-scan the cgroup tree this often (ms or "5s"); a container that vanished triggers one at once. */
  discoveryInterval: durationMs.default(5000),
  /** How deep the scan descends below each hierarchy root (kubepods.slice/…/scope is depth 4). */
  maxDepth: z.number().int().min(1).max(32).default(8),
  /** At most this many containers are read per tick; the rest are counted as dropped. */
  maxEntities: z.number().int().min(1).default(2000),
  /** Also report systemd services and scopes (*.service, *.scope) as kind `systemd`. */
  systemd: z.boolean().default(false),
  /** Globs of extra cgroup paths to report as kind `cgroup`, e.g. ["/strata-test/*"]; `*` stays in one segment, `**` crosses. */
  include: z.array(z.string().startsWith('/', 'cgroup path globs start with "/"')).default([]),
  /** Read the *.pressure files (PSI) where the kernel has them. */
  pressure: z.boolean().default(true),
  /**
   * Which cgroup v1 blkio counters the kernel keeps (collectors/cgroup/blkio-trust.ts): `auto`
   * decides from the kernel release (mainline behaviour); a distribution kernel with backports can
   * be told what it does: `all` (every cgroup counted), `ruled` (only cgroups with a throttle rule,
   * their own or an ancestor's, per direction: mainline 5.16-6.4), `activated` (disks a rule was
   * ever written for: mainline 6.10+). A wrong choice can publish zeros for uncounted I/O.
   */
  blkioAccounting: z.enum(['auto', 'all', 'ruled', 'activated']).default('auto'),
  /** Read each container's /proc/PID/net/dev (its own network namespace; skipped when it shares the host's). */
  network: z.boolean().default(true),
  docker: z
    .strictObject({
      /** Ask the Docker Engine API for names, images and labels. */
      enabled: z.boolean().default(true),
      /** unix:// URL or path of the socket. Default: DOCKER_HOST when it is unix://, else /var/run/docker.sock. */
      socket: z.string().min(1).optional(),
      /** Follow GET /events (container start/die/rename) to re-scan at once instead of at discoveryInterval. */
      events: z.boolean().default(true),
      /** Re-list containers this often (renames); new container ids trigger a list at once. */
      refreshInterval: durationMs.default(30_000),
      /** Per-request timeout. */
      timeout: durationMs.default(2000),
      /** Container names, images and labels are cut to this length and stripped of control characters. */
      maxNameLength: z.number().int().min(16).default(256),
    })
    .default({ enabled: true, events: true, refreshInterval: 30_000, timeout: 2000, maxNameLength: 256 }),
});
export type CgroupCollectorConfig = z.output<typeof CgroupCollectorConfig>;

export function parseCgroupConfig(input: unknown, where = 'collectors.cgroup'): CgroupCollectorConfig {
  return parseConfig(CgroupCollectorConfig, input ?? {}, where);
}
