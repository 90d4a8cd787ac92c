// The host collector: one `host` entity (kind `node`) per tick from the machine's /proc.
// Files stay open and are re-read with pread (see fileio.ts); parsing is the pure parsers.ts.
import { existsSync } from 'node:fs';
import { InvalidDataError } from '../../lib/errors.ts';
import { componentLogger } from '../../lib/log.ts';
import type { EntitySample, NodeIdentity } from '../../schemas/sample.ts';
import { isGone, KernelFile } from '../procfs/fileio.ts';
import { globToRegExp, matchesAny } from '../procfs/glob.ts';
import { kernelPageSize } from '../procfs/pagesize.ts';
import { defaultIncludeDisk, type ProcFiles, procSampleFromFiles } from '../procfs/parsers.ts';
import { type Accumulator, type Collector, type HostPaths, hostPathsFromEnv } from '../types.ts';
import { type HostCollectorConfig, parseHostConfig } from './config.ts';
import { resolveNodeIdentity } from './identity.ts';
import { findKsmdPid, KSMD_CPU_NAME, type KsmTexts, ksmdUsec, ksmMetrics } from './ksm.ts';
import { KSM_FILES, KSM_RUN, KSM_SHARED, KSM_SHARING } from './metrics.ts';

export { HostCollectorConfig, parseHostConfig } from './config.ts';
export { inventoryLabels, machineId, resolveNodeIdentity } from './identity.ts';

export interface HostCollectorOptions {
  paths?: HostPaths;
  /** The node identity; resolved at start() (machine-id, inventory) when not given. */
  node?: NodeIdentity;
}

const RESOURCES = ['cpu', 'io', 'memory'] as const;

export class HostCollector implements Collector {
  readonly name = 'host';
  private readonly log = componentLogger('collector.host');
  private readonly paths: HostPaths;
  private node: NodeIdentity | undefined;
  private readonly files: {
    stat: KernelFile;
    vmstat: KernelFile;
    meminfo: KernelFile;
    diskstats: KernelFile;
    netdev: KernelFile;
    pressure: Partial<Record<(typeof RESOURCES)[number], KernelFile>>;
    /** /sys/kernel/mm/ksm attributes this kernel has (none when `ksm` is off or there is no KSM). */
    ksm: Array<{ file: (typeof KSM_FILES)[number]['file']; kf: KernelFile }>;
    /** ksmd's /proc/PID/stat, once its pid is known. */
    ksmd?: KernelFile;
  };
  private readonly pageSize: number;
  /** The last full KSM read, when it found KSM stopped with nothing merged. */
  private ksmIdle: { counters: Record<string, number>; gauges: Record<string, number> } | undefined;
  private ksmdMissingLogged = false;
  /** No ksmd pid lookup before this time (after a failed one: the lookup scans /proc). */
  private nextKsmdLookup = 0;
  readonly includeDisk: (name: string) => boolean;
  readonly includeInterface: (name: string) => boolean;
  /** Reused between ticks: the file texts handed to the parser. */
  private readonly texts: ProcFiles = {};

  constructor(
    readonly config: HostCollectorConfig,
    opts: HostCollectorOptions = {},
  ) {
    this.paths = opts.paths ?? hostPathsFromEnv();
    this.node = opts.node;
    const proc = this.paths.proc;
    this.files = {
      stat: new KernelFile(`${proc}/stat`),
      vmstat: new KernelFile(`${proc}/vmstat`),
      meminfo: new KernelFile(`${proc}/meminfo`),
      diskstats: new KernelFile(`${proc}/diskstats`),
      // /proc/net/dev follows the reader's network namespace; /proc/1/net/dev is the host's when
      // the agent runs in a container with the host's /proc mounted (HOST_PROC) but its own netns.
      netdev: new KernelFile(existsSync(`${proc}/1/net/dev`) ? `${proc}/1/net/dev` : `${proc}/net/dev`),
      pressure: {},
      ksm: [],
    };
    this.pageSize = kernelPageSize();
    if (config.ksm && existsSync(`${this.paths.sys}/kernel/mm/ksm/run`)) {
      // Read once per tick per host: a few sysfs attributes, kept open (pread, one record each).
      // Attributes this kernel lacks (general_profit before 6.4, ksm_zero_pages before 6.10) are
      // left out here, not reported every tick.
      for (const { file } of KSM_FILES) {
        const path = `${this.paths.sys}/kernel/mm/ksm/${file}`;
        if (existsSync(path)) this.files.ksm.push({ file, kf: new KernelFile(path, true) });
      }
    }
    if (config.pressure) {
      for (const r of RESOURCES) this.files.pressure[r] = new KernelFile(`${proc}/pressure/${r}`);
    }
    this.includeDisk = memoize(diskFilter(config.disks.include, config.disks.exclude, this.paths.sys));
    this.includeInterface = memoize(nameFilter(config.interfaces.include, config.interfaces.exclude));
  }

