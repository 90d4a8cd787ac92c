// Pure parsers of the vm collector: the hypervisor's /proc/PID files, QMP replies, and the QEMU
// command line. No I/O here, so unit tests run them on captured files and replies (testdata/qmp).
import type { InstanceMetrics } from '../../schemas/sample.ts';
import { MAX_KERNEL_VALUE, USER_HZ } from '../procfs/parsers.ts';
import {
  BALLOON_ACTUAL,
  BLOCKSTATS,
  CPU_SYSTEM,
  CPU_USAGE,
  CPU_USER,
  GUEST_REPORTED_MAJOR_PAGE_FAULTS,
  GUEST_REPORTED_MEMORY_FREE,
  GUEST_REPORTED_PAGE_FAULTS,
  KSM_MERGING,
  KSM_PROCESS_PROFIT,
  KSM_ZERO_PAGES,
  MAJOR_PAGE_FAULTS,
  MEMORY_CONFIGURED,
  MEMORY_FILE,
  PAGE_FAULTS,
  ROLLUP_FIELDS,
} from './metrics.ts';

const USEC_PER_TICK = 1_000_000 / USER_HZ;

export interface PidStat {
  /** Clock ticks (USER_HZ). */
  utime: number;
  stime: number;
  minflt: number;
  majflt: number;
  /** Resident pages. */
  rss: number;
  threads: number;
}

/**
 * /proc/PID/stat and /proc/PID/task/TID/stat. The comm field is in parentheses and may itself
 * contain spaces and ')' (QEMU names threads "CPU 0/TCG"), so fields are counted after the LAST ')'.
 */
export function parsePidStat(text: string): PidStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // After ") ": field 3 (state) is index 0, so field N is index N - 3.
  const f = text
    .slice(close + 2)
    .trim()
    .split(' ');
  if (f.length < 22) return undefined;
  const num = (field: number) => Number(f[field - 3]);
  const out = {
    minflt: num(10),
    majflt: num(12),
    utime: num(14),
    stime: num(15),
    threads: num(20),
    rss: num(24),
  };
  // ≤ u64: a larger value is garbage, and × USEC_PER_TICK could make it Infinity.
  for (const v of Object.values(out)) if (!(v >= 0 && v <= MAX_KERNEL_VALUE)) return undefined;
  return out;
}

/** VmRSS from /proc/PID/status, in bytes (exact, no page-size assumption). */
export function parseStatusRssBytes(text: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  const kb = m ? Number(m[1]) : Number.NaN;
  return kb <= MAX_KERNEL_VALUE ? kb * 1024 : undefined; // a 400-digit value is Infinity
}

/**
 * /proc/PID/smaps_rollup → the memory_* gauges (kB × 1024). Lines the kernel does not print
 * (Pss_Anon, KSM on older kernels) give no gauge; memory_file_bytes = Rss − Anonymous when both
 * are there. Empty when the text has no Rss line (not a smaps_rollup, or a process gone).
 */
export function parseSmapsRollup(text: string, gauges: Record<string, number> = {}): Record<string, number> {
  const kb = scanKeyed(text, ROLLUP_LINE);
  const rss = kb.get('Rss');
  if (rss === undefined) return gauges;
  for (const [key, metric] of ROLLUP_FIELDS) {
    const v = kb.get(key);
    if (v !== undefined) gauges[metric.name] = v * 1024;
  }
  const anon = kb.get('Anonymous');
  if (anon !== undefined && anon <= rss) gauges[MEMORY_FILE.name] = (rss - anon) * 1024;
  return gauges;
}

/**
 * /proc/PID/ksm_stat → ksm_* gauges: `ksm_merging_pages` and `ksm_zero_pages` × `pageSize`,
 * `ksm_process_profit` as is (bytes, signed). Keys the kernel does not print give no gauge.
 */
export function parseKsmStat(
  text: string,
  pageSize: number,
  gauges: Record<string, number> = {},
): Record<string, number> {
  const v = scanKeyed(text, KSM_STAT_LINE);
  const merging = v.get('ksm_merging_pages');
  const zero = v.get('ksm_zero_pages');
  const profit = v.get('ksm_process_profit');
  if (merging !== undefined && merging >= 0) gauges[KSM_MERGING.name] = merging * pageSize;
  if (zero !== undefined && zero >= 0) gauges[KSM_ZERO_PAGES.name] = zero * pageSize;
  if (profit !== undefined) gauges[KSM_PROCESS_PROFIT.name] = profit;
  return gauges;
}

