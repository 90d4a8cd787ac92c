// The cgroup (container) collector: one `container` entity per discovered cgroup per tick.
//
// Discovery (every discoveryInterval, or at once after a container vanished) walks one hierarchy,
// classifies directories and opens, per container, only the files that exist (discovery.ts); Docker
// names them (docker.ts); on v1 blkio the kernel's accounting decides which device counters are
// sent (blkio-trust.ts); containers sharing a network namespace report its interfaces once
// (netns.ts). The per-tick path (reader.ts) is then pread() of already-open files plus the pure
// parsers, no readdir, no stat. Hybrid hosts (v1 controllers + cgroup2 "unified") read v1 for
// memory, blkio and throttling and the unified hierarchy for PSI and for CPU usage (v2 cpu.stat is
// in µs, where v1 cpuacct.stat is in 10 ms ticks). What is read and what it becomes: files.ts and
// the catalogue, metrics.ts.
import { existsSync } from 'node:fs';
import { InvalidDataError } from '../../lib/errors.ts';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { readOnce } from '../procfs/fileio.ts';
import { globToRegExp } from '../procfs/glob.ts';
import type { Accumulator, Collector, HostPaths } from '../types.ts';
import { hostPathsFromEnv } from '../types.ts';
import { SystemBlkio } from './blkio-still.ts';
import { type BlkioAccounting, blkioAccounting, refreshBlkioTrust } from './blkio-trust.ts';
import { type CgroupCollectorConfig, parseCgroupConfig } from './config.ts';
import { openTarget, scanHierarchy } from './discovery.ts';
import { DockerNames, dockerSocketPath } from './docker.ts';
import { type CgroupLayout, layoutFromMountinfo } from './mounts.ts';
import { groupSharedNetns, hostNetnsIdentity, type NetnsId, openNetdev } from './netns.ts';
import { SystemPressure } from './pressure.ts';
import { TargetReader } from './reader.ts';
import { metrics } from './selfmetrics.ts';
import { closeTarget, type Target } from './target.ts';

export { CgroupCollectorConfig, parseCgroupConfig } from './config.ts';
export { classifyCgroup } from './discovery.ts';
export { layoutFromMountinfo } from './mounts.ts';
export { hostNetnsIdentity, type NetnsId } from './netns.ts';

export interface CgroupCollectorOptions {
  paths?: HostPaths;
  /** The host entity id, used as every container's parent. */
  nodeId: string;
  /** mountinfo text, for tests; default: HOST_PROC/1/mountinfo, else HOST_PROC/self/mountinfo. */
  mountinfo?: string;
  /** Docker socket override (tests); default from config, DOCKER_HOST, /var/run/docker.sock. */
  dockerSocket?: string;
  /** Kernel release, for tests; default HOST_PROC/sys/kernel/osrelease (unreadable: unknown). */
  kernelRelease?: string;
  /** The sample time source (ms), for tests; default Date.now. */
  clock?: () => number;
}

export class CgroupCollector implements Collector {
  readonly name = 'cgroup';
  private readonly log = componentLogger('collector.cgroup');
  private readonly once = new OnceLogger(this.log);
  private readonly paths: HostPaths;
  readonly layout: CgroupLayout;
  private readonly primaryRoot: string | undefined;
  private readonly include: RegExp[];
  private readonly targets = new Map<string, Target>();
  private lastScan = -Infinity;
  private rescanNow = true;
  private readonly hostNetns: NetnsId | undefined;
  private readonly docker: DockerNames | undefined;
  private readonly kernelRelease: string | undefined;
  private readonly blkioMode: BlkioAccounting;
  /** The system-wide PSI, read once per tick: while it is still, containers' PSI files are not re-read. */
  private readonly systemPressure: SystemPressure | undefined;
  /** v1 blkio: the root's recursive ops, read once per tick: while still, containers' blkio files are not re-read. */
  private readonly systemBlkio: SystemBlkio | undefined;
  private readonly reader: TargetReader;
  private readonly reopenNetdev = (t: Target): void => openNetdev(t, this.paths.proc, this.hostNetns);

