// The Publisher's drain loop: in order, one batch in flight, retries after failures, and the
// drop accounting when the buffer bound evicts ticks that are in flight (they count as dropped only
// if that send fails). The output is an in-process Transport whose sends the test completes by hand.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Tick } from '../../agent/buffer.ts';
import { TickBuffer } from '../../agent/buffer.ts';
import { agentMetrics } from '../../agent/metrics.ts';
import { Publisher, RejectedError, type Transport } from '../../agent/publisher.ts';
import { componentLogger } from '../../lib/log.ts';

const STAT = fs.readFileSync('testdata/proc/hybrid-host/step1/stat', 'utf8');
const tick = (seq: number) => ({
  seq,
  ts: seq * 1000,
  key: 'n1',
  value: Buffer.from(JSON.stringify({ v: 1, seq, stat: STAT.split('\n')[0] })),
});

/** Each send waits until the test settles it. */
class GatedTransport implements Transport {
  readonly name = 'gated';
  readonly target = 'in-process';
  readonly delivered: number[] = [];
  pending: { ticks: readonly Tick[]; ok: () => void; fail: (e: Error) => void }[] = [];
  async start(): Promise<void> {}
  send(ticks: readonly Tick[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        ticks,
        ok: () => {
          for (const t of ticks) this.delivered.push(t.seq);
          resolve();
        },
        fail: reject,
      });
    });
  }
  async shutdown(): Promise<void> {}
  async next(): Promise<{ ticks: readonly Tick[]; ok: () => void; fail: (e: Error) => void }> {
    for (let i = 0; i < 200 && this.pending.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const p = this.pending.shift();
    if (!p) throw new Error('no send arrived');
    return p;
  }
}

async function droppedTotal(): Promise<number> {
  return (await agentMetrics.bufferDropped.get()).values[0]?.value ?? 0;
}

function setup(maxTicks: number) {
  const transport = new GatedTransport();
  let publisher: Publisher | undefined;
  const buffer = new TickBuffer({
    maxTicks,
    maxBytes: 1 << 30,
    onDrop: (f, l) => publisher!.noteDrop(f, l),
  });
  publisher = new Publisher(
    buffer,
    transport,
    { batchMaxTicks: 4, batchMaxBytes: 1 << 20, minBackoffMs: 1, maxBackoffMs: 2 },
    componentLogger('test'),
  );
  publisher.start();
  return { transport, buffer, publisher };
}

describe('Publisher', () => {
  it('sends in order in batches, retries a failed batch, and loses nothing within the bound', async () => {
    const { transport, buffer, publisher } = setup(100);
    for (let s = 0; s < 6; s++) buffer.push(tick(s));
    publisher.wake();
    let send = await transport.next();
    expect(send.ticks.map((t) => t.seq)).toEqual([0, 1, 2, 3]);
    send.fail(new Error('connection refused'));
    expect(publisher.inOutage).toBe(false); // set once the rejection is handled
    send = await transport.next(); // the same batch again
    expect(publisher.inOutage).toBe(true);
    expect(send.ticks.map((t) => t.seq)).toEqual([0, 1, 2, 3]);
    send.ok();
    send = await transport.next();
    expect(send.ticks.map((t) => t.seq)).toEqual([4, 5]);
    send.ok();
    await publisher.stop(Date.now() + 1000);
    expect(transport.delivered).toEqual([0, 1, 2, 3, 4, 5]);
    expect(publisher.inOutage).toBe(false);
  });

  it('counts ticks evicted while in flight as dropped only when that send fails', async () => {
    const { transport, buffer, publisher } = setup(4);
    const before = await droppedTotal();
    for (let s = 0; s < 4; s++) buffer.push(tick(s));
    publisher.wake();
    let send = await transport.next(); // 0..3 in flight
    for (let s = 4; s < 6; s++) buffer.push(tick(s)); // evicts 0 and 1 (in flight)
    expect(await droppedTotal()).toBe(before); // not yet: the send may still succeed
    send.ok(); // it did: 0..3 arrived, nothing lost
    send = await transport.next();
    expect(send.ticks.map((t) => t.seq)).toEqual([4, 5]);
    for (let s = 6; s < 10; s++) buffer.push(tick(s)); // evicts 4, 5 (in flight)
    send.fail(new Error('broker gone'));
    send = await transport.next();
    expect(await droppedTotal()).toBe(before + 2); // 4 and 5 are lost
    expect(send.ticks.map((t) => t.seq)).toEqual([6, 7, 8, 9]); // the newest, in order
    send.ok();
    await publisher.stop(Date.now() + 1000);
    expect(transport.delivered).toEqual([0, 1, 2, 3, 6, 7, 8, 9]);
  });

  it('a batch refused for good is resent tick by tick; only the refused tick is dropped and counted', async () => {
    const { transport, buffer, publisher } = setup(100);
    const rejected = async () =>
      (await agentMetrics.publishRejected.get()).values.find((v) => v.labels.reason === 'too_large')?.value ??
      0;
    const before = await rejected();
    for (let s = 0; s < 6; s++) buffer.push(tick(s));
    publisher.wake();
    const tooLarge = () => new RejectedError('too large', 'too_large', 1000);
    let send = await transport.next();
    expect(send.ticks.map((t) => t.seq)).toEqual([0, 1, 2, 3]);
    send.fail(tooLarge()); // the batch: retried one tick at a time, at once
    const singles: number[][] = [];
    for (let i = 0; i < 4; i++) {
      send = await transport.next();
      singles.push(send.ticks.map((t) => t.seq));
      if (send.ticks[0]!.seq === 2) send.fail(tooLarge());
      else send.ok();
    }
    expect(singles).toEqual([[0], [1], [2], [3]]);
    send = await transport.next(); // past the refused batch: batches again
    expect(send.ticks.map((t) => t.seq)).toEqual([4, 5]);
    send.ok();
    await publisher.stop(Date.now() + 1000);
    expect(transport.delivered).toEqual([0, 1, 3, 4, 5]);
    expect(await rejected()).toBe(before + 1);
    expect(publisher.inOutage).toBe(false);
  });
});
