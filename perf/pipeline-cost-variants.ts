// What perf:pipeline-cost writes for each `--variant`: a function from the points the processor's
// pipeline returns for one message to the points written to InfluxDB, and the pipeline config it
// runs with. `today` is the identity (the schema as it is); the others are candidate schema changes
// measured in the same run, so that their cost is compared on the same machine at the same moment.
// To try another change, add a function here: the bench runs every variant named in --variants,
// alternated (A B A B ...). What earlier variants measured (and which became the schema) is in
// docs/cost.md.
import type { PipelineConfigInput } from '../processors/config.ts';
import type { Point } from '../schemas/point.ts';

export type Variant = (points: Point[]) => Point[];

/** Fields that are not a measured value: they stay even when 0. */
const KEEP = new Set(['interval_seconds']);

/**
 * Zero-valued numeric fields left out of every point, as idle device rows are (a reader would sum
 * rates × interval over a bucket, or fill(0), instead of taking mean()); a row left with no field
 * is not written. Strings and booleans stay.
 */
function withoutZeros(p: Point): Point | undefined {
  let zeros = 0;
  let kept = 0;
  for (const k in p.fields) {
    if (p.fields[k] === 0 && !KEEP.has(k)) zeros++;
    else kept++;
  }
  if (zeros === 0) return p;
  if (kept === 0) return undefined;
  // A new object built key by key, not a copy with keys deleted: `delete` leaves V8 a slow
  // dictionary-mode object, which would bill the encoder for what a real schema change never makes.
  const fields: Point['fields'] = {};
  for (const k in p.fields) {
    const v = p.fields[k] as number | string | boolean;
    if (v !== 0 || KEEP.has(k)) fields[k] = v;
  }
  return { measurement: p.measurement, tags: p.tags, fields, timeMs: p.timeMs };
}

export const VARIANTS: Record<
  string,
  { describe: string; apply: Variant; make?: () => Variant; pipeline?: PipelineConfigInput }
> = {
  today: { describe: 'the schema as it is (identity)', apply: (points) => points },
  'sparse-zeros': {
    describe: 'zero-valued numeric fields left out of every point (rows left empty not written)',
    apply: (points) => {
      const out: Point[] = [];
      for (const p of points) {
        const q = withoutZeros(p);
        if (q !== undefined) out.push(q);
      }
      return out;
    },
  },
};

/** The variant's point function (a fresh one: some keep state) and its pipeline config. */
export function variantNamed(name: string): { apply: Variant; pipeline: PipelineConfigInput } {
  const v = VARIANTS[name];
  if (!v) throw new Error(`unknown variant ${name}; accepted: ${Object.keys(VARIANTS).join(', ')}`);
  return { apply: v.make ? v.make() : v.apply, pipeline: v.pipeline ?? {} };
}
