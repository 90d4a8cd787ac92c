// The live per-layer view of `strata run`: built from the pipeline's output points (the very
// points the processor writes to InfluxDB), so what the terminal shows is what the dashboards show.
// Pure: update() folds one tick's points in, rows()/render() read the latest state.
import { OVERHEAD_FIELDS } from '../processors/overhead/fields.ts';
import type { Point } from '../schemas/point.ts';
import { layerCosts } from './frame.ts';
import type { AlertRow, EntityRow, OverheadRow } from './rows.ts';

export { render } from './frame.ts';
export type { AlertRow, EntityRow, OverheadRow } from './rows.ts';

const LAYER_ORDER: Record<string, number> = { host: 0, container: 1, vm: 2, guest: 3 };
const ENTITY_MEASUREMENTS: Record<string, string> = {
  strata_host: 'host',
  strata_container: 'container',
  strata_vm: 'vm',
  strata_guest: 'guest',
};

/**
 * The overhead figures of a VM or container (docs/overhead.md §2): fields of its own strata_vm /
 * strata_container point (a container's device shares on its device rows). Only the node's totals
 * are strata_overhead points.
 */
const ENTITY_OVERHEAD = new Set<string>(OVERHEAD_FIELDS.filter((f) => f.layer !== 'node').map((f) => f.name));

interface Acc {
  row: EntityRow;
  readOps: number;
  readLatWeighted: number;
  writeOps: number;
  writeLatWeighted: number;
}

export class LiveView {
  private readonly entities = new Map<string, EntityRow>();
  private readonly overhead = new Map<string, OverheadRow>();
  private readonly alerts: AlertRow[] = [];
  lastTs = 0;
  ticks = 0;

  constructor(
    /** Rows not refreshed for this long (ms of sample time) disappear: the entity is gone. */
    private readonly staleAfterMs = 5_000,
    private readonly maxAlerts = 10,
  ) {}

  /** Folds in the points of one tick (or of several: rows keep the newest figures). */
  update(points: readonly Point[]): void {
    const accs = new Map<string, Acc>();
    for (const p of points) {
      const layer = ENTITY_MEASUREMENTS[p.measurement];
      if (layer !== undefined) {
        this.entityPoint(accs, layer, p);
      } else if (p.measurement === 'strata_overhead') {
        this.overheadPoint(p);
      } else if (p.measurement === 'strata_alert') {
        this.alertPoint(p);
      }
      if (p.timeMs > this.lastTs) this.lastTs = p.timeMs;
    }
    for (const [key, acc] of accs) {
      const r = acc.row;
      if (acc.readOps > 0) r.readLatencyMs = acc.readLatWeighted / acc.readOps;
      if (acc.writeOps > 0) r.writeLatencyMs = acc.writeLatWeighted / acc.writeOps;
      this.entities.set(key, r);
    }
    this.ticks++;
    this.dropStale();
  }

  private entityPoint(accs: Map<string, Acc>, layer: string, p: Point): void {
    const name = p.tags.name ?? '?';
    const key = `${layer}\u0000${name}`;
    this.overheadFields(layer, name, p);
    let acc = accs.get(key);
    // A point of an older time, or of a time already shown, adds overhead figures only: a VM's
    // guest joined a message late sends its overhead fields as a point of their own, with the
    // series and time of the VM's point that went out before.
    const shown = this.entities.get(key);
    if (acc !== undefined ? p.timeMs < acc.row.ts : shown !== undefined && p.timeMs <= shown.ts) return;
    if (acc === undefined || acc.row.ts !== p.timeMs) {
      acc = {
        row: { layer, name, kind: p.tags.kind ?? '', ts: p.timeMs },
        readOps: 0,
        readLatWeighted: 0,
        writeOps: 0,
        writeLatWeighted: 0,
      };
      accs.set(key, acc);
    }
    const r = acc.row;
    const f = p.fields;
    if (p.tags.device !== undefined) {
      const ri = num(f.read_iops);
      const wi = num(f.write_iops);
      if (ri !== undefined) r.readIops = (r.readIops ?? 0) + ri;
      if (wi !== undefined) r.writeIops = (r.writeIops ?? 0) + wi;
      const rl = num(f.read_latency_ms_per_op);
      const wl = num(f.write_latency_ms_per_op);
      if (rl !== undefined && ri !== undefined && ri > 0) {
        acc.readOps += ri;
        acc.readLatWeighted += rl * ri;
      }
      if (wl !== undefined && wi !== undefined && wi > 0) {
        acc.writeOps += wi;
        acc.writeLatWeighted += wl * wi;
      }
      return;
    }
    if (p.tags.interface !== undefined) {
      const rx = num(f.rx_packets_per_second);
      const tx = num(f.tx_packets_per_second);
      if (rx !== undefined) r.rxPacketsPerSecond = (r.rxPacketsPerSecond ?? 0) + rx;
      if (tx !== undefined) r.txPacketsPerSecond = (r.txPacketsPerSecond ?? 0) + tx;
      return;
    }
    r.cpuCores = num(f.cpu_cores);
    r.faultsPerSecond = num(f.page_faults_per_second);
    r.ioStallRatio = num(f.psi_io_some_stall_ratio);
    r.cpuStallRatio = num(f.psi_cpu_some_stall_ratio);
  }

