// The wire format: one Kafka message per node per tick on the samples topic, keyed by node id.
// This file is the only definition of it; every producer and consumer imports these schemas and
// the types inferred from them. See docs/wire-format.md for a real example and the rules.
import { z } from 'zod';

/** Bumped on any change that an older consumer would misread. Consumers reject other versions. */
export const SCHEMA_VERSION = 1 as const;

export const LAYERS = ['host', 'container', 'vm', 'guest'] as const;
export const Layer = z.enum(LAYERS);
export type Layer = z.infer<typeof Layer>;

/** Metric names carry their unit and, for counters, `_total` (Prometheus/Vector convention). */
const metricName = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'metric names are lower_snake_case with the unit in the name');
const finiteNumber = z.number().finite();
/** Monotonic raw counters as read (never rates); the processor handles resets and wraps. */
export const Counters = z.record(metricName, finiteNumber.nonnegative());
/** Point-in-time values (bytes in use, requests in flight). */
export const Gauges = z.record(metricName, finiteNumber);

/** Counters and gauges of one device (block device, network interface) of an entity. */
export const InstanceMetrics = z.strictObject({
  counters: Counters,
  gauges: Gauges.optional(),
});
export type InstanceMetrics = z.infer<typeof InstanceMetrics>;

export const EntityRef = z.strictObject({
  layer: Layer,
  id: z.string().min(1),
});
export type EntityRef = z.infer<typeof EntityRef>;

export const Entity = z.strictObject({
  layer: Layer,
  /** What produced it: node, docker, kubernetes, containerd, podman, systemd, cgroup, qemu, guest-agent. */
  kind: z.string().min(1),
  /** Stable for the entity's life (container id, pod uid/container, QEMU uuid/pid, node id). */
  id: z.string().min(1),
  /** Human name shown on dashboards (container name, VM name, hostname). */
  name: z.string(),
  labels: z.record(z.string(), z.string()).default({}),
  /** The entity this one runs on or inside: host for a container or vm, vm for a guest. */
  parent: EntityRef.optional(),
});
export type Entity = z.infer<typeof Entity>;

export const EntitySample = z.strictObject({
  entity: Entity,
  /** When this entity was read (ms since epoch); the tick's `ts` when absent. */
  ts: z.number().int().nonnegative().optional(),
  counters: Counters,
  gauges: Gauges.default({}),
  /** Per block device, keyed by kernel name (sda, vda, nvme0n1) or major:minor when unnamed. */
  devices: z.record(z.string().min(1), InstanceMetrics).optional(),
  /** Per network interface, keyed by interface name. */
  interfaces: z.record(z.string().min(1), InstanceMetrics).optional(),
});
export type EntitySample = z.infer<typeof EntitySample>;

export const NodeIdentity = z.strictObject({
  id: z.string().min(1),
  hostname: z.string(),
  labels: z.record(z.string(), z.string()).default({}),
});
export type NodeIdentity = z.infer<typeof NodeIdentity>;

export const SampleMessage = z.strictObject({
  v: z.literal(SCHEMA_VERSION),
  node: NodeIdentity,
  /** Tick time, ms since epoch; the InfluxDB point time, so replays rewrite identical points. */
  ts: z.number().int().nonnegative(),
  /** The agent's configured tick interval in ms (the processor uses real elapsed time for rates). */
  interval_ms: z.number().int().positive(),
  /** Monotonic per-agent-run sequence number: gaps show lost ticks, a reset shows a restart. */
  seq: z.number().int().nonnegative(),
  agent: z.strictObject({ version: z.string(), run_id: z.string() }),
  samples: z.array(EntitySample),
});
export type SampleMessage = z.infer<typeof SampleMessage>;
/** What producers build before validation fills defaults. */
export type SampleMessageInput = z.input<typeof SampleMessage>;

/**
 * Why a message was refused: a closed set, so that the dead-letter counter's `reason_kind` label
 * and the `strata-dlq-reason-code` header stay bounded. The free text beside it names the field.
 */
export const DECODE_CODES = [
  'empty',
  'not_json',
  'schema_version',
  'schema',
  'timestamp_out_of_window',
  'too_many_samples',
  'reserved_name',
  'name_too_long',
  'value_too_long',
] as const;
export type DecodeCode = (typeof DECODE_CODES)[number];

