// What perf:pipeline-cost writes for each `--variant`: a function from the points the processor's
// pipeline returns for one message to the points written to InfluxDB. `today` is the identity
// (the schema as it is); the others are candidate schema changes measured in the same run, so
// that their cost is compared on the same machine at the same moment. To try another change, add
// a function here: the bench runs every variant named in --variants, alternated (A B A B ...).
import type { Point } from '../schemas/point.ts';

export type Variant = (points: Point[]) => Point[];

/** Tags that make a point a per-device or per-interface one (the sinks' measurements). */
const PER_PART_TAGS = ['device', 'interface'] as const;

/** A field that says nothing about activity: the tick length is written on every point. */
const NOT_ACTIVITY = new Set(['interval_seconds']);

/** Every numeric field is 0 (idle gauges, zero rates); strings and booleans do not count. */
function idle(p: Point): boolean {
  for (const k in p.fields) {
    if (NOT_ACTIVITY.has(k)) continue;
    const v = p.fields[k];
    if (typeof v === 'number' && v !== 0) return false;
  }
  return true;
}

function withoutStrings(p: Point): Point {
  let strings = false;
  for (const k in p.fields) if (typeof p.fields[k] === 'string') strings = true;
  if (!strings) return p;
  // A new object built key by key, not a copy with keys deleted: `delete` leaves V8 a slow
  // dictionary-mode object, which would bill the encoder for what a real schema change never makes.
  const fields: Point['fields'] = {};
  for (const k in p.fields) {
    const v = p.fields[k] as number | string | boolean;
    if (typeof v !== 'string') fields[k] = v;
  }
  return { measurement: p.measurement, tags: p.tags, fields, timeMs: p.timeMs };
}

/**
 * Fields written beside the ones they are computed from, on the same point: `iops` (read_iops +
 * write_iops) on device rows, `cpu_cores` where it repeats `cpu_usage_cores` (containers, VMs).
 */
function withoutDerived(p: Point): Point {
  const f = p.fields;
  const dupCpu = f.cpu_usage_cores !== undefined && f.cpu_cores === f.cpu_usage_cores;
  const iops = f.iops !== undefined && (f.read_iops !== undefined || f.write_iops !== undefined);
  if (!dupCpu && !iops) return p;
  // Built key by key for the same reason as withoutStrings.
  const fields: Point['fields'] = {};
  for (const k in f) {
    if ((dupCpu && k === 'cpu_cores') || (iops && k === 'iops')) continue;
    fields[k] = f[k] as number | string | boolean;
  }
  return { measurement: p.measurement, tags: p.tags, fields, timeMs: p.timeMs };
}

export const VARIANTS: Record<string, { describe: string; apply: Variant }> = {
  today: { describe: 'the schema as it is (identity)', apply: (points) => points },
  'no-strings': {
    // Entity metadata (entity_id, cgroup_path, ...) would be written on change to a metadata
    // measurement instead of on every point; the cost of that side write is not in this variant.
    describe: 'string fields removed from every point (metadata written separately on change)',
    apply: (points) => {
      const out: Point[] = [];
      for (const p of points) {
        const q = withoutStrings(p);
        // A point left without fields cannot be written (line protocol needs one).
        if (Object.keys(q.fields).length > 0) out.push(q);
      }
      return out;
    },
  },
  'skip-idle': {
    describe: 'device/interface points whose numeric fields are all 0 (idle gauges, zero rates) dropped',
    apply: (points) => points.filter((p) => !(PER_PART_TAGS.some((t) => p.tags[t] !== undefined) && idle(p))),
  },
  'no-strings+skip-idle': {
    describe: 'both of the above',
    apply: (points) => VARIANTS['no-strings']!.apply(VARIANTS['skip-idle']!.apply(points)),
  },
  'no-derived': {
    describe: 'no field computable from two others on the same point (iops; cpu_cores = cpu_usage_cores)',
    apply: (points) => points.map(withoutDerived),
  },
  all: {
    describe: 'no-strings + skip-idle + no-derived',
    apply: (points) => VARIANTS['no-strings+skip-idle']!.apply(points).map(withoutDerived),
  },
};

export function variantNamed(name: string): Variant {
  const v = VARIANTS[name];
  if (!v) throw new Error(`unknown variant ${name}; accepted: ${Object.keys(VARIANTS).join(', ')}`);
  return v.apply;
}
