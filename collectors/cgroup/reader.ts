// The per-tick read of one container: pread() of the files discovery opened (discovery.ts
// openTarget), parsed from the read buffer (bytes.ts) with the string parsers (parsers.ts) as the
// fallback for irregular content, both through the key tables of files.ts. Files that cannot have
// changed since their last read are not re-read: memory.stat of an idle container, v1 cpu.stat
// without a quota, v1 blkio while the root's counters are still (blkio-still.ts), PSI while the
// system's is still (pressure.ts). This is the agent's hot path (hundreds of containers every
// second): no closure, no array and no string per file per container per tick.
import { errorCode, InvalidDataError } from '../../lib/errors.ts';
import type { EntitySample, InstanceMetrics } from '../../schemas/sample.ts';
import { isGone, type KernelFile, readOnce, sharedBuffer } from '../procfs/fileio.ts';
import { parseNetDev } from '../procfs/parsers.ts';
import type { Accumulator } from '../types.ts';
import { BLKIO_MAX_AGE, keep, type SystemBlkio } from './blkio-still.ts';
import { keepCounted } from './blkio-trust.ts';
import { blkioBytes, flatKeyedBytes, keyedTable, singleBytes } from './bytes.ts';
import {
  blkioNames,
  keyedSpecs,
  V1_BLKIO_SERVICE_BYTES_FILE,
  V1_BLKIO_SERVICED_FILE,
  V1_CPU_STAT_FILE,
  V1_CPUACCT_STAT_FILE,
  V1_CPUACCT_USAGE_FILE,
  V2_CPU_STAT_FILE,
} from './files.ts';
import {
  CPU_PERIODS,
  CPU_THROTTLED,
  CPU_THROTTLED_PERIODS,
  CPU_USAGE,
  MEMORY_LIMIT,
  MEMORY_USAGE,
} from './metrics.ts';
import {
  type DeviceCounters,
  devnameFromUevent,
  type KeyedSpec,
  parseBlkioRw,
  parseFlatKeyed,
  parseIoStat,
  parseMemoryMax,
  parseSingle,
  V1_UNLIMITED_FROM,
} from './parsers.ts';
import { PSI_RESOURCES, type PsiResource, readPsi, type SystemPressure } from './pressure.ts';
import { metrics } from './selfmetrics.ts';
import type { MemoryStatRead, Target, V1Throttling } from './target.ts';

/**
 * Slowly-changing values are read every Nth tick, not every tick: memory.limit_in_bytes /
 * memory.max, and v1 cpu.cfs_quota_us, which decides whether v1 cpu.stat (throttling) can change.
 */
const LIMIT_EVERY_TICKS = 10;

/** memory.stat is re-read at least every this many ticks, even for an idle container (readMemoryStat). */
const MEMORY_STAT_MAX_AGE = 10;

// The byte parsers' tables, from the same records as the string parsers' (files.ts).
const V2_CPU_TABLE = keyedTable(keyedSpecs(V2_CPU_STAT_FILE));
const V1_CPU_TABLE = keyedTable(keyedSpecs(V1_CPU_STAT_FILE));
const V1_CPUACCT_TABLE = keyedTable(keyedSpecs(V1_CPUACCT_STAT_FILE));
const V2_CPU_SPECS = keyedSpecs(V2_CPU_STAT_FILE);
const V1_CPU_SPEC = keyedSpecs(V1_CPU_STAT_FILE)[0]!;
const V1_CPUACCT_SPEC = keyedSpecs(V1_CPUACCT_STAT_FILE)[0]!;
/** cpuacct.usage: ns → µs, as a divisor (1000): ns × 0.001 would floor some exact multiples one too low. */
const CPUACCT_USAGE_DIVISOR = Math.round(1 / V1_CPUACCT_USAGE_FILE.fields[0]!.factor!);
/** The two v1 blkio files of a container, in read order (ops, then bytes: the message's key order). */
const BLKIO_FILES = [
  {
    file: 'blkioOps',
    names: blkioNames(V1_BLKIO_SERVICED_FILE),
    kind: 'ops',
    name: V1_BLKIO_SERVICED_FILE.file,
  },
  {
    file: 'blkioBytes',
    names: blkioNames(V1_BLKIO_SERVICE_BYTES_FILE),
    kind: 'bytes',
    name: V1_BLKIO_SERVICE_BYTES_FILE.file,
  },
] as const;

