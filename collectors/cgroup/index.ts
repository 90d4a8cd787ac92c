// The cgroup (container) collector: one `container` entity per discovered cgroup per tick.
//
// Discovery (every discovery_interval, or at once after a container vanished) walks one hierarchy,
// classifies directories (discovery.ts) and opens, per container, only the files that exist: the
// per-tick path is then pread() of already-open files plus the pure parsers, no readdir, no stat.
// Hybrid hosts (v1 controllers + cgroup2 "unified") read v1 for memory, blkio and throttling and
// the unified hierarchy for PSI and for CPU usage (v2 cpu.stat is in µs, where v1 cpuacct.stat is
// in 10 ms ticks).
import { existsSync, statSync } from 'node:fs';
import { errorCode, InvalidDataError } from '../../lib/errors.ts';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { counter, gauge } from '../../lib/metrics.ts';
import type { EntitySample, InstanceMetrics } from '../../schemas/sample.ts';
import { isGone, KernelFile, readOnce, sharedBuffer } from '../procfs/fileio.ts';
import { globToRegExp } from '../procfs/glob.ts';
import { parseNetDev } from '../procfs/parsers.ts';
import type { Accumulator, Collector, HostPaths } from '../types.ts';
import { hostPathsFromEnv } from '../types.ts';
import { BLKIO_MAX_AGE, type BlkioLastRead, keep, SystemBlkio } from './blkio-still.ts';
import {
  BLKIO_BOTH,
  BLKIO_READ,
  BLKIO_WRITE,
  type BlkioAccounting,
  blkioAccounting,
  blkioAccountingReason,
  blkioDevices,
  inheritedRules,
  usedDisks,
} from './blkio-trust.ts';
import { blkioBytes, flatKeyedBytes, type KeyedTable, keyedTable, singleBytes } from './bytes.ts';
import { type CgroupCollectorConfig, parseCgroupConfig } from './config.ts';
import { type Classified, scanHierarchy } from './discovery.ts';
import {
  type DockerContainerInfo,
  dockerSocketPath,
  listDockerContainers,
  watchDockerEvents,
} from './docker.ts';
import { type CgroupLayout, layoutFromMountinfo } from './mounts.ts';
import {
  type DeviceCounters,
  devnameFromUevent,
  type KeyedSpec,
  parseBlkioRw,
  parseFlatKeyed,
  parseIoStat,
  parseMemoryMax,
  parseSingle,
  V1_CPU_STAT,
  V1_CPU_STAT_FACTOR,
  V1_CPUACCT_FACTOR,
  V1_CPUACCT_STAT,
  V1_MEMORY_STAT_COUNTERS,
  V1_MEMORY_STAT_GAUGES,
  V1_UNLIMITED_FROM,
  V2_CPU_STAT,
  V2_MEMORY_STAT_COUNTERS,
  V2_MEMORY_STAT_GAUGES,
} from './parsers.ts';
import {
  PSI_RESOURCES,
  type PsiFile,
  type PsiResource,
  psiFile,
  readPsi,
  SystemPressure,
} from './pressure.ts';

export { CgroupCollectorConfig, parseCgroupConfig } from './config.ts';
export { classifyCgroup } from './discovery.ts';
export { layoutFromMountinfo } from './mounts.ts';

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

/**
 * Slowly-changing values are read every Nth tick, not every tick: memory.limit_in_bytes /
 * memory.max, and v1 cpu.cfs_quota_us, which decides whether v1 cpu.stat (throttling) can change.
 */
const LIMIT_EVERY_TICKS = 10;

/** memory.stat is re-read at least every this many ticks, even for an idle container (readMemoryStat). */
const MEMORY_STAT_MAX_AGE = 10;

/** What readMemoryStat keeps of a container's last memory.stat read. */
interface MemoryStatRead {
  /** cpu_usage_usec_total and memory_usage_bytes when it was read. */
  cpu: number;
  usage: number | undefined;
  /** The memory table's record names and kinds (0 = counter, 1 = gauge), values, and which were present. */
  names: string[];
  spec: number[];
  values: Float64Array;
  found: Uint8Array;
}

/** v1 cpu.stat throttling counters, kept between reads while the cgroup has no CFS quota. */
interface V1Throttling {
  cpu_periods_total?: number;
  cpu_throttled_periods_total?: number;
  cpu_throttled_usec_total?: number;
}

interface Target {
  path: string;
  c: Classified;
  /** Directory of this cgroup in the primary hierarchy (cgroup.procs lives there). */
  primaryDir: string;
  cpuV2?: KernelFile;
  cpuV1?: KernelFile;
  /** v1 cpu.cfs_quota_us: -1 (no quota) means the v1 cpu.stat throttling counters cannot move. */
  cpuQuota?: KernelFile;
  quotaCountdown: number;
  /** The last v1 cpu.stat values while no quota is set (reused until the next quota check). */
  v1Throttling?: V1Throttling;
  cpuacctUsage?: KernelFile;
  cpuacctStat?: KernelFile;
  memStat?: KernelFile;
  memStatV2: boolean;
  /** memory.stat key tables, built once; `into` is pointed at the tick's records. */
  memSpecs: [KeyedSpec, KeyedSpec];
  memUsage?: KernelFile;
  memLimit?: KernelFile;
  memLimitV2: boolean;
  limitCountdown: number;
  lastLimit?: number;
  ioStat?: KernelFile;
  blkioOps?: KernelFile;
  blkioBytes?: KernelFile;
  /**
   * v1 blkio devices ("MAJ:MIN") whose counters the kernel keeps for this cgroup, and for which
   * directions (BLKIO_READ | BLKIO_WRITE); undefined: all (blkio-trust.ts). Set at each discovery.
   */
  blkioTrust?: Map<string, number>;
  /** The last clean read of the two blkio files, reused while the root's counters are still (blkio-still.ts). */
  blkioLast?: BlkioLastRead;
  /** The io_accounting label's value, when not every disk's counters are kept: the files are not read when unavailable. */
  ioAccounting?: 'partial' | 'unavailable';
  /** memSpecs flattened for the byte parser. */
  memTable: KeyedTable;
  /** The last clean memory.stat read, reused while the container is idle (readMemoryStat). */
  memStatLast?: MemoryStatRead;
  memStatCountdown: number;
  /** cpu/io/memory.pressure, reused while the system's PSI proves them unchanged (pressure.ts). */
  pressure: PsiFile[];
  netdev?: KernelFile;
  /** false when the cgroup's process shares the host network namespace. */
  ownNetns: boolean;
  /** Its network namespace ("dev:ino" of /proc/PID/ns/net) when known: containers sharing one are grouped. */
  netnsKey?: string;
  labels: Record<string, string>;
  name: string;
}

