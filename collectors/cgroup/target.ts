// One container the collector reads: the files discovery opened for it (discovery.ts openTarget),
// its labels, and what the per-tick reads (reader.ts) keep between ticks to skip files that
// cannot have changed. The bottom of the collector's own graph: discovery, reader, blkio-trust,
// docker and netns all import it, so it holds types and pure helpers only and imports none of them.
import type { KernelFile } from '../procfs/fileio.ts';
import type { BlkioLastRead } from './blkio-still.ts';
import { type KeyedTable, keyedTable } from './bytes.ts';
import { keyedSpecs, V1_MEMORY_STAT_FILE, V2_MEMORY_STAT_FILE } from './files.ts';
import type { KeyedSpec } from './parsers.ts';
import type { PsiFile } from './pressure.ts';

/** What a cgroup directory is (discovery.ts classifyCgroup). */
export interface Classified {
  kind: 'docker' | 'kubernetes' | 'containerd' | 'podman' | 'systemd' | 'cgroup';
  /** Stable id: the container id, or the cgroup path for systemd units and globbed cgroups. */
  id: string;
  /** Name until an API tells a better one (Docker). */
  name: string;
  labels: Record<string, string>;
}

/** memory.stat byte-parser tables (Target.memTable), from the same records as the string parsers' (files.ts). */
export const V1_MEM_TABLE = keyedTable(keyedSpecs(V1_MEMORY_STAT_FILE));
export const V2_MEM_TABLE = keyedTable(keyedSpecs(V2_MEMORY_STAT_FILE));

/** What readMemoryStat keeps of a container's last memory.stat read. */
export interface MemoryStatRead {
  /** cpu_usage_usec_total and memory_usage_bytes when it was read. */
  cpu: number;
  usage: number | undefined;
  /** The memory table's record names and kinds (0 = counter, 1 = gauge), values, and which were present. */
  names: string[];
  spec: number[];
  values: Float64Array;
  found: Uint8Array;
}

/** v1 cpu.stat throttling counters (by catalogue name), kept between reads while the cgroup has no CFS quota. */
export type V1Throttling = Record<string, number>;

export interface Target {
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

/** Closes every file a target holds. */
export function closeTarget(t: Target): void {
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
}