export type DecodeResult =
  | { ok: true; message: SampleMessage }
  | { ok: false; code: DecodeCode; reason: string };

/**
 * Per-message bounds beyond the schema (docs/wire-format.md, "Bounds"). Hard bounds refuse the
 * message (dead letter): more entity samples than maxSamplesPerMessage, a counter or gauge name
 * longer than maxNameLength, an id, name, kind, hostname or run id longer than maxValueLength.
 * Soft bounds cut and count (DecoderOptions.onCut): devices or interfaces of one entity beyond
 * maxInstancesPerEntity (the first ones in the message are kept; one with a name longer than
 * maxValueLength is dropped), label values longer than maxValueLength (cut to it).
 */
export interface SampleLimits {
  maxSamplesPerMessage: number;
  maxInstancesPerEntity: number;
  maxNameLength: number;
  maxValueLength: number;
}

export const DEFAULT_SAMPLE_LIMITS: Readonly<SampleLimits> = Object.freeze({
  maxSamplesPerMessage: 5000,
  maxInstancesPerEntity: 1024,
  maxNameLength: 200,
  maxValueLength: 1024,
});

/** What a soft bound cut: instances (devices, interfaces) or label values. */
export type CutKind = 'instances' | 'label_values';

export interface DecoderOptions {
  /**
   * Sample times accepted: the message's `ts` and every sample's own `ts` must lie in
   * [now() − maxAgeMs, now() + maxFutureMs], else `timestamp_out_of_window`. Absent: no window
   * (tools reading recorded files); the processor always sets it, with its own clock.
   */
  window?: { now: () => number; maxAgeMs: number; maxFutureMs: number };
  /** Told what a soft bound cut (rare: only messages that break one pay the call). */
  onCut?: (what: CutKind, n: number, message: SampleMessage) => void;
}

/** Tags and string fields the processor writes, and InfluxDB's own `time`. */
const IDENTITY_NAMES = [
  'time',
  // tags (processors/rates/rates.ts TAG_LABELS, instance tags)
  'node',
  'layer',
  'kind',
  'name',
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
  'device',
  'interface',
  // string fields (rates.ts FIELD_LABELS, overhead's guest_entity_id)
  'entity_id',
  'guest_entity_id',
  'cgroup_path',
  'qmp_socket',
  'hypervisor_cgroup',
  'io_accounting',
];
/** Figures the processor derives from several counters (rates.ts deriveEntity, instances(); naming.ts LATENCIES). */
const DERIVED_NAMES = [
  'interval_seconds',
  'cpu_cores',
  'cpu_utilization_ratio',
  'cpu_steal_ratio',
  'cpu_iowait_ratio',
  'iops',
  'read_latency_ms_per_op',
  'write_latency_ms_per_op',
  'discard_latency_ms_per_op',
  'flush_latency_ms_per_op',
];
/**
 * Names a sample may not use for a counter or gauge, because the processor writes a field or tag
 * of that name on the same point (docs/schema.md): InfluxDB keeps one type per field, so a gauge
 * `entity_id: 5` would make every later string `entity_id` of the shard refused; a gauge named
 * like a tag, a derived figure or a rate would shadow it.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  ...IDENTITY_NAMES,
  ...DERIVED_NAMES,
  // rate fields of disk counters without the usual ending (naming.ts)
  'utilization_ratio',
  'avg_queue_depth',
]);
/** The CPU in use, in cores, on every layer's entity point (docs/schema.md). */
export const CPU_CORES_FIELD = 'cpu_cores';
/**
 * What a counter's rate field may not be (the disk counters' own utilization_ratio... are fine).
 * processors/rates/naming.ts refuses, at load, a catalogue entry whose rate field is one of these.
 * `cpu_cores` is not among them: it is the rate of a container's or VM's CPU-time counter, and the
 * processor derives it only on host and guest points (naming.ts refuses a host or guest counter
 * with that rate field).
 */
export const COUNTER_FIELD_CLASH: ReadonlySet<string> = new Set(
  [...IDENTITY_NAMES, ...DERIVED_NAMES].filter((n) => n !== CPU_CORES_FIELD),
);

/** Endings of the rate fields the processor computes (naming.ts): a gauge may not end so. */
const RATE_SUFFIXES = ['_per_second', '_cores', '_iops', '_stall_ratio', '_ms_per_op'] as const;

