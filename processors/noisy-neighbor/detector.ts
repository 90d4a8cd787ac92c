// Noisy-neighbor I/O detection (docs/overhead.md, "Noisy neighbours"), per node and shared block
// device, in the spirit of Google's CPI2: victims are tenants (containers, VMs) whose I/O stall or
// per-op latency rises well above their own learned baseline; the antagonist is chosen by evidence
// accumulated over windows — its share of the device's I/O and the correlation of its I/O with the
// victims' stall — never by a single sample. Hysteresis: fire after k bad windows, resolve after m
// good ones. All state is bounded: tenants per node, ticks of history, devices per node.
import { ALERT_SCHEMA_VERSION, type AlertEvent } from '../../schemas/alert.ts';
import type { Point } from '../../sinks/point.ts';
import type { EntityView, Fields } from '../rates/rates.ts';
import type { NoisyNeighborConfig } from './config.ts';

export const ALERT_NAME = 'NoisyNeighborIO';
const MAX_DEVICES_PER_NODE = 64;

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

interface Tenant {
  key: string;
  name: string;
  layer: 'container' | 'vm';
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
}

interface TickRecord {
  ops: Map<string, number>;
  bytes: Map<string, number>;
  stall: Map<string, number>;
  deviceOps: number | undefined;
  deviceBytes: number | undefined;
  /** The tick's interval (s). */
  dtS: number;
}

interface Incident {
  id: string;
  startsAt: number;
  antagonist: string;
  victims: Set<string>;
  evidence: Record<string, number>;
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
}

