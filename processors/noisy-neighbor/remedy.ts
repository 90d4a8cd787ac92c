// The remedy carried by every noisy-neighbour alert (docs/overhead.md, "Remedy"): a cap on the
// antagonist's I/O, computed from the alert's evidence, written as the command for its kind —
// cgroup v2 io.max, cgroup v1 blkio.throttle.*, Docker's --device-*-iops/bps, QEMU/libvirt
// throttling for a VM — with the concrete cgroup path and device. Pure: evidence in, text out.

/** What the detector knows of the antagonist when an incident fires. */
export interface AntagonistInfo {
  layer: string;
  /** Entity kind: docker, containerd, podman, kubernetes, systemd, cgroup; qemu... for VMs. */
  kind: string;
  name: string;
  /** Entity labels: cgroup_path, cgroup_version (v1, v2, hybrid), pod, namespace... */
  labels: Readonly<Record<string, string>>;
  /** A VM's own disk names (QMP devices), for the throttling commands. */
  disks: readonly string[];
}

export interface RemedyCaps {
  readIops?: number;
  writeIops?: number;
  readBps?: number;
  writeBps?: number;
  /** VMs: QEMU and libvirt throttle reads + writes together. */
  totalIops?: number;
  totalBps?: number;
  /** The fraction of the antagonist's rate when active (antagonist_peak_to_mean_ratio) the caps allow. */
  factor: number;
}

export interface Remedy {
  caps: RemedyCaps;
  /** One line for titles and the live view. */
  short: string;
  /** The runbook: what to run, where. */
  text: string;
}

/** A direction (read/write) smaller than this share of the antagonist's I/O is left uncapped. */
const MIN_DIRECTION_SHARE = 0.05;
/** Floors: a cap of 0 would stop the tenant dead, which is not a throttle. */
const MIN_IOPS = 1;
const MIN_BPS = 4096;

/**
 * The antagonist's utilisation of the device is taken as at most this: at its measured peak the
 * device is saturated, where the queueing model's ρ ÷ (1 − ρ) is unbounded; the bound keeps one
 * saturated window from demanding a zero cap (the next alert tightens it if that was not enough).
 */
export const MAX_UTILIZATION = 0.95;

/**
 * Its rate when active over its window mean (evidence antagonist_peak_to_mean_ratio: its busiest
 * tick ÷ the window's mean, ≥ 1): a burst that starts late in a window hurts at its rate when
 * active, not at the window's mean, and the cap is a fraction of that rate.
 */
function activeScale(ev: Readonly<Record<string, number>>): number {
  const k = ev.antagonist_peak_to_mean_ratio;
  return k !== undefined && k > 1 ? k : 1;
}

/**
 * The antagonist's utilisation of the device (0..MAX_UTILIZATION), at its rate when active: its rate over the device's
 * measured capacity (the highest ops/s and bytes/s the device did in a window, evidence
 * device_capacity_*), the larger of the two — a disk saturates on bandwidth with large requests,
 * on operations with small ones. Without a capacity, MAX_UTILIZATION (it dominates the device).
 */
export function antagonistUtilization(ev: Readonly<Record<string, number>>): number {
  const k = activeScale(ev);
  const aOps = (ev.antagonist_iops ?? 0) * k;
  const aBps = ((ev.antagonist_read_bytes_per_second ?? 0) + (ev.antagonist_write_bytes_per_second ?? 0)) * k;
  const cOps = ev.device_capacity_iops ?? 0;
  const cBps = ev.device_capacity_bytes_per_second ?? 0;
  let rho = 0;
  if (cOps > 0) rho = Math.max(rho, aOps / cOps);
  if (cBps > 0) rho = Math.max(rho, aBps / cBps);
  if (!(rho > 0)) return MAX_UTILIZATION;
  return Math.min(MAX_UTILIZATION, rho);
}

