// The spill file against hand-corrupted segments: a flipped byte inside a record, a flipped length
// field, a file cut mid-record, a record changed underneath a running agent, and the quarantine
// bound. Exact counts: which records come back, which bytes are counted, what is set aside.
// Values are real encoded messages built from a captured /proc/stat.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DropReason, TickBuffer } from '../../agent/buffer.ts';
import { scanRecords } from '../../agent/spill.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';

const STAT = fs.readFileSync('testdata/proc/hybrid-host/step0/stat', 'utf8');
const CPU = STAT.split('\n')[0]!.split(/\s+/).slice(1).map(Number);

function tickValue(seq: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      node: { id: 'n1', hostname: 'n1', labels: {} },
      ts: 1_795_000_000_000 + 1000 * seq,
      interval_ms: 1000,
      seq,
      agent: { version: 't', run_id: 'r' },
      samples: [
        {
          entity: { layer: 'host', kind: 'node', id: 'n1', name: 'n1', labels: {} },
          counters: { cpu_user_usec_total: CPU[0]! * 10_000, cpu_system_usec_total: CPU[2]! * 10_000 },
          gauges: {},
        },
      ],
    }),
  );
}
const tick = (seq: number) => ({ seq, ts: 1_795_000_000_000 + seq * 1000, key: 'n1', value: tickValue(seq) });
const seqOf = (v: Buffer) => {
  const r = decodeSampleMessage(v);
  if (!r.ok) throw new Error(r.reason);
  return r.message.seq;
};

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-spill-corrupt-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Drops {
  bound: number;
  spill_write_error: number;
  spill_unreadable: number;
}

function open(base: string, extra: { quarantineMaxFiles?: number } = {}) {
  const drops: Drops = { bound: 0, spill_write_error: 0, spill_unreadable: 0 };
  const b = new TickBuffer({
    maxTicks: 1000,
    maxBytes: 1 << 30,
    spillFile: base,
    maxSpillBytes: 1 << 20, // one segment of 256 KiB holds every record here
    ...extra,
    onDrop: (f: number, l: number, reason: DropReason) => (drops[reason] += l - f + 1),
  });
  return { b, drops };
}

/** Writes ticks 0..n-1 to one spill segment and returns its path and the records' [offset, length]. */
function writeSpill(dir: string, n: number): { base: string; seg: string; recs: [number, number][] } {
  const base = path.join(dir, 'spill');
  const { b } = open(base);
  for (let s = 0; s < n; s++) b.push(tick(s));
  expect(b.persist()).toBe(n);
  b.close();
  // The only segment (a new run never reuses the index of a quarantined one).
  const segs = fs.readdirSync(dir).filter((f) => /^spill\.\d{6}$/.test(f));
  expect(segs).toHaveLength(1);
  const seg = path.join(dir, segs[0]!);
  const recs = scanRecords(fs.readFileSync(seg)).good;
  expect(recs).toHaveLength(n);
  return { base, seg, recs };
}

function drain(b: TickBuffer): number[] {
  const out: number[] = [];
  while (b.length) {
    const batch = b.peek(3);
    out.push(...batch.map((t) => seqOf(t.value)));
    if (batch.length) b.consume(batch[batch.length - 1]!.id);
  }
  return out;
}

function flip(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, offset);
  byte[0] = byte[0]! ^ 0xff;
  fs.writeSync(fd, byte, 0, 1, offset);
  fs.closeSync(fd);
}

const quarantined = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes('.corrupt-'));

describe('spill recovery from hand-corrupted segments', () => {
  it('a flipped byte inside record 4 of 10: the 9 others come back in order, the segment is set aside', () => {
    const dir = tmpDir();
    const { base, seg, recs } = writeSpill(dir, 10);
    const size = fs.statSync(seg).size;
    flip(seg, recs[4]![0] + recs[4]![1] - 5); // inside the value
    const { b, drops } = open(base);
    expect(b.recovered).toEqual({ records: 9, corruptBytes: recs[4]![1], quarantined: 1 });
    // The evidence is kept whole (a hard link: no bytes copied) and is not read as a segment again.
    const q = quarantined(dir);
    expect(q).toHaveLength(1);
    expect(fs.statSync(path.join(dir, q[0]!)).size).toBe(size);
    b.push(tick(100)); // appended after the recovered ones, not into the corrupt segment
    expect(drain(b)).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9, 100]);
    expect(drops).toEqual({ bound: 0, spill_write_error: 0, spill_unreadable: 0 });
    b.close();
    // Drained: the segments are gone, the quarantined copy stays.
    expect(fs.readdirSync(dir)).toEqual(q);
  });

  it('a flipped length field of record 2: the scan finds record 3 again; 9 recovered', () => {
    const dir = tmpDir();
    const { base, seg, recs } = writeSpill(dir, 10);
    flip(seg, recs[2]![0] + 1);
    const { b } = open(base);
    expect(b.recovered).toEqual({ records: 9, corruptBytes: recs[2]![1], quarantined: 1 });
    expect(drain(b)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 9]);
    b.close();
  });

  it('a file cut in the middle of record 7: records 0-6 come back, the torn tail is cut off, nothing set aside', () => {
    const dir = tmpDir();
    const { base, seg, recs } = writeSpill(dir, 10);
    const cut = recs[7]![0] + 40;
    fs.truncateSync(seg, cut);
    const { b } = open(base);
    expect(b.recovered).toEqual({ records: 7, corruptBytes: 40, quarantined: 0 });
    expect(fs.statSync(seg).size).toBe(recs[7]![0]);
    expect(quarantined(dir)).toEqual([]);
    b.push(tick(100)); // appended right after record 6
    expect(drain(b)).toEqual([0, 1, 2, 3, 4, 5, 6, 100]);
    b.close();
  });

  it('a record changed underneath the running agent is skipped and counted, never thrown', () => {
    const dir = tmpDir();
    const { base, seg, recs } = writeSpill(dir, 10);
    const { b, drops } = open(base);
    expect(b.recovered.records).toBe(10);
    flip(seg, recs[3]![0] + 30);
    flip(seg, recs[0]![0] + 30);
    expect(drain(b)).toEqual([1, 2, 4, 5, 6, 7, 8, 9]);
    expect(drops.spill_unreadable).toBe(2);
    expect(b.length).toBe(0);
    b.close();
  });

  it('keeps at most quarantineMaxFiles corrupt segments', () => {
    const dir = tmpDir();
    const base = path.join(dir, 'spill');
    for (let round = 0; round < 4; round++) {
      const { seg, recs } = writeSpill(dir, 3);
      flip(seg, recs[0]![0] + 30); // record 0 corrupt, 1 and 2 intact: set aside
      const { b } = open(base, { quarantineMaxFiles: 2 });
      expect(b.recovered).toEqual({ records: 2, corruptBytes: recs[0]![1], quarantined: 1 });
      expect(drain(b)).toEqual([1, 2]);
      b.close();
    }
    expect(quarantined(dir).length).toBeLessThanOrEqual(2);
    expect(quarantined(dir).length).toBeGreaterThan(0);
  });
});