const metrics = {
  entities: gauge('strata_collector_cgroup_entities', 'Containers (cgroups) read per tick'),
  vanished: counter(
    'strata_collector_cgroup_vanished_total',
    'Containers whose cgroup disappeared between discovery and read (not an error)',
  ),
  dropped: counter(
    'strata_collector_cgroup_entities_dropped_total',
    'Containers not read because max_entities was reached',
  ),
  scans: counter('strata_collector_cgroup_discovery_scans_total', 'cgroup tree scans'),
  pressureReused: counter(
    'strata_collector_cgroup_pressure_reused_total',
    "PSI file reads saved (cpu/io/memory.pressure): the system-wide PSI total of that resource has not moved, so no cgroup's can have; last values sent",
    ['resource'],
  ),
  blkioReused: counter(
    'strata_collector_cgroup_blkio_reused_total',
    "v1 blkio file pairs not re-read: the root's blkio.throttle.io_serviced_recursive had not moved, so no cgroup's counters can have; last values sent",
  ),
  memoryStatReused: counter(
    'strata_collector_cgroup_memory_stat_reused_total',
    'memory.stat reads saved: container idle since the last read (CPU time and memory usage unchanged), last values sent',
  ),
  readErrors: counter(
    'strata_collector_cgroup_read_errors_total',
    'cgroup file reads or parses that failed (unreadable, garbage)',
    ['reason'],
  ),
  ioAccountingMissing: counter(
    'strata_collector_cgroup_io_accounting_missing_total',
    'Container samples sent without (io_accounting=unavailable) or with only some (partial) v1 blkio device counters: the kernel does not count that I/O (no blk-throttle rule)',
    ['io_accounting'],
  ),
  dockerErrors: counter(
    'strata_collector_cgroup_docker_errors_total',
    'Docker Engine API requests that failed (absent socket, HTTP errors, timeouts); request = list | events',
    ['request'],
  ),
};