  constructor(
    readonly config: CgroupCollectorConfig,
    private readonly opts: CgroupCollectorOptions,
  ) {
    this.paths = opts.paths ?? hostPathsFromEnv();
    const mountinfo = opts.mountinfo ?? this.readMountinfo();
    this.layout = layoutFromMountinfo(mountinfo, this.paths.cgroup);
    const v1 = this.layout.v1;
    this.primaryRoot =
      this.layout.mode === 'v2'
        ? this.layout.v2
        : (v1.get('cpuacct') ?? v1.get('memory') ?? v1.get('cpu') ?? v1.values().next().value);
    this.include = config.include.map(globToRegExp);
    if (config.docker.enabled) {
      const env = process.env.DOCKER_HOST;
      const fromEnv = env?.startsWith('unix://') ? env : undefined;
      this.docker = new DockerNames({
        socket: dockerSocketPath(
          opts.dockerSocket ?? config.docker.socket ?? fromEnv ?? '/var/run/docker.sock',
        ),
        timeout: config.docker.timeout,
        maxNameLength: config.docker.maxNameLength,
        log: this.log,
        once: this.once,
      });
    }
    this.hostNetns = hostNetnsIdentity(this.paths.proc);
    this.kernelRelease = opts.kernelRelease ?? readRelease(this.paths.proc);
    this.blkioMode =
      config.blkioAccounting === 'auto' ? blkioAccounting(this.kernelRelease) : config.blkioAccounting;
    if (config.pressure && this.layout.v2) this.systemPressure = new SystemPressure(this.paths.proc);
    const blkioRoot = this.layout.v1.get('blkio');
    if (blkioRoot !== undefined) this.systemBlkio = new SystemBlkio(blkioRoot);
    this.reader = new TargetReader({
      sys: this.paths.sys,
      systemPressure: this.systemPressure,
      systemBlkio: this.systemBlkio,
      reopenNetdev: this.reopenNetdev,
    });
  }

  private readMountinfo(): string {
    for (const p of [`${this.paths.proc}/1/mountinfo`, `${this.paths.proc}/self/mountinfo`]) {
      try {
        return readOnce(p);
      } catch {
        // next candidate
      }
    }
    throw new InvalidDataError(
      `cgroup collector: cannot read ${this.paths.proc}/1/mountinfo or ${this.paths.proc}/self/mountinfo; ` +
        'set HOST_PROC to where the host /proc is mounted (default /proc)',
    );
  }

  async start(): Promise<void> {
    if (!this.primaryRoot || !existsSync(this.primaryRoot)) {
      throw new InvalidDataError(
        `cgroup collector: no cgroup hierarchy found (mode ${this.layout.mode}, looked for ` +
          `${this.primaryRoot ?? 'cgroup/cgroup2 mounts in mountinfo'}); set HOST_SYS or HOST_CGROUP to where ` +
          'the host /sys or /sys/fs/cgroup is mounted, or disable collectors.cgroup',
      );
    }
    this.log.info(
      {
        mode: this.layout.mode,
        v1: Object.fromEntries(this.layout.v1),
        v2: this.layout.v2,
        docker: this.docker?.socket,
        kernel: this.kernelRelease,
        ...(this.layout.v1.has('blkio') ? { blkioAccounting: this.blkioMode } : {}),
      },
      'cgroup layout',
    );
    if (this.docker && this.config.docker.events) {
      // A container start/die/rename makes the next tick re-scan and re-list instead of waiting for
      // discoveryInterval.
      this.docker.watch(() => {
        this.rescanNow = true;
      });
    }
  }

  /** Number of containers currently known (after the last discovery). */
  get size(): number {
    return this.targets.size;
  }

