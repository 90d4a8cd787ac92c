// Reusable memory for line-protocol request bodies.
//
// A processor at 300 nodes × 21 entities at 1 Hz sends ≈ 11 MB/s of line protocol. Allocated
// afresh, every body is a new ArrayBuffer, which V8 counts as external memory: each 64 MB of it
// starts a full mark-compact of the heap (≈ 90 MB of live pipeline state at that size), i.e. one
// every few seconds, whatever the heap itself does. Recycling the bodies' memory once InfluxDB has
// acknowledged them removes most of those collections (docs/processor.md "Cost").
//
// Ownership: take() hands out a Buffer that is the caller's until it gives it back. Giving back a
// body that is still being sent would let the next batch overwrite bytes on their way to InfluxDB,
// so callers give back only bodies whose writes have settled, never those of an abandoned batch.
// What is not given back is simply garbage collected.

/** Free buffers kept at most (the writer has maxInFlight requests and a batch or two in hand). */
const MAX_FREE = 8;
/** Smallest buffer made: bodies of a few KB share sizes with larger ones. */
const MIN_BYTES = 64 * 1024;
/** Larger buffers are not kept (a body is at most influxdb.maxBatchBytes, 8 MiB by default). */
const MAX_KEPT_BYTES = 16 * 1024 * 1024;

export interface BodyPoolStats {
  /** take() calls served from a free buffer. */
  reused: number;
  /** take() calls that allocated. */
  allocated: number;
}

export class BodyPool {
  private readonly free: ArrayBuffer[] = [];
  /**
   * The memory handed out and not given back. Only it is taken back, once: not Node's shared
   * pool slabs, not a body given back twice (two takers would then share one buffer).
   */
  private readonly lent = new WeakSet<ArrayBuffer>();
  readonly stats: BodyPoolStats = { reused: 0, allocated: 0 };

  /** onTake: told of each take(), for the owner's metrics (reused: served from a free buffer). */
  constructor(private readonly onTake?: (reused: boolean) => void) {}

  /** A Buffer of exactly `bytes` bytes (contents undefined), backed by recycled memory when there is some. */
  take(bytes: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = (this.free[i] as ArrayBuffer).byteLength;
      if (size >= bytes && (best < 0 || size < (this.free[best] as ArrayBuffer).byteLength)) best = i;
    }
    if (best >= 0) {
      const ab = this.free[best] as ArrayBuffer;
      this.free[best] = this.free[this.free.length - 1] as ArrayBuffer;
      this.free.pop();
      this.lent.add(ab);
      this.stats.reused++;
      this.onTake?.(true);
      return Buffer.from(ab, 0, bytes);
    }
    this.stats.allocated++;
    this.onTake?.(false);
    // Powers of two, so that a buffer fits the next bodies of a similar size.
    const size = Math.max(MIN_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
    const ab = new ArrayBuffer(size);
    this.lent.add(ab);
    return Buffer.from(ab, 0, bytes);
  }

  /** Gives back a Buffer from take() whose bytes nobody reads any more; anything else is ignored. */
  give(body: Buffer): void {
    const ab = body.buffer as ArrayBuffer;
    if (!this.lent.delete(ab)) return;
    if (ab.byteLength <= MAX_KEPT_BYTES && this.free.length < MAX_FREE) this.free.push(ab);
  }

  /** Free buffers held (tests). */
  get size(): number {
    return this.free.length;
  }
}
