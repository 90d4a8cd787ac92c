// Noisy-neighbor I/O detection (docs/overhead.md, "Noisy neighbours"), per node and shared block
// device, in the spirit of Google's CPI2: victims are tenants (containers, VMs) whose I/O stall or
// per-op latency rises well above their own learned baseline; the antagonist is chosen by evidence
// accumulated over windows — its share of the device's I/O and the correlation of its I/O with the
// victims' stall — never by a single sample. Hysteresis: fire after k bad windows, resolve after m
// good ones. All state is bounded: tenants per node, ticks of history, devices per node.
import { ALERT_SCHEMA_VERSION, type AlertEvent } from '../../schemas/alert.ts';
import type { Point } from '../../schemas/point.ts';
import { vmsInContainers } from '../hypervisor-cgroup.ts';
import { type EntityView, type Fields, totalIops } from '../rates/rates.ts';
import type { NoisyNeighborConfig } from './config.ts';
import { type AntagonistInfo, type RemedyCaps, remedyFor } from './remedy.ts';

export const ALERT_NAME = 'NoisyNeighborIO';
const MAX_DEVICES_PER_NODE = 64;
/** Shared by ticks without VM latencies (never written to). */
const NO_LATENCY: ReadonlyMap<string, number> = new Map();

/** EWMA mean and variance (West's incremental form). */
export class Ewma {
  n = 0;
  mean = 0;
  variance = 0;
  constructor(private readonly alpha: number) {}
  add(x: number): void {
    if (this.n === 0) {
      this.mean = x;
      this.variance = 0;
    } else {
      const diff = x - this.mean;
      const incr = this.alpha * diff;
      this.mean += incr;
      this.variance = (1 - this.alpha) * (this.variance + diff * incr);
    }
    this.n++;
  }
  get sd(): number {
    return Math.sqrt(this.variance);
  }
}

/** A window's stall above this (and the ratio and minimum tests) is elevated; baselines learn at most this. */
function stallThreshold(b: Ewma, cfg: NoisyNeighborConfig): number {
  return b.mean + cfg.zThreshold * Math.max(b.sd, cfg.minStallSd);
}

/** The same for per-op latency, its sd floored at 5 % of the mean. */
function latencyThreshold(b: Ewma, cfg: NoisyNeighborConfig): number {
  return b.mean + cfg.zThreshold * Math.max(b.sd, 0.05 * b.mean);
}

interface Tenant {
  key: string;
  name: string;
  layer: 'container' | 'vm';
  /** Entity kind and labels (cgroup path and version...), a VM's disk names: for the remedy. */
  kind: string;
  labels: Readonly<Record<string, string>>;
  disks: string[];
  lastTs: number;
  stall: Ewma;
  latency: Ewma;
  /** Window accumulators. */
  wStallSum: number;
  wStallN: number;
  wLatTime: number;
  wLatOps: number;
  /** Result of the last window. */
  elevated: boolean;
  windowStall: number | undefined;
  windowLatency: number | undefined;
  victimInBadWindow: boolean;
  /** A VM with no known host device behind its disks (counted and reported once). */
  unmapped: boolean;
}

interface TickRecord {
  ops: Map<string, number>;
  bytes: Map<string, number>;
  /** The writes among ops and bytes (the rest are reads): the remedy caps each direction. */
  wops: Map<string, number>;
  wbytes: Map<string, number>;
  stall: Map<string, number>;
  /** Per-op latency (ms) of VM tenants this tick: their victim signal (no PSI from the host). */
  latency: ReadonlyMap<string, number>;
  deviceOps: number | undefined;
  deviceBytes: number | undefined;
  /** The tick's interval (s). */
  dtS: number;
}

/** Why an incident ended: the evidence (m good windows), or its node stopped reporting. */
export type ResolvedReason = 'recovered' | 'node_silent';

interface Incident {
  id: string;
  startsAt: number;
  /** Tenant key (`<layer>:<id>`); '' for an adopted incident until its antagonist is seen. */
  antagonist: string;
  /** As announced at firing: firing and resolved events carry the same names (Alertmanager identity). */
  antagonistName: string;
  antagonistLayer: string;
  /** Victim tenant keys, and their names (adopted incidents know only names). */
  victims: Set<string>;
  victimNames: Set<string>;
  evidence: Record<string, number>;
  /** Sample time of the last window that saw the incident open. */
  lastTs: number;
  /** Taken over from the alerts topic (another processor, or this one before a restart). */
  adopted: boolean;
  /** Runs of bad windows separated by ≥ resolveAfterWindows good ones (> 1: intermittent). */
  bursts: number;
  /** Windows from the incident's first bad window to its last one, inclusive (duty cycle's denominator). */
  spanWindows: number;
  /** Sample time of the last bad window: the episode gap runs from it. */
  lastBadTs: number;
  /** The antagonist as seen when it fired (undefined for an adopted incident not yet seen). */
  info: AntagonistInfo | undefined;
  /** Remedy text as last announced (adopted incidents keep their owner's until recomputed). */
  remedy: string | undefined;
  /** The caps last announced (from the evidence's remedy_* keys for an adopted incident). */
  caps: RemedyCaps | undefined;
  /** 1 at firing, + 1 each time a tighter cap is announced because the last one was not enough. */
  remedyStep: number;
  /** Consecutive bad windows with the antagonist at or under the last announced cap. */
  underCapWindows: number;
}

interface DeviceState {
  history: TickRecord[];
  badWindows: number;
  goodWindows: number;
  /** Σ antagonist scores over the current run of bad windows, by tenant key. */
  scores: Map<string, number>;
  victimsSeen: Set<string>;
  lastEvidence: Map<string, Record<string, number>>;
  incident: Incident | undefined;
  lastTs: number;
  /** The device's measured capacity: the highest ops/s and bytes/s it did in a window (the remedy's ρ). */
  peakIops: number;
  peakBps: number;
}