const CPU_USAGE_NAME = CPU_USAGE.name;
const MEMORY_USAGE_NAME = MEMORY_USAGE.name;
const MEMORY_LIMIT_NAME = MEMORY_LIMIT.name;
const THROTTLING = [CPU_PERIODS.name, CPU_THROTTLED_PERIODS.name, CPU_THROTTLED.name] as const;

const NO_RECORD: Record<string, number> = {};

export interface ReaderOptions {
  /** HOST_SYS, for /sys/dev/block device names. */
  sys: string;
  /** The system-wide PSI, refreshed once per tick before the containers. */
  systemPressure: SystemPressure | undefined;
  /** v1 blkio: the root's recursive ops, refreshed once per tick before the containers. */
  systemBlkio: SystemBlkio | undefined;
  /** Picks another pid of the container when its /proc/PID/net/dev reads empty or fails. */
  reopenNetdev: (t: Target) => void;
}

/** Reads containers one at a time, synchronously; counts what it saved or skipped per tick. */
export class TargetReader {
  // Per-read state (one container at a time): fields and bound methods instead of closures and
  // arrays allocated per container per tick.
  private vanished = false;
  private acc: Accumulator | undefined;
  private readonly problems: string[] = [];
  /** Per tick, counted once at endTick: memory.stat reads saved, PSI reads saved per resource, blkio pairs saved. */
  private memStatReused = 0;
  private readonly psiReused: Record<PsiResource, number> = { cpu: 0, io: 0, memory: 0 };
  private blkioReused = 0;
  /** Per tick: samples with io_accounting partial / unavailable. */
  private ioPartial = 0;
  private ioUnavailable = 0;
  private readonly devnames = new Map<string, string>();

  constructor(private readonly o: ReaderOptions) {}

  beginTick(any: boolean): void {
    this.memStatReused = 0;
    this.ioPartial = this.ioUnavailable = 0;
    const reused = this.psiReused;
    reused.cpu = reused.io = reused.memory = 0;
    this.blkioReused = 0;
    // Before any container: a stall or I/O after these reads shows at the next tick (pressure.ts).
    if (any) {
      this.o.systemPressure?.refresh();
      this.o.systemBlkio?.refresh();
    }
  }

  endTick(): void {
    const reused = this.psiReused;
    if (this.memStatReused) metrics.memoryStatReused.inc(this.memStatReused);
    for (const r of PSI_RESOURCES) if (reused[r]) metrics.pressureReused.inc({ resource: r }, reused[r]);
    if (this.blkioReused) metrics.blkioReused.inc(this.blkioReused);
    if (this.ioPartial) metrics.ioAccountingMissing.inc({ io_accounting: 'partial' }, this.ioPartial);
    if (this.ioUnavailable)
      metrics.ioAccountingMissing.inc({ io_accounting: 'unavailable' }, this.ioUnavailable);
  }

