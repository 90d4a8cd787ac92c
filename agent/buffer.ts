// The bounded tick buffer between the tick loop and the publisher. Every encoded tick goes in here
// and leaves only once Kafka (or the ndjson writer) has it, so an outage is simply a buffer that
// grows. Bounds: maxTicks and maxBytes in memory; beyond them the oldest tick moves to the spill
// file when one is configured, else it is dropped. Drops are reported to the caller (who counts
// them) with the entries' ids, because the publisher may have the oldest ones in flight.
//
// Entries get a monotonic id (per process): the buffer is always ordered by id, evictions and
// consumption both happen at the head, so "everything up to id X" describes any prefix.
import zlib from 'node:zlib';
import { errorCode, errorMessage } from '../lib/errors.ts';
import { type SpillRecovery, SpillStore, SpillWriteError } from './spill.ts';

export interface Tick {
  /** Buffer-internal order; not on the wire. */
  id: number;
  seq: number;
  ts: number;
  key: string;
  /** The encoded SampleMessage (JSON, UTF-8). */
  value: Buffer;
}

export type DropReason = 'bound' | 'spill_write_error' | 'spill_unreadable';

export interface BufferOptions {
  maxTicks: number;
  maxBytes: number;
  spillFile?: string;
  maxSpillBytes?: number;
  /**
   * Called with the id range [first, last] of ticks dropped from the head, and why: `bound` (the
   * buffer bounds), `spill_write_error` (the spill file did not take the tick evicted from
   * memory: full or failing disk), `spill_unreadable` (a spilled record failed its CRC or read).
   */
  onDrop?: (first: number, last: number, reason: DropReason) => void;
  /** Failures of the spill file itself (open, append); the buffer carries on without it or in memory. */
  onSpillError?: (err: { code: string; message: string; op: 'open' | 'append' }) => void;
  /** Quarantine bounds of the spill file (corrupt segments set aside at start-up). */
  quarantineMaxFiles?: number;
  quarantineMaxBytes?: number;
  /**
   * Store ticks that have to wait (the buffer is not empty when they arrive, i.e. the output is
   * behind or down) gzip-compressed at level 1: ~30x smaller for real messages at ~2 µs CPU per
   * entity, so the same maxBytes holds ~30x more outage. Ticks sent at once are never compressed.
   */
  compressBacklog?: boolean;
}

/** JSON never starts with the gzip magic, so stored values need no flag (memory or spill file). */
function isGzip(v: Buffer): boolean {
  return v.length > 2 && v[0] === 0x1f && v[1] === 0x8b;
}

function expand<T extends { value: Buffer }>(t: T): T {
  return isGzip(t.value) ? { ...t, value: zlib.gunzipSync(t.value) } : t;
}

export class TickBuffer {
  // A circular array: push at tail, shift at head, O(1) both, no reallocation after warm-up.
  private ring: (Tick | undefined)[];
  private head = 0;
  private size = 0;
  private memBytes = 0;
  private nextId = 0;
  private spill?: SpillStore;
  /**
   * Ids of the records in the spill, which are all older than those in memory, as runs of
   * consecutive ids: a tick the disk refused is missing from the spill, so its ids can have gaps.
   */
  private readonly spillIds = new IdRuns();
  readonly recovered: SpillRecovery = { records: 0, corruptBytes: 0, quarantined: 0 };

  constructor(private readonly opts: BufferOptions) {
    this.ring = new Array(Math.min(opts.maxTicks, 1024));
    if (opts.spillFile) {
      const spill = new SpillStore(opts.spillFile, opts.maxSpillBytes ?? 256 * 1024 * 1024, {
        quarantineMaxFiles: opts.quarantineMaxFiles,
        quarantineMaxBytes: opts.quarantineMaxBytes,
      });
      try {
        this.recovered = spill.open();
        this.spill = spill;
      } catch (err) {
        // An unusable spill directory must not stop sampling: run with the memory buffer only.
        spill.close();
        opts.onSpillError?.({ code: errorCode(err) ?? 'EIO', message: errorMessage(err), op: 'open' });
      }
      // Recovered records (from a previous run) are the oldest of all; give them the first ids.
      if (this.recovered.records > 0) this.spillIds.pushRange(0, this.recovered.records);
      this.nextId = this.recovered.records;
    }
  }

  /** Ticks waiting (memory + spill). */
  get length(): number {
    return this.size + this.spillIds.count;
  }
  get memoryTicks(): number {
    return this.size;
  }
  get memoryBytes(): number {
    return this.memBytes;
  }
  get spillTicks(): number {
    return this.spillIds.count;
  }
  get spillBytes(): number {
    return this.spill?.bytes ?? 0;
  }

  /** Appends a tick (assigning its id) and enforces the bounds. Returns the id. */
  push(t: Omit<Tick, 'id'>): number {
    const tick = t as Tick;
    tick.id = this.nextId++;
    if (this.opts.compressBacklog && this.length > 0 && !isGzip(tick.value)) {
      tick.value = zlib.gzipSync(tick.value, { level: 1 });
    }
    if (this.size === this.ring.length) this.grow();
    this.ring[(this.head + this.size) % this.ring.length] = tick;
    this.size++;
    this.memBytes += tick.value.length;
    while (this.size > 0 && (this.size > this.opts.maxTicks || this.memBytes > this.opts.maxBytes)) {
      // Never evict the tick just pushed because of maxBytes alone: a single huge tick still goes out.
      if (this.size === 1) break;
      const oldest = this.shiftMemory()!;
      if (this.spill) this.spillOne(oldest);
      else this.opts.onDrop?.(oldest.id, oldest.id, 'bound');
    }
    return tick.id;
  }