export class NodeNoisy {
  readonly tenants = new Map<string, Tenant>();
  readonly devices = new Map<string, DeviceState>();
  ticks = 0;
  evict(nodeTs: number, horizonMs: number): void {
    for (const [k, t] of this.tenants) if (nodeTs - t.lastTs > horizonMs) this.tenants.delete(k);
    for (const [k, d] of this.devices) {
      if (d.incident === undefined && nodeTs - d.lastTs > horizonMs) this.devices.delete(k);
    }
  }
}

export interface NoisyStats {
  tenantsDropped: number;
  devicesDropped: number;
  windows: number;
  badWindows: number;
  /** VM tenants seen without a host device behind their disks (each once). */
  vmsUnmapped: number;
  /** VM samples left out because their hypervisor runs in a container's cgroup (that container is the tenant). */
  vmSamplesInContainers: number;
  /** Open incidents taken over from the alerts topic. */
  incidentsAdopted: number;
  /** Incidents resolved because their node stopped reporting. */
  incidentsResolvedSilent: number;
}

function num(f: Fields | undefined, k: string): number | undefined {
  const v = f?.[k];
  return typeof v === 'number' ? v : undefined;
}

/**
 * Time to fire and to resolve (ms), from the settings and the tick interval (docs/overhead.md,
 * "Timing"), for interference strong enough that every window it fills is bad. Windows end every
 * W = windowTicks × tick. Fire: the window in which it starts counts as bad with one tick of it
 * (earliest: it started in that window's last tick, and fireAfterWindows − 1 more follow), or not
 * at all (latest: fireAfterWindows whole windows after it) → [(k − 1)·W + tick, (k + 1)·W].
 * Resolve: the last bad window ends within one window of the stop, and the incident resolves
 * R = max(resolveAfterWindows, ⌈episodeGap ÷ W⌉) windows after it → [R·W − W, R·W + W].
 */
export function timingBounds(
  cfg: Pick<NoisyNeighborConfig, 'windowTicks' | 'fireAfterWindows' | 'resolveAfterWindows' | 'episodeGap'>,
  tickMs: number,
): { fire: [number, number]; resolve: [number, number] } {
  const w = cfg.windowTicks * tickMs;
  const k = cfg.fireAfterWindows;
  const r = Math.max(cfg.resolveAfterWindows, Math.ceil(cfg.episodeGap / w)) * w;
  return { fire: [(k - 1) * w + tickMs, (k + 1) * w], resolve: [r - w, r + w] };
}

/** Pearson correlation over paired finite values; undefined with < 3 pairs or no variance. */
export function correlation(xs: readonly number[], ys: readonly number[]): number | undefined {
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    n++;
    sx += x;
    sy += y;
  }
  if (n < 3) return undefined;
  const mx = sx / n;
  const my = sy / n;
  let cov = 0;
  let vx = 0;
  let vy = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    cov += (x - mx) * (y - my);
    vx += (x - mx) ** 2;
    vy += (y - my) ** 2;
  }
  if (vx <= 0 || vy <= 0) return undefined;
  return cov / Math.sqrt(vx * vy);
}

export class NoisyNeighborStage {
  readonly stats: NoisyStats = {
    tenantsDropped: 0,
    devicesDropped: 0,
    windows: 0,
    badWindows: 0,
    vmsUnmapped: 0,
    vmSamplesInContainers: 0,
    incidentsAdopted: 0,
    incidentsResolvedSilent: 0,
  };

  constructor(
    private readonly cfg: NoisyNeighborConfig,
    /** VM name → host device backing its disks (shared with the overhead stage's setting). */
    private readonly vmBackingDevices: Record<string, string>,
    /** Called once per VM tenant that has no host device (the pipeline logs it once). */
    private readonly onUnmappedVm?: (nodeId: string, vm: string) => void,
  ) {}

