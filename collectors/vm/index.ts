// The vm collector: each QEMU guest seen from the host (layer `vm`, kind `qemu`, parent the host).
// Per VM it keeps one persistent QMP connection (qmp.ts) and per tick reads:
//   /proc/PID/stat + status      hypervisor CPU (user/system), page faults, RSS
//   /proc/PID/task/TID/stat      vCPU thread time for the thread ids of `query-cpus-fast` (cached,
//                                refreshed when a thread is gone or on reconnect)
//   query-blockstats             per-drive ops, bytes and total time (the hypervisor's I/O view)
//   qom-get <balloon> guest-stats  the guest's own fault counts via the balloon driver
//   query-balloon                the balloon's actual size (VMs with a balloon device)
//   /proc/PID/smaps_rollup       the hypervisor's memory split (Pss, anonymous, file; KSM-merged)
//   /proc/PID/ksm_stat           what KSM merged of this process (kernels that have the file)
//   host /proc/net/dev           the VM's tap devices (names from -netdev tap,ifname= and, for taps
//                                passed as fds like libvirt does, from /proc/PID/fdinfo: tapfds.ts)
// Identity (once per connection): query-uuid when non-zero, else query-name, else the socket's
// basename; accel from query-kvm. Names on the wire: docs/metrics.md, layer vm.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConnectionError, errorCode, InvalidDataError } from '../../lib/errors.ts';
import { componentLogger } from '../../lib/log.ts';
import { counter, gauge } from '../../lib/metrics.ts';
import type { EntitySample, InstanceMetrics } from '../../schemas/sample.ts';
import { isGone, KernelFile } from '../procfs/fileio.ts';
import { kernelPageSize } from '../procfs/pagesize.ts';
import { parseNetDev } from '../procfs/parsers.ts';
import { type Accumulator, type Collector, type HostPaths, hostPathsFromEnv } from '../types.ts';
import { backingDevice } from './backing.ts';
import { parseVmConfig, type VmCollectorConfig } from './config.ts';
import { sharedVmDirectory, type VmDirectory, type VmInfo } from './directory.ts';
import { discoverQmpSockets, findQemuPid } from './discovery.ts';
import { MEMORY_RSS, VCPU, VCPU_COUNT } from './metrics.ts';
import {
  balloonActual,
  balloonGuestStats,
  blockImageFiles,
  blockstatsDevices,
  configuredMemory,
  findBalloonPath,
  MEMORY_CONFIGURED_NAME,
  nonZeroUuid,
  type PidStat,
  parseKsmStat,
  parsePidStat,
  parseQemuCmdline,
  parseSmapsRollup,
  parseStatusRssBytes,
  pidStatCounters,
  processCgroupPath,
  threadUsec,
  vcpuThreadIds,
} from './parsers.ts';
import { QmpClient } from './qmp.ts';
import { tunFdTaps } from './tapfds.ts';

export { parseVmConfig, VmCollectorConfig } from './config.ts';
export { sharedVmDirectory, VmDirectory, type VmInfo } from './directory.ts';

const m = {
  vms: gauge('strata_vm_discovered_vms', 'QEMU guests the vm collector currently follows'),
  qmpErrors: counter('strata_vm_qmp_errors_total', 'QMP commands that failed or timed out', ['command']),
  qmpConnects: counter('strata_vm_qmp_connects_total', 'QMP connections established (reconnects included)'),
  overflow: counter('strata_vm_ignored_vms_total', 'QMP sockets ignored because maxVms was reached'),
  fdScanErrors: counter(
    'strata_vm_tap_fd_scan_errors_total',
    'QEMU fd directories that could not be read for tap names (command-line names used alone)',
    ['code'],
  ),
};

export interface VmCollectorOptions {
  paths?: HostPaths;
  /** The host entity id: every `vm` entity's parent. */
  nodeId: string;
  /** Where discovered VMs are published for the guest collector; default the shared one. */
  directory?: VmDirectory;
}