/**
 * The fraction of its rate when active the antagonist may keep (docs/overhead.md, "Remedy"). The device
 * is a queue where the antagonist's requests make up nearly all the work (M/G/1, Pollaczek–
 * Khinchine): a victim's request waits the residual of the request in service plus the work
 * queued ahead of it, W = ρ·S̄ ÷ (2·(1 − ρ)), S̄ the antagonist's mean-square over mean service
 * time — so the victim's extra wait per op is proportional to ρ ÷ (1 − ρ), and large requests
 * (1 MiB writes against a 4 KiB victim) hurt at any ρ, which is why one shared M/M/1 queue
 * (wait ∝ 1 ÷ (1 − ρ)) cut too little. From the victim's baseline b and its figure now x (per-op
 * latency when known, else stall) and the antagonist's utilisation now ρ (antagonistUtilization):
 * the extra wait x − b must come down to (target − 1)·b, so
 *   ρ' ÷ (1 − ρ') = ρ ÷ (1 − ρ) × (target − 1)·b ÷ (x − b),  f = ρ' ÷ ρ.
 * Applied under a cap, the next alert's evidence (the antagonist's capped rate, the victim's wait
 * under it) gives the next, tighter f: the model's error shrinks with each step. Without a victim
 * baseline (adopted incidents, stall baselines of 0), the cap is the one that stops the antagonist
 * dominating: its share at most `dominantShare` of the device.
 */
export function capFactor(
  ev: Readonly<Record<string, number>>,
  target: number,
  dominantShare: number,
): number {
  const pairs: [number | undefined, number | undefined][] = [
    [ev.victim_latency_ms_per_op, ev.victim_baseline_latency_ms_per_op],
    [ev.victim_io_stall_ratio, ev.victim_baseline_io_stall_ratio],
  ];
  for (const [now, base] of pairs) {
    if (now === undefined || base === undefined || !(base > 0) || !(now > base * target)) continue;
    const rho = antagonistUtilization(ev);
    const odds = ((rho / (1 - rho)) * (target - 1) * base) / (now - base);
    return odds / (1 + odds) / rho;
  }
  const a = ev.antagonist_iops;
  const d = ev.device_iops;
  if (a !== undefined && d !== undefined && a > 0 && d > a) {
    // A share of the window's ops: as a fraction of its rate when active, that much less.
    return Math.min(1, ((dominantShare / (1 - dominantShare)) * (d - a)) / a) / activeScale(ev);
  }
  return 0.5;
}

function caps(ev: Readonly<Record<string, number>>, layer: string, f: number): RemedyCaps {
  const k = activeScale(ev);
  const iops = (x: number | undefined) => Math.max(MIN_IOPS, Math.floor(f * k * (x ?? 0)));
  const bps = (x: number | undefined) => Math.max(MIN_BPS, Math.floor(f * k * (x ?? 0)));
  const r = ev.antagonist_read_iops ?? 0;
  const w = ev.antagonist_write_iops ?? 0;
  const rb = ev.antagonist_read_bytes_per_second ?? 0;
  const wb = ev.antagonist_write_bytes_per_second ?? 0;
  if (layer === 'vm') return { totalIops: iops(r + w), totalBps: bps(rb + wb), factor: f };
  const out: RemedyCaps = { factor: f };
  const ops = r + w;
  const bytes = rb + wb;
  // Without the split (older evidence), both directions get the total's cap.
  const noSplit = ops === 0 && bytes === 0;
  const total = ev.antagonist_iops ?? 0;
  if (noSplit || r >= MIN_DIRECTION_SHARE * ops || rb >= MIN_DIRECTION_SHARE * bytes) {
    out.readIops = iops(noSplit ? total : r);
    if (!noSplit) out.readBps = bps(rb);
  }
  if (noSplit || w >= MIN_DIRECTION_SHARE * ops || wb >= MIN_DIRECTION_SHARE * bytes) {
    out.writeIops = iops(noSplit ? total : w);
    if (!noSplit) out.writeBps = bps(wb);
  }
  return out;
}

const mib = (b: number) =>
  b >= 1024 * 1024 ? `${Math.round(b / (1024 * 1024))} MiB/s` : `${Math.round(b / 1024)} KiB/s`;

function shortOf(c: RemedyCaps, name: string): string {
  const parts: string[] = [];
  if (c.totalIops !== undefined) parts.push(`${c.totalIops} IOPS`, mib(c.totalBps ?? 0));
  if (c.readIops !== undefined) parts.push(`${c.readIops} read IOPS`);
  if (c.readBps !== undefined) parts.push(`${mib(c.readBps)} read`);
  if (c.writeIops !== undefined) parts.push(`${c.writeIops} write IOPS`);
  if (c.writeBps !== undefined) parts.push(`${mib(c.writeBps)} written`);
  return `cap ${name} at ${parts.join(', ')}`;
}