  process(
    nodeId: string,
    msgTs: number,
    views: EntityView[],
    state: NodeNoisy,
    points: Point[],
    alerts: AlertEvent[],
  ): void {
    if (!this.cfg.enabled) return;
    let host: EntityView | undefined;
    let ts = msgTs;
    const tick = new Map<string, TickRecord>();
    const stallNow = new Map<string, number>();
    let latNow: Map<string, number> | undefined; // only when a VM tenant did I/O this tick
    let anyTenant = false;
    let dtS = 0;
    // A VM whose QEMU runs inside a container (KubeVirt) is one tenant, not two: its container,
    // whose cgroup counts the VM's disk I/O as it reaches the device (docs/overhead.md).
    let nested: Map<EntityView, EntityView> | undefined;
    for (const v of views) {
      if (v.layer === 'vm' && v.sample.entity.labels.hypervisor_cgroup !== undefined) {
        nested = vmsInContainers(views);
        break;
      }
    }
    for (const v of views) {
      if (v.dtS <= 0) continue;
      if (nested?.has(v)) {
        this.stats.vmSamplesInContainers++;
        continue;
      }
      if (v.ts > ts) ts = v.ts;
      if (v.dtS > dtS) dtS = v.dtS;
      if (v.layer === 'host') {
        host = v;
        continue;
      }
      if (v.layer !== 'container' && v.layer !== 'vm') continue;
      const parent = v.sample.entity.parent;
      if (parent !== undefined && parent.layer !== 'host') continue; // nested in a guest: not this node's devices
      const t = this.tenant(state, v);
      if (t === undefined) continue;
      anyTenant = true;
      t.lastTs = v.ts;
      const stall = num(v.fields, 'psi_io_some_stall_ratio');
      if (stall !== undefined) {
        t.wStallSum += stall;
        t.wStallN++;
        stallNow.set(t.key, stall);
      }
      if (v.layer === 'container') {
        if (v.devices === undefined) continue;
        let tenantOps = 0;
        for (const [dev, f] of v.devices) {
          const iops = totalIops(f);
          if (iops === undefined) continue;
          tenantOps += iops * v.dtS;
          const rec = record(tick, dev);
          const wb = num(f, 'written_bytes_per_second') ?? 0;
          rec.ops.set(t.key, iops * v.dtS);
          rec.bytes.set(t.key, ((num(f, 'read_bytes_per_second') ?? 0) + wb) * v.dtS);
          rec.wops.set(t.key, (num(f, 'write_iops') ?? 0) * v.dtS);
          rec.wbytes.set(t.key, wb * v.dtS);
        }
        // Containers have no per-op latency; ms stalled on I/O per op issued is their latency proxy
        // (a light tenant's stall *fraction* barely moves when each of its few ops gets slower).
        if (stall !== undefined && tenantOps > 0) {
          t.wLatTime += stall * v.dtS * 1000;
          t.wLatOps += tenantOps;
        }
      } else {
        // A VM's QMP devices are its own (virtio-disk0...), not host devices: only a known backing
        // device puts it on a host device (docs/overhead.md).
        const backing = this.vmBackingDevices[v.sample.entity.name] ?? v.sample.entity.labels.host_device;
        if (backing === undefined) {
          // Never attributed to a guess: no device, no verdict on or by this VM.
          if (!t.unmapped) {
            t.unmapped = true;
            this.stats.vmsUnmapped++;
            this.onUnmappedVm?.(nodeId, t.name);
          }
          continue;
        }
        if (v.devices === undefined) continue;
        let ops = 0;
        let bytes = 0;
        let wops = 0;
        let wbytes = 0;
        let latTime = 0;
        let latOps = 0;
        for (const f of v.devices.values()) {
          const r = num(f, 'read_iops') ?? 0;
          const w = num(f, 'write_iops') ?? 0;
          const wb = num(f, 'written_bytes_per_second') ?? 0;
          ops += (r + w) * v.dtS;
          bytes += ((num(f, 'read_bytes_per_second') ?? 0) + wb) * v.dtS;
          wops += w * v.dtS;
          wbytes += wb * v.dtS;
          // Flushes carry a guest's sync writes' wait (cache=writeback): in its latency, not its share.
          for (const [op, n] of [
            ['read', r],
            ['write', w],
            ['flush', num(f, 'flush_iops') ?? 0],
          ] as const) {
            const lat = num(f, `${op}_latency_ms_per_op`);
            if (lat !== undefined && n > 0) {
              latTime += lat * n * v.dtS;
              latOps += n * v.dtS;
            }
          }
        }
        t.wLatTime += latTime;
        t.wLatOps += latOps;
        if (latOps > 0) {
          latNow ??= new Map();
          latNow.set(t.key, latTime / latOps);
        }
        const rec = record(tick, backing);
        rec.ops.set(t.key, (rec.ops.get(t.key) ?? 0) + ops);
        rec.bytes.set(t.key, (rec.bytes.get(t.key) ?? 0) + bytes);
        rec.wops.set(t.key, (rec.wops.get(t.key) ?? 0) + wops);
        rec.wbytes.set(t.key, (rec.wbytes.get(t.key) ?? 0) + wbytes);
        if (t.disks.length === 0) for (const d of v.devices.keys()) t.disks.push(d);
      }
    }
    // Without tenants there is nothing to judge — unless an incident is open: then the windows go
    // on (empty, hence good) so that it resolves when its tenants are gone, not never.
    if (!anyTenant && !hasIncident(state)) return;
    state.ticks++;
    const historyLen = this.cfg.evidenceWindows * this.cfg.windowTicks;
    // Every known device gets a record each tick (tenants idle on it → zeros), so histories align.
    for (const dev of tick.keys()) this.device(state, dev, ts);
    for (const [dev, ds] of state.devices) {
      const rec = tick.get(dev) ?? newRecord();
      rec.stall = stallNow;
      rec.latency = latNow ?? NO_LATENCY;
      rec.dtS = dtS;
      const hd = host?.devices?.get(dev);
      const hi = totalIops(hd);
      rec.deviceOps = hi !== undefined && host !== undefined ? hi * host.dtS : undefined;
      const hr = num(hd, 'read_bytes_per_second');
      const hw = num(hd, 'written_bytes_per_second');
      rec.deviceBytes =
        host !== undefined && (hr !== undefined || hw !== undefined)
          ? ((hr ?? 0) + (hw ?? 0)) * host.dtS
          : undefined;
      ds.history.push(rec);
      if (ds.history.length > historyLen) ds.history.shift();
      if (tick.has(dev)) ds.lastTs = ts;
    }
    if (state.ticks % this.cfg.windowTicks !== 0) return;
    this.evaluate(nodeId, ts, state, points, alerts);
  }

  private tenant(state: NodeNoisy, v: EntityView): Tenant | undefined {
    const key = v.state.key;
    let t = state.tenants.get(key);
    if (t === undefined) {
      if (state.tenants.size >= this.cfg.maxTenantsPerNode) {
        this.stats.tenantsDropped++;
        return undefined;
      }
      t = {
        key,
        name: v.sample.entity.name || v.id,
        layer: v.layer as 'container' | 'vm',
        kind: v.sample.entity.kind,
        labels: v.sample.entity.labels,
        disks: [],
        lastTs: v.ts,
        stall: new Ewma(this.cfg.baselineAlpha),
        latency: new Ewma(this.cfg.baselineAlpha),
        wStallSum: 0,
        wStallN: 0,
        wLatTime: 0,
        wLatOps: 0,
        elevated: false,
        windowStall: undefined,
        windowLatency: undefined,
        victimInBadWindow: false,
        unmapped: false,
      };
      state.tenants.set(key, t);
    }
    return t;
  }

  private device(state: NodeNoisy, dev: string, ts: number): DeviceState | undefined {
    let d = state.devices.get(dev);
    if (d === undefined) {
      if (state.devices.size >= MAX_DEVICES_PER_NODE) {
        this.stats.devicesDropped++;
        return undefined;
      }
      d = {
        history: [],
        badWindows: 0,
        goodWindows: 0,
        scores: new Map(),
        victimsSeen: new Set(),
        lastEvidence: new Map(),
        incident: undefined,
        lastTs: ts,
        peakIops: 0,
        peakBps: 0,
      };
      state.devices.set(dev, d);
    }
    return d;
  }