export class CgroupCollector implements Collector {
  readonly name = 'cgroup';
  private readonly log = componentLogger('collector.cgroup');
  private readonly once = new OnceLogger(this.log);
  private readonly paths: HostPaths;
  readonly layout: CgroupLayout;
  private readonly primaryRoot: string | undefined;
  private readonly version: string;
  private readonly include: RegExp[];
  private readonly targets = new Map<string, Target>();
  private lastScan = -Infinity;
  private rescanNow = true;
  private readonly devnames = new Map<string, string>();
  private hostNetns: NetnsId | undefined;
  private readonly dockerSocket: string | undefined;
  private docker = new Map<string, DockerContainerInfo>();
  private lastDockerList = -Infinity;
  private dockerInFlight: Promise<void> | undefined;
  private dockerFailing = false;
  private stopEvents: (() => void) | undefined;
  private readonly kernelRelease: string | undefined;
  private readonly blkioMode: BlkioAccounting;
  /** The system-wide PSI, read once per tick: while it is still, containers' PSI files are not re-read. */
  private readonly systemPressure: SystemPressure | undefined;
  /** v1 blkio: the root's recursive ops, read once per tick: while still, containers' blkio files are not re-read. */
  private readonly systemBlkio: SystemBlkio | undefined;
  /** Containers whose blkio files were not re-read this tick. */
  private blkioReused = 0;
  /** PSI file reads saved this tick, per resource (counted once per tick). */
  private readonly psiReused: Record<PsiResource, number> = { cpu: 0, io: 0, memory: 0 };
  /** Per tick: samples with io_accounting partial / unavailable (counted once per tick). */
  private ioPartial = 0;
  private ioUnavailable = 0;

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
    this.version = this.layout.mode;
    this.include = config.include.map(globToRegExp);
    if (config.docker.enabled) {
      const env = process.env.DOCKER_HOST;
      const fromEnv = env?.startsWith('unix://') ? env : undefined;
      this.dockerSocket = dockerSocketPath(
        opts.dockerSocket ?? config.docker.socket ?? fromEnv ?? '/var/run/docker.sock',
      );
    }
    this.hostNetns = hostNetnsIdentity(this.paths.proc);
    this.kernelRelease = opts.kernelRelease ?? readRelease(this.paths.proc);
    this.blkioMode =
      config.blkio_accounting === 'auto' ? blkioAccounting(this.kernelRelease) : config.blkio_accounting;
    if (config.pressure && this.layout.v2) this.systemPressure = new SystemPressure(this.paths.proc);
    const blkioRoot = this.layout.v1.get('blkio');
    if (blkioRoot !== undefined) this.systemBlkio = new SystemBlkio(blkioRoot);
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
        docker: this.dockerSocket,
        kernel: this.kernelRelease,
        ...(this.layout.v1.has('blkio') ? { blkio_accounting: this.blkioMode } : {}),
      },
      'cgroup layout',
    );
    if (this.dockerSocket && this.config.docker.events && !this.stopEvents) {
      // A container start/die/rename makes the next tick re-scan and re-list instead of waiting for
      // discovery_interval. Errors (absent socket...) are counted and logged once, like the list's.
      this.stopEvents = watchDockerEvents(
        this.dockerSocket,
        () => {
          this.rescanNow = true;
          this.lastDockerList = -Infinity;
        },
        (err) => this.dockerError(err, 'events'),
      );
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
    if (this.rescanNow || now - this.lastScan >= this.config.discovery_interval) {
      const newDocker = this.discover();
      if (
        this.dockerSocket &&
        (newDocker || now - this.lastDockerList >= this.config.docker.refresh_interval)
      ) {
        await this.refreshDocker();
      }
    }
    this.gatherSync(acc);
  }

  /** Reads every known container (no discovery); the bench calls it directly. */
  gatherSync(acc: Accumulator): void {
    const ts = this.opts.clock ? this.opts.clock() : Date.now();
    this.memStatReused = 0;
    this.ioPartial = this.ioUnavailable = 0;
    const reused = this.psiReused;
    reused.cpu = reused.io = reused.memory = 0;
    this.blkioReused = 0;
    // Before any container: a stall or I/O after these reads shows at the next tick (pressure.ts).
    if (this.targets.size) {
      this.systemPressure?.refresh(ts);
      this.systemBlkio?.refresh();
    }
    for (const t of this.targets.values()) {
      const sample = this.read(t, acc, ts);
      if (sample) acc.add(sample);
    }
    metrics.entities.set(this.targets.size);
    if (this.memStatReused) metrics.memoryStatReused.inc(this.memStatReused);
    for (const r of PSI_RESOURCES) if (reused[r]) metrics.pressureReused.inc({ resource: r }, reused[r]);
    if (this.blkioReused) metrics.blkioReused.inc(this.blkioReused);
    if (this.ioPartial) metrics.ioAccountingMissing.inc({ io_accounting: 'partial' }, this.ioPartial);
    if (this.ioUnavailable)
      metrics.ioAccountingMissing.inc({ io_accounting: 'unavailable' }, this.ioUnavailable);
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
      maxDepth: this.config.max_depth,
      maxEntities: this.config.max_entities,
    });
    if (truncated) {
      metrics.dropped.inc(truncated);
      this.once.warn(
        'max_entities',
        { max_entities: this.config.max_entities, dropped: truncated },
        'more containers than collectors.cgroup.max_entities; the rest are not read',
      );
    }
    for (const [path, t] of this.targets) {
      if (!found.has(path)) this.drop(t);
    }
    let unknownDocker = false;
    for (const [path, c] of found) {
      if (this.targets.has(path)) continue;
      const t = this.open(path, c);
      if (!t) {
        metrics.vanished.inc(); // removed between the scan and the open: not an error
        continue;
      }
      this.targets.set(path, t);
      if (c.kind === 'docker' && !this.docker.has(c.id)) unknownDocker = true;
    }
    this.groupSharedNetns();
    this.refreshBlkioTrust();
    this.applyDockerInfo();
    return unknownDocker;
  }

  /**
   * Decides, per container and v1 blkio device, whether the kernel counts its I/O (blkio-trust.ts),
   * at each discovery: one read of the root's blkio.throttle.io_serviced (kernels >= 6.10), or the
   * four rule files of each container and of its ancestors, each directory once (5.16-6.4 and
   * unknown), plus /sys/block/{dev,stat} of the disks. Nothing on kernels that count everything.
   * Containers not counted on some disk or direction get the label io_accounting (partial /
   * unavailable), and their uncounted device counters are not sent (read() filters them).
   */
  private refreshBlkioTrust(): void {
    const root = this.layout.v1.get('blkio');
    if (this.blkioMode === 'all' || root === undefined) return;
    let active: Map<string, number> | undefined;
    if (this.blkioMode === 'activated') {
      active = new Map();
      try {
        for (const d of blkioDevices(readOnce(`${root}/blkio.throttle.io_serviced`)))
          active.set(d, BLKIO_BOTH);
      } catch {
        // unreadable root file: no disk is known to be counted
      }
    }
    const used = usedDisks(this.paths.sys);
    const cache = new Map<string, Map<string, number>>();
    let missing = 0;
    for (const t of this.targets.values()) {
      if (!t.blkioOps && !t.blkioBytes) continue;
      const trust = active ?? inheritedRules(root, t.path, cache);
      let full = used !== undefined;
      if (used) for (const d of used) if (trust.get(d) !== BLKIO_BOTH) full = false;
      // 6.10+: a disk has lines in these files only once blk-throttle counts it, so every line read
      // is counted and read() needs no per-tick filter (one that would also hide a disk activated
      // after this scan until the next one); the trust map only decides the label.
      t.blkioTrust = active ? undefined : trust;
      t.ioAccounting = full ? undefined : trust.size === 0 ? 'unavailable' : 'partial';
      if (t.ioAccounting === undefined) delete t.labels.io_accounting;
      else {
        t.labels.io_accounting = t.ioAccounting;
        missing++;
      }
    }
    if (missing) {
      this.once.warn(
        'blkio-accounting',
        {
          kernel: this.kernelRelease ?? 'unknown',
          blkio_accounting: this.blkioMode,
          containers: missing,
        },
        `cgroup v1 blkio: ${this.config.blkio_accounting === 'auto' ? blkioAccountingReason(this.blkioMode, this.kernelRelease) : `collectors.cgroup.blkio_accounting is "${this.blkioMode}"`}; ` +
          `${missing} container(s) get the label io_accounting=partial|unavailable and no number for the disks ` +
          'and directions not counted (never a 0). Remedies: boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1), ' +
          'or set a throttle limit nothing reaches on a parent cgroup, e.g. ' +
          'echo "MAJ:MIN 1000000000" > /sys/fs/cgroup/blkio/docker/blkio.throttle.write_iops_device ' +
          '(and read_iops_device), or per container: docker run --device-write-iops /dev/vda:1000000000 ' +
          '--device-read-iops /dev/vda:1000000000',
      );
    }
  }

  /**
   * Containers that share one network namespace (the containers of a Kubernetes pod, which all
   * join the pod sandbox's; `docker run --network container:X`) would each report the same
   * interfaces: summed per node or per pod, the traffic would count once per container. The
   * namespace's interfaces are read and reported once, by the first container of the group in
   * cgroup path order (stable across ticks); the others report none and carry the label
   * `netns_shared_with` = that container's cgroup path. One /proc/PID/net/dev read per namespace
   * per tick instead of one per container. Regrouped at every discovery (a vanished reporter makes
   * the next tick rescan).
   */
  private groupSharedNetns(): void {
    const reporter = new Map<string, Target>();
    const sorted = [...this.targets.values()].sort((a, b) =>
      a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
    );
    for (const t of sorted) {
      const key = t.netnsKey;
      const first = key === undefined ? undefined : reporter.get(key);
      if (key === undefined || first === undefined) {
        if (key !== undefined) reporter.set(key, t);
        if (t.labels.netns_shared_with !== undefined) {
          // It reports its namespace again (the former reporter went away): reopen its net/dev.
          delete t.labels.netns_shared_with;
          if (this.config.network) this.openNetdev(t);
        }
        continue;
      }
      t.netdev?.close();
      t.netdev = undefined;
      t.labels.netns_shared_with = first.path;
    }
  }

  private async refreshDocker(): Promise<void> {
    if (!this.dockerSocket) return;
    if (this.dockerInFlight) return this.dockerInFlight;
    this.lastDockerList = Date.now();
    this.dockerInFlight = (async () => {
      try {
        const list = await listDockerContainers(
          this.dockerSocket!,
          this.config.docker.timeout,
          this.config.docker.max_name_length,
        );
        this.docker = new Map(list.map((c) => [c.id, c]));
        if (this.dockerFailing) this.log.info({ socket: this.dockerSocket }, 'docker API answers again');
        this.dockerFailing = false;
        this.applyDockerInfo();
      } catch (err) {
        this.dockerError(err, 'list');
      } finally {
        this.dockerInFlight = undefined;
      }
    })();
    return this.dockerInFlight;
  }

  private dockerError(err: unknown, request: 'list' | 'events'): void {
    metrics.dockerErrors.inc({ request });
    this.dockerFailing = true;
    const code = errorCode(err) ?? errorCode((err as Error | undefined)?.cause) ?? 'error';
    // One key per socket and cause (not per request): an absent socket is one log line, not two.
    this.once.warn(
      `docker:${this.dockerSocket}:${code}`,
      { socket: this.dockerSocket, request, err: (err as Error).message },
      code === 'ENOENT'
        ? 'no Docker socket here; containers are still found by the cgroup scan, named by short id ' +
            '(set collectors.cgroup.docker.socket or DOCKER_HOST, or docker.enabled: false)'
        : 'Docker API request failed; containers are still found by the cgroup scan, named by short id',
    );
  }

  private applyDockerInfo(): void {
    for (const t of this.targets.values()) {
      const info = this.docker.get(t.c.id);
      if (!info) continue;
      t.name = info.name;
      if (info.image) t.labels.image = info.image;
      t.labels.container_name = info.name;
      // Kubernetes on the docker runtime (dockershim / cri-dockerd) labels its containers.
      const l = info.labels;
      if (l['io.kubernetes.pod.name']) t.labels.pod = l['io.kubernetes.pod.name'];
      if (l['io.kubernetes.pod.namespace']) t.labels.namespace = l['io.kubernetes.pod.namespace'];
      if (l['io.kubernetes.container.name']) t.labels.container_name = l['io.kubernetes.container.name'];
    }
  }

  /** Opens the files this cgroup has, in each hierarchy. */
  private open(path: string, c: Classified): Target | undefined {
    const v1 = this.layout.v1;
    const v2dir = this.layout.v2 !== undefined ? this.layout.v2 + path : undefined;
    const at = (dir: string | undefined, file: string): KernelFile | undefined => {
      if (dir === undefined) return undefined;
      const p = `${dir}/${file}`;
      return existsSync(p) ? new KernelFile(p, true) : undefined; // cgroupfs: single-record files
    };
    const ctl = (controller: string): string | undefined => {
      const root = v1.get(controller);
      return root === undefined ? undefined : root + path;
    };
    const t: Target = {
      path,
      c,
      primaryDir: `${this.primaryRoot}${path}`,
      memStatV2: false,
      memSpecs: [
        { wanted: V1_MEMORY_STAT_COUNTERS, into: {} },
        { wanted: V1_MEMORY_STAT_GAUGES, into: {} },
      ],
      memTable: V1_MEM_TABLE,
      memLimitV2: false,
      memStatCountdown: 0,
      limitCountdown: 0,
      quotaCountdown: 0,
      pressure: [],
      ownNetns: true,
      labels: { ...c.labels, cgroup_version: this.version, cgroup_path: path },
      name: c.name,
    };
    // CPU: v2 cpu.stat has usage/user/system in µs (and throttling where the cpu controller is on v2).
    t.cpuV2 = at(v2dir, 'cpu.stat');
    t.cpuV1 = at(ctl('cpu'), 'cpu.stat');
    if (t.cpuV1) t.cpuQuota = at(ctl('cpu'), 'cpu.cfs_quota_us');
    if (!t.cpuV2) {
      t.cpuacctUsage = at(ctl('cpuacct'), 'cpuacct.usage');
      t.cpuacctStat = at(ctl('cpuacct'), 'cpuacct.stat');
    }
    // Memory and I/O: the v1 controllers when mounted (hybrid, v1), else v2.
    if (v1.has('memory')) {
      t.memStat = at(ctl('memory'), 'memory.stat');
      t.memUsage = at(ctl('memory'), 'memory.usage_in_bytes');
      t.memLimit = at(ctl('memory'), 'memory.limit_in_bytes');
    } else {
      t.memStat = at(v2dir, 'memory.stat');
      t.memStatV2 = true;
      t.memSpecs[0].wanted = V2_MEMORY_STAT_COUNTERS;
      t.memSpecs[1].wanted = V2_MEMORY_STAT_GAUGES;
      t.memTable = V2_MEM_TABLE;
      t.memUsage = at(v2dir, 'memory.current');
      t.memLimit = at(v2dir, 'memory.max');
      t.memLimitV2 = true;
    }
    if (v1.has('blkio')) {
      // The _recursive files include child cgroups, like v2 io.stat; older kernels lack them.
      const dir = ctl('blkio');
      t.blkioOps = at(dir, 'blkio.throttle.io_serviced_recursive') ?? at(dir, 'blkio.throttle.io_serviced');
      t.blkioBytes =
        at(dir, 'blkio.throttle.io_service_bytes_recursive') ?? at(dir, 'blkio.throttle.io_service_bytes');
    } else {
      t.ioStat = at(v2dir, 'io.stat');
    }
    if (this.config.pressure) {
      for (const r of ['cpu', 'io', 'memory'] as const) {
        const f = at(v2dir, `${r}.pressure`);
        if (f) t.pressure.push(psiFile(f, r));
      }
    }
    if (!t.cpuV2 && !t.cpuV1 && !t.cpuacctUsage && !t.memStat && !t.memUsage && !t.ioStat && !t.blkioOps) {
      // Nothing to read: the cgroup went away between the scan and here.
      this.drop(t);
      return undefined;
    }
    if (this.config.network) this.openNetdev(t);
    return t;
  }

  /** Picks the first live pid of the cgroup and opens its /proc/PID/net/dev (own netns only). */
  private openNetdev(t: Target): void {
    t.netdev?.close();
    t.netdev = undefined;
    let procs: string;
    try {
      procs = readOnce(`${t.primaryDir}/cgroup.procs`);
    } catch {
      return;
    }
    for (const line of procs.split('\n')) {
      const pid = line.trim();
      if (!pid) continue;
      const base = `${this.paths.proc}/${pid}`;
      if (this.hostNetns !== undefined) {
        let ns: NetnsId | undefined;
        try {
          const st = statSync(`${base}/ns/net`);
          ns = { ino: st.ino, dev: st.dev };
        } catch (err) {
          if (isGone(err)) continue; // that pid just exited: try the next
          // unreadable (EACCES): cannot tell, read its net/dev as when the host's netns is unknown
        }
        if (ns && ns.ino === this.hostNetns.ino && ns.dev === this.hostNetns.dev) {
          t.ownNetns = false; // host networking: its interfaces are the host's, reported there
          t.netnsKey = undefined;
          return;
        }
        t.netnsKey = ns ? `${ns.dev}:${ns.ino}` : undefined;
      }
      if (existsSync(`${base}/net/dev`)) {
        t.ownNetns = true;
        t.netdev = new KernelFile(`${base}/net/dev`);
        return;
      }
    }
  }

  private drop(t: Target): void {
    for (const f of [
      t.cpuV2,
      t.cpuV1,
      t.cpuQuota,
      t.cpuacctUsage,
      t.cpuacctStat,
      t.memStat,
      t.memUsage,
      t.memLimit,
      t.ioStat,
      t.blkioOps,
      t.blkioBytes,
      t.netdev,
      ...t.pressure.map((p) => p.file),
    ]) {
      f?.close();
    }
    this.targets.delete(t.path);
  }

  /** One container's sample, or undefined when it vanished (counted, not an error). */
  private read(t: Target, acc: Accumulator, ts: number): EntitySample | undefined {
    const counters: Record<string, number> = {};
    const gauges: Record<string, number> = {};
    const problems = this.problems;
    problems.length = 0;
    this.vanished = false;
    this.acc = acc;
    const get = this.get;
    const bytes = this.bytes;
    let text: string | undefined;
    let len: number;

    // CPU. Each file is parsed from the read buffer (bytes.ts) and, when its content is not the
    // regular format, again as text by the string parser, which reports the problems.
    len = bytes(t.cpuV2);
    if (len >= 0 && !flatKeyedBytes(sharedBuffer(), len, V2_CPU_TABLE, counters)) {
      parseFlatKeyed(latin1(len), 'cpu.stat', [{ wanted: V2_CPU_STAT, into: counters }], problems);
    }
    if (t.cpuV1 && counters.cpu_periods_total === undefined) this.readV1Throttling(t, counters, problems);
    len = bytes(t.cpuacctUsage);
    if (len >= 0) {
      const ns = singleBytes(sharedBuffer(), len) ?? parseSingle(latin1(len));
      if (Number.isNaN(ns)) problems.push('cpuacct.usage: not a number');
      else counters.cpu_usage_usec_total = Math.floor(ns / 1000);
    }
    len = bytes(t.cpuacctStat);
    if (len >= 0 && !flatKeyedBytes(sharedBuffer(), len, V1_CPUACCT_TABLE, counters)) {
      const spec = { wanted: V1_CPUACCT_STAT, into: counters, factor: V1_CPUACCT_FACTOR };
      parseFlatKeyed(latin1(len), 'cpuacct.stat', [spec], problems);
    }

    // Memory. memory.usage first: with the CPU time above it decides whether memory.stat, the
    // dearest file of the tick, has to be read again (readMemoryStat).
    let usage: number | undefined;
    len = bytes(t.memUsage);
    if (len >= 0) {
      const v = singleBytes(sharedBuffer(), len) ?? parseSingle(latin1(len));
      if (Number.isNaN(v)) problems.push(`${file(t.memUsage)}: not a number`);
      else usage = v;
    }
    if (t.memStat) this.readMemoryStat(t, usage, counters, gauges, problems);
    if (usage !== undefined) gauges.memory_usage_bytes = usage; // after memory.stat's: the message's key order
    if (t.memLimit && --t.limitCountdown <= 0) {
      t.limitCountdown = LIMIT_EVERY_TICKS;
      text = get(t.memLimit);
      if (text !== undefined) {
        const v = t.memLimitV2 ? parseMemoryMax(text) : parseSingle(text);
        t.lastLimit = v !== undefined && !Number.isNaN(v) && v < V1_UNLIMITED_FROM ? v : undefined;
      }
    }
    if (t.lastLimit !== undefined) gauges.memory_limit_bytes = t.lastLimit;

    // Block I/O per device
    let devices: DeviceCounters | undefined;
    text = get(t.ioStat);
    if (text !== undefined) devices = parseIoStat(text, problems);
    if (t.ioAccounting !== 'unavailable') {
      const still = this.systemBlkio ? this.systemBlkio.stretch : -1;
      const last = t.blkioLast;
      if (last && still >= 0 && last.stretch === still && --last.countdown > 0) {
        // No cgroup's counters moved since the last read (blkio-still.ts): its bytes, parsed again.
        devices ??= {};
        for (let i = 0; i < 2; i++)
          blkioBytes(last.copies[i]!, last.lens[i]!, BLKIO_FILES[i]!.names, devices);
        this.blkioReused++;
      } else {
        if (last) last.stretch = -1;
        let clean = true;
        for (let i = 0; i < 2; i++) {
          const f = BLKIO_FILES[i]!;
          len = bytes(t[f.file]);
          if (len < 0) {
            clean = false;
            continue;
          }
          devices ??= {};
          if (blkioBytes(sharedBuffer(), len, f.names, devices)) {
            if (clean && still >= 0) this.keepBlkio(t, i, len);
          } else {
            clean = false;
            parseBlkioRw(latin1(len), f.kind, devices, problems, f.name);
          }
        }
        // Only a clean read of both files is reused: garbage is read (and reported) every tick.
        if (clean && still >= 0 && t.blkioLast) {
          t.blkioLast.stretch = still;
          t.blkioLast.countdown = BLKIO_MAX_AGE;
        }
      }
      // none left (every line was a disk not counted): no devices rather than an empty, idle-looking set
      if (devices && t.blkioTrust && !keepCounted(devices, t.blkioTrust)) devices = undefined;
      if (t.ioAccounting === 'partial') this.ioPartial++;
    } else {
      this.ioUnavailable++;
    }

    // PSI: not re-read while the system's own PSI proves the file unchanged (pressure.ts)
    for (const p of t.pressure) {
      if (readPsi(p, this.systemPressure, ts, bytes, counters, gauges, problems)) {
        this.psiReused[p.resource]++;
      }
    }

    this.acc = undefined;
    if (this.vanished) return this.vanish(t);

    // Network: the container's own namespace. A dead pid is not a vanished container: pick another.
    let interfaces: Record<string, InstanceMetrics> | undefined;
    if (t.netdev) {
      let net: string | undefined;
      try {
        net = t.netdev.read();
        // An fd kept on /proc/PID/net/dev of a pid that exited reads empty: pick another pid.
        if (net === '') throw new Error('empty net/dev');
      } catch {
        this.openNetdev(t);
        try {
          net = t.netdev?.read();
        } catch {
          net = undefined;
        }
      }
      if (net !== undefined) interfaces = parseNetDev(net, problems);
    }

    for (const p of problems) {
      metrics.readErrors.inc({ reason: 'parse' });
      acc.error('cgroup', `cgroup:${t.path}:${p}`, new InvalidDataError(`cgroup ${t.path}: ${p}`));
    }

    const sample: EntitySample = {
      entity: {
        layer: 'container',
        kind: t.c.kind,
        id: t.c.id,
        name: t.name,
        labels: t.labels,
        parent: { layer: 'host', id: this.opts.nodeId },
      },
      ts,
      counters,
      gauges,
    };
    if (devices) sample.devices = this.nameDevices(devices);
    if (interfaces) sample.interfaces = interfaces;
    return sample;
  }

  // Per-read state of read() (one container at a time, synchronous): fields and a bound method
  // instead of a closure and arrays allocated per container per tick.
  private vanished = false;
  private acc: Accumulator | undefined;
  private readonly problems: string[] = [];
  /** memory.stat reads saved this tick (readMemoryStat), counted once per tick. */
  private memStatReused = 0;
  private readonly get = (f: KernelFile | undefined): string | undefined => {
    if (!f || this.vanished) return undefined;
    try {
      return f.read();
    } catch (err) {
      if (isGone(err)) {
        this.vanished = true;
        return undefined;
      }
      metrics.readErrors.inc({ reason: errorCode(err) ?? 'read' });
      this.acc?.error('cgroup', `cgroup:${f.path}:${errorCode(err) ?? 'read'}`, err);
      return undefined;
    }
  };

  /** Like get, into sharedBuffer(): the length read, or -1 (no file, vanished, read error). */
  private readonly bytes = (f: KernelFile | undefined): number => {
    if (!f || this.vanished) return -1;
    try {
      return f.readShared();
    } catch (err) {
      if (isGone(err)) {
        this.vanished = true;
        return -1;
      }
      metrics.readErrors.inc({ reason: errorCode(err) ?? 'read' });
      this.acc?.error('cgroup', `cgroup:${f.path}:${errorCode(err) ?? 'read'}`, err);
      return -1;
    }
  };

  /** Copies the blkio file just read (sharedBuffer) into the container's last read. */
  private keepBlkio(t: Target, i: number, len: number): void {
    t.blkioLast ??= { stretch: -1, countdown: 0, copies: [Buffer.alloc(0), Buffer.alloc(0)], lens: [0, 0] };
    t.blkioLast.copies[i] = keep(t.blkioLast.copies[i]!, sharedBuffer(), len);
    t.blkioLast.lens[i] = len;
  }

  /**
   * memory.stat (page faults; anon and file bytes) costs the kernel ≈ 7 µs per read in a tight loop
   * and ≈ 9.5 µs at 1 Hz on this development VM (v1; v2's is longer) — a third of a container's
   * kernel time per tick. Like cAdvisor's dynamic housekeeping, but keyed on evidence rather than
   * on a timer: while a container is idle it is not re-read. "Idle" is: its CPU time
   * (cpu_usage_usec_total) and its memory usage (memory.usage_in_bytes / memory.current) are both
   * exactly what they were at the last read. Page faults are taken by the container's own tasks,
   * which then run, so its CPU time moves; anon and file pages charged or uncharged change its
   * usage. So the reused values are the file's values. The file is still read at least every
   * MEMORY_STAT_MAX_AGE ticks (bounds staleness in the rare cases the rule misses: a fault taken on
   * a process's memory by another process — /proc/PID/mem, process_vm_readv — is then counted up
   * to 10 s later, never lost, since the counters are cumulative). Without a CPU figure (no cpu
   * files) it is read every tick.
   */
  private readMemoryStat(
    t: Target,
    usage: number | undefined,
    counters: Record<string, number>,
    gauges: Record<string, number>,
    problems: string[],
  ): void {
    const cpu = counters.cpu_usage_usec_total;
    const last = t.memStatLast;
    if (last && cpu !== undefined && cpu === last.cpu && usage === last.usage && --t.memStatCountdown > 0) {
      const { names, spec, values, found } = last;
      for (let i = 0; i < names.length; i++) {
        if (found[i]) (spec[i] === 0 ? counters : gauges)[names[i]!] = values[i]!;
      }
      this.memStatReused++;
      return;
    }
    const len = this.bytes(t.memStat);
    if (len < 0) {
      t.memStatLast = undefined;
      return;
    }
    const before = problems.length;
    if (!flatKeyedBytes(sharedBuffer(), len, t.memTable, counters, gauges)) {
      t.memSpecs[0].into = counters;
      t.memSpecs[1].into = gauges;
      parseFlatKeyed(latin1(len), 'memory.stat', t.memSpecs, problems);
      t.memSpecs[0].into = t.memSpecs[1].into = NO_RECORD; // keep no reference to the tick's records
    }
    // Only a clean read with a CPU figure is reused: garbage is read (and reported) every tick.
    if (cpu === undefined || problems.length !== before) {
      t.memStatLast = undefined;
      return;
    }
    const table = t.memTable;
    const keep: MemoryStatRead = t.memStatLast ?? {
      cpu,
      usage,
      names: table.names,
      spec: table.spec,
      values: new Float64Array(table.names.length),
      found: new Uint8Array(table.names.length),
    };
    keep.cpu = cpu;
    keep.usage = usage;
    for (let i = 0; i < table.names.length; i++) {
      const v = (table.spec[i] === 0 ? counters : gauges)[table.names[i]!];
      keep.found[i] = v === undefined ? 0 : 1;
      keep.values[i] = v ?? 0;
    }
    t.memStatLast = keep;
    t.memStatCountdown = MEMORY_STAT_MAX_AGE;
  }

  /**
   * v1 cpu.stat throttling (nr_periods, nr_throttled, throttled_time). The kernel only counts
   * periods for a cgroup with a CFS quota of its own, so while cpu.cfs_quota_us is -1 the counters
   * cannot move: they are read at each quota check (every LIMIT_EVERY_TICKS ticks) and the last
   * values are emitted in between. With a quota set (or no readable quota file) they are read
   * every tick. A quota set between two checks shows its throttling at the next check (at most
   * LIMIT_EVERY_TICKS ticks later), as counters, so nothing is lost, only delayed.
   */
  private readV1Throttling(t: Target, counters: Record<string, number>, problems: string[]): void {
    let check = false;
    if (t.cpuQuota) {
      check = --t.quotaCountdown <= 0;
      if (!check && t.v1Throttling) {
        const v = t.v1Throttling;
        if (v.cpu_periods_total !== undefined) counters.cpu_periods_total = v.cpu_periods_total;
        if (v.cpu_throttled_periods_total !== undefined)
          counters.cpu_throttled_periods_total = v.cpu_throttled_periods_total;
        if (v.cpu_throttled_usec_total !== undefined)
          counters.cpu_throttled_usec_total = v.cpu_throttled_usec_total;
        return;
      }
    }
    let noQuota = false;
    if (check) {
      t.quotaCountdown = LIMIT_EVERY_TICKS;
      const q = this.bytes(t.cpuQuota);
      noQuota = q >= 0 && (singleBytes(sharedBuffer(), q) ?? parseSingle(latin1(q))) === -1;
    }
    const len = this.bytes(t.cpuV1);
    t.v1Throttling = undefined;
    if (len < 0) return;
    const before = problems.length;
    const into: V1Throttling & Record<string, number> = {};
    if (!flatKeyedBytes(sharedBuffer(), len, V1_CPU_TABLE, into)) {
      const spec = { wanted: V1_CPU_STAT, into, factor: V1_CPU_STAT_FACTOR };
      parseFlatKeyed(latin1(len), 'cpu.stat', [spec], problems);
    }
    Object.assign(counters, into);
    // Only clean values are reused: a garbage file is read (and reported) again every tick.
    if (noQuota && problems.length === before) t.v1Throttling = into;
  }

  private vanish(t: Target): undefined {
    metrics.vanished.inc();
    this.drop(t);
    this.rescanNow = true;
    return undefined;
  }

  private nameDevices(devices: DeviceCounters): Record<string, InstanceMetrics> {
    const out: Record<string, InstanceMetrics> = {};
    for (const majMin in devices) out[this.devname(majMin)] = { counters: devices[majMin]! };
    return out;
  }

  /** MAJ:MIN → kernel name via /sys/dev/block/MAJ:MIN/uevent, cached; MAJ:MIN when unresolvable. */
  private devname(majMin: string): string {
    let name = this.devnames.get(majMin);
    if (name === undefined) {
      try {
        name = devnameFromUevent(readOnce(`${this.paths.sys}/dev/block/${majMin}/uevent`)) ?? majMin;
      } catch {
        name = majMin;
      }
      if (this.devnames.size > 4096) this.devnames.clear();
      this.devnames.set(majMin, name);
    }
    return name;
  }

  async shutdown(): Promise<void> {
    this.stopEvents?.();
    this.stopEvents = undefined;
    for (const t of [...this.targets.values()]) this.drop(t);
    this.systemPressure?.close();
    this.systemBlkio?.close();
    if (this.dockerInFlight) await this.dockerInFlight.catch(() => undefined);
  }
}