// "Rss:   1712 kB" and "ksm_merging_pages 12": one key and one integer per line.
const ROLLUP_LINE = /^(\w+):[ \t]+(\d{1,20}) kB$/gm;
const KSM_STAT_LINE = /^(\w+) (-?\d{1,20})$/gm;

function scanKeyed(text: string, re: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const v = Number(m[2]);
    if (Math.abs(v) <= MAX_KERNEL_VALUE) out.set(m[1]!, v);
  }
  return out;
}

/** QMP `query-balloon` → balloon_actual_bytes (bytes), when the reply has a sane `actual`. */
export function balloonActual(ret: unknown, gauges: Record<string, number> = {}): Record<string, number> {
  const a = (ret as { actual?: unknown } | null | undefined)?.actual;
  if (typeof a === 'number' && Number.isSafeInteger(a) && a >= 0) gauges[BALLOON_ACTUAL.name] = a;
  return gauges;
}

/** QMP `query-memory-size-summary` → guest_memory_configured_bytes (base + plugged memory). */
export function configuredMemory(ret: unknown): number | undefined {
  const r = ret as { 'base-memory'?: unknown; 'plugged-memory'?: unknown } | null | undefined;
  const base = r?.['base-memory'];
  const plugged = r?.['plugged-memory'] ?? 0;
  if (typeof base !== 'number' || typeof plugged !== 'number') return undefined;
  const sum = base + plugged;
  return Number.isSafeInteger(sum) && base > 0 && plugged >= 0 ? sum : undefined;
}

export const MEMORY_CONFIGURED_NAME = MEMORY_CONFIGURED.name;

export function pidStatCounters(s: PidStat): { counters: Record<string, number> } {
  return {
    counters: {
      [CPU_USAGE.name]: (s.utime + s.stime) * USEC_PER_TICK,
      [CPU_USER.name]: s.utime * USEC_PER_TICK,
      [CPU_SYSTEM.name]: s.stime * USEC_PER_TICK,
      [PAGE_FAULTS.name]: s.minflt + s.majflt,
      [MAJOR_PAGE_FAULTS.name]: s.majflt,
    },
  };
}

/** vCPU thread time in µs (utime+stime of one /proc/PID/task/TID/stat). */
export function threadUsec(s: PidStat): number {
  return (s.utime + s.stime) * USEC_PER_TICK;
}

// ---------------------------------------------------------------------------------------------
// QMP replies

/** `query-cpus-fast` → vCPU thread ids, in cpu-index order. Threads of 0 (no thread) are skipped. */
export function vcpuThreadIds(ret: unknown): number[] {
  if (!Array.isArray(ret)) return [];
  return ret
    .filter((c) => c && Number.isSafeInteger(c['thread-id']) && c['thread-id'] > 0)
    .sort((a, b) => (a['cpu-index'] ?? 0) - (b['cpu-index'] ?? 0))
    .map((c) => c['thread-id'] as number);
}

/** The device key of one `query-blockstats` entry: drive name, else the qdev id, else the node name. */
export function blockDeviceKey(entry: {
  device?: unknown;
  qdev?: unknown;
  'node-name'?: unknown;
}): string | undefined {
  // Replies are JSON from the hypervisor: a non-string here would throw in split() or become a key.
  if (typeof entry.device === 'string' && entry.device) return entry.device;
  if (typeof entry.qdev === 'string' && entry.qdev) {
    // "/machine/peripheral/vd0/virtio-backend" → "vd0"; a bare id stays as is.
    const parts = entry.qdev.split('/').filter(Boolean);
    const i = parts.indexOf('peripheral');
    if (i >= 0 && parts[i + 1]) return parts[i + 1];
    if (parts.length === 1) return parts[0];
    return entry.qdev;
  }
  const node = entry['node-name'];
  return typeof node === 'string' && node ? node : undefined;
}

// [QMP stats key, wire name], from the catalogue's BLOCKSTATS.
const BLOCK_COUNTERS: ReadonlyArray<readonly [string, string]> = BLOCKSTATS.map(([k, m]) => [k, m.name]);
const GUEST_FAULTS = GUEST_REPORTED_PAGE_FAULTS.name;
const GUEST_MAJOR_FAULTS = GUEST_REPORTED_MAJOR_PAGE_FAULTS.name;
const GUEST_FREE = GUEST_REPORTED_MEMORY_FREE.name;

