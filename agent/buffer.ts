// The bounded tick buffer between the tick loop and the publisher. Every encoded tick goes in here
// and leaves only once Kafka (or the ndjson writer) has it, so an outage is simply a buffer that
// grows. Bounds: maxTicks and maxBytes in memory; beyond them the oldest tick moves to the spill
// file when one is configured, else it is dropped. Drops are reported to the caller (who counts
// them) with the entries' ids, because the publisher may have the oldest ones in flight.
//
// Entries get a monotonic id (per process): the buffer is always ordered by id, evictions and
// consumption both happen at the head, so "everything up to id X" describes any prefix.
import zlib from 'node:zlib';
import { type SpillRecovery, SpillStore } from './spill.ts';

export interface Tick {
  /** Buffer-internal order; not on the wire. */
  id: number;
  seq: number;
  ts: number;
  key: string;
  /** The encoded SampleMessage (JSON, UTF-8). */
  value: Buffer;
}

export interface BufferOptions {
  maxTicks: number;
  maxBytes: number;
  spillFile?: string;
  maxSpillBytes?: number;
  /** Called with the id range [first, last] of ticks dropped from the head. */
  onDrop?: (first: number, last: number) => void;
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
  private readonly spill?: SpillStore;
  /** Ids of the records in the spill, which are all older than those in memory. */
  private spillFirstId = 0;
  private spillCount = 0;
  readonly recovered: SpillRecovery = { records: 0, corruptBytes: 0 };

  constructor(private readonly opts: BufferOptions) {
    this.ring = new Array(Math.min(opts.maxTicks, 1024));
    if (opts.spillFile) {
      this.spill = new SpillStore(opts.spillFile, opts.maxSpillBytes ?? 256 * 1024 * 1024);
      this.recovered = this.spill.open();
      // Recovered records (from a previous run) are the oldest of all; give them the first ids.
      this.spillCount = this.recovered.records;
      this.nextId = this.spillCount;
    }
  }

  /** Ticks waiting (memory + spill). */
  get length(): number {
    return this.size + this.spillCount;
  }
  get memoryTicks(): number {
    return this.size;
  }
  get memoryBytes(): number {
    return this.memBytes;
  }
  get spillTicks(): number {
    return this.spillCount;
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
      if (this.spill) {
        if (this.spillCount === 0) this.spillFirstId = oldest.id;
        const dropped = this.spill.append(oldest);
        this.spillCount++;
        if (dropped > 0) this.dropSpillHead(dropped);
      } else {
        this.opts.onDrop?.(oldest.id, oldest.id);
      }
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
    if (this.spill && this.spillCount > 0) {
      const recs = this.spill.peek(max, maxBytes);
      for (const [i, r] of recs.entries()) {
        out.push({ ...r, id: this.spillFirstId + i });
        bytes += r.value.length;
      }
      // Records and memory are contiguous in id order only once the spill is read to its end.
      if (recs.length < this.spillCount) return out;
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
    if (this.spill && this.spillCount > 0 && this.spillFirstId <= lastId) {
      const n = Math.min(this.spillCount, lastId - this.spillFirstId + 1);
      this.spill.consume(n);
      this.spillCount -= n;
      this.spillFirstId += n;
    }
    while (this.size > 0 && this.ring[this.head]!.id <= lastId) this.shiftMemory();
  }

  /** Moves everything still in memory to the spill file (shutdown with ticks left). Returns how many. */
  persist(): number {
    if (!this.spill) return 0;
    let n = 0;
    while (this.size > 0) {
      const t = this.shiftMemory()!;
      if (this.spillCount === 0) this.spillFirstId = t.id;
      const dropped = this.spill.append(t);
      this.spillCount++;
      if (dropped > 0) this.dropSpillHead(dropped);
      n++;
    }
    return n;
  }

  close(): void {
    this.spill?.close();
  }

  private dropSpillHead(n: number): void {
    const first = this.spillFirstId;
    this.spillFirstId += n;
    this.spillCount -= n;
    this.opts.onDrop?.(first, first + n - 1);
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