/** A network namespace's identity: the inode (and nsfs device) of its /proc/PID/ns/net. */
export interface NetnsId {
  ino: number;
  dev: number;
}

function netnsIdentity(path: string): NetnsId | undefined {
  try {
    const st = statSync(path);
    return { ino: st.ino, dev: st.dev };
  } catch {
    return undefined;
  }
}

/**
 * The network namespace that counts as "the host's" (a container in it has no interfaces of its
 * own: they are the host's, reported by the host layer). In order:
 *  1. HOST_PROC/1/ns/net, the host's init, when readable;
 *  2. else the agent's own, HOST_PROC/self/ns/net: /proc/1/ns/net is often unreadable (a
 *     restricted PID 1, a user namespace, this development VM), and the agent runs in the host's
 *     network namespace (natively, or in a container with host networking, as deploy/ does).
 *     HOST_PROC/self exists when HOST_PROC is the host's /proc seen from the agent's own PID
 *     namespace (the default /proc, or a mounted host /proc with hostPID);
 *  3. else unknown (e.g. a captured tree): every container's /proc/PID/net/dev is read.
 * Compared by inode and st_dev (the nsfs device), from stat, never by readlink text.
 */
export function hostNetnsIdentity(proc: string): NetnsId | undefined {
  return netnsIdentity(`${proc}/1/ns/net`) ?? netnsIdentity(`${proc}/self/ns/net`);
}

