// Whether the v1 blkio.throttle.io_serviced / io_service_bytes counters of a cgroup count its I/O.
// They are kept by blk-throttle, and which bios blk-throttle sees depends on the kernel (mainline):
//
//  - before 5.16: every bio of every cgroup ("all");
//  - 5.16 to 6.4: a7b36ee6ba29 "block: move blk-throtl fast path inline" returns before the
//    accounting unless the cgroup's throttle group has a rule for the bio's direction, its own or an
//    ancestor's (tg->has_rules[rw], per device): a cgroup without one reads 0 ("ruled"). The test
//    VM's Debian 6.1.0-57 does this (testdata/cgroup/v1-tcg-dd);
//  - 6.5 to 6.9: ad7c3b41e86b "blk-throttle: Fix io statistics for cgroup v1" counts every bio
//    again ("all");
//  - 6.10 and later: a3166c51702b "blk-throttle: delay initialization until configuration" counts
//    nothing on a disk until a throttle rule was first written for it on any cgroup; from then on
//    every bio on that disk, for the life of the disk, even after the rule is removed
//    ("activated"). The kernel prints a disk's lines in these files only once blk-throttle is
//    active on it, so the root cgroup's blkio.throttle.io_serviced lists exactly the active disks
//    (checked on this machine's 6.18: docs/collectors.md).
//
// Distribution kernels may carry backports (a 6.1 with ad7c3b41e86b counts everything); an unknown
// version is treated as "ruled", which never publishes a wrong number: a cgroup with a rule of its
// own or an ancestor's for a direction is counted by every kernel above.
import { readdirSync } from 'node:fs';
import type { OnceLogger } from '../../lib/log.ts';
import { readOnce } from '../procfs/fileio.ts';
import * as M from './metrics.ts';
import type { DeviceCounters } from './parsers.ts';
import type { Target } from './target.ts';

export type BlkioAccounting = 'all' | 'ruled' | 'activated';

/** Direction bits of a device's mask: which of its counters the kernel keeps. Discards are writes. */
export const BLKIO_READ = 1;
export const BLKIO_WRITE = 2;
export const BLKIO_BOTH = 3;

/** Which accounting a kernel release ("6.1.0-57-cloud-amd64", "6.18.44-fc-v657") has. */
export function blkioAccounting(release: string | undefined): BlkioAccounting {
  const m = release === undefined ? null : /^(\d+)\.(\d+)/.exec(release);
  if (!m) return 'ruled';
  const v = Number(m[1]) * 1000 + Number(m[2]);
  if (v < 5016) return 'all';
  if (v < 6005) return 'ruled';
  if (v < 6010) return 'all';
  return 'activated';
}

/** Why, in words, for the log. */
export function blkioAccountingReason(mode: BlkioAccounting, release: string | undefined): string {
  if (release === undefined || !/^\d+\.\d+/.test(release))
    return 'kernel version unknown: v1 blkio counters are trusted only where a cgroup or an ancestor has a throttle rule for the device and direction (what kernels 5.16-6.4 count)';
  if (mode === 'ruled')
    return `kernel ${release} (5.16-6.4) counts v1 blkio I/O only for cgroups that have a blkio.throttle rule for the device and direction, their own or an ancestor's`;
  if (mode === 'activated')
    return `kernel ${release} (6.10 or later) counts v1 blkio I/O on a disk only after a blkio.throttle rule was written for that disk on some cgroup`;
  return `kernel ${release} counts all v1 blkio I/O`;
}

/** Devices ("MAJ:MIN") that have a line in a blkio.throttle.io_serviced file. */
export function blkioDevices(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0 && line.charCodeAt(0) >= 48 && line.charCodeAt(0) <= 57) out.add(line.slice(0, sp));
  }
  return out;
}

const RULE_FILES: ReadonlyArray<readonly [string, number]> = [
  ['blkio.throttle.read_bps_device', BLKIO_READ],
  ['blkio.throttle.read_iops_device', BLKIO_READ],
  ['blkio.throttle.write_bps_device', BLKIO_WRITE],
  ['blkio.throttle.write_iops_device', BLKIO_WRITE],
];

/**
 * The throttle rules of one v1 blkio cgroup directory: device → direction bits. A rule file lists
 * "MAJ:MIN limit" lines, only for devices with a limit set. Unreadable or absent files: no rule.
 */
export function ruleMasks(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [file, bit] of RULE_FILES) {
    let text: string;
    try {
      text = readOnce(`${dir}/${file}`);
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const sp = line.indexOf(' ');
      if (sp <= 0) continue;
      const dev = line.slice(0, sp);
      out.set(dev, (out.get(dev) ?? 0) | bit);
    }
  }
  return out;
}

/**
 * The union of the rules of a cgroup and of its ancestors within the hierarchy (root first), as
 * the kernel's has_rules[] inherits them. `cache` holds each directory's rules for one rescan.
 */
export function inheritedRules(
  root: string,
  path: string,
  cache: Map<string, Map<string, number>>,
): Map<string, number> {
  const out = new Map<string, number>();
  let rel = '';
  const parts = path.split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) rel += `/${parts[i - 1]}`;
    let rules = cache.get(rel);
    if (rules === undefined) {
      rules = ruleMasks(root + rel);
      cache.set(rel, rules);
    }
    for (const [dev, bits] of rules) out.set(dev, (out.get(dev) ?? 0) | bits);
  }
  return out;
}