interface VmState {
  qmpSocket: string;
  qmp: QmpClient;
  connectsSeen: number;
  identity?: { id: string; name: string; accel: string };
  pid?: number;
  statFile?: KernelFile;
  statusFile?: KernelFile;
  /** /proc/PID/smaps_rollup (undefined: smapsRollup off, or not readable here). */
  rollupFile?: KernelFile;
  /** The last smaps_rollup figures and when they were read (repeated until memoryInterval). */
  rollup?: { at: number; gauges: Record<string, number> };
  /** The last `query-balloon` figure and when it was asked (repeated until memoryInterval). */
  balloonActual?: { at: number; gauges: Record<string, number> };
  /** /proc/PID/ksm_stat (undefined: the kernel has none). */
  ksmStatFile?: KernelFile;
  /** RAM the VM was given (QMP, once per connection); null: QEMU did not say. */
  configuredBytes?: number | null;
  tids?: number[];
  taskFiles: Map<number, KernelFile>;
  balloon?: string | null;
  taps: string[];
  agentSocket?: string;
  /** The host block device behind all of the VM's images (null: none or several). */
  hostDevice?: string | null;
  /** The cgroup the QEMU process runs in, when not the root (QEMU inside a container: KubeVirt). */
  cgroup?: string;
  /** No PID lookup before this time (after a failed one). */
  nextPidLookup: number;
}

export class VmCollector implements Collector {
  readonly name = 'vm';
  private readonly log = componentLogger('collector.vm');
  private readonly paths: HostPaths;
  private readonly nodeId: string;
  private readonly directory: VmDirectory;
  private readonly vms = new Map<string, VmState>();
  private lastDiscovery = 0;
  private netdev: KernelFile | undefined;
  /** The first unreadable /proc/PID/fd is logged at warn; later ones are only counted. */
  private fdScanWarned = false;
  private readonly pageSize = kernelPageSize();

  constructor(
    readonly config: VmCollectorConfig,
    opts: VmCollectorOptions,
  ) {
    this.paths = opts.paths ?? hostPathsFromEnv();
    this.nodeId = opts.nodeId;
    this.directory = opts.directory ?? sharedVmDirectory;
  }

  async start(): Promise<void> {
    await this.discover();
    // Connect and identify now, so the guest collector (started next) already knows the VMs'
    // agent sockets on the first tick. Problems here are only logged: the ticks report them.
    const acc: Accumulator = {
      add: () => {},
      error: (_source, key, err) => this.log.debug({ key, err: (err as Error)?.message }, 'vm start'),
    };
    await Promise.all([...this.vms.values()].map((st) => this.prepare(acc, st, true)));
    this.publish();
  }

  /**
   * Makes sure of the QMP connection, then identity and PID when not known yet; true when QMP is
   * connected. In a tick (`wait` false) a missing connection is only started in the background: a
   * dead socket, or one whose single client slot is taken (libvirtd), must not hold up the tick for
   * the connect timeout. No liveness command per tick: the tick's own commands are the probe.
   */
  private async prepare(acc: Accumulator, st: VmState, wait = false): Promise<boolean> {
    if (!st.qmp.connected) {
      if (wait) await st.qmp.connect().catch(() => {});
      else st.qmp.connectInBackground();
    }
    if (!st.qmp.connected) {
      if (st.qmp.lastError) {
        m.qmpErrors.inc({ command: 'connect' });
        acc.error('vm', `vm:${st.qmpSocket}:connect`, st.qmp.lastError);
      }
      // Known VM, QMP down: the hypervisor's /proc figures are still published.
      if (st.identity && (st.pid === undefined || !st.statFile)) await this.findPid(acc, st);
      return false;
    }
    if (st.qmp.connects !== st.connectsSeen) {
      // A fresh connection (first, or QEMU restarted): identity, thread ids and balloon are re-read.
      st.connectsSeen = st.qmp.connects;
      m.qmpConnects.inc();
      st.identity = undefined;
      st.tids = undefined;
      st.balloon = undefined;
      st.hostDevice = undefined;
      st.configuredBytes = undefined;
      st.balloonActual = undefined;
    }
    if (!st.identity) await this.identify(acc, st);
    if (st.identity && st.hostDevice === undefined) await this.findHostDevice(acc, st);
    if (st.identity && (st.pid === undefined || !st.statFile)) await this.findPid(acc, st);
    return true;
  }