function num(f: Fields | undefined, k: string): number | undefined {
  const v = f?.[k];
  return typeof v === 'number' ? v : undefined;
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
  readonly stats: NoisyStats = { tenantsDropped: 0, devicesDropped: 0, windows: 0, badWindows: 0 };

  constructor(
    private readonly cfg: NoisyNeighborConfig,
    /** VM name → host device backing its disks (shared with the overhead stage's setting). */
    private readonly vmBackingDevices: Record<string, string>,
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
    let anyTenant = false;
    let dtS = 0;
    for (const v of views) {
      if (v.dtS <= 0) continue;
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
          const iops = num(f, 'iops');
          if (iops === undefined) continue;
          tenantOps += iops * v.dtS;
          const rec = record(tick, dev);
          rec.ops.set(t.key, iops * v.dtS);
          rec.bytes.set(
            t.key,
            ((num(f, 'read_bytes_per_second') ?? 0) + (num(f, 'written_bytes_per_second') ?? 0)) * v.dtS,
          );
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
        if (backing === undefined || v.devices === undefined) continue;
        let ops = 0;
        let bytes = 0;
        for (const f of v.devices.values()) {
          const r = num(f, 'read_iops') ?? 0;
          const w = num(f, 'write_iops') ?? 0;
          ops += (r + w) * v.dtS;
          bytes +=
            ((num(f, 'read_bytes_per_second') ?? 0) + (num(f, 'written_bytes_per_second') ?? 0)) * v.dtS;
          for (const [op, n] of [
            ['read', r],
            ['write', w],
          ] as const) {
            const lat = num(f, `${op}_latency_ms_per_op`);
            if (lat !== undefined && n > 0) {
              t.wLatTime += lat * n * v.dtS;
              t.wLatOps += n * v.dtS;
            }
          }
        }
        const rec = record(tick, backing);
        rec.ops.set(t.key, (rec.ops.get(t.key) ?? 0) + ops);
        rec.bytes.set(t.key, (rec.bytes.get(t.key) ?? 0) + bytes);
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
      rec.dtS = dtS;
      const hd = host?.devices?.get(dev);
      const hi = num(hd, 'iops');
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
          s > b.mean + cfg.zThreshold * Math.max(b.sd, cfg.minStallSd) &&
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
          l > b.mean + cfg.zThreshold * Math.max(b.sd, 0.05 * b.mean) &&
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
      // Shares of the device: of its own op count when the host reports it, else of the tenants' sum.
      const totalOps = deviceOpsKnown ? Math.max(deviceOps, tenantOps) : tenantOps;
      const totalBytes = deviceBytesKnown ? Math.max(deviceBytes, tenantBytes) : tenantBytes;
      let bad = false;
      if (totalOps >= cfg.minDeviceOpsPerWindow) {
        const victims: Tenant[] = [];
        for (const [k, n] of ops) {
          const t = state.tenants.get(k);
          // A tenant that itself dominates the device is hurting itself, not a victim.
          if (t?.elevated && n > 0 && n / totalOps < cfg.dominantShare) victims.push(t);
        }
        if (victims.length > 0) {
          // Mean victim stall per tick over the evidence history, for the correlation.
          const victimStall = ds.history.map((r) => {
            let s = 0;
            let n = 0;
            for (const v of victims) {
              const x = r.stall.get(v.key);
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
              antagonist_score_ratio: score,
            };
            if (corr !== undefined) evidence.antagonist_victim_stall_correlation_ratio = corr;
            if (best === undefined || score > best.score) best = { key: k, score, evidence };
          }
          if (best !== undefined) {
            bad = true;
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
      if (bad) this.stats.badWindows++;
      this.hysteresis(nodeId, dev, ts, ds, bad, state, points, alerts);
    }

    // Baselines learn from every window in which the tenant was not a victim of a detected
    // antagonist, so a sustained attack does not become the new normal.
    for (const t of state.tenants.values()) {
      if (!t.victimInBadWindow) {
        if (t.windowStall !== undefined) t.stall.add(t.windowStall);
        if (t.windowLatency !== undefined) t.latency.add(t.windowLatency);
      }
      t.wStallSum = 0;
      t.wStallN = 0;
      t.wLatTime = 0;
      t.wLatOps = 0;
    }
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
        victims: new Set(ds.victimsSeen),
        evidence: { ...(ds.lastEvidence.get(key) ?? {}), bad_windows: ds.badWindows },
      };
      ds.goodWindows = 0;
      this.emit(nodeId, dev, ts, ds.incident, 'firing', state, points, alerts);
      return;
    }
    const inc = ds.incident;
    if (bad) {
      ds.goodWindows = 0;
      for (const v of ds.victimsSeen) inc.victims.add(v);
      const ev = ds.lastEvidence.get(inc.antagonist);
      if (ev !== undefined) inc.evidence = { ...ev, bad_windows: (inc.evidence.bad_windows ?? 0) + 1 };
      return;
    }
    ds.goodWindows++;
    if (ds.goodWindows < cfg.resolveAfterWindows) return;
    this.emit(nodeId, dev, ts, inc, 'resolved', state, points, alerts);
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
    state: NodeNoisy,
    points: Point[],
    alerts: AlertEvent[],
  ): void {
    const nameOf = (k: string) => state.tenants.get(k)?.name ?? k.slice(k.indexOf(':') + 1);
    const antagonist = nameOf(inc.antagonist);
    const victims = [...inc.victims].map(nameOf).sort();
    const ev = inc.evidence;
    const pct = (x: number | undefined) => (x === undefined ? '?' : `${Math.round(x * 100)}%`);
    const summary =
      status === 'firing'
        ? `${antagonist} dominates I/O on ${nodeId}:${dev} (${pct(ev.antagonist_iops_share_ratio)} of ops, ` +
          `${pct(ev.antagonist_bytes_share_ratio)} of bytes) while ${victims.join(', ')} stall` +
          (ev.victim_io_stall_ratio !== undefined
            ? ` (io stall ${pct(ev.victim_io_stall_ratio)} of time vs ${pct(ev.victim_baseline_io_stall_ratio)} baseline)`
            : '')
        : `${antagonist} no longer hurts ${victims.join(', ')} on ${nodeId}:${dev}`;
    const alert: AlertEvent = {
      v: ALERT_SCHEMA_VERSION,
      id: inc.id,
      name: ALERT_NAME,
      status,
      node: nodeId,
      labels: {
        device: dev,
        antagonist,
        antagonist_layer: inc.antagonist.slice(0, inc.antagonist.indexOf(':')),
        victims: victims.join(','),
      },
      evidence: { ...ev },
      summary,
      starts_at: inc.startsAt,
      ts,
    };
    if (status === 'resolved') alert.ends_at = ts;
    alerts.push(alert);
    const fields: Fields = {
      title: `${ALERT_NAME} ${status}: ${antagonist} on ${dev}`,
      text: summary,
      alert_id: inc.id,
      victims: victims.join(','),
      starts_at_ms: inc.startsAt,
    };
    if (status === 'resolved') fields.ends_at_ms = ts;
    for (const k in ev) fields[k] = ev[k]!;
    points.push({
      measurement: 'strata_alert',
      tags: { node: nodeId, alertname: ALERT_NAME, status, device: dev, antagonist },
      fields,
      timeMs: ts,
    });
  }
}

function hasIncident(state: NodeNoisy): boolean {
  for (const d of state.devices.values()) if (d.incident !== undefined) return true;
  return false;
}

function newRecord(): TickRecord {
  return {
    ops: new Map(),
    bytes: new Map(),
    stall: new Map(),
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