  /** The node's totals (strata_overhead layer=node). */
  private overheadPoint(p: Point): void {
    const fields: Record<string, number> = {};
    for (const [k, v] of Object.entries(p.fields)) {
      const n = num(v);
      if (n !== undefined) fields[k] = n;
    }
    this.setOverhead(p.tags.layer ?? '', p.tags.name ?? '?', p.tags.device, fields, p.timeMs);
  }

  /** The overhead figures among the fields of a VM's or container's point (or device row). */
  private overheadFields(layer: string, name: string, p: Point): void {
    if (p.tags.interface !== undefined) return;
    const fields: Record<string, number> = {};
    let any = false;
    for (const [k, v] of Object.entries(p.fields)) {
      const n = num(v);
      if (n !== undefined && ENTITY_OVERHEAD.has(k)) {
        fields[k] = n;
        any = true;
      }
    }
    if (any) this.setOverhead(layer, name, p.tags.device, fields, p.timeMs);
  }

  /**
   * The newest figures of a row: figures of the same time add up (one point can come in parts),
   * older ones (a late part of a time already passed) do not replace newer ones.
   */
  private setOverhead(
    layer: string,
    name: string,
    device: string | undefined,
    fields: Record<string, number>,
    ts: number,
  ): void {
    const key = `${layer}\u0000${name}\u0000${device ?? ''}`;
    const prev = this.overhead.get(key);
    if (prev !== undefined && prev.ts > ts) return;
    this.overhead.set(key, {
      layer,
      name,
      ...(device !== undefined ? { device } : {}),
      fields: prev !== undefined && prev.ts === ts ? { ...prev.fields, ...fields } : fields,
      ts,
    });
  }

  private alertPoint(p: Point): void {
    const evidence: Record<string, number> = {};
    for (const [k, v] of Object.entries(p.fields)) if (num(v) !== undefined) evidence[k] = v as number;
    this.alerts.push({
      id: String(p.fields.alert_id ?? ''),
      status: p.tags.status ?? '',
      device: p.tags.device ?? '',
      antagonist: p.tags.antagonist ?? '',
      victims: String(p.fields.victims ?? ''),
      title: String(p.fields.title ?? ''),
      text: String(p.fields.text ?? ''),
      remedy: String(p.fields.remedy ?? ''),
      evidence,
      startsAt: num(p.fields.starts_at_ms) ?? p.timeMs,
      ts: p.timeMs,
    });
    if (this.alerts.length > this.maxAlerts) this.alerts.shift();
  }

  private dropStale(): void {
    for (const [k, r] of this.entities) if (this.lastTs - r.ts > this.staleAfterMs) this.entities.delete(k);
    for (const [k, r] of this.overhead) if (this.lastTs - r.ts > this.staleAfterMs) this.overhead.delete(k);
  }

  rows(): EntityRow[] {
    return [...this.entities.values()].sort(
      (a, b) => (LAYER_ORDER[a.layer] ?? 9) - (LAYER_ORDER[b.layer] ?? 9) || a.name.localeCompare(b.name),
    );
  }

  overheadRows(): OverheadRow[] {
    return [...this.overhead.values()].sort(
      (a, b) =>
        a.layer.localeCompare(b.layer) ||
        a.name.localeCompare(b.name) ||
        (a.device ?? '').localeCompare(b.device ?? ''),
    );
  }

  recentAlerts(): AlertRow[] {
    return [...this.alerts];
  }

  /** One JSON object per tick for non-terminal output (NDJSON). */
  snapshot(): Record<string, unknown> {
    return {
      ts: this.lastTs,
      entities: this.rows(),
      overhead: this.overheadRows(),
      alerts: this.recentAlerts(),
      costs: layerCosts(this),
    };
  }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