/** Why `name` may not name a counter (its rate field collides) or a gauge; undefined when it may. */
export function reservedNameReason(name: string, counter: boolean): string | undefined {
  if (RESERVED_NAMES.has(name)) return `"${name}" is written by the processor itself`;
  if (counter) {
    // A counter's rate field is its catalogue entry's, which naming.ts checks against
    // COUNTER_FIELD_CLASH when it loads the catalogues, or `<name>_per_second`, which none of those
    // names is. So the name alone decides here, and schemas/ needs no catalogue.
    return undefined;
  }
  for (const s of RATE_SUFFIXES) {
    if (name.endsWith(s)) return `names ending in ${s} are the processor's rate fields`;
  }
  return undefined;
}

const LAYER_SET: ReadonlySet<unknown> = new Set(LAYERS);
const CACHE_LIMIT = 10_000;

/**
 * Parses, validates and bounds sample messages. One per consumer (its name caches depend on its
 * limits). Never throws: a bad message is a value the caller counts and routes to the
 * dead-letter topic with `code` and `reason` in headers.
 */
export class SampleDecoder {
  readonly limits: Readonly<SampleLimits>;
  private readonly window: DecoderOptions['window'];
  private readonly onCut: DecoderOptions['onCut'];
  /** Counter and gauge names that passed every name rule (a bounded set in practice; cleared past 10k). */
  private readonly counterNames = new Set<string>();
  private readonly gaugeNames = new Set<string>();
  /** The window of the message being decoded (ms); [0, ∞) without one. */
  private lo = 0;
  private hi = Number.POSITIVE_INFINITY;

