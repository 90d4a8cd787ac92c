// Which cgroup directories are containers, what they are, and which of their files to read in
// the host's layout (v1, v2, hybrid). Runs at discovery time only (regexes and existsSync are fine
// here, never on the per-tick path). Paths are relative to a hierarchy root, with a leading slash:
// "/docker/<id>", "/kubepods.slice/…/cri-containerd-<id>.scope".
import { existsSync, readdirSync } from 'node:fs';
import { KernelFile } from '../procfs/fileio.ts';
import { matchesAny } from '../procfs/glob.ts';
import {
  PRESSURE_FILES,
  V1_BLKIO_SERVICE_BYTES_FILE,
  V1_BLKIO_SERVICED_FILE,
  V1_CPU_STAT_FILE,
  V1_CPUACCT_STAT_FILE,
  V1_CPUACCT_USAGE_FILE,
  V1_MEMORY_LIMIT_FILE,
  V1_MEMORY_STAT_FILE,
  V1_MEMORY_USAGE_FILE,
  V2_CPU_STAT_FILE,
  V2_IO_STAT_FILE,
  V2_MEMORY_CURRENT_FILE,
  V2_MEMORY_MAX_FILE,
  V2_MEMORY_STAT_FILE,
} from './files.ts';
import type { CgroupLayout } from './mounts.ts';
import {
  V1_MEMORY_STAT_COUNTERS,
  V1_MEMORY_STAT_GAUGES,
  V2_MEMORY_STAT_COUNTERS,
  V2_MEMORY_STAT_GAUGES,
} from './parsers.ts';
import { psiFile } from './pressure.ts';
import { type Classified, closeTarget, type Target, V1_MEM_TABLE, V2_MEM_TABLE } from './target.ts';

export interface ClassifyOptions {
  /** Report systemd services and scopes (*.service, *.scope not recognised as containers). */
  systemd: boolean;
  /** Compiled `include` globs of arbitrary cgroup paths. */
  include: readonly RegExp[];
}

const HEX64 = '([0-9a-f]{64})';
const K8S_CGROUPFS = new RegExp(`/kubepods(?:/(burstable|besteffort))?/pod([0-9a-f-]+)/${HEX64}$`);
const K8S_SYSTEMD = new RegExp(
  `kubepods(?:-(burstable|besteffort))?-pod([0-9a-f_]+)\\.slice/(cri-containerd|docker|crio)-${HEX64}\\.scope$`,
);
const DOCKER_CGROUPFS = new RegExp(`/docker/${HEX64}$`);
const DOCKER_SYSTEMD = new RegExp(`/docker-${HEX64}\\.scope$`);
const CONTAINERD = new RegExp(`/cri-containerd-${HEX64}\\.scope$`);
const PODMAN = new RegExp(`/libpod-${HEX64}\\.scope$`);
const SYSTEMD_UNIT = /\/([^/]+\.(?:service|scope))$/;

export function classifyCgroup(path: string, opts: ClassifyOptions): Classified | undefined {
  let m = K8S_CGROUPFS.exec(path);
  if (m) return k8s(m[1], m[2]!, 'docker-or-containerd', m[3]!);
  m = K8S_SYSTEMD.exec(path);
  if (m) return k8s(m[1], m[2]!.replace(/_/g, '-'), m[3] === 'cri-containerd' ? 'containerd' : m[3]!, m[4]!);
  m = DOCKER_CGROUPFS.exec(path) ?? DOCKER_SYSTEMD.exec(path);
  if (m) return { kind: 'docker', id: m[1]!, name: m[1]!.slice(0, 12), labels: { runtime: 'docker' } };
  m = CONTAINERD.exec(path);
  if (m)
    return { kind: 'containerd', id: m[1]!, name: m[1]!.slice(0, 12), labels: { runtime: 'containerd' } };
  m = PODMAN.exec(path);
  if (m) return { kind: 'podman', id: m[1]!, name: m[1]!.slice(0, 12), labels: { runtime: 'podman' } };
  if (opts.include.length && matchesAny(opts.include, path)) {
    return { kind: 'cgroup', id: path, name: path, labels: {} };
  }
  if (opts.systemd) {
    m = SYSTEMD_UNIT.exec(path);
    // podman's conmon monitor scope is part of the container, not a service of its own
    if (m && !m[1]!.startsWith('libpod-conmon-'))
      return { kind: 'systemd', id: path, name: m[1]!, labels: {} };
  }
  return undefined;
}

function k8s(qos: string | undefined, podUid: string, runtime: string, id: string): Classified {
  return {
    kind: 'kubernetes',
    id,
    name: `pod${podUid.slice(0, 8)}/${id.slice(0, 12)}`,
    labels: {
      runtime: runtime === 'docker-or-containerd' ? 'cri' : runtime,
      pod_uid: podUid,
      container_id: id,
      qos_class: qos ?? 'guaranteed',
    },
  };
}

