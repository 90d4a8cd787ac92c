// The tick buffer (memory ring + spill file): bounds, drop-oldest, order, spill round trip and
// recovery of a torn spill file. Values are real encoded messages built from captured /proc files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TickBuffer } from '../../agent/buffer.ts';
import { SpillStore } from '../../agent/spill.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';

const STAT = fs.readFileSync('testdata/proc/hybrid-host/step0/stat', 'utf8');

/** A realistic tick value: a SampleMessage whose host sample carries the captured /proc/stat cpu line. */
function tickValue(seq: number): Buffer {
  const cpu = STAT.split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  return Buffer.from(
    JSON.stringify({
      v: 1,
      node: { id: 'n1', hostname: 'n1', labels: {} },
      ts: 1_000 * seq,
      interval_ms: 1000,
      seq,
      agent: { version: 't', run_id: 'r' },
      samples: [
        {
          entity: { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} },
          counters: { cpu_user_usec_total: cpu[0]! * 10_000, cpu_system_usec_total: cpu[2]! * 10_000 },
          gauges: {},
        },
      ],
    }),
  );
}

const tick = (seq: number) => ({ seq, ts: seq * 1000, key: 'n1', value: tickValue(seq) });
const seqsOf = (ticks: { value: Buffer }[]) =>
  ticks.map((t) => {
    const r = decodeSampleMessage(t.value);
    if (!r.ok) throw new Error(r.reason);
    return r.message.seq;
  });

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-buf-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('TickBuffer in memory', () => {
  it('keeps order and drops the oldest beyond maxTicks, reporting their ids', () => {
    const drops: [number, number][] = [];
    const b = new TickBuffer({ maxTicks: 5, maxBytes: 1 << 30, onDrop: (f, l) => drops.push([f, l]) });
    for (let s = 0; s < 12; s++) b.push(tick(s));
    expect(b.length).toBe(5);
    expect(seqsOf(b.peek(100))).toEqual([7, 8, 9, 10, 11]);
    expect(drops).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => [i, i]));
  });

  it('bounds bytes too, but never drops the tick just pushed', () => {
    const size = tickValue(9).length; // ticks 7..9 encode to the same length
    let dropped = 0;
    const b = new TickBuffer({ maxTicks: 100, maxBytes: size * 3, onDrop: (f, l) => (dropped += l - f + 1) });
    for (let s = 0; s < 10; s++) b.push(tick(s));
    expect(b.length).toBe(3);
    expect(b.memoryBytes).toBe(size * 3);
    expect(dropped).toBe(7);
    const tiny = new TickBuffer({ maxTicks: 100, maxBytes: 10 });
    tiny.push(tick(0));
    tiny.push(tick(1));
    expect(seqsOf(tiny.peek(10))).toEqual([1]);
  });

  it('peek respects count and byte limits; consume removes a prefix by id', () => {
    const b = new TickBuffer({ maxTicks: 100, maxBytes: 1 << 30 });
    const ids = Array.from({ length: 10 }, (_, s) => b.push(tick(s)));
    expect(seqsOf(b.peek(3))).toEqual([0, 1, 2]);
    const size = tickValue(0).length;
    expect(b.peek(100, size * 2 + 5)).toHaveLength(2);
    b.consume(ids[3]!);
    expect(seqsOf(b.peek(100))).toEqual([4, 5, 6, 7, 8, 9]);
    // consume of an id already dropped/consumed is a no-op
    b.consume(ids[1]!);
    expect(b.length).toBe(6);
  });

  it('wraps around its ring many times without losing order', () => {
    const b = new TickBuffer({ maxTicks: 7, maxBytes: 1 << 30 });
    const seen: number[] = [];
    for (let s = 0; s < 100; s++) {
      b.push(tick(s));
      if (s % 3 === 0) {
        const batch = b.peek(2);
        seen.push(...seqsOf(batch));
        b.consume(batch[batch.length - 1]!.id);
      }
    }
    for (const t of b.peek(100)) seen.push(...seqsOf([t]));
    // Strictly increasing: in order, no duplicates.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    expect(seen.at(-1)).toBe(99);
  });
});