  async start(): Promise<void> {
    if (!this.node) {
      this.node = await resolveNodeIdentity({
        nodeId: this.config.nodeId,
        inventory: this.config.inventory,
        log: this.log,
      });
    }
    // Without the right to read init's net/dev (unprivileged agent), fall back to our own view.
    if (this.files.netdev.path.endsWith('/1/net/dev')) {
      try {
        this.files.netdev.read();
      } catch (err) {
        const fallback = `${this.paths.proc}/net/dev`;
        this.log.info(
          { err: (err as Error).message, fallback },
          "cannot read init's net/dev; using the agent's own",
        );
        this.files.netdev.close();
        this.files.netdev = new KernelFile(fallback);
      }
    }
    // Fail fast on a wrong HOST_PROC: without /proc/stat there is nothing to collect.
    try {
      this.files.stat.read();
    } catch (err) {
      throw new InvalidDataError(
        `host collector: cannot read ${this.files.stat.path} (${(err as Error).message}); ` +
          'set HOST_PROC to where the host /proc is mounted (default /proc)',
        { cause: err },
      );
    }
  }

  /** The node identity (after start()). */
  get identity(): NodeIdentity | undefined {
    return this.node;
  }

  async gather(acc: Accumulator): Promise<void> {
    this.gatherSync(acc);
  }

  /** The whole tick, synchronous (the bench and tests call it directly). */
  gatherSync(acc: Accumulator): void {
    const node = this.node ?? { id: 'unknown', hostname: 'unknown', labels: {} };
    const ts = Date.now();
    const t = this.texts;
    t.stat = this.readFile(acc, this.files.stat);
    t.vmstat = this.readFile(acc, this.files.vmstat);
    t.meminfo = this.readFile(acc, this.files.meminfo);
    t.diskstats = this.readFile(acc, this.files.diskstats);
    t.netdev = this.readFile(acc, this.files.netdev);
    const p = this.files.pressure;
    if (p.cpu || p.io || p.memory) {
      t.pressure ??= {};
      t.pressure.cpu = p.cpu && this.readPressure(acc, 'cpu');
      t.pressure.io = p.io && this.readPressure(acc, 'io');
      t.pressure.memory = p.memory && this.readPressure(acc, 'memory');
    }
    const parts = procSampleFromFiles(t, {
      includeDisk: this.includeDisk,
      includeInterface: this.includeInterface,
    });
    if (this.files.ksm.length) this.readKsm(acc, parts, parts.problems);
    for (const problem of parts.problems) {
      acc.error('host', `host:${problem}`, new InvalidDataError(`${this.paths.proc}: ${problem}`));
    }
    const sample: EntitySample = {
      entity: { layer: 'host', kind: 'node', id: node.id, name: node.hostname, labels: node.labels },
      ts,
      counters: parts.counters,
      gauges: parts.gauges,
      devices: parts.devices,
      interfaces: parts.interfaces,
    };
    acc.add(sample);
  }

  private readFile(acc: Accumulator, file: KernelFile): string | undefined {
    try {
      return file.read();
    } catch (err) {
      acc.error('host', `host:${file.path}:${(err as { code?: string }).code ?? 'read'}`, err);
      return undefined;
    }
  }