  /** Window end: judge each tenant against its baseline, then each device; update hysteresis. */
  private evaluate(
    nodeId: string,
    ts: number,
    state: NodeNoisy,
    points: Point[],
    alerts: AlertEvent[],
  ): void {
    const cfg = this.cfg;
    for (const t of state.tenants.values()) {
      t.windowStall = t.wStallN > 0 ? t.wStallSum / t.wStallN : undefined;
      t.windowLatency = t.wLatOps >= cfg.minTenantOpsPerWindow ? t.wLatTime / t.wLatOps : undefined;
      t.elevated = false;
      t.victimInBadWindow = false;
      if (t.stall.n >= cfg.warmupWindows && t.windowStall !== undefined) {
        const b = t.stall;
        const s = t.windowStall;
        if (
          s > stallThreshold(b, cfg) &&
          s > b.mean * cfg.ratioThreshold &&
          s - b.mean >= cfg.minStallIncreaseRatio
        ) {
          t.elevated = true;
        }
      }
      if (t.latency.n >= cfg.warmupWindows && t.windowLatency !== undefined) {
        const b = t.latency;
        const l = t.windowLatency;
        if (
          l > latencyThreshold(b, cfg) &&
          l > b.mean * cfg.ratioThreshold &&
          l - b.mean >= cfg.minLatencyIncreaseMs
        ) {
          t.elevated = true;
        }
      }
    }

    const w = cfg.windowTicks;
    for (const [dev, ds] of state.devices) {
      this.stats.windows++;
      const win = ds.history.slice(-w);
      const ops = new Map<string, number>();
      const bytes = new Map<string, number>();
      let tenantOps = 0;
      let tenantBytes = 0;
      let deviceOps = 0;
      let deviceOpsKnown = true;
      let deviceBytes = 0;
      let deviceBytesKnown = true;
      let winS = 0;
      for (const r of win) {
        winS += r.dtS;
        for (const [k, n] of r.ops) {
          ops.set(k, (ops.get(k) ?? 0) + n);
          tenantOps += n;
        }
        for (const [k, n] of r.bytes) {
          bytes.set(k, (bytes.get(k) ?? 0) + n);
          tenantBytes += n;
        }
        if (r.deviceOps === undefined) deviceOpsKnown = false;
        else deviceOps += r.deviceOps;
        if (r.deviceBytes === undefined) deviceBytesKnown = false;
        else deviceBytes += r.deviceBytes;
      }
      // A VM's QMP figures count its guest's requests before the host page cache: only what the
      // host device itself did beyond the containers' I/O can be the VMs' (a guest reading a cached
      // image must not "dominate" a disk it never touches).
      if (deviceOpsKnown) tenantOps = clampVms(ops, state, deviceOps);
      if (deviceBytesKnown) tenantBytes = clampVms(bytes, state, deviceBytes);
      // Shares of the device: of its own op count when the host reports it, else of the tenants' sum.
      const totalOps = deviceOpsKnown ? Math.max(deviceOps, tenantOps) : tenantOps;
      const totalBytes = deviceBytesKnown ? Math.max(deviceBytes, tenantBytes) : tenantBytes;
      if (winS > 0) {
        ds.peakIops = Math.max(ds.peakIops, totalOps / winS);
        ds.peakBps = Math.max(ds.peakBps, totalBytes / winS);
      }
      let bad = false;
      /** The tenant that made the window bad. */
      let culprit = '';
      if (totalOps >= cfg.minDeviceOpsPerWindow) {
        const victims: Tenant[] = [];
        for (const [k, n] of ops) {
          const t = state.tenants.get(k);
          // A tenant that itself dominates the device is hurting itself, not a victim.
          if (t?.elevated && n > 0 && n / totalOps < cfg.dominantShare) victims.push(t);
        }
        if (victims.length > 0) {
          // Mean victim stall per tick over the evidence history, for the correlation; VM victims
          // have no stall seen from the host: their per-op latency, when no container is a victim.
          const byStall = victims.some((v) => v.layer === 'container');
          const victimStall = ds.history.map((r) => {
            const signal = byStall ? r.stall : r.latency;
            let s = 0;
            let n = 0;
            for (const v of victims) {
              const x = signal.get(v.key);
              if (x !== undefined) {
                s += x;
                n++;
              }
            }
            return n > 0 ? s / n : Number.NaN;
          });
          let best: { key: string; score: number; evidence: Record<string, number> } | undefined;
          for (const [k, n] of ops) {
            const t = state.tenants.get(k);
            if (t === undefined || victims.includes(t)) continue;
            const opsShare = n / totalOps;
            const bytesShare = totalBytes > 0 ? (bytes.get(k) ?? 0) / totalBytes : 0;
            const share = Math.max(opsShare, bytesShare);
            if (share < cfg.dominantShare) continue;
            const series = ds.history.map((r) => r.ops.get(k) ?? 0);
            const corr = correlation(series, victimStall);
            const score = share * (0.5 + 0.5 * Math.max(0, corr ?? 0));
            const evidence: Record<string, number> = {
              antagonist_iops_share_ratio: opsShare,
              antagonist_bytes_share_ratio: bytesShare,
              antagonist_iops: winS > 0 ? n / winS : 0,
              device_iops: winS > 0 ? totalOps / winS : 0,
              device_bytes_per_second: winS > 0 ? totalBytes / winS : 0,
              device_capacity_iops: ds.peakIops,
              device_capacity_bytes_per_second: ds.peakBps,
              antagonist_score_ratio: score,
            };
            if (corr !== undefined) evidence.antagonist_victim_stall_correlation_ratio = corr;
            if (best === undefined || score > best.score) best = { key: k, score, evidence };
          }
          if (best !== undefined) {
            bad = true;
            culprit = best.key;
            // Reads and writes of its (possibly clamped) rate, in the proportions it reported.
            let raw = 0;
            let rawW = 0;
            let rawB = 0;
            let rawWB = 0;
            // Its busiest tick against the window's mean: an antagonist active for part of the
            // window (the start of a burst) hurts at its rate when active, and is capped on it.
            let peakB = 0;
            let peakO = 0;
            for (const r of win) {
              raw += r.ops.get(best.key) ?? 0;
              rawW += r.wops.get(best.key) ?? 0;
              rawB += r.bytes.get(best.key) ?? 0;
              rawWB += r.wbytes.get(best.key) ?? 0;
              if (r.dtS > 0) {
                peakB = Math.max(peakB, (r.bytes.get(best.key) ?? 0) / r.dtS);
                peakO = Math.max(peakO, (r.ops.get(best.key) ?? 0) / r.dtS);
              }
            }
            const meanB = winS > 0 ? rawB / winS : 0;
            const meanO = winS > 0 ? raw / winS : 0;
            best.evidence.antagonist_peak_to_mean_ratio =
              meanB > 0 ? Math.max(1, peakB / meanB) : meanO > 0 ? Math.max(1, peakO / meanO) : 1;
            const wShare = raw > 0 ? Math.min(1, rawW / raw) : 0;
            const wbShare = rawB > 0 ? Math.min(1, rawWB / rawB) : 0;
            const aIops = best.evidence.antagonist_iops!;
            const aBps = winS > 0 ? (bytes.get(best.key) ?? 0) / winS : 0;
            best.evidence.antagonist_read_iops = aIops * (1 - wShare);
            best.evidence.antagonist_write_iops = aIops * wShare;
            best.evidence.antagonist_read_bytes_per_second = aBps * (1 - wbShare);
            best.evidence.antagonist_write_bytes_per_second = aBps * wbShare;
            ds.scores.set(best.key, (ds.scores.get(best.key) ?? 0) + best.score);
            const v0 = victims.reduce((a, b) =>
              (b.windowStall ?? 0) - b.stall.mean > (a.windowStall ?? 0) - a.stall.mean ? b : a,
            );
            if (v0.windowStall !== undefined) {
              best.evidence.victim_io_stall_ratio = v0.windowStall;
              best.evidence.victim_baseline_io_stall_ratio = v0.stall.mean;
              if (v0.stall.mean > 0)
                best.evidence.victim_stall_increase_ratio = v0.windowStall / v0.stall.mean;
            }
            if (v0.windowLatency !== undefined) {
              best.evidence.victim_latency_ms_per_op = v0.windowLatency;
              best.evidence.victim_baseline_latency_ms_per_op = v0.latency.mean;
            }
            best.evidence.victim_count = victims.length;
            ds.lastEvidence.set(best.key, best.evidence);
            for (const v of victims) {
              v.victimInBadWindow = true;
              ds.victimsSeen.add(v.key);
            }
          }
        }
      }
      if (!bad && ds.incident?.adopted && totalOps >= cfg.minDeviceOpsPerWindow) {
        bad = this.holdAdopted(ds.incident, state, ops, bytes, totalOps, totalBytes);
        if (bad) culprit = ds.incident.antagonist;
      }
      if (bad) this.stats.badWindows++;
      // An open incident goes on only with its own antagonist: another tenant's bad window on the
      // same device (someone else's job) neither keeps it open nor counts as one of its bursts.
      const inc = ds.incident;
      if (bad && inc !== undefined && culprit !== inc.antagonist) {
        const t = state.tenants.get(culprit);
        if (inc.antagonist === '' && t?.name === inc.antagonistName && t.layer === inc.antagonistLayer) {
          inc.antagonist = culprit;
        } else {
          bad = false;
        }
      }
      this.hysteresis(nodeId, dev, ts, ds, bad, state, points, alerts);
    }

    // Baselines learn from every window in which the tenant was not a victim of a detected
    // antagonist, so a sustained attack does not become the new normal. Once warmed up, a window
    // counts at most up to the tenant's own threshold (mean + zThreshold × sd, the sd floors as in
    // the judgement): an attack that ramps up more slowly than one window, or rises just short of
    // the absolute minimums at first, cannot drag the baseline up and hide itself before it is
    // judged (seen live: a VM's writes raised a victim's latency 0.075 → 0.25 → 0.35 ms/op, and the
    // unclipped baseline followed, 0.075 → 0.11 → 0.16). A lasting new normal is still learned,
    // one clipped step per window.
    for (const t of state.tenants.values()) {
      if (!t.victimInBadWindow) {
        if (t.windowStall !== undefined) {
          const b = t.stall;
          b.add(b.n >= cfg.warmupWindows ? Math.min(t.windowStall, stallThreshold(b, cfg)) : t.windowStall);
        }
        if (t.windowLatency !== undefined) {
          const b = t.latency;
          b.add(
            b.n >= cfg.warmupWindows ? Math.min(t.windowLatency, latencyThreshold(b, cfg)) : t.windowLatency,
          );
        }
      }
      t.wStallSum = 0;
      t.wStallN = 0;
      t.wLatTime = 0;
      t.wLatOps = 0;
    }
  }