  private publish(): void {
    this.directory.set(
      [...this.vms.values()]
        .filter((st) => st.identity)
        .map((st) => ({
          id: st.identity!.id,
          name: st.identity!.name,
          pid: st.pid,
          qmpSocket: st.qmpSocket,
          agentSocket: st.agentSocket,
        })),
    );
  }

  /** The VMs followed now (after a gather). */
  list(): VmInfo[] {
    return this.directory.list();
  }

  private async discover(): Promise<void> {
    this.lastDiscovery = Date.now();
    const sockets = await discoverQmpSockets(this.config.qmpSockets);
    const keep = new Set(sockets.slice(0, this.config.maxVms));
    if (sockets.length > keep.size) m.overflow.inc(sockets.length - keep.size);
    for (const [sock, st] of this.vms) {
      if (!keep.has(sock)) {
        this.log.info({ qmpSocket: sock, id: st.identity?.id }, 'VM gone (QMP socket removed)');
        this.close(st);
        this.vms.delete(sock);
      }
    }
    for (const sock of keep) {
      if (this.vms.has(sock)) continue;
      this.log.info({ qmpSocket: sock }, 'VM found');
      this.vms.set(sock, {
        qmpSocket: sock,
        qmp: new QmpClient({ socketPath: sock, commandTimeoutMs: this.config.commandTimeout }),
        connectsSeen: 0,
        taskFiles: new Map(),
        taps: [],
        nextPidLookup: 0,
      });
    }
    m.vms.set(this.vms.size);
  }

  async gather(acc: Accumulator): Promise<void> {
    if (Date.now() - this.lastDiscovery >= this.config.discoveryInterval) {
      try {
        await this.discover();
      } catch (err) {
        acc.error('vm', 'vm:discovery', err);
      }
    }
    if (this.vms.size === 0) {
      this.directory.set([]);
      return;
    }
    const netdev = await this.readHostNetdev(acc);
    await Promise.all([...this.vms.values()].map((st) => this.gatherVm(acc, st, netdev)));
    this.publish();
  }

  private async readHostNetdev(acc: Accumulator): Promise<string | undefined> {
    if (![...this.vms.values()].some((st) => st.taps.length)) return undefined;
    try {
      this.netdev ??= new KernelFile(`${this.paths.proc}/1/net/dev`);
      return this.netdev.read();
    } catch (err) {
      acc.error('vm', `vm:netdev:${errorCode(err)}`, err);
      return undefined;
    }
  }

  /** QMP errors are reported per VM and command; a failure skips only that part of the sample. */
  private async qmp<T>(acc: Accumulator, st: VmState, command: string, args?: Record<string, unknown>) {
    // Never (re)connect inside a tick: prepare() does that in the background.
    if (!st.qmp.connected) return undefined;
    try {
      return await st.qmp.execute<T>(command, args);
    } catch (err) {
      m.qmpErrors.inc({ command });
      acc.error(
        'vm',
        `vm:${st.qmpSocket}:${command}:${err instanceof ConnectionError ? 'conn' : 'cmd'}`,
        err,
      );
      return undefined;
    }
  }

  private async identify(acc: Accumulator, st: VmState): Promise<void> {
    const [nameR, uuidR, kvmR] = await Promise.all([
      this.qmp<{ name?: string }>(acc, st, 'query-name'),
      this.qmp<{ UUID?: string }>(acc, st, 'query-uuid'),
      this.qmp<{ enabled?: boolean }>(acc, st, 'query-kvm'),
    ]);
    if (nameR === undefined && uuidR === undefined) return; // not connected
    const base = path.basename(st.qmpSocket).replace(/\.[^.]+$/, '');
    const name = nameR?.name || base;
    const uuid = nonZeroUuid(uuidR);
    st.identity = { id: uuid ?? (nameR?.name || base), name, accel: kvmR?.enabled ? 'kvm' : 'tcg' };
    this.log.info({ qmpSocket: st.qmpSocket, ...st.identity }, 'VM identified');
  }

  /** Once per connection: which host disk holds the VM's images (label `host_device`). */
  private async findHostDevice(acc: Accumulator, st: VmState): Promise<void> {
    const r = await this.qmp<unknown>(acc, st, 'query-block');
    if (r === undefined) return;
    const devices = new Set<string | undefined>();
    for (const { file } of blockImageFiles(r)) devices.add(await backingDevice(file, this.paths.sys));
    const [only] = devices;
    st.hostDevice = devices.size === 1 && only !== undefined ? only : null;
  }