/** `query-blockstats` → devices of the `vm` sample (names of docs/metrics.md). */
export function blockstatsDevices(ret: unknown, problems: string[] = []): Record<string, InstanceMetrics> {
  const out: Record<string, InstanceMetrics> = {};
  if (!Array.isArray(ret)) {
    problems.push('query-blockstats: reply is not an array');
    return out;
  }
  for (const entry of ret) {
    const key = entry && typeof entry === 'object' ? blockDeviceKey(entry) : undefined;
    const stats = entry?.stats;
    if (!key || !stats || typeof stats !== 'object') {
      problems.push('query-blockstats: entry without device/qdev/node-name or stats');
      continue;
    }
    if (key === '__proto__') {
      problems.push('query-blockstats: a device named __proto__'); // would replace out's prototype
      continue;
    }
    const counters: Record<string, number> = {};
    for (const [src, name] of BLOCK_COUNTERS) {
      const v = stats[src];
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) counters[name] = v;
    }
    out[key] = { counters };
  }
  return out;
}

/** QEMU reports a balloon stat the guest never sent as -1 (as a uint64: 2^64-1). */
function balloonValue(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 2 ** 63 ? v : undefined;
}

/**
 * `qom-get <balloon> guest-stats` → the guest_reported_* names. Empty when the guest driver has
 * not reported yet (last-update 0) or the stats are all unset.
 */
export function balloonGuestStats(ret: unknown): {
  counters: Record<string, number>;
  gauges: Record<string, number>;
} {
  const counters: Record<string, number> = {};
  const gauges: Record<string, number> = {};
  const r = ret as { stats?: Record<string, unknown>; 'last-update'?: number } | undefined;
  if (!r?.stats || !r['last-update']) return { counters, gauges };
  const minor = balloonValue(r.stats['stat-minor-faults']);
  const major = balloonValue(r.stats['stat-major-faults']);
  const free = balloonValue(r.stats['stat-free-memory']);
  if (minor !== undefined && major !== undefined) counters[GUEST_FAULTS] = minor + major;
  if (major !== undefined) counters[GUEST_MAJOR_FAULTS] = major;
  if (free !== undefined) gauges[GUEST_FREE] = free;
  return { counters, gauges };
}

/** `qom-list /machine/peripheral` → the QOM path of the first virtio balloon device, if any. */
export function findBalloonPath(ret: unknown, base = '/machine/peripheral'): string | undefined {
  if (!Array.isArray(ret)) return undefined;
  const b = ret.find(
    (p) => typeof p?.type === 'string' && /^child<virtio-balloon-(pci|ccw|device)/.test(p.type),
  );
  return b ? `${base}/${b.name}` : undefined;
}

/** `query-uuid` → the UUID, unless it is the all-zero UUID QEMU reports when none was set. */
export function nonZeroUuid(ret: unknown): string | undefined {
  const u = (ret as { UUID?: unknown } | null | undefined)?.UUID;
  return typeof u === 'string' && u && !/^[0-]*$/.test(u) ? u : undefined;
}

// ---------------------------------------------------------------------------------------------
// QEMU command line (/proc/PID/cmdline, NUL-separated)

export interface QemuCmdline {
  argv: string[];
  /** Unix socket paths named anywhere on the command line (qmp, chardevs). */
  socketPaths: string[];
  /** -accel / -enable-kvm / -machine accel=, when stated. */
  accel?: 'kvm' | 'tcg';
  /** Tap device names from -netdev tap,ifname=... (absent when the tap came as an fd, as from libvirt: see tunFdTaps). */
  taps: string[];
  /** Host socket path of the virtio-serial port named `portName` (the in-guest agent's port). */
  agentSocket?: string;
}