/** cgroup v1 blkio lives in its own hierarchy; hybrid hosts keep blkio there too (docs/collectors.md). */
function cgroupLines(info: AntagonistInfo, c: RemedyCaps, majMin: string): string[] {
  const path = info.labels.cgroup_path;
  if (path === undefined || path === '') return [];
  const rel = path.startsWith('/') ? path : `/${path}`;
  if (info.labels.cgroup_version === 'v2') {
    const kv: string[] = [];
    if (c.readIops !== undefined) kv.push(`riops=${c.readIops}`);
    if (c.writeIops !== undefined) kv.push(`wiops=${c.writeIops}`);
    if (c.readBps !== undefined) kv.push(`rbps=${c.readBps}`);
    if (c.writeBps !== undefined) kv.push(`wbps=${c.writeBps}`);
    return [
      `cgroup v2: echo "${majMin} ${kv.join(' ')}" > /sys/fs/cgroup${rel}/io.max`,
      `(or, proportionally, with the BFQ scheduler or io.cost: lower its weight, echo "${majMin} 10" > /sys/fs/cgroup${rel}/io.weight)`,
    ];
  }
  const dir = `/sys/fs/cgroup/blkio${rel}`;
  const lines: string[] = [];
  const v1 = (file: string, v: number | undefined) => {
    if (v !== undefined) lines.push(`echo "${majMin} ${v}" > ${dir}/blkio.throttle.${file}`);
  };
  v1('read_iops_device', c.readIops);
  v1('write_iops_device', c.writeIops);
  v1('read_bps_device', c.readBps);
  v1('write_bps_device', c.writeBps);
  return [`cgroup v1: ${lines.join('; ')}`];
}

/** The remedy for an incident's antagonist on `dev` ("vda"), from its evidence. */
export function remedyFor(
  info: AntagonistInfo,
  dev: string,
  ev: Readonly<Record<string, number>>,
  opts: { targetRatio: number; dominantShare: number; deviceNumbers: Readonly<Record<string, string>> },
): Remedy {
  const f = Math.max(0, Math.min(1, capFactor(ev, opts.targetRatio, opts.dominantShare)));
  const c = caps(ev, info.layer, f);
  const short = shortOf(c, info.name);
  const majMin = opts.deviceNumbers[dev] ?? `$(cat /sys/class/block/${dev}/dev)`;
  const lines: string[] = [];
  if (info.layer === 'vm') {
    const disk = info.disks[0] ?? '<disk>';
    const ti = c.totalIops ?? MIN_IOPS;
    const tb = c.totalBps ?? MIN_BPS;
    lines.push(
      `libvirt: virsh blkdeviotune ${info.name} ${disk} --total-iops-sec ${ti} --total-bytes-sec ${tb} --live ` +
        `(domain XML: <iotune><total_iops_sec>${ti}</total_iops_sec><total_bytes_sec>${tb}</total_bytes_sec></iotune>)`,
      `QEMU: QMP block_set_io_throttle on ${disk} with iops=${ti} bps=${tb}, or -drive ...,throttling.iops-total=${ti},throttling.bps-total=${tb}`,
    );
  } else {
    lines.push(...cgroupLines(info, c, majMin));
    const devPath = `/dev/${dev}`;
    if (info.kind === 'docker' || info.labels.runtime === 'docker') {
      const flags: string[] = [];
      if (c.readIops !== undefined) flags.push(`--device-read-iops ${devPath}:${c.readIops}`);
      if (c.writeIops !== undefined) flags.push(`--device-write-iops ${devPath}:${c.writeIops}`);
      if (c.readBps !== undefined) flags.push(`--device-read-bps ${devPath}:${c.readBps}`);
      if (c.writeBps !== undefined) flags.push(`--device-write-bps ${devPath}:${c.writeBps}`);
      lines.push(
        `docker: at its next start, docker run ${flags.join(' ')} (docker update cannot change these; the cgroup line applies now)`,
      );
    }
    if (info.kind === 'kubernetes' || info.labels.pod !== undefined) {
      const pod = info.labels.pod
        ? `pod ${info.labels.namespace ?? 'default'}/${info.labels.pod}`
        : 'the pod';
      lines.push(
        `kubernetes: no per-pod IOPS limit in the API; apply the cgroup line on the node, or schedule ${pod} apart from its victims (pod anti-affinity, another node or volume)`,
      );
    }
  }
  lines.push(`or move ${info.name} or its victims to another device (schedule them apart)`);
  return {
    caps: c,
    short,
    text: `${short} (${Math.round(f * 100)}% of its rate when active): ${lines.join('; ')}`,
  };
}
