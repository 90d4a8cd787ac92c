// The sink contract is start(), write(points) → WriteResult, close(): a sink that does not encode
// batches itself (no EncodingSink, e.g. `strata run`'s view) is handed the pipeline's points by the
// runtime, and a batch is committed once that write is acknowledged. The messages are real agent
// ticks (testdata/processor/agent-host-1s.ndjson).
import { readFileSync } from 'node:fs';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createProcessor, resolveProcessorConfig } from '../../processor/index.ts';
import { ViewSink } from '../../run/run.ts';
import type { Point } from '../../schemas/point.ts';
import { isEncodingSink, type Sink, type WriteResult } from '../../sinks/types.ts';

const TICKS = readFileSync(new URL('../../testdata/processor/agent-host-1s.ndjson', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0)
  .slice(0, 4);

function runtimeWith(sink: Sink<Point>) {
  const config = resolveProcessorConfig({}, { STRATA_METRICS_LISTEN: '' });
  config.kafka.warmup = 0;
  config.samples.maxAge = 100 * 365 * 24 * 3600_000; // captured ticks: their dates are in the past
  const rt = createProcessor(config, { sink });
  const internals = rt as unknown as {
    consumer: { commitOffsets(o: unknown[]): Promise<void> };
    eachBatch(payload: EachBatchPayload): Promise<void>;
  };
  const commits: unknown[] = [];
  internals.consumer.commitOffsets = async (o) => {
    commits.push(...o);
  };
  const resolved: string[] = [];
  const messages = TICKS.map(
    (line, i): KafkaMessage => ({
      key: Buffer.from('node'),
      value: Buffer.from(line),
      offset: String(i),
      timestamp: String(Date.now()),
      attributes: 0,
      headers: {},
    }),
  );
  const payload = {
    batch: {
      topic: config.kafka.samplesTopic,
      partition: 0,
      highWatermark: String(messages.length),
      messages,
      firstOffset: () => '0',
      lastOffset: () => String(messages.length - 1),
    },
    resolveOffset: (o: string) => resolved.push(o),
    heartbeat: async () => {},
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  return { run: () => internals.eachBatch(payload), commits, resolved };
}

describe('a sink that takes points (no encoding)', () => {
  it('is written the pipeline points of a batch, and the batch is committed after it', async () => {
    const writes: (readonly Point[])[] = [];
    const sink: Sink<Point> = {
      name: 'points',
      start: async () => {},
      close: async () => {},
      write: async (points): Promise<WriteResult> => {
        writes.push(points);
        return { written: points.length, rejected: 0, unencodable: 0 };
      },
    };
    expect(isEncodingSink(sink)).toBe(false);
    const { run, commits, resolved } = runtimeWith(sink);
    await run();
    expect(writes).toHaveLength(1);
    const points = writes[0] ?? [];
    // Rates need two ticks: 4 ticks of a host give points, each a real Point with a sample time.
    expect(points.length).toBeGreaterThan(0);
    for (const p of points) {
      expect(typeof p.measurement).toBe('string');
      expect(Object.keys(p.fields).length).toBeGreaterThan(0);
      expect(Number.isFinite(p.timeMs)).toBe(true);
    }
    expect(resolved).toEqual([String(TICKS.length - 1)]);
    expect(commits).toEqual([{ topic: 'strata.samples', partition: 0, offset: String(TICKS.length) }]);
  });

  it("`strata run`'s view is such a sink: it shows the points it is written and counts them written", async () => {
    const shown: (readonly Point[])[] = [];
    const view = new ViewSink((p) => shown.push(p));
    expect(isEncodingSink(view)).toBe(false);
    const { run, commits } = runtimeWith(view);
    await run();
    expect(shown).toHaveLength(1);
    expect(shown[0]?.length).toBeGreaterThan(0);
    expect(commits).toHaveLength(1);
    const point: Point = { measurement: 'm', tags: {}, fields: { f: 1 }, timeMs: 1 };
    expect(await view.write([point, point])).toEqual({ written: 2, rejected: 0, unencodable: 0 });
    expect(shown[1]).toEqual([point, point]);
  });
});
