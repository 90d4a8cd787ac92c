// The rates stage: raw counters → per-second rates over the real elapsed time between two samples
// of the same entity, with resets, wraps, gaps and replays handled (rules in docs/overhead.md).
// State is the previous sample of each entity (a reference to the decoded message's own objects,
// so keeping it costs no copy), keyed by layer and entity id inside the node's state.

import type { Point } from '../../schemas/point.ts';
import type { EntitySample, InstanceMetrics, Layer, SampleMessage } from '../../schemas/sample.ts';
import type { OutputConfig } from '../output/config.ts';
import type { RatesConfig } from './config.ts';
import { CPU_ALL, CPU_BUSY, LATENCIES, NOT_STORED, rateSpec } from './naming.ts';

/**
 * Reads + writes completed per second on a device row: read_iops + write_iops, whichever of the two
 * the source reports (QMP may lack one); undefined when it reports neither. Not a field of its own
 * (docs/schema.md): the overhead and noisy-neighbour stages add the two here, dashboards in InfluxQL.
 */
export function totalIops(f: Readonly<Record<string, unknown>> | undefined): number | undefined {
  if (f === undefined) return undefined;
  const r = f.read_iops;
  const w = f.write_iops;
  if (typeof r !== 'number' && typeof w !== 'number') return undefined;
  return (typeof r === 'number' ? r : 0) + (typeof w === 'number' ? w : 0);
}

export type Fields = Record<string, number | string | boolean>;

const TWO32 = 2 ** 32;
const TWO64 = 2 ** 64;

/** Why an interval gave no rate (counted in strata_processor_rates_skipped_total{reason}). */
export type SkipReason = 'reset' | 'gap' | 'stale' | 'agent_restart' | 'state_full' | 'clock_jump';

export interface RateStats {
  skipped: Record<SkipReason, number>;
  wraps32: number;
  wraps64: number;
  /** Idle device/interface rows not written (docs/schema.md, "When a point is written"). */
  idleRowsSkipped: number;
  /** Rows of devices/interfaces past output.maxInstanceStates: written every time, unremembered. */
  untrackedRows: number;
}

export function newRateStats(): RateStats {
  return {
    skipped: { reset: 0, gap: 0, stale: 0, agent_restart: 0, state_full: 0, clock_jump: 0 },
    wraps32: 0,
    wraps64: 0,
    idleRowsSkipped: 0,
    untrackedRows: 0,
  };
}

/**
 * Δ of a monotonic counter, or -1 when it went down and is not a plausible wrap (a reset).
 * Wrap rule (docs/overhead.md): prev ≥ minPrev·2^N and 2^N − prev + cur ≤ maxDelta·2^N, with N = 32
 * only where 32-bit counters exist (`allow32`: /proc/net/dev, /proc/diskstats), N = 64 anywhere.
 */
export function counterDelta(
  prev: number,
  cur: number,
  cfg: RatesConfig,
  allow32: boolean,
  stats?: RateStats,
): number {
  if (cur >= prev) return cur - prev;
  if (prev < TWO32) {
    if (allow32 && prev >= cfg.wrapMinPrevFraction * TWO32) {
      const d = TWO32 - prev + cur;
      if (d <= cfg.wrapMaxDeltaFraction * TWO32) {
        if (stats) stats.wraps32++;
        return d;
      }
    }
    return -1;
  }
  if (prev >= cfg.wrapMinPrevFraction * TWO64) {
    // Beyond 2^53 doubles are approximate: the delta is too, to ~1 part in 2^53 of 2^64 (≈ 2048).
    const d = TWO64 - prev + cur;
    if (d <= cfg.wrapMaxDeltaFraction * TWO64) {
      if (stats) stats.wraps64++;
      return d;
    }
  }
  return -1;
}

/** One entity's interval as the later stages see it: its point fields (gauges + rates + derived). */
export interface EntityView {
  readonly sample: EntitySample;
  readonly layer: Layer;
  readonly id: string;
  /** Sample time (ms) of the interval's end: the point time. */
  readonly ts: number;
  /** Interval length in seconds; 0 when this sample gave no rates (first sample, reset, gap...). */
  readonly dtS: number;
  readonly fields: Fields;
  /** Per-device / per-interface fields (only instances that got at least one field). */
  readonly devices: Map<string, Fields> | undefined;
  readonly interfaces: Map<string, Fields> | undefined;
  /** The entity's rate state: its cached tags (reused by later stages' points). */
  readonly state: EntityState;
}