  private async findPid(acc: Accumulator, st: VmState): Promise<void> {
    // A failed lookup scans every /proc/*/cmdline: not again before the next discovery interval.
    if (Date.now() < st.nextPidLookup) return;
    this.closeFiles(st);
    st.pid = await findQemuPid(st.qmpSocket, this.paths.proc);
    if (st.pid === undefined) {
      st.nextPidLookup = Date.now() + this.config.discoveryInterval;
      acc.error(
        'vm',
        `vm:${st.qmpSocket}:nopid`,
        new InvalidDataError(
          `no process found for QMP socket ${st.qmpSocket} (looked for a .pid file beside it and in ` +
            `${this.paths.proc}/*/cmdline); hypervisor CPU and faults are missing for this VM. ` +
            'Set HOST_PROC if the host /proc is mounted elsewhere.',
        ),
      );
      return;
    }
    st.statFile = new KernelFile(`${this.paths.proc}/${st.pid}/stat`);
    st.statusFile = new KernelFile(`${this.paths.proc}/${st.pid}/status`);
    if (this.config.smapsRollup) {
      st.rollupFile = new KernelFile(`${this.paths.proc}/${st.pid}/smaps_rollup`, true);
      st.ksmStatFile = new KernelFile(`${this.paths.proc}/${st.pid}/ksm_stat`, true);
    }
    // Read once per process: QEMU inside a container's cgroup is that container's CPU and I/O too,
    // which the processor must not count twice (docs/overhead.md, "VMs inside containers").
    try {
      st.cgroup = processCgroupPath(await fs.readFile(`${this.paths.proc}/${st.pid}/cgroup`, 'utf8'));
    } catch (err) {
      st.cgroup = undefined;
      acc.error('vm', `vm:${st.qmpSocket}:cgroup`, err);
    }
    try {
      const cmd = parseQemuCmdline(
        await fs.readFile(`${this.paths.proc}/${st.pid}/cmdline`, 'latin1'),
        this.config.guestAgentPort,
      );
      st.taps = cmd.taps;
      st.agentSocket = cmd.agentSocket;
    } catch (err) {
      acc.error('vm', `vm:${st.qmpSocket}:cmdline`, err);
    }
    await this.findFdTaps(st, st.pid);
  }

  /**
   * Adds the taps QEMU holds as /dev/net/tun fds (libvirt passes `-netdev tap,fd=N`: no name on the
   * command line) to the command line's. Once per PID lookup (start, QEMU restarted), never per tick.
   */
  private async findFdTaps(st: VmState, pid: number): Promise<void> {
    try {
      const scan = await tunFdTaps(this.paths.proc, pid);
      const before = st.taps.length;
      st.taps = [...new Set([...st.taps, ...scan.taps])];
      if (st.taps.length > before) {
        this.log.info({ qmpSocket: st.qmpSocket, pid, taps: st.taps, fds: scan.fds }, 'taps found from fds');
      }
    } catch (err) {
      const code = errorCode(err) ?? 'unknown';
      m.fdScanErrors.inc({ code });
      if (!this.fdScanWarned) {
        this.fdScanWarned = true;
        this.log.warn(
          { qmpSocket: st.qmpSocket, pid, code, err: (err as Error)?.message, taps: st.taps },
          `cannot list ${this.paths.proc}/${pid}/fd (not root, hidepid?): taps passed as fds (libvirt) ` +
            'are not attributed, only -netdev ifname= ones; logged once, then counted in ' +
            'strata_vm_tap_fd_scan_errors_total',
        );
      }
    }
  }