/** Splits "a=1,b=2" QEMU option strings; ",," is an escaped comma. JSON (-netdev {...}) is parsed too. */
function qemuOpts(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (value.startsWith('{')) {
    try {
      for (const [k, v] of Object.entries(JSON.parse(value) as Record<string, unknown>)) out[k] = String(v);
    } catch {}
    return out;
  }
  const parts = value.replace(/,,/g, '\u0000').split(',');
  for (const [i, part] of parts.entries()) {
    const p = part.split('\u0000').join(',');
    const eq = p.indexOf('=');
    if (eq < 0) out[i === 0 ? '' : p] = i === 0 ? p : 'on';
    else out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

export function parseQemuCmdline(raw: string, portName = 'strata.agent'): QemuCmdline {
  const argv = raw.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  const res: QemuCmdline = { argv, socketPaths: [], taps: [] };
  const chardevs = new Map<string, string>();
  const ports: { chardev: string; name: string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.replace(/^--/, '-');
    const value = argv[i + 1] ?? '';
    if (flag === '-enable-kvm') res.accel = 'kvm';
    else if (flag === '-accel') {
      const o = qemuOpts(value);
      const a = o[''] ?? o.accel;
      if (a === 'kvm' || a === 'tcg') res.accel = a;
    } else if (flag === '-machine' || flag === '-M') {
      const a = qemuOpts(value).accel?.split(':')[0];
      if (a === 'kvm' || a === 'tcg') res.accel ??= a;
    } else if (flag === '-qmp' || flag === '-monitor') {
      const m = /^unix:([^,]+)/.exec(value);
      if (m) res.socketPaths.push(m[1]!);
    } else if (flag === '-chardev') {
      const o = qemuOpts(value);
      if (o.path) {
        res.socketPaths.push(o.path);
        if (o.id) chardevs.set(o.id, o.path);
      }
    } else if (flag === '-netdev' || flag === '-nic') {
      const o = qemuOpts(value);
      if ((o[''] === 'tap' || o.type === 'tap') && o.ifname) res.taps.push(o.ifname);
    } else if (flag === '-device') {
      const o = qemuOpts(value);
      if ((o[''] === 'virtserialport' || o.driver === 'virtserialport') && o.chardev && o.name) {
        ports.push({ chardev: o.chardev, name: o.name });
      }
    }
  }
  const port = ports.find((p) => p.name === portName);
  if (port) res.agentSocket = chardevs.get(port.chardev);
  return res;
}

/**
 * `query-block` → the host files behind the VM's drives (`inserted.file`, else the image's
 * filename). `json:{...}` pseudo-filenames (-blockdev with options) and drives without media are skipped.
 */
export function blockImageFiles(ret: unknown): { device: string; file: string }[] {
  if (!Array.isArray(ret)) return [];
  const out: { device: string; file: string }[] = [];
  for (const b of ret) {
    const ins = b?.inserted;
    const file: unknown = ins?.file ?? ins?.image?.filename;
    if (typeof file !== 'string' || !file.startsWith('/')) continue;
    out.push({ device: blockDeviceKey(b) ?? '', file });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tap devices held as file descriptors (/proc/PID/fd → /dev/net/tun, /proc/PID/fdinfo/FD)

/**
 * The interface a /dev/net/tun fd is attached to, from its fdinfo text: the tun driver
 * (tun_chr_show_fdinfo) appends `iff:\t<ifname>` after the generic pos/flags/mnt_id/ino lines.
 * undefined when there is no such line, the name is empty (fd opened but no TUNSETIFF yet) or is
 * not a possible interface name (1-15 bytes, no '/' or whitespace).
 */
export function parseTunFdinfo(text: string): string | undefined {
  const m = /^iff:[ \t]*(.*)$/m.exec(text);
  const name = m?.[1]?.trim();
  return name && name.length <= 15 && !/[\s/]/.test(name) ? name : undefined;
}

/**
 * The cgroup a process runs in, from /proc/PID/cgroup, as the cgroup collector names containers
 * (`cgroup_path`): on cgroup v1 and hybrid hosts the hierarchy of cpuacct, else memory, else cpu
 * (the collector's own order); on v2 hosts the unified one (`0::`). Undefined for the root cgroup
 * (a process in no container) and for text without such a line. A path that starts with `/..` was
 * read from another cgroup namespace than the process's (an agent in a container without
 * `--cgroupns=host`): it is returned as it is, and the processor matches it by the container's own
 * directory name (processors/hypervisor-cgroup.ts).
 */
export function processCgroupPath(text: string): string | undefined {
  let unified: string | undefined;
  const byController = new Map<string, string>();
  for (const line of text.split('\n')) {
    // hierarchy-ID:controller-list:cgroup-path (the path may itself contain ':')
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const controllers = line.slice(a + 1, b);
    const p = line.slice(b + 1);
    if (!p.startsWith('/')) continue;
    if (line.slice(0, a) === '0' && controllers === '') unified = p;
    else for (const c of controllers.split(',')) byController.set(c, p);
  }
  const p =
    byController.size > 0
      ? (byController.get('cpuacct') ?? byController.get('memory') ?? byController.get('cpu'))
      : unified;
  return p === undefined || p === '/' ? undefined : p;
}