/**
 * Walks a hierarchy (readdir of directories only) and returns the classified cgroups. A matched
 * container is not descended into (its sub-cgroups are its own business). Bounded by `maxDepth`
 * and `maxEntities` (the caller counts what was cut).
 */
export function scanHierarchy(
  root: string,
  opts: ClassifyOptions & { maxDepth: number; maxEntities: number },
): { found: Map<string, Classified>; truncated: number } {
  const found = new Map<string, Classified>();
  let truncated = 0;
  const walk = (dir: string, rel: string, depth: number): void => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // vanished while scanning, or unreadable: nothing below it to report
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const path = `${rel}/${e.name}`;
      const c = classifyCgroup(path, opts);
      if (c) {
        if (found.size >= opts.maxEntities) truncated++;
        else found.set(path, c);
        continue;
      }
      if (depth < opts.maxDepth) walk(`${dir}/${e.name}`, path, depth + 1);
    }
  };
  walk(root, '', 1);
  return { found, truncated };
}

export interface OpenOptions {
  layout: CgroupLayout;
  /** The hierarchy the scan walked (cgroup.procs is read there). */
  primaryRoot: string;
  /** Read the *.pressure files. */
  pressure: boolean;
}

/**
 * Opens the files this cgroup has, in each hierarchy: v2 cpu.stat where it exists (µs, also on
 * hybrid hosts), v1 cpu.stat for throttling, v1 cpuacct.* only without a v2 cpu.stat; memory and
 * I/O from the v1 controllers when mounted (hybrid, v1), else v2; PSI from the unified hierarchy.
 * undefined when none is there (the cgroup went away between the scan and here).
 */
export function openTarget(path: string, c: Classified, o: OpenOptions): Target | undefined {
  const v1 = o.layout.v1;
  const v2dir = o.layout.v2 !== undefined ? o.layout.v2 + path : undefined;
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
    primaryDir: `${o.primaryRoot}${path}`,
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
    labels: { ...c.labels, cgroup_version: o.layout.mode, cgroup_path: path },
    name: c.name,
  };
  // CPU: v2 cpu.stat has usage/user/system in µs (and throttling where the cpu controller is on v2).
  t.cpuV2 = at(v2dir, V2_CPU_STAT_FILE.file);
  t.cpuV1 = at(ctl('cpu'), V1_CPU_STAT_FILE.file);
  if (t.cpuV1) t.cpuQuota = at(ctl('cpu'), 'cpu.cfs_quota_us');
  if (!t.cpuV2) {
    t.cpuacctUsage = at(ctl('cpuacct'), V1_CPUACCT_USAGE_FILE.file);
    t.cpuacctStat = at(ctl('cpuacct'), V1_CPUACCT_STAT_FILE.file);
  }
  // Memory and I/O: the v1 controllers when mounted (hybrid, v1), else v2.
  if (v1.has('memory')) {
    t.memStat = at(ctl('memory'), V1_MEMORY_STAT_FILE.file);
    t.memUsage = at(ctl('memory'), V1_MEMORY_USAGE_FILE.file);
    t.memLimit = at(ctl('memory'), V1_MEMORY_LIMIT_FILE.file);
  } else {
    t.memStat = at(v2dir, V2_MEMORY_STAT_FILE.file);
    t.memStatV2 = true;
    t.memSpecs[0].wanted = V2_MEMORY_STAT_COUNTERS;
    t.memSpecs[1].wanted = V2_MEMORY_STAT_GAUGES;
    t.memTable = V2_MEM_TABLE;
    t.memUsage = at(v2dir, V2_MEMORY_CURRENT_FILE.file);
    t.memLimit = at(v2dir, V2_MEMORY_MAX_FILE.file);
    t.memLimitV2 = true;
  }
  if (v1.has('blkio')) {
    // The _recursive files include child cgroups, like v2 io.stat; older kernels lack them.
    const dir = ctl('blkio');
    const ops = V1_BLKIO_SERVICED_FILE.file;
    const bytes = V1_BLKIO_SERVICE_BYTES_FILE.file;
    t.blkioOps = at(dir, `${ops}_recursive`) ?? at(dir, ops);
    t.blkioBytes = at(dir, `${bytes}_recursive`) ?? at(dir, bytes);
  } else {
    t.ioStat = at(v2dir, V2_IO_STAT_FILE.file);
  }
  if (o.pressure) {
    for (const r of ['cpu', 'io', 'memory'] as const) {
      const f = at(v2dir, PRESSURE_FILES[r].file);
      if (f) t.pressure.push(psiFile(f, r));
    }
  }
  if (!t.cpuV2 && !t.cpuV1 && !t.cpuacctUsage && !t.memStat && !t.memUsage && !t.ioStat && !t.blkioOps) {
    closeTarget(t);
    return undefined;
  }
  return t;
}
