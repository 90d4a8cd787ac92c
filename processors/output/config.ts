// Config of what the pipeline writes besides the figures themselves: how often entity metadata and
// idle device/interface rows are repeated, and the bound on the state that decides it
// (docs/schema.md, "When a point is written").
import { z } from 'zod';
import { durationMs } from '../../lib/config.ts';

export const OutputConfig = z.strictObject({
  /**
   * An entity's metadata point (`strata_entity`: entity_id, cgroup_path...) is written on the
   * entity's first sample, whenever one of its values changes, and again after this long (sample
   * time) without a change, so that a query over a recent window finds it. "10m", "30s" or ms.
   */
  metadataHeartbeatMs: durationMs.default(600_000),
  /**
   * A device or interface row whose numeric fields are all 0 is written when it follows a row that
   * was not (so a graph drops to 0) and then once per this long (sample time): a row missing for
   * longer than this plus the interval is a missing sample, not an idle device. 0 writes every
   * idle row.
   */
  idleHeartbeatMs: durationMs.default(60_000),
  /**
   * Devices and interfaces, over all entities, whose last written row the pipeline remembers (to
   * skip the idle ones). Beyond it a new device or interface is not remembered and every one of
   * its rows is written (counted in strata_processor_output_untracked_rows_total).
   */
  maxInstanceStates: z.number().int().positive().default(500_000),
  /**
   * `write`: every rate field on every point. `skip`: a rate at 0 is written when it turns 0 and
   * then once per idleHeartbeatMs, the zeros between left out (−22 % InfluxDB CPU per
   * entity-sample on a quiet fleet, docs/cost.md); read an entity's rate as sum ÷ count("interval_seconds")
   * with fill(0) (docs/schema.md; the generated dashboards do, in both modes).
   */
  zeroRates: z.enum(['write', 'skip']).default('write'),
});
export type OutputConfig = z.output<typeof OutputConfig>;