  constructor(limits: Partial<SampleLimits> = {}, options: DecoderOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_SAMPLE_LIMITS, ...limits });
    this.window = options.window;
    this.onCut = options.onCut;
  }

  decode(value: Buffer | string | null | undefined): DecodeResult {
    if (value == null) return { ok: false, code: 'empty', reason: 'empty message value' };
    let json: unknown;
    try {
      json = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
    } catch (err) {
      return { ok: false, code: 'not_json', reason: `not JSON: ${(err as Error).message}` };
    }
    return this.validate(json);
  }

  /** As decode(), for a value already parsed (and owned by the caller: defaults are filled in place). */
  validate(json: unknown): DecodeResult {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      return { ok: false, code: 'schema', reason: 'message is not a JSON object' };
    }
    const version = (json as { v?: unknown }).v;
    if (version !== SCHEMA_VERSION) {
      return {
        ok: false,
        code: 'schema_version',
        reason: `v: unsupported schema version ${JSON.stringify(version)} (this build reads ${SCHEMA_VERSION})`,
      };
    }
    const w = this.window;
    if (w !== undefined) {
      const now = w.now();
      this.lo = now - w.maxAgeMs;
      this.hi = now + w.maxFutureMs;
    }
    const fast = this.fast(json);
    if (fast !== undefined) return { ok: true, message: fast };
    // Something is unusual: zod decides and words the schema errors, then the bounds are checked
    // one by one with their own codes, and the soft ones cut.
    const parsed = SampleMessage.safeParse(json);
    if (!parsed.success) return { ok: false, code: 'schema', reason: formatIssues(parsed.error.issues) };
    return this.bound(parsed.data);
  }

  // ---- Slow path: bounds with reasons, cuts ----------------------------------------------------

  private bound(m: SampleMessage): DecodeResult {
    const L = this.limits;
    const w = this.window;
    if (w !== undefined) {
      const bad = this.outOfWindow('ts', m.ts, w);
      if (bad !== undefined) return bad;
      for (let i = 0; i < m.samples.length; i++) {
        const ts = m.samples[i]!.ts;
        if (ts === undefined) continue;
        const b = this.outOfWindow(`samples.${i}.ts`, ts, w);
        if (b !== undefined) return b;
      }
    }
    if (m.samples.length > L.maxSamplesPerMessage) {
      return {
        ok: false,
        code: 'too_many_samples',
        reason: `samples: ${m.samples.length} entity samples, more than samples.maxSamplesPerMessage (${L.maxSamplesPerMessage})`,
      };
    }
    const long = (path: string, v: string): DecodeResult | undefined =>
      v.length > L.maxValueLength
        ? {
            ok: false,
            code: 'value_too_long',
            reason: `${path}: ${v.length} characters, more than samples.maxValueLength (${L.maxValueLength})`,
          }
        : undefined;
    let bad =
      long('node.id', m.node.id) ??
      long('node.hostname', m.node.hostname) ??
      long('agent.run_id', m.agent.run_id) ??
      long('agent.version', m.agent.version);
    if (bad !== undefined) return bad;
    for (let i = 0; i < m.samples.length; i++) {
      const s = m.samples[i]!;
      const e = s.entity;
      const at = `samples.${i}`;
      bad =
        long(`${at}.entity.id`, e.id) ??
        long(`${at}.entity.kind`, e.kind) ??
        long(`${at}.entity.name`, e.name) ??
        (e.parent ? long(`${at}.entity.parent.id`, e.parent.id) : undefined) ??
        this.names(`${at}.counters`, s.counters, true) ??
        this.names(`${at}.gauges`, s.gauges, false) ??
        this.instanceNames(`${at}.devices`, s.devices) ??
        this.instanceNames(`${at}.interfaces`, s.interfaces);
      if (bad !== undefined) return bad;
    }
    // Soft bounds: only now, so that a refused message was not altered.
    let labels = this.cutLabels(m.node.labels);
    let instances = 0;
    for (const s of m.samples) {
      labels += this.cutLabels(s.entity.labels);
      if (s.devices !== undefined) instances += this.cutInstances(s.devices);
      if (s.interfaces !== undefined) instances += this.cutInstances(s.interfaces);
    }
    if (labels > 0) this.onCut?.('label_values', labels, m);
    if (instances > 0) this.onCut?.('instances', instances, m);
    return { ok: true, message: m };
  }

  private outOfWindow(
    path: string,
    ts: number,
    w: NonNullable<DecoderOptions['window']>,
  ): DecodeResult | undefined {
    if (ts >= this.lo && ts <= this.hi) return undefined;
    const when = ts <= 8.64e15 ? new Date(ts).toISOString() : 'beyond year 275760';
    const side =
      ts < this.lo
        ? `older than samples.maxAge (${w.maxAgeMs} ms)`
        : `later than samples.maxFuture (${w.maxFutureMs} ms)`;
    return {
      ok: false,
      code: 'timestamp_out_of_window',
      reason: `${path}: ${ts} (${when}) is ${side} from the processor's clock (${new Date(this.lo + w.maxAgeMs).toISOString()})`,
    };
  }

  private names(path: string, rec: Record<string, number>, counter: boolean): DecodeResult | undefined {
    const max = this.limits.maxNameLength;
    for (const k in rec) {
      if (k.length > max) {
        return {
          ok: false,
          code: 'name_too_long',
          reason: `${path}.${k.slice(0, 64)}...: ${k.length} characters, more than samples.maxNameLength (${max})`,
        };
      }
      const why = reservedNameReason(k, counter);
      if (why !== undefined) {
        return {
          ok: false,
          code: 'reserved_name',
          reason: `${path}.${k}: reserved name, ${why} (docs/wire-format.md, "Reserved names")`,
        };
      }
    }
    return undefined;
  }

  private instanceNames(
    path: string,
    rec: Record<string, InstanceMetrics> | undefined,
  ): DecodeResult | undefined {
    if (rec === undefined) return undefined;
    for (const name in rec) {
      const inst = rec[name]!;
      const bad =
        this.names(`${path}.${name}.counters`, inst.counters, true) ??
        (inst.gauges ? this.names(`${path}.${name}.gauges`, inst.gauges, false) : undefined);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }

  /** Label values cut to maxValueLength; returns how many. */
  private cutLabels(labels: Record<string, string>): number {
    const max = this.limits.maxValueLength;
    let n = 0;
    for (const k in labels) {
      const v = labels[k]!;
      if (v.length > max) {
        labels[k] = v.slice(0, max);
        n++;
      }
    }
    return n;
  }

  /** Instances beyond maxInstancesPerEntity, or with too long a name, deleted; returns how many. */
  private cutInstances(rec: Record<string, InstanceMetrics>): number {
    const L = this.limits;
    let kept = 0;
    let n = 0;
    for (const name in rec) {
      if (kept >= L.maxInstancesPerEntity || name.length > L.maxValueLength) {
        delete rec[name];
        n++;
      } else kept++;
    }
    return n;
  }

  // ---- Fast path -------------------------------------------------------------------------------
  // zod is the definition of the wire format, but running it over every message costs more CPU
  // than the whole processing pipeline (docs/processor.md, "Cost"). fast() is a hand-written check
  // of the same rules and of the bounds for the common case: it accepts only messages the zod
  // schema accepts and that break no bound (anything unusual — an unknown key, a wrong type, a
  // `__proto__` key, an integer beyond 2^53, a reserved name, a time outside the window, a bound
  // reached — makes it return undefined, and the slow path then decides, words the reason and
  // cuts), and fills the same defaults. test/unit/schema-fast.test.ts checks it against zod on the
  // recorded messages under testdata/ and on thousands of mutations of them.

  private isName(k: string, counter: boolean): boolean {
    const cache = counter ? this.counterNames : this.gaugeNames;
    if (cache.has(k)) return true;
    if (k.length > this.limits.maxNameLength || !METRIC_NAME.test(k)) return false;
    if (reservedNameReason(k, counter) !== undefined) return false;
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.add(k);
    return true;
  }

  private isValue(v: unknown): boolean {
    return typeof v === 'string' && v.length <= this.limits.maxValueLength;
  }

  private isId(v: unknown): boolean {
    return typeof v === 'string' && v.length > 0 && v.length <= this.limits.maxValueLength;
  }

  private isTs(v: unknown): boolean {
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v >= this.lo && v <= this.hi;
  }

  /** record(string, string), values within maxValueLength. */
  private stringRecord(v: unknown): boolean {
    if (!isObj(v)) return false;
    for (const k in v) {
      if (k === '__proto__' || !this.isValue(v[k])) return false;
    }
    return true;
  }

  /** record(metricName, finite number), nonnegative for counters. */
  private metricRecord(v: unknown, counter: boolean): boolean {
    if (!isObj(v)) return false;
    for (const k in v) {
      const x = v[k];
      if (typeof x !== 'number' || x - x !== 0 || (counter && x < 0)) return false;
      if (!this.isName(k, counter)) return false;
    }
    return true;
  }

  private instanceRecord(v: unknown): boolean {
    if (!isObj(v)) return false;
    const max = this.limits.maxInstancesPerEntity;
    let count = 0;
    for (const k in v) {
      if (k === '' || k === '__proto__' || k.length > this.limits.maxValueLength || ++count > max)
        return false;
      const m = v[k];
      if (!isObj(m)) return false;
      let counters = false;
      for (const f in m) {
        if (f === 'counters') {
          if (!this.metricRecord(m[f], true)) return false;
          counters = true;
        } else if (f === 'gauges') {
          if (!this.metricRecord(m[f], false)) return false;
        } else return false;
      }
      if (!counters) return false;
    }
    return true;
  }

  private entityRef(v: unknown): boolean {
    if (!isObj(v)) return false;
    let n = 0;
    for (const k in v) {
      if (k === 'layer') {
        if (!LAYER_SET.has(v[k])) return false;
      } else if (k === 'id') {
        if (!this.isId(v[k])) return false;
      } else return false;
      n++;
    }
    return n === 2;
  }

  private entityCheck(v: unknown): boolean {
    if (!isObj(v)) return false;
    let n = 0;
    for (const k in v) {
      const x = v[k];
      switch (k) {
        case 'layer':
          if (!LAYER_SET.has(x)) return false;
          n++;
          break;
        case 'kind':
        case 'id':
          if (!this.isId(x)) return false;
          n++;
          break;
        case 'name':
          if (!this.isValue(x)) return false;
          n++;
          break;
        case 'labels':
          if (!this.stringRecord(x)) return false;
          break;
        case 'parent':
          if (!this.entityRef(x)) return false;
          break;
        default:
          return false;
      }
    }
    return n === 4;
  }

  private entitySample(v: unknown): boolean {
    if (!isObj(v)) return false;
    let n = 0;
    for (const k in v) {
      const x = v[k];
      switch (k) {
        case 'entity':
          if (!this.entityCheck(x)) return false;
          n++;
          break;
        case 'ts':
          if (!this.isTs(x)) return false;
          break;
        case 'counters':
          if (!this.metricRecord(x, true)) return false;
          n++;
          break;
        case 'gauges':
          if (!this.metricRecord(x, false)) return false;
          break;
        case 'devices':
        case 'interfaces':
          if (!this.instanceRecord(x)) return false;
          break;
        default:
          return false;
      }
    }
    return n === 2;
  }

  /**
   * The message as zod would return it, or undefined when the fast check is not sure (then the
   * slow path decides). Valid messages are returned as the given object with defaults filled in
   * place, so pass a value you own (fresh from JSON.parse).
   */
  fast(json: unknown): SampleMessage | undefined {
    if (!isObj(json)) return undefined;
    let n = 0;
    for (const k in json) {
      const x = json[k];
      switch (k) {
        case 'v':
          if (x !== SCHEMA_VERSION) return undefined;
          break;
        case 'node': {
          if (!isObj(x)) return undefined;
          let m = 0;
          for (const nk in x) {
            const y = x[nk];
            if (nk === 'id') {
              if (!this.isId(y)) return undefined;
            } else if (nk === 'hostname') {
              if (!this.isValue(y)) return undefined;
            } else if (nk === 'labels') {
              if (!this.stringRecord(y)) return undefined;
              continue;
            } else return undefined;
            m++;
          }
          if (m !== 2) return undefined;
          break;
        }
        case 'ts':
          if (!this.isTs(x)) return undefined;
          break;
        case 'seq':
          if (!isNonNegInt(x)) return undefined;
          break;
        case 'interval_ms':
          if (!isNonNegInt(x) || x === 0) return undefined;
          break;
        case 'agent': {
          if (!isObj(x)) return undefined;
          let m = 0;
          for (const ak in x) {
            if ((ak !== 'version' && ak !== 'run_id') || !this.isValue(x[ak])) return undefined;
            m++;
          }
          if (m !== 2) return undefined;
          break;
        }
        case 'samples': {
          if (!Array.isArray(x) || x.length > this.limits.maxSamplesPerMessage) return undefined;
          for (let i = 0; i < x.length; i++) {
            if (!this.entitySample(x[i])) return undefined;
          }
          break;
        }
        default:
          return undefined;
      }
      n++;
    }
    if (n !== 7) return undefined;
    // Valid: fill the defaults (only now, so that a message handed on to zod is untouched).
    const node = json.node as Obj;
    if (!('labels' in node)) node.labels = {};
    const samples = json.samples as Obj[];
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i] as Obj;
      const e = s.entity as Obj;
      if (!('labels' in e)) e.labels = {};
      if (!('gauges' in s)) s.gauges = {};
    }
    return json as SampleMessage;
  }
}

