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

export const VARIANTS: Record<string, { describe: string; apply: Variant; pipeline?: PipelineConfigInput }> =
  {
    today: { describe: 'the schema as it is (identity)', apply: (points) => points },
    'zero-rates-skip': {
      describe:
        'pipeline.output.zeroRates: skip (a rate at 0 written when it turns 0 and once per idleHeartbeatMs)',
      apply: (points) => points,
      pipeline: { output: { zeroRates: 'skip' } },
    },
  };

/** The variant's point function and its pipeline config. */
export function variantNamed(name: string): { apply: Variant; pipeline: PipelineConfigInput } {
  const v = VARIANTS[name];
  if (!v) throw new Error(`unknown variant ${name}; accepted: ${Object.keys(VARIANTS).join(', ')}`);
  return { apply: v.apply, pipeline: v.pipeline ?? {} };
}