describe('TickBuffer with a spill file', () => {
  it('spills the overflow to disk and drains disk first, then memory, in order', () => {
    const dir = tmpDir();
    let dropped = 0;
    const b = new TickBuffer({
      maxTicks: 4,
      maxBytes: 1 << 30,
      spillFile: path.join(dir, 'spill'),
      maxSpillBytes: 1 << 20,
      onDrop: (f, l) => (dropped += l - f + 1),
    });
    for (let s = 0; s < 20; s++) b.push(tick(s));
    expect(dropped).toBe(0);
    expect(b.memoryTicks).toBe(4);
    expect(b.spillTicks).toBe(16);
    expect(fs.readdirSync(dir).length).toBeGreaterThan(0);
    const out: number[] = [];
    while (b.length) {
      const batch = b.peek(3);
      out.push(...seqsOf(batch));
      b.consume(batch[batch.length - 1]!.id);
    }
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // Fully drained: the segments are gone.
    expect(fs.readdirSync(dir)).toEqual([]);
    b.close();
  });

  it('drops the oldest segment beyond maxSpillBytes and counts it', () => {
    const dir = tmpDir();
    const size = tickValue(0).length + 8 + 18 + 2;
    let dropped = 0;
    const b = new TickBuffer({
      maxTicks: 2,
      maxBytes: 1 << 30,
      spillFile: path.join(dir, 'spill'),
      maxSpillBytes: Math.max(4096 * 4, size * 40),
      onDrop: (f, l) => (dropped += l - f + 1),
    });
    for (let s = 0; s < 400; s++) b.push(tick(s));
    expect(dropped).toBeGreaterThan(0);
    expect(b.spillBytes).toBeLessThanOrEqual(Math.max(4096 * 4, size * 40));
    expect(b.length + dropped).toBe(400);
    const remaining = seqsOf(b.peek(1000));
    // What is left is the newest, contiguous, in order.
    expect(remaining.at(-1)).toBe(399);
    expect(remaining[0]).toBe(dropped);
    for (let i = 1; i < remaining.length; i++) expect(remaining[i]).toBe(remaining[i - 1]! + 1);
    b.close();
  });

  it('survives a restart: persisted ticks come back first, a torn tail is cut and counted', () => {
    const dir = tmpDir();
    const base = path.join(dir, 'spill');
    const first = new TickBuffer({
      maxTicks: 100,
      maxBytes: 1 << 30,
      spillFile: base,
      maxSpillBytes: 1 << 20,
    });
    for (let s = 0; s < 5; s++) first.push(tick(s));
    expect(first.persist()).toBe(5);
    first.close();
    // A torn write: half a record appended to the last segment (as a kill -9 mid-append would leave).
    const seg = fs.readdirSync(dir).sort().at(-1)!;
    const partial = fs.readFileSync(path.join(dir, seg)).subarray(0, 30);
    fs.appendFileSync(path.join(dir, seg), partial);

    const second = new TickBuffer({
      maxTicks: 100,
      maxBytes: 1 << 30,
      spillFile: base,
      maxSpillBytes: 1 << 20,
    });
    expect(second.recovered).toEqual({ records: 5, corruptBytes: 30, quarantined: 0 });
    second.push(tick(100));
    expect(seqsOf(second.peek(100))).toEqual([0, 1, 2, 3, 4, 100]);
    second.close();
  });
});

describe('TickBuffer backlog compression', () => {
  it('stores waiting ticks gzip-compressed (memory and spill) and gives back the exact bytes', () => {
    const dir = tmpDir();
    const b = new TickBuffer({
      maxTicks: 3,
      maxBytes: 1 << 30,
      spillFile: path.join(dir, 'spill'),
      maxSpillBytes: 1 << 20,
      compressBacklog: true,
    });
    const originals = Array.from({ length: 10 }, (_, s) => tick(s));
    const rawCopies = originals.map((t) => Buffer.from(t.value));
    for (const t of originals) b.push(t);
    // The first tick arrived to an empty buffer (it would be sent at once): stored as is.
    expect(b.peek(1)[0]!.value.equals(rawCopies[0]!)).toBe(true);
    const rawMemory = rawCopies.slice(7).reduce((n, v) => n + v.length, 0);
    expect(b.memoryBytes).toBeLessThan(rawMemory);
    const out = b.peek(100);
    expect(out.map((t) => t.value.toString('utf8'))).toEqual(rawCopies.map((v) => v.toString('utf8')));
    // maxBytes of a batch counts the bytes as pushed, not as stored.
    expect(b.peek(100, rawCopies[0]!.length * 2 + 10)).toHaveLength(2);
    b.close();
  });
});

describe('SpillStore', () => {
  it('round-trips key, ts, seq and value bytes exactly', () => {
    const dir = tmpDir();
    const s = new SpillStore(path.join(dir, 'x'), 1 << 20);
    expect(s.open()).toEqual({ records: 0, corruptBytes: 0, quarantined: 0 });
    const value = tickValue(42);
    s.append({ ts: 1_795_000_000_000, seq: 42, key: 'node-ü', value });
    const [rec] = s.peek(1);
    expect(rec).toEqual({ ts: 1_795_000_000_000, seq: 42, key: 'node-ü', value });
    s.consume(1);
    expect(s.count).toBe(0);
    s.close();
  });
});