  /** KSM state and effect, and ksmd's CPU (docs/overhead.md, "Memory"). */
  private readKsm(
    acc: Accumulator,
    out: { counters: Record<string, number>; gauges: Record<string, number> },
    problems: string[],
  ): void {
    // KSM stopped with nothing merged (the default on most hosts) cannot change until `run` does:
    // one read of `run`, and the other figures repeated from the last full read.
    const [run, ...rest] = this.files.ksm;
    const runText = this.readFile(acc, run!.kf);
    const idle = this.ksmIdle;
    if (idle && runText !== undefined && runText.trim() === '0') {
      Object.assign(out.gauges, idle.gauges);
      Object.assign(out.counters, idle.counters);
      return;
    }
    const texts: KsmTexts = { run: runText };
    for (const { file, kf } of rest) texts[file] = this.readFile(acc, kf);
    const got = { counters: {} as Record<string, number>, gauges: {} as Record<string, number> };
    ksmMetrics(texts, this.pageSize, got, problems);
    if (!this.files.ksmd && Date.now() >= this.nextKsmdLookup) {
      const pid = findKsmdPid(this.paths.proc);
      if (pid === undefined) {
        // Not bad data, a missing source (HOST_PROC of another machine, hidepid): KSM's own
        // figures still come; ksmd's CPU is looked for again in a minute.
        this.nextKsmdLookup = Date.now() + 60_000;
        if (!this.ksmdMissingLogged) {
          this.ksmdMissingLogged = true;
          this.log.info({ proc: this.paths.proc }, 'no ksmd thread found; ksmd_cpu_usec_total not sent');
        }
      } else this.files.ksmd = new KernelFile(`${this.paths.proc}/${pid}/stat`);
    }
    const ksmd = this.files.ksmd;
    if (ksmd) {
      const usec = ksmdUsec(this.readFile(acc, ksmd) ?? '');
      if (usec !== undefined) got.counters[KSMD_CPU_NAME] = usec;
      else {
        // Not ksmd's stat any more (cannot happen short of a HOST_PROC change): look it up again.
        ksmd.close();
        this.files.ksmd = undefined;
      }
    }
    Object.assign(out.gauges, got.gauges);
    Object.assign(out.counters, got.counters);
    const g = got.gauges;
    this.ksmIdle =
      g[KSM_RUN.name] === 0 && g[KSM_SHARED.name] === 0 && g[KSM_SHARING.name] === 0 ? got : undefined;
  }

  private readPressure(acc: Accumulator, r: (typeof RESOURCES)[number]): string | undefined {
    const file = this.files.pressure[r]!;
    try {
      return file.read();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (isGone(err) || code === 'EOPNOTSUPP' || code === 'ENOTSUP') {
        // Kernel without PSI (CONFIG_PSI=n or psi=0): not an error, stop asking.
        this.log.info({ path: file.path, code }, 'no PSI for this resource on this kernel; not reading it');
        file.close();
        delete this.files.pressure[r];
        return undefined;
      }
      acc.error('host', `host:${file.path}:${code ?? 'read'}`, err);
      return undefined;
    }
  }

  async shutdown(): Promise<void> {
    const f = this.files;
    for (const file of [f.stat, f.vmstat, f.meminfo, f.diskstats, f.netdev, ...Object.values(f.pressure)]) {
      file?.close();
    }
    for (const { kf } of f.ksm) kf.close();
    f.ksmd?.close();
  }
}

export function createHostCollector(input: unknown, opts: HostCollectorOptions = {}): HostCollector {
  return new HostCollector(parseHostConfig(input), opts);
}

/** Cache a name filter's answers: device and interface names repeat every tick. */
function memoize(fn: (name: string) => boolean): (name: string) => boolean {
  const cache = new Map<string, boolean>();
  return (name) => {
    let v = cache.get(name);
    if (v === undefined) {
      if (cache.size > 4096) cache.clear(); // bounded: interfaces come and go (veths)
      v = fn(name);
      cache.set(name, v);
    }
    return v;
  };
}

export function nameFilter(
  include: readonly string[],
  exclude: readonly string[],
): (name: string) => boolean {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (name) => (inc.length === 0 || matchesAny(inc, name)) && !matchesAny(exc, name);
}

/**
 * Disks: with no include globs, whole disks only. A partition is what /sys/class/block/<dev>/partition
 * says it is; when /sys has no entry for the device (HOST_SYS not mounted), the name heuristics decide.
 */
export function diskFilter(
  include: readonly string[],
  exclude: readonly string[],
  sys: string,
): (name: string) => boolean {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (name) => {
    if (matchesAny(exc, name)) return false;
    if (inc.length) return matchesAny(inc, name);
    if (!defaultIncludeDisk(name)) return false;
    const dir = `${sys}/class/block/${name.replace(/\//g, '!')}`;
    if (existsSync(dir)) return !existsSync(`${dir}/partition`);
    return true;
  };
}
