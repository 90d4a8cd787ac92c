// What perf:pipeline-cost writes for each `--variant`: a function from the points the processor's
// pipeline returns for one message to the points written to InfluxDB, and the pipeline config it
// runs with. `today` is the identity (the schema as it is); `legacy` is the schema before entity
// metadata moved to `strata_entity` and idle rows were skipped (docs/schema.md "What changed");
// the others are candidate schema changes measured in the same run, so that their cost is compared
// on the same machine at the same moment. To try another change, add a function here: the bench
// runs every variant named in --variants, alternated (A B A B ...).
import type { PipelineConfigInput } from '../processors/config.ts';
import { ENTITY_MEASUREMENT } from '../processors/rates/rates.ts';
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

/**
 * The entity's metadata fields put back on every point of the entity (its layer point first, then
 * entity_id on its strata_overhead points), the strata_entity points dropped, and the entity's
 * interval_seconds put back on its device/interface rows: schema version 1's fields. Matched by
 * node, layer and name; the maps are the bench's own (one run, a fixed set of entities).
 */
function legacyStrings(): Variant {
  const meta = new Map<string, Record<string, string>>();
  const interval = new Map<string, number>();
  const keyOf = (t: Record<string, string>) => `${t.node}\u0000${t.layer}\u0000${t.name}`;
  return (points) => {
    const out: Point[] = [];
    for (const p of points) {
      if (p.measurement === ENTITY_MEASUREMENT) {
        const m: Record<string, string> = {};
        for (const k in p.fields) if (p.fields[k] !== '') m[k] = p.fields[k] as string;
        meta.set(keyOf(p.tags), m);
        continue;
      }
      const m = p.tags.layer === 'node' ? undefined : meta.get(keyOf(p.tags));
      if (m === undefined) {
        out.push(p);
        continue;
      }
      const layerRow = p.measurement !== 'strata_overhead';
      if (layerRow && (p.tags.device !== undefined || p.tags.interface !== undefined)) {
        const dt = interval.get(keyOf(p.tags));
        if (dt === undefined) out.push(p);
        else {
          const fields: Point['fields'] = {};
          for (const k in p.fields) fields[k] = p.fields[k] as number | string | boolean;
          fields.interval_seconds = dt;
          out.push({ measurement: p.measurement, tags: p.tags, fields, timeMs: p.timeMs });
        }
        continue;
      }
      if (layerRow) {
        const dt = p.fields.interval_seconds;
        if (typeof dt === 'number') interval.set(keyOf(p.tags), dt);
        else interval.delete(keyOf(p.tags));
      }
      const fields: Point['fields'] = {};
      if (layerRow) for (const k in m) fields[k] = m[k] as string;
      else fields.entity_id = m.entity_id as string;
      for (const k in p.fields) fields[k] = p.fields[k] as number | string | boolean;
      out.push({ measurement: p.measurement, tags: p.tags, fields, timeMs: p.timeMs });
    }
    return out;
  };
}

export const VARIANTS: Record<
  string,
  { describe: string; apply: Variant; make?: () => Variant; pipeline?: PipelineConfigInput }
> = {
  legacy: {
    describe:
      'schema version 1: metadata strings on every point, every idle device/interface row written, interval_seconds on rows',
    apply: (points) => points,
    make: legacyStrings,
    pipeline: { output: { idleHeartbeatMs: 0 } },
  },
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
  lean: {
    // Not taken: the kernel's avg10 gauges are its own 10 s average of what *_stall_ratio gives
    // per interval, but they are the agent's data as sent; iops and cpu_cores are read by the
    // overhead and noisy-neighbour stages and the dashboards. Measured to size what is left.
    describe:
      'today without the psi_*_avg10_pct gauges, iops, and cpu_cores where it repeats cpu_usage_cores',
    apply: (points) =>
      points.map((p) => {
        const q = withoutDerived(p);
        let avg10 = false;
        for (const k in q.fields) if (k.endsWith('_avg10_pct')) avg10 = true;
        if (!avg10) return q;
        const fields: Point['fields'] = {};
        for (const k in q.fields)
          if (!k.endsWith('_avg10_pct')) fields[k] = q.fields[k] as number | string | boolean;
        return { measurement: q.measurement, tags: q.tags, fields, timeMs: q.timeMs };
      }),
  },
  all: {
    describe: 'no-strings + skip-idle + no-derived',
    apply: (points) => VARIANTS['no-strings+skip-idle']!.apply(points).map(withoutDerived),
  },
};

/** The variant's point function (a fresh one: some keep state) and its pipeline config. */
export function variantNamed(name: string): { apply: Variant; pipeline: PipelineConfigInput } {
  const v = VARIANTS[name];
  if (!v) throw new Error(`unknown variant ${name}; accepted: ${Object.keys(VARIANTS).join(', ')}`);
  return { apply: v.make ? v.make() : v.apply, pipeline: v.pipeline ?? {} };
}