interface Prev {
  ts: number;
  counters: Record<string, number>;
  devices: Record<string, InstanceMetrics> | undefined;
  interfaces: Record<string, InstanceMetrics> | undefined;
}

/** Labels that become tags: bounded by construction (docs/schema.md). */
const TAG_LABELS = [
  'image',
  'storage_driver',
  'runtime',
  'pod',
  'namespace',
  'container_name',
  'qos_class',
  'cgroup_version',
  'vm_name',
  'accel',
] as const;
/**
 * Labels written as string fields of the entity's metadata point (`strata_entity`), never tags:
 * those that churn (paths, sockets), and io_accounting (cgroup v1 block I/O the kernel does not
 * count: `partial`/`unavailable`, see docs/collectors.md), which can appear and go with a disk's
 * use and must not split the series. Not on every point: strings repeated each tick were ~20 % of
 * what InfluxDB spent per line (docs/cost.md).
 */
export const FIELD_LABELS = ['cgroup_path', 'qmp_socket', 'hypervisor_cgroup', 'io_accounting'] as const;

/** The measurement of entity metadata points. */
export const ENTITY_MEASUREMENT = 'strata_entity';

/** What the last written row of a device or interface said (idle rows are skipped after one). */
interface InstanceOut {
  idle: boolean;
  ts: number;
}

export class EntityState {
  prev: Prev | undefined;
  /** Latest sample ts seen (ms): eviction compares it with the node's latest. */
  lastTs = 0;
  tags: Record<string, string> = {};
  /** `<layer>:<id>`, for stages that key tenants across layers. */
  readonly key: string;
  private tagName: string | undefined;
  private readonly tagValues: (string | undefined)[] = [];
  private readonly deviceTags = new Map<string, Record<string, string>>();
  private readonly interfaceTags = new Map<string, Record<string, string>>();
  /** Values of the last metadata point written ([FIELD_LABELS...]) and its sample time. */
  metaValues: (string | undefined)[] | undefined;
  metaTs = 0;
  /** Last written row of each device and interface present in the latest sample. */
  readonly deviceOut = new Map<string, InstanceOut>();
  readonly interfaceOut = new Map<string, InstanceOut>();

  constructor(layer: Layer, id: string) {
    this.key = `${layer}:${id}`;
  }

  /** The entity's tags, rebuilt only when its name or tagged labels change (no allocation otherwise). */
  tagsFor(node: string, sample: EntitySample): Record<string, string> {
    const e = sample.entity;
    let same = e.name === this.tagName;
    for (let i = 0; same && i < TAG_LABELS.length; i++) same = e.labels[TAG_LABELS[i]!] === this.tagValues[i];
    if (!same) {
      const tags: Record<string, string> = { node, layer: e.layer, kind: e.kind, name: e.name || e.id };
      for (let i = 0; i < TAG_LABELS.length; i++) {
        const v = e.labels[TAG_LABELS[i]!];
        this.tagValues[i] = v;
        if (v) tags[TAG_LABELS[i]!] = v;
      }
      // Frozen: the line-protocol encoder then trusts its cached prefix for this object unchecked.
      this.tags = Object.freeze(tags);
      this.tagName = e.name;
      this.deviceTags.clear();
      this.interfaceTags.clear();
    }
    return this.tags;
  }

  /** Device and interface states held (the stage's maxInstanceStates count). */
  instanceStates(): number {
    return this.deviceOut.size + this.interfaceOut.size;
  }

  instanceTagsFor(tagName: 'device' | 'interface', instance: string): Record<string, string> {
    const m = tagName === 'device' ? this.deviceTags : this.interfaceTags;
    let t = m.get(instance);
    if (t === undefined) {
      t = Object.freeze({ ...this.tags, [tagName]: instance });
      if (m.size < 4096) m.set(instance, t);
    }
    return t;
  }
}

