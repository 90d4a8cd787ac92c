// The rows of the live view: view.ts builds them, frame.ts draws them. They live apart from both
// because view.ts imports frame.ts (layerCosts for its snapshot): frame.ts reading its types from
// view.ts would make an import cycle.

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
  /** The host device of a container's per-device row; undefined on the entity's own row. */
  device?: string;
  fields: Record<string, number>;
  ts: number;
}

export interface AlertRow {
  /** The incident's id: a firing and its resolution share it. */
  id: string;
  status: string;
  device: string;
  antagonist: string;
  /** Comma-separated victim names. */
  victims: string;
  title: string;
  text: string;
  /** What to do (the cap on the antagonist and its commands); '' when the alert carries none. */
  remedy: string;
  /** The alert's numeric evidence (shares, latencies, stall ratios), as in InfluxDB. */
  evidence: Record<string, number>;
  startsAt: number;
  ts: number;
}

/** What a frame reads of the view (LiveView). */
export interface ViewState {
  /** Sample time of the latest tick, ms; 0 before the first. */
  readonly lastTs: number;
  rows(): EntityRow[];
  overheadRows(): OverheadRow[];
  recentAlerts(): AlertRow[];
}