  /**
   * An adopted incident's victims have no trusted baseline in this process (their history stayed
   * with the previous owner, and adopt() forgot what the warm-up replay learned from the attack):
   * while its antagonist still dominates the device and a victim still does I/O on it, a window
   * cannot count as good, and the victim's baseline must not learn the attack as its normal. It
   * resolves once the antagonist stops dominating (or the victims leave) for m windows.
   */
  private holdAdopted(
    inc: Incident,
    state: NodeNoisy,
    ops: Map<string, number>,
    bytes: Map<string, number>,
    totalOps: number,
    totalBytes: number,
  ): boolean {
    if (inc.antagonist === '') {
      for (const t of state.tenants.values()) {
        if (t.layer === inc.antagonistLayer && t.name === inc.antagonistName) {
          inc.antagonist = t.key;
          break;
        }
      }
      if (inc.antagonist === '') return false;
    }
    const a = inc.antagonist;
    const share = Math.max(
      (ops.get(a) ?? 0) / totalOps,
      totalBytes > 0 ? (bytes.get(a) ?? 0) / totalBytes : 0,
    );
    if (share < this.cfg.dominantShare) return false;
    let held = false;
    for (const [k, n] of ops) {
      if (n <= 0 || k === a) continue;
      const t = state.tenants.get(k);
      if (t === undefined || !(inc.victims.has(k) || inc.victimNames.has(t.name))) continue;
      if (t.stall.n >= this.cfg.warmupWindows || t.latency.n >= this.cfg.warmupWindows) continue;
      t.victimInBadWindow = true;
      inc.victims.add(k);
      held = true;
    }
    return held;
  }