/** Per-node rate state: one map per layer, so keys need no string building. */
export class NodeRates {
  readonly byLayer: Record<Layer, Map<string, EntityState>> = {
    host: new Map(),
    container: new Map(),
    vm: new Map(),
    guest: new Map(),
  };
  size(): number {
    return (
      this.byLayer.host.size + this.byLayer.container.size + this.byLayer.vm.size + this.byLayer.guest.size
    );
  }
  /** Device and interface states held by all entities of this run. */
  instanceStates(): number {
    let n = 0;
    for (const states of Object.values(this.byLayer))
      for (const st of states.values()) n += st.instanceStates();
    return n;
  }
}

export const MEASUREMENT: Record<Layer, string> = {
  host: 'strata_host',
  container: 'strata_container',
  vm: 'strata_vm',
  guest: 'strata_guest',
};

export class RatesStage {
  readonly stats = newRateStats();

  /** Entity states held across all nodes (the owner subtracts what it evicts). */
  entities = 0;
  /** Device/interface output states held across all nodes (the owner subtracts what it evicts). */
  instanceStates = 0;

  constructor(
    private readonly cfg: RatesConfig,
    /** Total entity states across nodes; beyond it new entities get no rates (counted). */
    private readonly maxEntities: number,
    private readonly output: OutputConfig,
  ) {}

  /**
   * Adds the message's points to `out` and returns one view per entity sample processed. `node`
   * is the state of the message's agent run (run_id): a new run starts from no state, so a
   * restarted agent is never held to its previous run's times. `previous`, on a new run's first
   * message, is the run it follows: its entities count as agent_restart.
   */
  process(msg: SampleMessage, node: NodeRates, out: Point[], previous?: NodeRates): EntityView[] {
    const views: EntityView[] = [];
    const nodeId = msg.node.id;
    const maxGapMs = this.cfg.maxGapIntervals * msg.interval_ms;
    for (const sample of msg.samples) {
      const e = sample.entity;
      const states = node.byLayer[e.layer];
      let st = states.get(e.id);
      if (st === undefined) {
        if (this.entities >= this.maxEntities) {
          this.stats.skipped.state_full++;
          continue;
        }
        st = new EntityState(e.layer, e.id);
        states.set(e.id, st);
        this.entities++;
        if (previous?.byLayer[e.layer].has(e.id)) this.stats.skipped.agent_restart++;
      }
      const ts = sample.ts ?? msg.ts;
      let prev = st.prev;
      if (prev !== undefined && ts <= prev.ts) {
        if (prev.ts - ts <= maxGapMs) {
          // Duplicate or older (a replay, or a late view already superseded): nothing new to say.
          this.stats.skipped.stale++;
          continue;
        }
        // Far back: the clock was stepped back, or the sample before was dated ahead. Holding on
        // to that time would drop every sample until it is reached; start again from this one.
        this.stats.skipped.clock_jump++;
        prev = undefined;
      }
      st.lastTs = ts;
      const before = st.tags;
      const tags = st.tagsFor(nodeId, sample);
      if (tags !== before) {
        // New tags are new series (a renamed entity, a changed image): their first metadata point
        // and first device/interface rows are written whatever the old series last said.
        this.instanceStates -= st.instanceStates();
        st.deviceOut.clear();
        st.interfaceOut.clear();
        st.metaValues = undefined;
      }
      const fields: Fields = {};
      const g = sample.gauges;
      for (const k in g) if (!NOT_STORED.has(k)) fields[k] = g[k]!;

      let dtS = 0;
      if (prev !== undefined) {
        const dtMs = ts - prev.ts;
        if (dtMs > maxGapMs) this.stats.skipped.gap++;
        else dtS = dtMs / 1000;
      }
      let devices: Map<string, Fields> | undefined;
      let interfaces: Map<string, Fields> | undefined;
      if (dtS > 0 && prev !== undefined) {
        this.entityRates(sample.counters, prev.counters, dtS, fields);
        deriveEntity(e.layer, sample.counters, fields);
        fields.interval_seconds = dtS;
      }
      out.push({ measurement: MEASUREMENT[e.layer], tags, fields, timeMs: ts });
      this.metadata(st, sample, tags, ts, out);

      const allow32Dev = e.layer === 'host' || e.layer === 'guest';
      if (sample.devices !== undefined) {
        devices = this.instances(
          sample.devices,
          prev?.devices,
          dtS,
          allow32Dev,
          st,
          'device',
          st.deviceOut,
          e.layer,
          ts,
          out,
        );
      }
      if (sample.interfaces !== undefined) {
        interfaces = this.instances(
          sample.interfaces,
          prev?.interfaces,
          dtS,
          true,
          st,
          'interface',
          st.interfaceOut,
          e.layer,
          ts,
          out,
        );
      }
      if (prev === undefined) {
        st.prev = {
          ts,
          counters: sample.counters,
          devices: sample.devices,
          interfaces: sample.interfaces,
        };
      } else {
        prev.ts = ts;
        prev.counters = sample.counters;
        prev.devices = sample.devices;
        prev.interfaces = sample.interfaces;
      }
      views.push({ sample, layer: e.layer, id: e.id, ts, dtS, fields, devices, interfaces, state: st });
    }
    return views;
  }

