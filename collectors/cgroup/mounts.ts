// Where the cgroup hierarchies are, from mountinfo: pure v1 (one mount per controller or a few
// co-mounted, e.g. "cpu,cpuacct"), pure v2 (one cgroup2 mount at the root) or hybrid (v1
// controllers plus a cgroup2 mount, usually /sys/fs/cgroup/unified, that carries PSI).
export type CgroupMode = 'v1' | 'v2' | 'hybrid';

export interface CgroupLayout {
  mode: CgroupMode;
  /** v1 controller → mount directory (already re-rooted under HOST_CGROUP). */
  v1: Map<string, string>;
  /** The cgroup2 mount directory, if any. */
  v2?: string;
}

/**
 * Parses mountinfo. Mount points under /sys/fs/cgroup are re-rooted to `cgroupRoot` (HOST_CGROUP /
 * HOST_SYS), so an agent in a container with the host's /sys mounted elsewhere finds them.
 */
export function layoutFromMountinfo(text: string, cgroupRoot = '/sys/fs/cgroup'): CgroupLayout {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep === -1) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fstype = right[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const mountpoint = unescapeOctal(left[4] ?? '');
    const dir = reroot(mountpoint, cgroupRoot);
    if (fstype === 'cgroup2') {
      // Prefer the one at the root (pure v2) or the conventional unified one; keep the first otherwise.
      if (v2 === undefined || mountpoint === '/sys/fs/cgroup') v2 = dir;
      continue;
    }
    for (const opt of (right[2] ?? '').split(',')) {
      if (opt.includes('=') || NOT_CONTROLLERS.has(opt)) continue;
      if (!v1.has(opt)) v1.set(opt, dir);
    }
  }
  const hasV1 = v1.size > 0;
  const mode: CgroupMode = hasV1 ? (v2 ? 'hybrid' : 'v1') : 'v2';
  const layout: CgroupLayout = { mode, v1 };
  if (v2 !== undefined) layout.v2 = v2;
  return layout;
}

/**
 * Super options of a v1 cgroup mount that are not controllers (the kernel's cgroup1_show_options
 * and cgroup1_parse_param), besides name=/release_agent=: "rw,xattr,name=systemd" is systemd's
 * named hierarchy without any controller.
 */
const NOT_CONTROLLERS = new Set([
  'rw',
  'ro',
  'xattr',
  'noprefix',
  'clone_children',
  'cpuset_v2_mode',
  'favordynmods',
  'nofavordynmods',
  'none',
  'all',
]);

function reroot(mountpoint: string, cgroupRoot: string): string {
  if (mountpoint === '/sys/fs/cgroup') return cgroupRoot;
  if (mountpoint.startsWith('/sys/fs/cgroup/')) return cgroupRoot + mountpoint.slice('/sys/fs/cgroup'.length);
  return mountpoint;
}

/** mountinfo escapes space, tab, newline and backslash as \\ooo octal. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}
