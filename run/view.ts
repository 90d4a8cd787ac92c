// The live per-layer view of `strata run`: built from the pipeline's output points (the very
// points the processor writes to InfluxDB), so what the terminal shows is what the dashboards show.
// Pure: update() folds one tick's points in, rows()/render() read the latest state.
import { printable } from '../lib/terminal.ts';
import type { Point } from '../schemas/point.ts';

const LAYER_ORDER: Record<string, number> = { host: 0, container: 1, vm: 2, guest: 3 };
const ENTITY_MEASUREMENTS: Record<string, string> = {
  strata_host: 'host',
  strata_container: 'container',
  strata_vm: 'vm',
  strata_guest: 'guest',
};

/** One entity's headline figures for the last tick; undefined = no number (not zero). */
export interface EntityRow {
  layer: string;
  name: string;
  kind: string;
  /** CPU in use, cores (CPU-seconds per second). */
  cpuCores?: number;
  /** Minor + major page faults per second. */
  faultsPerSecond?: number;
  readIops?: number;
  writeIops?: number;
  /** Ops-weighted mean over devices, ms per op. */
  readLatencyMs?: number;
  writeLatencyMs?: number;
  rxPacketsPerSecond?: number;
  txPacketsPerSecond?: number;
  /** Fraction of time some task stalled on I/O (PSI some), 0..1. */
  ioStallRatio?: number;
  cpuStallRatio?: number;
  /** Sample time of the figures, ms. */
  ts: number;
}

export interface OverheadRow {
  layer: string;
  name: string;
  fields: Record<string, number>;
  ts: number;
}