  private async gatherVm(acc: Accumulator, st: VmState, netdev: string | undefined): Promise<void> {
    const connected = await this.prepare(acc, st);
    if (!st.identity) return; // never reached QMP: no stable id yet, nothing to publish

    const ts = Date.now();
    const counters: Record<string, number> = {};
    const gauges: Record<string, number> = {};
    const ps = this.readPidStat(acc, st);
    if (ps) Object.assign(counters, pidStatCounters(ps).counters);
    const rss = this.readRss(acc, st);
    if (rss !== undefined) gauges[MEMORY_RSS.name] = rss;
    this.readMemory(acc, st, gauges);

    const [blockR, balloonR, actualR] = connected
      ? await Promise.all([
          this.qmp<unknown>(acc, st, 'query-blockstats'),
          this.balloonStats(acc, st),
          // After balloonStats' first call has found (or not) the balloon device; the size moves
          // only when someone sets a target, so it is asked every memoryInterval.
          st.balloon && !(st.balloonActual && ts - st.balloonActual.at < this.config.memoryInterval)
            ? this.qmp<unknown>(acc, st, 'query-balloon')
            : undefined,
          st.tids ? undefined : this.refreshTids(acc, st),
          st.configuredBytes === undefined ? this.readConfiguredMemory(acc, st) : undefined,
        ])
      : [undefined, undefined, undefined];
    if (actualR !== undefined) st.balloonActual = { at: ts, gauges: balloonActual(actualR) };
    if (st.balloonActual) Object.assign(gauges, st.balloonActual.gauges);
    if (typeof st.configuredBytes === 'number') gauges[MEMORY_CONFIGURED_NAME] = st.configuredBytes;
    const vcpu = st.pid !== undefined && st.tids ? this.readVcpuUsec(st) : undefined;
    if (vcpu === 'stale' && connected) {
      await this.refreshTids(acc, st);
    } else if (typeof vcpu === 'number') {
      counters[VCPU.name] = vcpu;
      gauges[VCPU_COUNT.name] = st.tids!.length;
    }
    if (balloonR) {
      const b = balloonGuestStats(balloonR);
      Object.assign(counters, b.counters);
      Object.assign(gauges, b.gauges);
    }
    let devices: Record<string, InstanceMetrics> | undefined;
    if (blockR !== undefined) {
      const problems: string[] = [];
      devices = blockstatsDevices(blockR, problems);
      for (const p of problems) acc.error('vm', `vm:${st.qmpSocket}:${p}`, new InvalidDataError(p));
    }
    let interfaces: Record<string, InstanceMetrics> | undefined;
    if (netdev && st.taps.length) {
      const taps = new Set(st.taps);
      interfaces = parseNetDev(netdev, [], (n) => taps.has(n)) as Record<string, InstanceMetrics>;
    }
    const sample: EntitySample = {
      entity: {
        layer: 'vm',
        kind: 'qemu',
        id: st.identity.id,
        name: st.identity.name,
        labels: {
          vm_name: st.identity.name,
          accel: st.identity.accel,
          qmp_socket: st.qmpSocket,
          ...(st.hostDevice ? { host_device: st.hostDevice } : {}),
          ...(st.cgroup ? { hypervisor_cgroup: st.cgroup } : {}),
        },
        parent: { layer: 'host', id: this.nodeId },
      },
      ts,
      counters,
      gauges,
      ...(devices ? { devices } : {}),
      ...(interfaces ? { interfaces } : {}),
    };
    acc.add(sample);
  }

  private readPidStat(acc: Accumulator, st: VmState): PidStat | undefined {
    if (!st.statFile) return undefined;
    try {
      const s = parsePidStat(st.statFile.read());
      if (!s) throw new InvalidDataError(`${st.statFile.path}: unparsable`);
      return s;
    } catch (err) {
      acc.error('vm', `vm:${st.qmpSocket}:stat:${errorCode(err) ?? 'parse'}`, err);
      // The process went away (QEMU restarted under the same socket): look it up again next tick.
      this.closeFiles(st);
      st.pid = undefined;
      return undefined;
    }
  }

  private readRss(acc: Accumulator, st: VmState): number | undefined {
    if (!st.statusFile) return undefined;
    try {
      return parseStatusRssBytes(st.statusFile.read());
    } catch (err) {
      acc.error('vm', `vm:${st.qmpSocket}:status:${errorCode(err) ?? 'read'}`, err);
      return undefined;
    }
  }

