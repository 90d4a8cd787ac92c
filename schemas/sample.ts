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
/** Point-in-time values (bytes in use, requests in flight, PSI avg10). */
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

export type DecodeResult = { ok: true; message: SampleMessage } | { ok: false; reason: string };

/**
 * Parses and validates one message value. Never throws: a bad message is a value the caller
 * counts and routes to the dead-letter topic with `reason` in a header.
 */
export function decodeSampleMessage(value: Buffer | string | null | undefined): DecodeResult {
  if (value == null) return { ok: false, reason: 'empty message value' };
  let json: unknown;
  try {
    json = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  return validateSampleMessage(json);
}

export function validateSampleMessage(json: unknown): DecodeResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'message is not a JSON object' };
  }
  const version = (json as { v?: unknown }).v;
  if (version !== SCHEMA_VERSION) {
    return {
      ok: false,
      reason: `v: unsupported schema version ${JSON.stringify(version)} (this build reads ${SCHEMA_VERSION})`,
    };
  }
  const fast = fastSampleMessage(json);
  if (fast !== undefined) return { ok: true, message: fast };
  const parsed = SampleMessage.safeParse(json);
  if (parsed.success) return { ok: true, message: parsed.data };
  return { ok: false, reason: formatIssues(parsed.error.issues) };
}

// ---- Fast path ----------------------------------------------------------------------------------
// zod is the definition of the wire format, but running it over every message costs more CPU than
// the whole processing pipeline (docs/processor.md, "Cost"). fastSampleMessage is a hand-written
// check of the same rules for the common case: it accepts only messages the zod schema accepts
// (anything unusual — an unknown key, a wrong type, a `__proto__` key, an integer beyond 2^53 —
// makes it return undefined, and zod then decides and words the reason), and fills the same
// defaults. test/unit/schema-fast.test.ts checks it against zod on the recorded messages under
// testdata/ and on thousands of mutations of them.

const METRIC_NAME = /^[a-z][a-z0-9_]*$/;
/** Metric names that passed METRIC_NAME (a bounded set in practice; cleared if it grows past 10k). */
const metricNames = new Set<string>();

function isMetricName(k: string): boolean {
  if (metricNames.has(k)) return true;
  if (!METRIC_NAME.test(k)) return false;
  if (metricNames.size >= 10_000) metricNames.clear();
  metricNames.add(k);
  return true;
}
const LAYER_SET: ReadonlySet<unknown> = new Set(LAYERS);

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isNonEmptyString(v: unknown): boolean {
  return typeof v === 'string' && v.length > 0;
}

/** record(string, string) */
function stringRecord(v: unknown): boolean {
  if (!isObj(v)) return false;
  for (const k in v) {
    if (k === '__proto__' || typeof v[k] !== 'string') return false;
  }
  return true;
}

/** record(metricName, finite number), nonnegative for counters. */
function metricRecord(v: unknown, nonnegative: boolean): boolean {
  if (!isObj(v)) return false;
  for (const k in v) {
    const x = v[k];
    if (typeof x !== 'number' || x - x !== 0 || (nonnegative && x < 0)) return false;
    if (!isMetricName(k)) return false;
  }
  return true;
}

function instanceRecord(v: unknown): boolean {
  if (!isObj(v)) return false;
  for (const k in v) {
    if (k === '' || k === '__proto__') return false;
    const m = v[k];
    if (!isObj(m)) return false;
    let counters = false;
    for (const f in m) {
      if (f === 'counters') {
        if (!metricRecord(m[f], true)) return false;
        counters = true;
      } else if (f === 'gauges') {
        if (!metricRecord(m[f], false)) return false;
      } else return false;
    }
    if (!counters) return false;
  }
  return true;
}

function entityRef(v: unknown): boolean {
  if (!isObj(v)) return false;
  let n = 0;
  for (const k in v) {
    if (k === 'layer') {
      if (!LAYER_SET.has(v[k])) return false;
    } else if (k === 'id') {
      if (!isNonEmptyString(v[k])) return false;
    } else return false;
    n++;
  }
  return n === 2;
}

function entityCheck(v: unknown): boolean {
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
        if (!isNonEmptyString(x)) return false;
        n++;
        break;
      case 'name':
        if (typeof x !== 'string') return false;
        n++;
        break;
      case 'labels':
        if (!stringRecord(x)) return false;
        break;
      case 'parent':
        if (!entityRef(x)) return false;
        break;
      default:
        return false;
    }
  }
  return n === 4;
}

function entitySample(v: unknown): boolean {
  if (!isObj(v)) return false;
  let n = 0;
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'entity':
        if (!entityCheck(x)) return false;
        n++;
        break;
      case 'ts':
        if (!isNonNegInt(x)) return false;
        break;
      case 'counters':
        if (!metricRecord(x, true)) return false;
        n++;
        break;
      case 'gauges':
        if (!metricRecord(x, false)) return false;
        break;
      case 'devices':
      case 'interfaces':
        if (!instanceRecord(x)) return false;
        break;
      default:
        return false;
    }
  }
  return n === 2;
}

/**
 * The message as zod would return it, or undefined when the fast check is not sure (then zod
 * decides). Valid messages are returned as the given object with defaults filled in place, so pass
 * a value you own (fresh from JSON.parse).
 */
export function fastSampleMessage(json: unknown): SampleMessage | undefined {
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
            if (!isNonEmptyString(y)) return undefined;
          } else if (nk === 'hostname') {
            if (typeof y !== 'string') return undefined;
          } else if (nk === 'labels') {
            if (!stringRecord(y)) return undefined;
            continue;
          } else return undefined;
          m++;
        }
        if (m !== 2) return undefined;
        break;
      }
      case 'ts':
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
          if ((ak !== 'version' && ak !== 'run_id') || typeof x[ak] !== 'string') return undefined;
          m++;
        }
        if (m !== 2) return undefined;
        break;
      }
      case 'samples': {
        if (!Array.isArray(x)) return undefined;
        for (let i = 0; i < x.length; i++) {
          if (!entitySample(x[i])) return undefined;
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
  dlqSourceTopic: 'strata-dlq-source-topic',
  dlqSourcePartition: 'strata-dlq-source-partition',
  dlqSourceOffset: 'strata-dlq-source-offset',
} as const;