  /**
   * Takes over the open incidents of record for one node (firing on the alerts topic, never
   * resolved): at assignment, and again at the boundary between the warm-up replay and live
   * messages (undoing whatever the replay did to them). Incidents this state
   * holds that are not of record (fired during the replay, whose outputs were discarded) are
   * dropped: a resolved event must never follow a firing nobody saw. The victims' baselines are
   * forgotten (the replay may have learned them from the attack), see holdAdopted().
   */
  adopt(nodeId: string, state: NodeNoisy, events: readonly AlertEvent[]): void {
    const byDevice = new Map<string, AlertEvent>();
    for (const e of events) {
      if (e.name === ALERT_NAME && e.node === nodeId && e.labels.device) byDevice.set(e.labels.device, e);
    }
    for (const [dev, ds] of state.devices) {
      if (ds.incident !== undefined && byDevice.get(dev)?.id !== ds.incident.id) {
        ds.incident = undefined;
        ds.badWindows = 0;
        ds.goodWindows = 0;
        ds.scores.clear();
        ds.victimsSeen.clear();
      }
    }
    for (const [dev, e] of byDevice) {
      const ds = this.device(state, dev, e.ts);
      if (ds === undefined) continue;
      const known = ds.incident?.id === e.id ? ds.incident : undefined;
      const victimNames = new Set((e.labels.victims ?? '').split(',').filter((x) => x !== ''));
      ds.incident = {
        id: e.id,
        startsAt: e.starts_at,
        antagonist: known?.antagonist ?? '',
        antagonistName: e.labels.antagonist ?? '',
        antagonistLayer: e.labels.antagonist_layer ?? '',
        victims: new Set(known?.victims ?? []),
        victimNames,
        evidence: { ...e.evidence },
        lastTs: Math.max(e.ts, known?.lastTs ?? 0),
        adopted: true,
        bursts: known?.bursts ?? e.evidence.episode_bursts ?? 1,
        spanWindows: known?.spanWindows ?? e.evidence.bad_windows ?? 0,
        // Its owner's last bad window is not on record; its last event is the nearest sample time.
        lastBadTs: Math.max(e.ts, known?.lastBadTs ?? 0),
        info: known?.info,
        remedy: known?.remedy ?? e.remedy,
        caps: known?.caps ?? capsOf(e.evidence),
        remedyStep: known?.remedyStep ?? e.evidence.remedy_step ?? 1,
        underCapWindows: 0,
      };
      ds.goodWindows = 0;
      ds.lastTs = Math.max(ds.lastTs, e.ts);
      for (const t of state.tenants.values()) {
        if (victimNames.has(t.name)) {
          t.stall = new Ewma(this.cfg.baselineAlpha);
          t.latency = new Ewma(this.cfg.baselineAlpha);
        }
      }
      if (!known?.adopted) this.stats.incidentsAdopted++; // adopted again after the replay: once
    }
  }

  /** Open incident ids of a node (tests, logs). */
  openIncidents(state: NodeNoisy): string[] {
    const ids: string[] = [];
    for (const d of state.devices.values()) if (d.incident !== undefined) ids.push(d.incident.id);
    return ids;
  }

  /**
   * Resolves every open incident of a node that stopped reporting (the pipeline evicts it), with
   * the reason, at the last sample time the incident was seen: Grafana and Alertmanager get an end.
   */
  resolveNode(
    nodeId: string,
    state: NodeNoisy,
    nodeTs: number,
    reason: ResolvedReason,
    points: Point[],
    alerts: AlertEvent[],
  ): number {
    let n = 0;
    for (const [dev, ds] of state.devices) {
      const inc = ds.incident;
      if (inc === undefined) continue;
      const ts = Math.max(nodeTs, inc.lastTs, inc.startsAt);
      this.emit(nodeId, dev, ts, inc, 'resolved', points, alerts, reason);
      ds.incident = undefined;
      if (reason === 'node_silent') this.stats.incidentsResolvedSilent++;
      n++;
    }
    return n;
  }