  /**
   * The entity's `strata_entity` point, when due: its first sample (a new state: new entity, new
   * agent run, after eviction), a value changed (a label gone is written once as ''), or
   * metadataHeartbeatMs of sample time since the last one (or the clock went back).
   */
  private metadata(
    st: EntityState,
    sample: EntitySample,
    tags: Record<string, string>,
    ts: number,
    out: Point[],
  ): void {
    const labels = sample.entity.labels;
    const last = st.metaValues;
    let due = last === undefined || ts - st.metaTs >= this.output.metadataHeartbeatMs || ts < st.metaTs;
    for (let i = 0; !due && i < FIELD_LABELS.length; i++) due = labels[FIELD_LABELS[i]!] !== last![i];
    if (!due) return;
    const fields: Fields = { entity_id: sample.entity.id };
    const values: (string | undefined)[] = [];
    for (let i = 0; i < FIELD_LABELS.length; i++) {
      const l = FIELD_LABELS[i]!;
      const v = labels[l];
      values.push(v);
      if (v !== undefined) fields[l] = v;
      else if (last?.[i] !== undefined) fields[l] = '';
    }
    st.metaValues = values;
    st.metaTs = ts;
    out.push({ measurement: ENTITY_MEASUREMENT, tags, fields, timeMs: ts });
  }

  /**
   * Whether a device/interface row is written. Idle (every numeric field 0):
   * only the first idle row after a row that was not, then one per idleHeartbeatMs. The instance's
   * state is remembered up to maxInstanceStates over all entities; past it rows are all written.
   */
  private writeRow(states: Map<string, InstanceOut>, name: string, fields: Fields, ts: number): boolean {
    let idle = true;
    for (const k in fields) {
      const v = fields[k];
      if (typeof v === 'number' && v !== 0) {
        idle = false;
        break;
      }
    }
    const s = states.get(name);
    if (s === undefined) {
      if (this.instanceStates >= this.output.maxInstanceStates) {
        this.stats.untrackedRows++;
        return true;
      }
      states.set(name, { idle, ts });
      this.instanceStates++;
      return true;
    }
    if (idle && s.idle && ts - s.ts < this.output.idleHeartbeatMs && ts >= s.ts) {
      this.stats.idleRowsSkipped++;
      return false;
    }
    s.idle = idle;
    s.ts = ts;
    return true;
  }

  private entityRates(
    cur: Record<string, number>,
    prev: Record<string, number>,
    dtS: number,
    fields: Fields,
  ) {
    let reset = false;
    for (const k in cur) {
      const p = prev[k];
      if (p === undefined) continue;
      const spec = rateSpec(k);
      if (spec.field === null) continue;
      const d = counterDelta(p, cur[k]!, this.cfg, false, this.stats);
      if (d < 0) {
        reset = true;
        continue;
      }
      fields[spec.field] = (d / dtS) * spec.scale;
    }
    if (reset) this.stats.skipped.reset++;
  }