const NO_RECORD: Record<string, number> = {};

/**
 * Removes from v1 blkio device counters the devices and directions the kernel does not count;
 * false when it removed every device (there were some). A file without device lines ("Total 0")
 * stays an empty set, as before.
 */
function keepCounted(devices: DeviceCounters, trust: Map<string, number>): boolean {
  let left = false;
  let removed = false;
  for (const dev in devices) {
    const bits = trust.get(dev) ?? 0;
    if (bits === BLKIO_BOTH) {
      left = true;
      continue;
    }
    if (bits === 0) {
      delete devices[dev];
      removed = true;
      continue;
    }
    const c = devices[dev]!;
    if (!(bits & BLKIO_READ)) {
      delete c.reads_completed_total;
      delete c.read_bytes_total;
    }
    if (!(bits & BLKIO_WRITE)) {
      // a discard is a write to blk-throttle (op_is_write)
      delete c.writes_completed_total;
      delete c.written_bytes_total;
      delete c.discards_completed_total;
      delete c.discarded_bytes_total;
    }
    left = true;
  }
  return left || !removed;
}

/** HOST_PROC/sys/kernel/osrelease, or undefined (a captured tree without it). */
function readRelease(proc: string): string | undefined {
  try {
    return readOnce(`${proc}/sys/kernel/osrelease`).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The last read's bytes as text, for the string parsers (irregular content only). */
function latin1(len: number): string {
  return sharedBuffer().toString('latin1', 0, len);
}

const V2_CPU_TABLE = keyedTable([{ wanted: V2_CPU_STAT }]);
const V1_CPU_TABLE = keyedTable([{ wanted: V1_CPU_STAT, factor: V1_CPU_STAT_FACTOR }]);
const V1_CPUACCT_TABLE = keyedTable([{ wanted: V1_CPUACCT_STAT, factor: V1_CPUACCT_FACTOR }]);
const V1_MEM_TABLE = keyedTable([{ wanted: V1_MEMORY_STAT_COUNTERS }, { wanted: V1_MEMORY_STAT_GAUGES }]);
const V2_MEM_TABLE = keyedTable([{ wanted: V2_MEMORY_STAT_COUNTERS }, { wanted: V2_MEMORY_STAT_GAUGES }]);
const BLKIO_OPS = ['reads_completed_total', 'writes_completed_total', 'discards_completed_total'] as const;
const BLKIO_BYTES = ['read_bytes_total', 'written_bytes_total', 'discarded_bytes_total'] as const;
/** The two v1 blkio files of a container, in read order (ops, then bytes: the message's key order). */
const BLKIO_FILES = [
  { file: 'blkioOps', names: BLKIO_OPS, kind: 'ops', name: 'blkio.throttle.io_serviced' },
  { file: 'blkioBytes', names: BLKIO_BYTES, kind: 'bytes', name: 'blkio.throttle.io_service_bytes' },
] as const;

function file(f: KernelFile | undefined): string {
  if (!f) return '';
  const i = f.path.lastIndexOf('/');
  return f.path.slice(i + 1);
}

export function createCgroupCollector(input: unknown, opts: CgroupCollectorOptions): CgroupCollector {
  return new CgroupCollector(parseCgroupConfig(input), opts);
}
