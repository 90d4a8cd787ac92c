// Config of the rates stage: how counters become per-second rates (see docs/overhead.md, "Rates").
import { z } from 'zod';

export const RatesConfig = z.strictObject({
  /**
   * An interval longer than this many of the agent's `interval_ms` is a gap (lost ticks, agent
   * down): no rate is computed across it, because an average over a long gap hides what happened
   * and may hide a reset. The next interval is measured from the sample after the gap.
   */
  maxGapIntervals: z.number().positive().default(5),
  /**
   * A counter that went down is taken as a 32-bit wrap (not a reset) only when the previous value
   * was at least this fraction of 2^32 and the wrapped delta (2^32 - prev + cur) is at most
   * `wrapMaxDeltaFraction` of 2^32. Otherwise it is a reset and the interval gives no rate.
   */
  wrapMinPrevFraction: z.number().gt(0).lt(1).default(0.75),
  /** See wrapMinPrevFraction: the largest plausible wrapped delta, as a fraction of the word size. */
  wrapMaxDeltaFraction: z.number().gt(0).lt(1).default(0.25),
});
export type RatesConfig = z.output<typeof RatesConfig>;