export interface AlertRow {
  status: string;
  device: string;
  antagonist: string;
  title: string;
  text: string;
  ts: number;
}

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
    let acc = accs.get(key);
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
    r.cpuCores = num(f.cpu_cores) ?? num(f.cpu_usage_cores);
    r.faultsPerSecond = num(f.page_faults_per_second);
    r.ioStallRatio = num(f.psi_io_some_stall_ratio);
    r.cpuStallRatio = num(f.psi_cpu_some_stall_ratio);
  }

  private overheadPoint(p: Point): void {
    const fields: Record<string, number> = {};
    for (const [k, v] of Object.entries(p.fields))
      if (typeof v === 'number' && Number.isFinite(v)) fields[k] = v;
    const layer = p.tags.layer ?? '';
    const name = p.tags.device ? `${p.tags.name ?? '?'} ${p.tags.device}` : (p.tags.name ?? '?');
    this.overhead.set(`${layer}\u0000${name}`, { layer, name, fields, ts: p.timeMs });
  }

  private alertPoint(p: Point): void {
    this.alerts.push({
      status: p.tags.status ?? '',
      device: p.tags.device ?? '',
      antagonist: p.tags.antagonist ?? '',
      title: String(p.fields.title ?? ''),
      text: String(p.fields.text ?? ''),
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
      (a, b) => a.layer.localeCompare(b.layer) || a.name.localeCompare(b.name),
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
    };
  }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// Rendering for a terminal.

const COLUMNS: Array<{ title: string; width: number; get: (r: EntityRow) => string }> = [
  { title: 'CPU cores', width: 9, get: (r) => fmt(r.cpuCores, 2) },
  { title: 'faults/s', width: 9, get: (r) => fmt(r.faultsPerSecond, 0) },
  { title: 'IOPS r/w', width: 13, get: (r) => pair(r.readIops, r.writeIops, 0) },
  { title: 'ms/op r/w', width: 13, get: (r) => pair(r.readLatencyMs, r.writeLatencyMs, 2) },
  { title: 'pkt/s rx/tx', width: 13, get: (r) => pair(r.rxPacketsPerSecond, r.txPacketsPerSecond, 0) },
  { title: 'PSI io', width: 7, get: (r) => pct(r.ioStallRatio) },
  { title: 'PSI cpu', width: 7, get: (r) => pct(r.cpuStallRatio) },
];

export interface RenderOptions {
  node: string;
  intervalMs: number;
  mode: string;
  width?: number;
  /** Lines after the table (e.g. warnings). */
  notes?: readonly string[];
}

export function render(view: LiveView, o: RenderOptions): string {
  // Names come from containers and guests, which pick them: no escape sequence reaches the terminal.
  const rows = view.rows().map((r) => {
    const name = printable(r.name);
    return name === r.name ? r : { ...r, name };
  });
  const counts = countByLayer(rows);
  const when = view.lastTs ? new Date(view.lastTs).toISOString().replace('T', ' ').slice(0, 19) : '-';
  const lines: string[] = [];
  lines.push(
    `strata run — node ${o.node} — ${when} UTC — every ${o.intervalMs / 1000}s — ${o.mode} — Ctrl-C to quit`,
  );
  lines.push(
    `layers: host${['container', 'vm', 'guest'].map((l) => `, ${counts[l] ?? 0} ${l}${(counts[l] ?? 0) === 1 ? '' : 's'}`).join('')}`,
  );
  lines.push('');
  const nameWidth = Math.min(
    32,
    Math.max(12, ...rows.map((r) => r.name.length + (r.layer === 'guest' ? 2 : 0))),
  );
  lines.push(
    `${'LAYER'.padEnd(10)} ${'ENTITY'.padEnd(nameWidth)} ${COLUMNS.map((c) => c.title.padStart(c.width)).join(' ')}`,
  );
  if (rows.length === 0) lines.push('(waiting for the second tick: rates need two samples)');
  for (const r of rows) {
    const name = (r.layer === 'guest' ? `└ ${r.name}` : r.name).slice(0, nameWidth).padEnd(nameWidth);
    lines.push(`${r.layer.padEnd(10)} ${name} ${COLUMNS.map((c) => c.get(r).padStart(c.width)).join(' ')}`);
  }
  if (rows.length > 0 && !counts.container && !counts.vm) {
    lines.push('', 'No containers or VMs found on this machine: showing the host layer only.');
  }
  const overhead = view.overheadRows();
  lines.push('', 'OVERHEAD (docs/overhead.md)');
  if (overhead.length === 0)
    lines.push('  (no overhead figures yet: they need a second layer with activity)');
  const width = o.width ?? 200;
  for (const o2 of overhead) {
    // Every figure, named as in InfluxDB (the unit is in the name), wrapped rather than cut.
    let line = `  ${o2.layer} ${o2.name}:`;
    for (const [k, v] of Object.entries(o2.fields)) {
      const item = `  ${k}=${fmtAuto(v)}`;
      if (line.length + item.length > width - 1) {
        lines.push(line);
        line = `   `;
      }
      line += item;
    }
    lines.push(line);
  }
  lines.push('', 'ALERTS');
  const alerts = view.recentAlerts();
  if (alerts.length === 0) lines.push('  none');
  for (const a of alerts) lines.push(`  ${new Date(a.ts).toISOString().slice(11, 19)} ${a.title}`);
  for (const n of o.notes ?? []) lines.push(n);
  return lines
    .map((raw) => {
      const l = printable(raw);
      return l.length > width ? `${l.slice(0, width - 1)}…` : l;
    })
    .join('\n');
}

function countByLayer(rows: readonly EntityRow[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of rows) c[r.layer] = (c[r.layer] ?? 0) + 1;
  return c;
}

function fmt(v: number | undefined, digits: number): string {
  return v === undefined ? '-' : v.toFixed(digits);
}
function pair(a: number | undefined, b: number | undefined, digits: number): string {
  if (a === undefined && b === undefined) return '-';
  return `${fmt(a, digits)}/${fmt(b, digits)}`;
}
function pct(v: number | undefined): string {
  return v === undefined ? '-' : `${(v * 100).toFixed(1)}%`;
}
function fmtAuto(v: number): string {
  const a = Math.abs(v);
  if (Number.isInteger(v)) return String(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}
