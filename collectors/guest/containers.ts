// Containers inside a guest: the in-guest agent ships the raw cgroup v2 files of the guest's
// container-like cgroups in its record (a `cgroups` section listing them, then one
// `cgroup<path>/<file>` section per file; docs/vm.md). This turns them into `container` entities
// parented to the `guest` entity, parsed with the cgroup collector's v2 parsers
// (collectors/cgroup/v2files.ts) and classified with its discovery rules (docker, containerd,
// podman, kubernetes, systemd unit names; anything else is kind `cgroup`, named by its path).

import type { EntitySample, InstanceMetrics } from '../../schemas/sample.ts';
import { classifyCgroup } from '../cgroup/discovery.ts';
import { CGROUP_V2_FILES, type CgroupV2Files, cgroupV2FromFiles } from '../cgroup/v2files.ts';
import type { GuestRecord } from './framing.ts';

export interface GuestCgroupList {
  /** The guest's cgroup2 mount the agent read. */
  root: string;
  /** cgroups the agent found but did not send (its STRATA_CGROUP_MAX). */
  dropped: number;
  /** cgroup paths below the root, e.g. /strata-test/busy, in the agent's order. */
  paths: string[];
  problems: string[];
}

/** The record's `cgroups` section, or undefined when the agent sent none (no cgroup v2, older agent). */
export function guestCgroupList(record: GuestRecord): GuestCgroupList | undefined {
  const text = record.files.cgroups;
  if (text === undefined) return undefined;
  const out: GuestCgroupList = { root: '', dropped: 0, paths: [], problems: [] };
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line === '') continue;
    if (line.startsWith('/')) out.paths.push(line);
    else if (line.startsWith('root ')) out.root = line.slice(5);
    else if (line.startsWith('dropped ')) {
      const n = Number(line.slice(8));
      if (Number.isInteger(n) && n >= 0) out.dropped = n;
      else out.problems.push(`cgroups line ${lineNo}: dropped: not a count`);
    } else out.problems.push(`cgroups line ${lineNo}: expected "root …", "dropped N" or a cgroup path`);
  }
  return out;
}

/** The v2 files of one guest cgroup present in the record. */
export function guestCgroupFiles(record: GuestRecord, path: string): CgroupV2Files {
  const files: CgroupV2Files = {};
  for (const f of CGROUP_V2_FILES) {
    const text = record.files[`cgroup${path}/${f}`];
    if (text !== undefined) files[f] = text;
  }
  return files;
}

/** MAJ:MIN → kernel name from the guest's own /proc/diskstats (io.stat names devices by number). */
export function devnamesFromDiskstats(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!text) return out;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 3 && /^\d+$/.test(f[0]!) && /^\d+$/.test(f[1]!)) out.set(`${f[0]}:${f[1]}`, f[2]!);
  }
  return out;
}

export interface GuestContainerTarget {
  vmId: string;
  /** The VM's name (label vm_name, a tag: keeps two guests' same-named containers apart). */
  name: string;
}

export interface GuestContainerParts {
  samples: EntitySample[];
  /** Per cgroup path, one line per malformed part. */
  problems: Array<{ path: string; problem: string }>;
  /** Dropped by the agent (its bound) plus those over `maxContainers` here. */
  dropped: number;
}

/** The guest entity's id for a VM (the parent of its containers). */
export const guestEntityId = (vmId: string) => `${vmId}:guest`;

/**
 * One `container` sample per cgroup the record lists (at most maxContainers). Ids are
 * `<vm id>:guest:<container id or cgroup path>`: stable across records, unique across guests.
 */
export function guestContainerSamples(
  record: GuestRecord,
  t: GuestContainerTarget,
  ts: number,
  maxContainers = Number.POSITIVE_INFINITY,
  /** Whether a cgroup path may be used at all (the caller's name rules; it counts refusals). */
  acceptPath: (path: string) => boolean = () => true,
): GuestContainerParts {
  const out: GuestContainerParts = { samples: [], problems: [], dropped: 0 };
  const list = guestCgroupList(record);
  if (!list) return out;
  for (const problem of list.problems) out.problems.push({ path: '', problem });
  out.dropped = list.dropped;
  const names = devnamesFromDiskstats(record.files.diskstats);
  const devname = (d: string) => names.get(d) ?? d;
  const guestId = guestEntityId(t.vmId);
  const seen = new Set<string>();
  for (const path of list.paths) {
    if (seen.has(path)) continue;
    seen.add(path);
    // The path becomes the entity's id, name and labels: refused before anything is parsed.
    if (!acceptPath(path)) continue;
    const files = guestCgroupFiles(record, path);
    // Listed but no file read: removed while the agent built the record (not an error).
    if (Object.keys(files).length === 0) continue;
    if (out.samples.length >= maxContainers) {
      out.dropped++;
      continue;
    }
    const c = classifyCgroup(path, { systemd: true, include: [] }) ?? {
      kind: 'cgroup' as const,
      id: path,
      name: path,
      labels: {},
    };
    const parts = cgroupV2FromFiles(files, devname);
    for (const problem of parts.problems) out.problems.push({ path, problem });
    const sample: EntitySample = {
      entity: {
        layer: 'container',
        kind: c.kind,
        id: `${guestId}:${c.id}`,
        name: c.name,
        labels: { ...c.labels, cgroup_version: 'v2', cgroup_path: path, vm_name: t.name },
        parent: { layer: 'guest', id: guestId },
      },
      ts,
      counters: parts.counters,
      gauges: parts.gauges,
    };
    if (parts.devices) {
      const devices: Record<string, InstanceMetrics> = {};
      for (const d in parts.devices) devices[d] = { counters: parts.devices[d]! };
      sample.devices = devices;
    }
    out.samples.push(sample);
  }
  return out;
}
