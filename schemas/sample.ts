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
  const parsed = SampleMessage.safeParse(json);
  if (parsed.success) return { ok: true, message: parsed.data };
  return { ok: false, reason: formatIssues(parsed.error.issues) };
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
