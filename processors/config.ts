// Config of the processing pipeline (rates → overhead → noisy-neighbor), as one strict object so
// a misspelt key is named with the accepted ones: parsePipelineConfig(input, 'processor.pipeline').
import { z } from 'zod';
import { durationMs, parseConfig } from '../lib/config.ts';
import { NoisyNeighborConfig } from './noisy-neighbor/config.ts';
import { OutputConfig } from './output/config.ts';
import { OverheadConfig } from './overhead/config.ts';
import { RatesConfig } from './rates/config.ts';

export const PipelineConfig = z.strictObject({
  /** Counter → rate rules: gaps and wrap detection. */
  rates: RatesConfig.default(() => RatesConfig.parse({})),
  /** Per-layer overhead: thresholds below which a ratio is not computed (idle views). */
  overhead: OverheadConfig.default(() => OverheadConfig.parse({})),
  /** Noisy-neighbor I/O detection: baselines, thresholds, hysteresis. */
  noisyNeighbor: NoisyNeighborConfig.default(() => NoisyNeighborConfig.parse({})),
  /** When metadata and idle device/interface rows are written (docs/schema.md). */
  output: OutputConfig.default(() => OutputConfig.parse({})),
  /**
   * An entity absent from its node's messages for this long (by sample time) loses its state
   * (previous counters, baselines); a node whose messages stopped for this long (by the `nowMs`
   * passed to evict) loses all of its state. "5m", "30s" or ms.
   */
  evictAfterMs: durationMs.default(300_000),
  /** Upper bound on entity states over all nodes; new entities beyond it get no rates (counted). */
  maxEntities: z.number().int().positive().default(200_000),
  /**
   * Agent runs (run_id) whose rate state a node id keeps at once. Two agents sharing a node id
   * (cloned VMs with one /etc/machine-id) each keep their own state, so both get rates; an agent
   * restart leaves its previous run's state until eviction. Beyond this many (a restart loop, a
   * run_id per message) the least recently seen run's state is dropped.
   */
  maxRunsPerNode: z.number().int().positive().default(4),
});
export type PipelineConfig = z.output<typeof PipelineConfig>;
export type PipelineConfigInput = z.input<typeof PipelineConfig>;

export function parsePipelineConfig(input: unknown = {}, where = 'processor.pipeline'): PipelineConfig {
  return parseConfig(PipelineConfig, input ?? {}, where);
}