  /** The cgroup paths of the containers currently known (after the last discovery). */
  cgroupPaths(): string[] {
    return [...this.targets.keys()];
  }

  async gather(acc: Accumulator): Promise<void> {
    const now = Date.now();
    if (this.rescanNow || now - this.lastScan >= this.config.discoveryInterval) {
      const newDocker = this.discover();
      if (this.docker && (newDocker || now - this.docker.lastList >= this.config.docker.refreshInterval)) {
        await this.docker.refresh(this.targets.values());
      }
    }
    this.gatherSync(acc);
  }

  /** Reads every known container (no discovery); the bench calls it directly. */
  gatherSync(acc: Accumulator): void {
    const ts = this.opts.clock ? this.opts.clock() : Date.now();
    const reader = this.reader;
    reader.beginTick(this.targets.size > 0);
    const parent = this.opts.nodeId;
    for (const t of this.targets.values()) {
      const sample = reader.read(t, acc, ts, parent);
      if (sample) acc.add(sample);
      else this.vanish(t);
    }
    metrics.entities.set(this.targets.size);
    reader.endTick();
  }

  /** Forces a discovery scan; returns true when a docker container id unknown to the API cache appeared. */
  discover(): boolean {
    metrics.scans.inc();
    this.lastScan = Date.now();
    this.rescanNow = false;
    if (!this.primaryRoot) return false;
    const { found, truncated } = scanHierarchy(this.primaryRoot, {
      systemd: this.config.systemd,
      include: this.include,
      maxDepth: this.config.maxDepth,
      maxEntities: this.config.maxEntities,
    });
    if (truncated) {
      metrics.dropped.inc(truncated);
      this.once.warn(
        'max_entities',
        { maxEntities: this.config.maxEntities, dropped: truncated },
        'more containers than collectors.cgroup.maxEntities; the rest are not read',
      );
    }
    for (const [path, t] of this.targets) {
      if (!found.has(path)) this.drop(t);
    }
    let unknownDocker = false;
    const open = { layout: this.layout, primaryRoot: this.primaryRoot, pressure: this.config.pressure };
    for (const [path, c] of found) {
      if (this.targets.has(path)) continue;
      const t = openTarget(path, c, open);
      if (!t) {
        metrics.vanished.inc(); // removed between the scan and the open: not an error
        continue;
      }
      if (this.config.network) this.reopenNetdev(t);
      this.targets.set(path, t);
      if (c.kind === 'docker' && !this.docker?.has(c.id)) unknownDocker = true;
    }
    groupSharedNetns(this.targets.values(), this.config.network ? this.reopenNetdev : undefined);
    refreshBlkioTrust(this.targets.values(), {
      root: this.layout.v1.get('blkio'),
      mode: this.blkioMode,
      configured: this.config.blkioAccounting,
      kernelRelease: this.kernelRelease,
      sys: this.paths.sys,
      once: this.once,
    });
    this.docker?.apply(this.targets.values());
    return unknownDocker;
  }

  /** A container whose cgroup went away between discovery and read: counted (not an error), rescanned next tick. */
  private vanish(t: Target): void {
    metrics.vanished.inc();
    this.drop(t);
    this.rescanNow = true;
  }

  private drop(t: Target): void {
    closeTarget(t);
    this.targets.delete(t.path);
  }

  async shutdown(): Promise<void> {
    for (const t of [...this.targets.values()]) this.drop(t);
    this.systemPressure?.close();
    this.systemBlkio?.close();
    await this.docker?.close();
  }
}

/** HOST_PROC/sys/kernel/osrelease, or undefined (a captured tree without it). */
function readRelease(proc: string): string | undefined {
  try {
    return readOnce(`${proc}/sys/kernel/osrelease`).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function createCgroupCollector(input: unknown, opts: CgroupCollectorOptions): CgroupCollector {
  return new CgroupCollector(parseCgroupConfig(input), opts);
}