  private hysteresis(
    nodeId: string,
    dev: string,
    ts: number,
    ds: DeviceState,
    bad: boolean,
    state: NodeNoisy,
    points: Point[],
    alerts: AlertEvent[],
  ): void {
    const cfg = this.cfg;
    if (ds.incident === undefined) {
      if (!bad) {
        ds.badWindows = 0;
        ds.scores.clear();
        ds.victimsSeen.clear();
        return;
      }
      ds.badWindows++;
      if (ds.badWindows < cfg.fireAfterWindows) return;
      // The antagonist with the most evidence over the run of bad windows.
      let key = '';
      let top = -1;
      for (const [k, s] of ds.scores) {
        if (s > top) {
          top = s;
          key = k;
        }
      }
      const startsAt = ts;
      ds.incident = {
        id: `${ALERT_NAME}:${nodeId}:${dev}:${key}:${startsAt}`,
        startsAt,
        antagonist: key,
        antagonistName: nameOf(state, key),
        antagonistLayer: key.slice(0, key.indexOf(':')),
        victims: new Set(ds.victimsSeen),
        victimNames: new Set([...ds.victimsSeen].map((k) => nameOf(state, k))),
        evidence: { ...(ds.lastEvidence.get(key) ?? {}), bad_windows: ds.badWindows },
        lastTs: ts,
        adopted: false,
        bursts: 1,
        spanWindows: ds.badWindows,
        lastBadTs: ts,
        info: infoOf(state, key),
        remedy: undefined,
        caps: undefined,
        remedyStep: 1,
        underCapWindows: 0,
      };
      ds.goodWindows = 0;
      this.emit(nodeId, dev, ts, ds.incident, 'firing', points, alerts);
      return;
    }
    const inc = ds.incident;
    inc.lastTs = ts;
    if (bad) {
      // Back after at least the quiet spell that used to resolve an incident: a new burst of the
      // same episode, announced (same id) so the alert shows it is intermittent.
      const newBurst = ds.goodWindows >= cfg.resolveAfterWindows;
      inc.spanWindows += ds.goodWindows + 1;
      inc.lastBadTs = ts;
      ds.goodWindows = 0;
      for (const v of ds.victimsSeen) {
        inc.victims.add(v);
        inc.victimNames.add(nameOf(state, v));
      }
      const ev = ds.lastEvidence.get(inc.antagonist);
      const badWindows = (inc.evidence.bad_windows ?? 0) + 1;
      if (ev !== undefined) inc.evidence = { ...ev, bad_windows: badWindows };
      else inc.evidence.bad_windows = badWindows;
      if (inc.info === undefined && inc.antagonist !== '') inc.info = infoOf(state, inc.antagonist);
      // Still bad with the antagonist held at (or under) the announced cap: the cap was not enough.
      // The evidence under it (the capped rate, the victims' wait at that rate) gives a tighter one,
      // announced once k such windows in a row confirm it — the same k that fires — or at once
      // when the incident comes back under the cap as a new burst.
      const held = inc.caps !== undefined && underCap(inc.caps, inc.evidence);
      inc.underCapWindows = held ? inc.underCapWindows + 1 : 0;
      const tighten = held && (newBurst || inc.underCapWindows >= cfg.fireAfterWindows);
      if (tighten) {
        inc.remedyStep++;
        inc.underCapWindows = 0;
      }
      if (newBurst) inc.bursts++;
      if (newBurst || tighten) {
        // The alerts topic and the webhook hear of it; strata_alert keeps one firing and one
        // resolved point per incident (one region in Grafana).
        this.emit(nodeId, dev, ts, inc, 'firing', points, alerts, undefined, false);
      }
      return;
    }
    inc.underCapWindows = 0;
    ds.goodWindows++;
    if (ds.goodWindows < cfg.resolveAfterWindows) return;
    // The episode gap: an antagonist that comes back within it continues this incident. Window
    // ends jitter by a few ms of sample time: half a tick counts as elapsed.
    const slackMs = 500 * (ds.history.at(-1)?.dtS ?? 0);
    if (ts - inc.lastBadTs + slackMs < cfg.episodeGap) return;
    this.emit(nodeId, dev, ts, inc, 'resolved', points, alerts, 'recovered');
    ds.incident = undefined;
    ds.badWindows = 0;
    ds.goodWindows = 0;
    ds.scores.clear();
    ds.victimsSeen.clear();
  }

  private emit(
    nodeId: string,
    dev: string,
    ts: number,
    inc: Incident,
    status: 'firing' | 'resolved',
    points: Point[],
    alerts: AlertEvent[],
    reason?: ResolvedReason,
    point = true,
  ): void {
    const antagonist = inc.antagonistName;
    const victims = [...inc.victimNames].sort();
    const ev = inc.evidence;
    ev.episode_bursts = inc.bursts;
    ev.episode_duty_cycle_ratio =
      inc.spanWindows > 0 ? Math.min(1, (ev.bad_windows ?? 0) / inc.spanWindows) : 1;
    ev.intermittent = inc.bursts > 1 ? 1 : 0;
    let short: string | undefined;
    // A firing computes the remedy from its evidence; a resolution repeats the last one announced
    // (the cap that was applied, if any), not a new one from the last bad window's evidence.
    let c: RemedyCaps | undefined = status === 'resolved' ? inc.caps : undefined;
    if (status === 'firing' && inc.info !== undefined) {
      const r = remedyFor(inc.info, dev, ev, {
        targetRatio: this.cfg.remedyTargetRatio,
        dominantShare: this.cfg.dominantShare,
        deviceNumbers: this.cfg.deviceNumbers,
      });
      inc.remedy = r.text;
      short = r.short;
      c = r.caps;
      inc.caps = c;
    }
    if (c !== undefined) {
      ev.remedy_step = inc.remedyStep;
      for (const [k, x] of [
        ['remedy_read_iops', c.readIops],
        ['remedy_write_iops', c.writeIops],
        ['remedy_read_bytes_per_second', c.readBps],
        ['remedy_write_bytes_per_second', c.writeBps],
        ['remedy_total_iops', c.totalIops],
        ['remedy_total_bytes_per_second', c.totalBps],
      ] as const) {
        if (x !== undefined) ev[k] = x;
      }
      ev.remedy_rate_fraction_ratio = c.factor;
    }
    const pct = (x: number | undefined) => (x === undefined ? '?' : `${Math.round(x * 100)}%`);
    const episode =
      inc.bursts > 1
        ? ` Intermittent: ${inc.bursts} bursts in one episode, bad ${pct(ev.episode_duty_cycle_ratio)} of the time.`
        : '';
    const tightened =
      inc.remedyStep > 1 ? ` Still hurting under the last cap: tightened (step ${inc.remedyStep}).` : '';
    const fix = status === 'firing' && inc.remedy !== undefined ? `${tightened} Fix: ${inc.remedy}` : '';
    const summary =
      status === 'firing'
        ? `${antagonist} dominates I/O on ${nodeId}:${dev} (${pct(ev.antagonist_iops_share_ratio)} of ops, ` +
          `${pct(ev.antagonist_bytes_share_ratio)} of bytes) while ${victims.join(', ')} stall` +
          (ev.victim_io_stall_ratio !== undefined
            ? ` (io stall ${pct(ev.victim_io_stall_ratio)} of time vs ${pct(ev.victim_baseline_io_stall_ratio)} baseline)`
            : '') +
          `.${episode}${fix}`
        : reason === 'node_silent'
          ? `${nodeId} stopped reporting: ${antagonist} vs ${victims.join(', ')} on ${dev} can no longer be judged.${episode}`
          : `${antagonist} no longer hurts ${victims.join(', ')} on ${nodeId}:${dev}.${episode}`;
    const alert: AlertEvent = {
      v: ALERT_SCHEMA_VERSION,
      id: inc.id,
      name: ALERT_NAME,
      status,
      node: nodeId,
      labels: {
        device: dev,
        antagonist,
        antagonist_layer: inc.antagonistLayer,
        victims: victims.join(','),
      },
      evidence: { ...ev },
      summary,
      starts_at: inc.startsAt,
      ts,
    };
    if (inc.remedy !== undefined) alert.remedy = inc.remedy;
    if (status === 'resolved') {
      alert.ends_at = ts;
      alert.resolved_reason = reason ?? 'recovered';
    }
    alerts.push(alert);
    if (!point) return;
    const fields: Fields = {
      title:
        `${ALERT_NAME} ${status}: ${antagonist} on ${dev}` +
        (status === 'firing' && short !== undefined ? ` — ${short}` : ''),
      text: summary,
      alert_id: inc.id,
      victims: victims.join(','),
      starts_at_ms: inc.startsAt,
    };
    if (status === 'resolved') {
      fields.ends_at_ms = ts;
      fields.resolved_reason = reason ?? 'recovered';
    }
    if (inc.remedy !== undefined) fields.remedy = inc.remedy;
    for (const k in ev) fields[k] = ev[k]!;
    points.push({
      measurement: 'strata_alert',
      tags: { node: nodeId, alertname: ALERT_NAME, status, device: dev, antagonist },
      fields,
      timeMs: ts,
    });
  }
}

