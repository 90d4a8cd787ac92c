// The agent's self-metrics (served on /metrics when metricsListen is set). Names follow
// strata_<component>_<what>_<unit>[_total]; created once, shared by every Agent in the process.
import { counter, gauge, histogram } from '../lib/metrics.ts';

export const agentMetrics = {
  ticks: counter('strata_agent_ticks_total', 'Ticks sampled and handed to the buffer.'),
  ticksSkipped: counter(
    'strata_agent_ticks_skipped_total',
    'Ticks not sampled because the previous tick was still running or the process was stalled past the next tick.',
  ),
  collectErrors: counter(
    'strata_agent_collect_errors_total',
    'Per-item collection errors reported by collectors (unreadable file, vanished cgroup...).',
    ['collector'] as const,
  ),
  collectTimeouts: counter(
    'strata_agent_collect_timeouts_total',
    'Collector gathers left out of a tick because they exceeded collectTimeout (or were still running).',
    ['collector'] as const,
  ),
  collectFailures: counter(
    'strata_agent_collect_failures_total',
    'Collector gathers that threw as a whole (their samples for that tick are lost).',
    ['collector'] as const,
  ),
  entitySamples: counter('strata_agent_entity_samples_total', 'Entity samples put into ticks.', [
    'collector',
  ] as const),
  collectSeconds: histogram(
    'strata_agent_collect_duration_seconds',
    'Wall time of one collector gather.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    ['collector'] as const,
  ),
  bufferTicks: gauge('strata_agent_buffer_ticks', 'Ticks waiting to be published, by where they are.', [
    'where',
  ] as const),
  bufferBytes: gauge('strata_agent_buffer_bytes', 'Bytes of encoded ticks waiting, by where they are.', [
    'where',
  ] as const),
  bufferDropped: counter(
    'strata_agent_buffer_dropped_ticks_total',
    'Ticks dropped (oldest first) because the buffer bounds were exceeded while the output was unavailable.',
  ),
  spillRecovered: counter(
    'strata_agent_spill_recovered_ticks_total',
    'Ticks found in the spill file at start-up (from a previous run) and queued for publishing.',
  ),
  spillWriteErrors: counter(
    'strata_agent_spill_write_errors_total',
    'Spill file operations the disk refused (ENOSPC, EIO, EDQUOT, SHORT_WRITE...), by error code and operation (open, append); the append is rolled back to the last complete record.',
    ['code', 'op'] as const,
  ),
  spillLostTicks: counter(
    'strata_agent_spill_lost_ticks_total',
    'Ticks lost to the spill file: write_error (evicted from memory but the disk refused them), unreadable (a spilled record failed its CRC or its read).',
    ['reason'] as const,
  ),
  spillCorruptBytes: counter(
    'strata_agent_spill_corrupt_bytes_total',
    'Bytes of spill segments found at start-up that fail the record checks (torn tails cut off, corrupt regions skipped).',
  ),
  spillQuarantined: counter(
    'strata_agent_spill_quarantined_segments_total',
    'Spill segments with corruption before intact records, set aside as <segment>.corrupt-<ms> at start-up.',
  ),
  publishRejected: counter(
    'strata_agent_publish_rejected_ticks_total',
    'Ticks Kafka refused for good and the agent dropped: too_large (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE), invalid_record (INVALID_RECORD).',
    ['reason'] as const,
  ),
  published: counter('strata_agent_published_ticks_total', 'Ticks the output acknowledged.'),
  publishedBytes: counter(
    'strata_agent_published_bytes_total',
    'Uncompressed bytes of ticks the output acknowledged.',
  ),
  publishErrors: counter('strata_agent_publish_errors_total', 'Failed publish attempts (each is retried).', [
    'reason',
  ] as const),
  outputUp: gauge('strata_agent_output_up', '1 when the last publish attempt succeeded, 0 during an outage.'),
  lastTickTs: gauge('strata_agent_last_tick_timestamp_seconds', 'Sample time of the latest tick.'),
};