  /**
   * The oldest ticks, up to `max` and `maxBytes` of values as pushed (at least one), without
   * removing them. Values come back as they were pushed (decompressed).
   */
  peek(max: number, maxBytes = Number.POSITIVE_INFINITY): Tick[] {
    const out: Tick[] = [];
    let bytes = 0;
    for (const stored of this.peekStored(max, Number.POSITIVE_INFINITY)) {
      const t = expand(stored);
      if (out.length > 0 && bytes + t.value.length > maxBytes) break;
      out.push(t);
      bytes += t.value.length;
    }
    return out;
  }

  private peekStored(max: number, maxBytes: number): Tick[] {
    const out: Tick[] = [];
    let bytes = 0;
    if (this.spill && this.spillIds.count > 0) {
      const recs = this.spill.peek(max, maxBytes);
      const skipped = this.spill.takeSkipped();
      if (skipped > 0) {
        for (const [first, last] of this.spillIds.shift(skipped)) {
          this.opts.onDrop?.(first, last, 'spill_unreadable');
        }
      }
      for (const [i, r] of recs.entries()) {
        out.push({ ...r, id: this.spillIds.idAt(i) });
        bytes += r.value.length;
      }
      // Records and memory are contiguous in id order only once the spill is read to its end.
      if (recs.length < this.spillIds.count) return out;
    }
    for (let i = 0; i < this.size && out.length < max; i++) {
      const t = this.ring[(this.head + i) % this.ring.length]!;
      if (out.length > 0 && bytes + t.value.length > maxBytes) break;
      out.push(t);
      bytes += t.value.length;
    }
    return out;
  }

  /** Removes every tick with id <= lastId (those not already dropped). */
  consume(lastId: number): void {
    if (this.spill && this.spillIds.count > 0) {
      const n = this.spillIds.countUpTo(lastId);
      if (n > 0) {
        this.spill.consume(n);
        this.spillIds.shift(n);
      }
    }
    while (this.size > 0 && this.ring[this.head]!.id <= lastId) this.shiftMemory();
  }

  /** Moves everything still in memory to the spill file (shutdown with ticks left). Returns how many. */
  persist(): number {
    if (!this.spill) return 0;
    let n = 0;
    while (this.size > 0) {
      if (this.spillOne(this.shiftMemory()!)) n++;
    }
    return n;
  }

  close(): void {
    this.spill?.close();
  }

  /**
   * Moves a tick to the spill file. A disk that refuses it (full, failing) loses that tick only:
   * counted and reported, never thrown at the tick loop. Returns whether it was written.
   */
  private spillOne(t: Tick): boolean {
    let dropped: number;
    try {
      dropped = this.spill!.append(t);
    } catch (err) {
      const code = err instanceof SpillWriteError ? err.code : (errorCode(err) ?? 'EIO');
      this.opts.onSpillError?.({ code, message: errorMessage(err), op: 'append' });
      this.opts.onDrop?.(t.id, t.id, 'spill_write_error');
      return false;
    }
    this.spillIds.push(t.id);
    if (dropped > 0) {
      for (const [first, last] of this.spillIds.shift(dropped)) this.opts.onDrop?.(first, last, 'bound');
    }
    return true;
  }

  private shiftMemory(): Tick | undefined {
    if (this.size === 0) return undefined;
    const t = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.size--;
    this.memBytes -= t.value.length;
    return t;
  }

  private grow(): void {
    const bigger = new Array<Tick | undefined>(Math.min(this.opts.maxTicks + 1, this.ring.length * 2) || 1);
    for (let i = 0; i < this.size; i++) bigger[i] = this.ring[(this.head + i) % this.ring.length];
    this.ring = bigger;
    this.head = 0;
  }
}

/** Ascending ids as runs of consecutive values; push at the end, shift from the start. */
class IdRuns {
  /** [first, count] pairs, oldest first. */
  private runs: [number, number][] = [];
  count = 0;

  push(id: number): void {
    this.pushRange(id, 1);
  }

  pushRange(first: number, n: number): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last[0] + last[1] === first) last[1] += n;
    else this.runs.push([first, n]);
    this.count += n;
  }

  /** The i-th id (0 = oldest). */
  idAt(i: number): number {
    for (const [first, n] of this.runs) {
      if (i < n) return first + i;
      i -= n;
    }
    throw new RangeError(`id index ${i} out of range`);
  }

  /** How many ids are <= lastId (a prefix, as ids ascend). */
  countUpTo(lastId: number): number {
    let c = 0;
    for (const [first, n] of this.runs) {
      if (first > lastId) break;
      c += Math.min(n, lastId - first + 1);
    }
    return c;
  }

  /** Removes the n oldest ids; returns them as [first, last] ranges. */
  shift(n: number): [number, number][] {
    const out: [number, number][] = [];
    while (n > 0 && this.runs.length) {
      const run = this.runs[0]!;
      const take = Math.min(n, run[1]);
      out.push([run[0], run[0] + take - 1]);
      run[0] += take;
      run[1] -= take;
      this.count -= take;
      n -= take;
      if (run[1] === 0) this.runs.shift();
    }
    return out;
  }
}