/**
 * Scales the VM tenants' window figures down so that, with the containers', they do not exceed
 * what the device reported; returns the tenants' new sum.
 */
function clampVms(m: Map<string, number>, state: NodeNoisy, device: number): number {
  let vms = 0;
  let others = 0;
  for (const [k, n] of m) {
    if (state.tenants.get(k)?.layer === 'vm') vms += n;
    else others += n;
  }
  const room = Math.max(0, device - others);
  if (vms <= room) return vms + others;
  const f = vms > 0 ? room / vms : 0;
  for (const [k, n] of m) if (state.tenants.get(k)?.layer === 'vm') m.set(k, n * f);
  return room + others;
}

/** Headroom over a cap within which the antagonist counts as held by it (rates jitter around a throttle). */
const UNDER_CAP_SLACK = 1.1;
/** Caps keeping more than this fraction of the rate they were computed from are not checked as held. */
const MAX_HELD_FACTOR = 0.8;

/** Whether the antagonist's window rates are at or under one of the caps announced to it. */
function underCap(c: RemedyCaps, ev: Readonly<Record<string, number>>): boolean {
  // A cap that barely cuts cannot be told from the antagonist's own jitter.
  if (c.factor > MAX_HELD_FACTOR) return false;
  const r = ev.antagonist_read_iops ?? 0;
  const w = ev.antagonist_write_iops ?? 0;
  const rb = ev.antagonist_read_bytes_per_second ?? 0;
  const wb = ev.antagonist_write_bytes_per_second ?? 0;
  for (const [cap, rate] of [
    [c.readIops, r],
    [c.writeIops, w],
    [c.readBps, rb],
    [c.writeBps, wb],
    [c.totalIops, r + w],
    [c.totalBps, rb + wb],
  ] as const) {
    if (cap !== undefined && rate > 0 && rate <= cap * UNDER_CAP_SLACK) return true;
  }
  return false;
}

/** The caps an alert announced, from its evidence (an adopted incident's owner's). */
function capsOf(ev: Readonly<Record<string, number>>): RemedyCaps | undefined {
  const c: RemedyCaps = {
    readIops: ev.remedy_read_iops,
    writeIops: ev.remedy_write_iops,
    readBps: ev.remedy_read_bytes_per_second,
    writeBps: ev.remedy_write_bytes_per_second,
    totalIops: ev.remedy_total_iops,
    totalBps: ev.remedy_total_bytes_per_second,
    factor: ev.remedy_rate_fraction_ratio ?? 1,
  };
  for (const k of ['readIops', 'writeIops', 'readBps', 'writeBps', 'totalIops', 'totalBps'] as const) {
    if (c[k] === undefined) delete c[k];
  }
  return Object.keys(c).length > 1 ? c : undefined;
}

function infoOf(state: NodeNoisy, key: string): AntagonistInfo | undefined {
  const t = state.tenants.get(key);
  if (t === undefined) return undefined;
  return { layer: t.layer, kind: t.kind, name: t.name, labels: t.labels, disks: t.disks };
}

function nameOf(state: NodeNoisy, key: string): string {
  return state.tenants.get(key)?.name ?? key.slice(key.indexOf(':') + 1);
}

function hasIncident(state: NodeNoisy): boolean {
  for (const d of state.devices.values()) if (d.incident !== undefined) return true;
  return false;
}

function newRecord(): TickRecord {
  return {
    ops: new Map(),
    bytes: new Map(),
    wops: new Map(),
    wbytes: new Map(),
    stall: new Map(),
    latency: NO_LATENCY,
    deviceOps: undefined,
    deviceBytes: undefined,
    dtS: 0,
  };
}

function record(tick: Map<string, TickRecord>, dev: string): TickRecord {
  let r = tick.get(dev);
  if (r === undefined) {
    r = newRecord();
    tick.set(dev, r);
  }
  return r;
}