  /** One container's sample, or undefined when it vanished (the caller counts and drops it). */
  read(t: Target, acc: Accumulator, ts: number, parent: string): EntitySample | undefined {
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
      parseFlatKeyed(
        latin1(len),
        'cpu.stat',
        [{ wanted: V2_CPU_SPECS[0]!.wanted, into: counters }],
        problems,
      );
    }
    if (t.cpuV1 && counters[THROTTLING[0]] === undefined) this.readV1Throttling(t, counters, problems);
    len = bytes(t.cpuacctUsage);
    if (len >= 0) {
      const ns = singleBytes(sharedBuffer(), len) ?? parseSingle(latin1(len));
      if (Number.isNaN(ns)) problems.push('cpuacct.usage: not a number');
      else counters[CPU_USAGE_NAME] = Math.floor(ns / CPUACCT_USAGE_DIVISOR);
    }
    len = bytes(t.cpuacctStat);
    if (len >= 0 && !flatKeyedBytes(sharedBuffer(), len, V1_CPUACCT_TABLE, counters)) {
      const spec = { wanted: V1_CPUACCT_SPEC.wanted, into: counters, factor: V1_CPUACCT_SPEC.factor };
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
    if (usage !== undefined) gauges[MEMORY_USAGE_NAME] = usage; // after memory.stat's: the message's key order
    if (t.memLimit && --t.limitCountdown <= 0) {
      t.limitCountdown = LIMIT_EVERY_TICKS;
      text = get(t.memLimit);
      if (text !== undefined) {
        const v = t.memLimitV2 ? parseMemoryMax(text) : parseSingle(text);
        t.lastLimit = v !== undefined && !Number.isNaN(v) && v < V1_UNLIMITED_FROM ? v : undefined;
      }
    }
    if (t.lastLimit !== undefined) gauges[MEMORY_LIMIT_NAME] = t.lastLimit;

    // Block I/O per device
    let devices: DeviceCounters | undefined;
    text = get(t.ioStat);
    if (text !== undefined) devices = parseIoStat(text, problems);
    if (t.ioAccounting !== 'unavailable') {
      const still = this.o.systemBlkio ? this.o.systemBlkio.stretch : -1;
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
            if (clean && still >= 0) keepBlkio(t, i, len);
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
      if (readPsi(p, this.o.systemPressure, bytes, counters, problems)) {
        this.psiReused[p.resource]++;
      }
    }

    this.acc = undefined;
    if (this.vanished) return undefined;

    // Network: the container's own namespace. A dead pid is not a vanished container: pick another.
    let interfaces: Record<string, InstanceMetrics> | undefined;
    if (t.netdev) {
      let net: string | undefined;
      try {
        net = t.netdev.read();
        // An fd kept on /proc/PID/net/dev of a pid that exited reads empty: pick another pid.
        if (net === '') throw new Error('empty net/dev');
      } catch {
        this.o.reopenNetdev(t);
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
        parent: { layer: 'host', id: parent },
      },
      ts,
      counters,
      gauges,
    };
    if (devices) sample.devices = this.nameDevices(devices);
    if (interfaces) sample.interfaces = interfaces;
    return sample;
  }

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
    const cpu = counters[CPU_USAGE_NAME];
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
    const kept: MemoryStatRead = t.memStatLast ?? {
      cpu,
      usage,
      names: table.names,
      spec: table.spec,
      values: new Float64Array(table.names.length),
      found: new Uint8Array(table.names.length),
    };
    kept.cpu = cpu;
    kept.usage = usage;
    for (let i = 0; i < table.names.length; i++) {
      const v = (table.spec[i] === 0 ? counters : gauges)[table.names[i]!];
      kept.found[i] = v === undefined ? 0 : 1;
      kept.values[i] = v ?? 0;
    }
    t.memStatLast = kept;
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
        for (const n of THROTTLING) {
          const x = v[n];
          if (x !== undefined) counters[n] = x;
        }
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
    const into: V1Throttling = {};
    if (!flatKeyedBytes(sharedBuffer(), len, V1_CPU_TABLE, into)) {
      const spec: KeyedSpec = { wanted: V1_CPU_SPEC.wanted, into, factor: V1_CPU_SPEC.factor };
      parseFlatKeyed(latin1(len), 'cpu.stat', [spec], problems);
    }
    Object.assign(counters, into);
    // Only clean values are reused: a garbage file is read (and reported) again every tick.
    if (noQuota && problems.length === before) t.v1Throttling = into;
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
        name = devnameFromUevent(readOnce(`${this.o.sys}/dev/block/${majMin}/uevent`)) ?? majMin;
      } catch {
        name = majMin;
      }
      if (this.devnames.size > 4096) this.devnames.clear();
      this.devnames.set(majMin, name);
    }
    return name;
  }
}

/** Copies the blkio file just read (sharedBuffer) into the container's last read. */
function keepBlkio(t: Target, i: number, len: number): void {
  t.blkioLast ??= { stretch: -1, countdown: 0, copies: [Buffer.alloc(0), Buffer.alloc(0)], lens: [0, 0] };
  t.blkioLast.copies[i] = keep(t.blkioLast.copies[i]!, sharedBuffer(), len);
  t.blkioLast.lens[i] = len;
}

/** The last read's bytes as text, for the string parsers (irregular content only). */
function latin1(len: number): string {
  return sharedBuffer().toString('latin1', 0, len);
}

function file(f: KernelFile | undefined): string {
  if (!f) return '';
  const i = f.path.lastIndexOf('/');
  return f.path.slice(i + 1);
}
