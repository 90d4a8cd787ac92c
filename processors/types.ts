// The processor contract. The pipeline is pure and synchronous over decoded messages: transports
// (Kafka consumer, the in-memory transport of `strata run`) feed it, sinks write what it returns.
// State (previous counters per entity, baselines) is per node, and a node's messages arrive on one
// partition, so no state is shared across partitions.
import type { AlertEvent } from '../schemas/alert.ts';
import type { Point } from '../schemas/point.ts';
import type { SampleMessage } from '../schemas/sample.ts';

export interface PipelineOutput {
  points: Point[];
  alerts: AlertEvent[];
}

export interface Pipeline {
  /** Processes one node-tick. Never throws on data: odd values are counted and skipped. */
  handle(message: SampleMessage): PipelineOutput;
  /** Drops state of entities not seen since `olderThanMs` (bounded memory); returns how many. */
  evict(nowMs: number): number;
  /**
   * Outputs produced outside handle(): resolved events of incidents whose node evict() dropped
   * (resolved_reason node_silent). The caller delivers them; they are returned once.
   */
  drain?(): PipelineOutput;
  /**
   * Open incidents of record (firing events never resolved, from the alerts topic) that this
   * pipeline takes over after an assignment; incidents it holds that are not among them are
   * dropped (fired during a warm-up replay whose outputs were discarded). Call once, between the
   * replay and the first live message.
   */
  adopt?(open: readonly AlertEvent[]): void;
}