const METRIC_NAME = /^[a-z][a-z0-9_]*$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Default bounds, no time window: for tools reading recorded files (`strata run`, tests, benches). */
const defaultDecoder = new SampleDecoder();

/**
 * Parses and validates one message value with the default bounds and no time window. Never
 * throws: a bad message is a value the caller counts and routes to the dead-letter topic.
 */
export function decodeSampleMessage(value: Buffer | string | null | undefined): DecodeResult {
  return defaultDecoder.decode(value);
}

export function validateSampleMessage(json: unknown): DecodeResult {
  return defaultDecoder.validate(json);
}

/** The default decoder's fast path (tests compare it with zod). */
export function fastSampleMessage(json: unknown): SampleMessage | undefined {
  return defaultDecoder.fast(json);
}

/** "samples.0.entity.layer: Invalid option: expected one of ..." — the field first, always. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : '(root)';
      if (i.code === 'unrecognized_keys') return `${path}: unknown field(s) ${i.keys.join(', ')}`;
      return `${path}: ${i.message}`;
    })
    .join('; ');
}

/** Kafka record headers every strata producer sets. */
export const HEADERS = {
  schemaVersion: 'strata-schema-version',
  contentType: 'content-type',
  dlqReason: 'strata-dlq-reason',
  /** The decoder's code for it (schemas/sample.ts DECODE_CODES): what to filter dead letters on. */
  dlqReasonCode: 'strata-dlq-reason-code',
  dlqSourceTopic: 'strata-dlq-source-topic',
  dlqSourcePartition: 'strata-dlq-source-partition',
  dlqSourceOffset: 'strata-dlq-source-offset',
  /** "first-last": the batch a dead letter came from when no single message is known (refused lines). */
  dlqSourceOffsets: 'strata-dlq-source-offsets',
  /** Size in bytes of the original value, on every dead letter. */
  dlqOriginalSize: 'strata-dlq-original-size',
  /** "true" when the value was cut to dlq.maxValueBytes. */
  dlqTruncated: 'strata-dlq-truncated',
} as const;