/**
 * Disks ("MAJ:MIN") that have completed any read or write since boot and have a size, from
 * /sys/block/NAME/{stat,size,dev}. undefined when it cannot be told (no /sys/block, a disk with I/O whose
 * number is unreadable): then no container is "fully" accounted.
 */
export function usedDisks(sys: string): Set<string> | undefined {
  let names: string[];
  try {
    names = readdirSync(`${sys}/block`);
  } catch {
    return undefined;
  }
  const out = new Set<string>();
  for (const name of names) {
    let stat: string;
    try {
      stat = readOnce(`${sys}/block/${name}/stat`);
    } catch {
      continue; // vanished
    }
    const f = stat.trim().split(/\s+/);
    if (Number(f[0] ?? 0) === 0 && Number(f[4] ?? 0) === 0) continue;
    try {
      // a detached loop device or an empty drive (size 0) keeps its old counts but takes no I/O
      if (readOnce(`${sys}/block/${name}/size`).trim() === '0') continue;
    } catch {
      // no size file (a captured tree): counts as used
    }
    try {
      out.add(readOnce(`${sys}/block/${name}/dev`).trim());
    } catch {
      return undefined;
    }
  }
  return out;
}

export interface BlkioTrustOptions {
  /** The v1 blkio hierarchy's root; undefined: no v1 blkio, nothing to decide. */
  root: string | undefined;
  /** The accounting in force, and what the configuration said (for the log line). */
  mode: BlkioAccounting;
  configured: BlkioAccounting | 'auto';
  kernelRelease: string | undefined;
  /** HOST_SYS, for /sys/block. */
  sys: string;
  once: OnceLogger;
}

/**
 * Decides, per container and v1 blkio device, whether the kernel counts its I/O, at each
 * discovery: one read of the root's blkio.throttle.io_serviced (kernels >= 6.10), or the four rule
 * files of each container and of its ancestors, each directory once (5.16-6.4 and unknown), plus
 * /sys/block/{dev,stat} of the disks. Nothing on kernels that count everything. Containers not
 * counted on some disk or direction get the label io_accounting (partial / unavailable), and
 * their uncounted device counters are not sent (the reader filters them with keepCounted).
 */
export function refreshBlkioTrust(targets: Iterable<Target>, o: BlkioTrustOptions): void {
  const root = o.root;
  if (o.mode === 'all' || root === undefined) return;
  let active: Map<string, number> | undefined;
  if (o.mode === 'activated') {
    active = new Map();
    try {
      for (const d of blkioDevices(readOnce(`${root}/blkio.throttle.io_serviced`))) active.set(d, BLKIO_BOTH);
    } catch {
      // unreadable root file: no disk is known to be counted
    }
  }
  const used = usedDisks(o.sys);
  const cache = new Map<string, Map<string, number>>();
  let missing = 0;
  for (const t of targets) {
    if (!t.blkioOps && !t.blkioBytes) continue;
    const trust = active ?? inheritedRules(root, t.path, cache);
    let full = used !== undefined;
    if (used) for (const d of used) if (trust.get(d) !== BLKIO_BOTH) full = false;
    // 6.10+: a disk has lines in these files only once blk-throttle counts it, so every line read
    // is counted and the reader needs no per-tick filter (one that would also hide a disk activated
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
    o.once.warn(
      'blkio-accounting',
      {
        kernel: o.kernelRelease ?? 'unknown',
        blkioAccounting: o.mode,
        containers: missing,
      },
      `cgroup v1 blkio: ${o.configured === 'auto' ? blkioAccountingReason(o.mode, o.kernelRelease) : `collectors.cgroup.blkioAccounting is "${o.mode}"`}; ` +
        `${missing} container(s) get the label io_accounting=partial|unavailable and no number for the disks ` +
        'and directions not counted (never a 0). Remedies: boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1), ' +
        'or set a throttle limit nothing reaches on a parent cgroup, e.g. ' +
        'echo "MAJ:MIN 1000000000" > /sys/fs/cgroup/blkio/docker/blkio.throttle.write_iops_device ' +
        '(and read_iops_device), or per container: docker run --device-write-iops /dev/vda:1000000000 ' +
        '--device-read-iops /dev/vda:1000000000',
    );
  }
}

const READ_NAMES = [M.READS_COMPLETED.name, M.READ_BYTES.name];
// a discard is a write to blk-throttle (op_is_write)
const WRITE_NAMES = [
  M.WRITES_COMPLETED.name,
  M.WRITTEN_BYTES.name,
  M.DISCARDS_COMPLETED.name,
  M.DISCARDED_BYTES.name,
];

/**
 * Removes from v1 blkio device counters the devices and directions the kernel does not count;
 * false when it removed every device (there were some). A file without device lines ("Total 0")
 * stays an empty set.
 */
export function keepCounted(devices: DeviceCounters, trust: Map<string, number>): boolean {
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
    if (!(bits & BLKIO_READ)) for (const n of READ_NAMES) delete c[n];
    if (!(bits & BLKIO_WRITE)) for (const n of WRITE_NAMES) delete c[n];
    left = true;
  }
  return left || !removed;
}
