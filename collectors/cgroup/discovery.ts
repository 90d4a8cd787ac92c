// Which cgroup directories are containers, and what they are. Runs at discovery time only (regexes
// are fine here, never on the per-tick path). Paths are relative to a hierarchy root, with a
// leading slash: "/docker/<id>", "/kubepods.slice/…/cri-containerd-<id>.scope".
import { readdirSync } from 'node:fs';
import { matchesAny } from '../procfs/glob.ts';

export interface Classified {
  kind: 'docker' | 'kubernetes' | 'containerd' | 'podman' | 'systemd' | 'cgroup';
  /** Stable id: the container id, or the cgroup path for systemd units and globbed cgroups. */
  id: string;
  /** Name until an API tells a better one (Docker). */
  name: string;
  labels: Record<string, string>;
}

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
