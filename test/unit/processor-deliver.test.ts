// The runtime delivers a batch's points, dead letters and alerts as three legs retried until all
// are done. A leg still in flight when another failed is awaited in the next round, never started
// again: the points' bodies go back to the sink's memory pool once delivery succeeds, so a second
// write of them still sending then would put another batch's bytes on the wire.
import type { EachBatchPayload } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createProcessor, resolveProcessorConfig } from '../../processor/index.ts';
import type { EncodedPoints, EncodingSink, WriteResult } from '../../sinks/types.ts';

describe('processor delivery', () => {
  it('writes a batch once while the dead-letter produce fails and is retried', async () => {
    const writes: (() => void)[] = [];
    const sink: EncodingSink = {
      name: 'test',
      start: async () => {},
      close: async () => {},
      encode: () => ({ segments: [], lines: 0, unencodable: 0 }),
      encoder: () => ({ add: () => {}, finish: () => ({ segments: [], lines: 0, unencodable: 0 }) }),
      release: () => {},
      write: () =>
        new Promise<WriteResult>((resolve) =>
          writes.push(() => resolve({ written: 1, rejected: 0, unencodable: 0 })),
        ),
    };
    const config = resolveProcessorConfig({}, { STRATA_METRICS_LISTEN: '' });
    config.minBackoff = 5;
    const rt = createProcessor(config, { sink });
    const internals = rt as unknown as {
      producer: { send(): Promise<unknown> };
      consumer: { pause(): void; resume(): void };
      deliver(
        e: EncodedPoints,
        alerts: unknown[],
        dlq: unknown[],
        payload: EachBatchPayload,
      ): Promise<boolean>;
    };
    // Pausing the partitions is what the runtime does while a leg fails (no consumer runs here).
    internals.consumer.pause = () => {};
    internals.consumer.resume = () => {};
    let produced = 0;
    internals.producer.send = async () => {
      produced++;
      if (produced === 1) throw new Error('broker not available');
      return [];
    };
    const payload = {
      isRunning: () => true,
      isStale: () => false,
      heartbeat: async () => {},
      batch: { topic: 'strata.samples', partition: 0 },
    } as unknown as EachBatchPayload;
    const encoded: EncodedPoints = {
      segments: [{ body: Buffer.from('m f=1 1'), lines: 1 }],
      lines: 1,
      unencodable: 0,
    };
    const delivered = internals.deliver(
      encoded,
      [],
      [{ key: null, value: Buffer.from('x'), headers: {} }],
      payload,
    );
    // The produce fails and is retried while the write is still pending.
    await new Promise((r) => setTimeout(r, 50));
    expect(produced).toBe(2);
    expect(writes).toHaveLength(1);
    writes[0]!();
    expect(await delivered).toBe(true);
    expect(writes).toHaveLength(1);
  });
});