  private instances(
    cur: Record<string, InstanceMetrics>,
    prevAll: Record<string, InstanceMetrics> | undefined,
    dtS: number,
    allow32: boolean,
    st: EntityState,
    tagName: 'device' | 'interface',
    outStates: Map<string, InstanceOut>,
    layer: Layer,
    ts: number,
    out: Point[],
  ): Map<string, Fields> {
    const result = new Map<string, Fields>();
    let present = 0;
    for (const name in cur) {
      present++;
      const inst = cur[name]!;
      const fields: Fields = {};
      const g = inst.gauges;
      if (g !== undefined) for (const k in g) fields[k] = g[k]!;
      const prev = dtS > 0 ? prevAll?.[name] : undefined;
      if (prev !== undefined) {
        let reset = false;
        const pc = prev.counters;
        const cc = inst.counters;
        for (const k in cc) {
          const p = pc[k];
          if (p === undefined) continue;
          const d = counterDelta(p, cc[k]!, this.cfg, allow32, this.stats);
          if (d < 0) {
            reset = true;
            continue;
          }
          const spec = rateSpec(k);
          if (spec.field !== null) fields[spec.field] = (d / dtS) * spec.scale;
        }
        if (reset) this.stats.skipped.reset++;
        for (const l of LATENCIES) {
          // The time counter first: absent on most instances (interfaces, cgroup devices), and
          // every lookup here is a megamorphic keyed load.
          const ct = cc[l.time];
          if (ct === undefined) continue;
          const pt = pc[l.time];
          const co = cc[l.ops];
          const po = pc[l.ops];
          if (pt === undefined || co === undefined || po === undefined) continue;
          const ops = counterDelta(po, co, this.cfg, allow32);
          if (ops <= 0) continue; // idle: no latency, never 0 ms (and none across a reset)
          const time = counterDelta(pt, ct, this.cfg, allow32);
          if (time >= 0) fields[l.field] = (time * l.toMs) / ops;
        }
        // No `iops` (read_iops + write_iops: totalIops() for the later stages, dashboards add
        // the two) and no interval_seconds (the entity's point at the same time carries it): one
        // field fewer per row each, docs/cost.md.
      }
      let any = false;
      for (const _ in fields) {
        any = true;
        break;
      }
      if (!any) continue;
      result.set(name, fields);
      if (!this.writeRow(outStates, name, fields, ts)) continue;
      out.push({
        measurement: MEASUREMENT[layer],
        tags: st.instanceTagsFor(tagName, name),
        fields,
        timeMs: ts,
      });
    }
    // Devices and interfaces gone from the sample (a veth removed with its container) leave the
    // state: it holds at most what the entity reports now.
    if (outStates.size > present) {
      for (const name of outStates.keys()) {
        if (cur[name] === undefined) {
          outStates.delete(name);
          this.instanceStates--;
        }
      }
    }
    return result;
  }
}

/** Entity-level derived figures from the rate fields (all inputs valid, else none). */
function deriveEntity(layer: Layer, counters: Record<string, number>, fields: Fields): void {
  if (layer === 'host' || layer === 'guest') {
    const busy = sumCpu(CPU_BUSY, counters, fields);
    if (busy === undefined) return;
    fields.cpu_cores = busy;
    const all = sumCpu(CPU_ALL, counters, fields);
    if (all !== undefined && all > 0) {
      fields.cpu_utilization_ratio = busy / all;
      const steal = fields.cpu_steal_cores;
      if (typeof steal === 'number') fields.cpu_steal_ratio = steal / all;
      const iowait = fields.cpu_iowait_cores;
      if (typeof iowait === 'number') fields.cpu_iowait_ratio = iowait / all;
    }
  }
  // Containers and VMs: cpu_cores is their CPU-time counter's own rate (the catalogues).
}

/** Σ of the `cpu_*_cores` rates of the listed counters present; undefined if any of them reset. */
function sumCpu(
  names: readonly string[],
  counters: Record<string, number>,
  fields: Fields,
): number | undefined {
  let sum = 0;
  let n = 0;
  for (const c of names) {
    if (counters[c] === undefined) continue;
    const f = fields[rateSpec(c).field!];
    if (typeof f !== 'number') return undefined;
    sum += f;
    n++;
  }
  return n > 0 ? sum : undefined;
}