  /**
   * smaps_rollup and ksm_stat of the hypervisor: per VM, once per tick. A kernel without ksm_stat
   * (before 6.1) or a process whose smaps the agent may not read loses only these gauges.
   */
  private readMemory(acc: Accumulator, st: VmState, gauges: Record<string, number>): void {
    const now = Date.now();
    if (st.rollup && now - st.rollup.at < this.config.memoryInterval) {
      Object.assign(gauges, st.rollup.gauges);
    } else if (st.rollupFile) {
      try {
        st.rollup = { at: now, gauges: parseSmapsRollup(st.rollupFile.read()) };
        Object.assign(gauges, st.rollup.gauges);
      } catch (err) {
        acc.error('vm', `vm:${st.qmpSocket}:smaps_rollup:${errorCode(err) ?? 'read'}`, err);
        // Gone with the process (readPidStat looks it up again) or not permitted: stop asking.
        st.rollupFile.close();
        st.rollupFile = undefined;
      }
    }
    if (st.ksmStatFile) {
      try {
        parseKsmStat(st.ksmStatFile.read(), this.pageSize, gauges);
      } catch (err) {
        if (!isGone(err)) acc.error('vm', `vm:${st.qmpSocket}:ksm_stat:${errorCode(err) ?? 'read'}`, err);
        st.ksmStatFile.close();
        st.ksmStatFile = undefined;
      }
    }
  }

  private async readConfiguredMemory(acc: Accumulator, st: VmState): Promise<void> {
    const r = await this.qmp<unknown>(acc, st, 'query-memory-size-summary');
    if (r !== undefined) st.configuredBytes = configuredMemory(r) ?? null;
    // A QEMU without the command (before 2.11) is asked once per connection, not every tick.
    else if (st.qmp.connected) st.configuredBytes = null;
  }

  /** Sum of vCPU thread time, or 'stale' when a cached thread id is gone. */
  private readVcpuUsec(st: VmState): number | 'stale' {
    let sum = 0;
    for (const tid of st.tids!) {
      let f = st.taskFiles.get(tid);
      if (!f) {
        f = new KernelFile(`${this.paths.proc}/${st.pid}/task/${tid}/stat`);
        st.taskFiles.set(tid, f);
      }
      try {
        const s = parsePidStat(f.read());
        if (!s) return 'stale';
        sum += threadUsec(s);
      } catch {
        return 'stale';
      }
    }
    return sum;
  }

  private async refreshTids(acc: Accumulator, st: VmState): Promise<void> {
    const r = await this.qmp<unknown>(acc, st, 'query-cpus-fast');
    if (r === undefined) return;
    for (const f of st.taskFiles.values()) f.close();
    st.taskFiles.clear();
    st.tids = vcpuThreadIds(r);
  }

  private async balloonStats(acc: Accumulator, st: VmState): Promise<unknown> {
    if (st.balloon === undefined) {
      const list = await this.qmp<unknown>(acc, st, 'qom-list', { path: '/machine/peripheral' });
      if (list === undefined) return undefined;
      st.balloon = findBalloonPath(list) ?? null;
      if (st.balloon && this.config.balloonPollingInterval > 0) {
        await this.qmp(acc, st, 'qom-set', {
          path: st.balloon,
          property: 'guest-stats-polling-interval',
          value: this.config.balloonPollingInterval,
        });
      }
    }
    if (!st.balloon) return undefined;
    return this.qmp<unknown>(acc, st, 'qom-get', { path: st.balloon, property: 'guest-stats' });
  }

  private closeFiles(st: VmState): void {
    st.statFile?.close();
    st.statusFile?.close();
    st.statFile = undefined;
    st.statusFile = undefined;
    st.rollupFile?.close();
    st.ksmStatFile?.close();
    st.rollupFile = undefined;
    st.ksmStatFile = undefined;
    st.rollup = undefined;
    for (const f of st.taskFiles.values()) f.close();
    st.taskFiles.clear();
  }

  private close(st: VmState): void {
    st.qmp.close();
    this.closeFiles(st);
  }

  async shutdown(): Promise<void> {
    for (const st of this.vms.values()) this.close(st);
    this.vms.clear();
    this.netdev?.close();
    this.directory.set([]);
  }
}

export function createVmCollector(input: unknown, opts: VmCollectorOptions): VmCollector {
  return new VmCollector(parseVmConfig(input), opts);
}
