// The gzip codec strata installs in kafkajs, for the agent (compress) and the processor (decompress).
//
// kafkajs' built-in codec always compresses at zlib's default level (6) and runs zlib on libuv's
// thread pool. Both cost the agent CPU it does not need to spend (docs/agent.md "Cost", fourth
// round, 200 active containers at 1 s ticks, per entity-sample): level 6 → 1 saves ≈ 4 µs, and
// compressing on the calling thread instead of the pool another ≈ 3–5 µs (a pool thread woken
// once a second runs zlib with cold caches, on the other core). The synchronous call blocks the event
// loop for as long as zlib runs: ≈ 0.2 ms for a 200-container tick at level 1, ≈ 1 ms for the
// largest produce request the agent makes (kafka.batchMaxBytes, 900 KB uncompressed). Record
// batches a processor fetches are at most a few hundred KB each, inflated at hundreds of MB/s.
//
// kafkajs keeps one codec per compression type for the whole process, so this module keeps one
// level: the last one an agent asked for (strata run starts one agent), and one inflate bound: the
// processor's kafka.maxInflatedBatchBytes.
//
// The bound exists because gzip inflates up to ≈ 1000× (400 KB of gzip can hold 400 MB of zeros)
// and kafkajs inflates a fetched record batch whole, before any of its records reaches the
// processor. It is enforced inside zlib (maxOutputLength: zlib stops as soon as the output passes
// it), so neither memory nor CPU goes past it. A batch past it cannot be decoded, but throwing
// would fail the whole fetch and kafkajs would fetch (and inflate) the same batch again forever:
// instead the codec hands kafkajs stand-in records, one per record of the batch, that the
// processor recognises (oversizedBatchOf), dead-letters once and commits past.
//
// kafkajs decodes a whole fetch response (every partition's batches) before the event loop turns
// again, and keeps all of it until its batches are processed. So the bound also holds for all the
// batches inflated in one turn: a batch that does not fit beside the ones already inflated is
// left for the next fetch (kafkajs treats it as the partial tail of the response and fetches from
// it again), and the first batch of a turn always gets the whole bound, so every fetch progresses.
// Inflate memory and the time the event loop is blocked (a SIGTERM waits for it) stay bounded.
import zlib from 'node:zlib';
import kafkajs from 'kafkajs';
import { errorCode, InvalidDataError, StrataError } from '../errors.ts';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** zlib's default, what kafkajs (and Kafka's own producer) use unless told otherwise. */
export const ZLIB_DEFAULT_LEVEL = 6;

/**
 * Default bound on what one record batch may inflate to (the processor's
 * kafka.maxInflatedBatchBytes). An agent's batch is at most kafka.batchMaxBytes (900 KB) of JSON;
 * the largest batch a broker accepts by default (message.max.bytes, 1 MiB compressed) is ≈ 13 MiB
 * of agent JSON at the agents' ratio. 32 MiB leaves room for any real batch.
 */
export const DEFAULT_MAX_INFLATED_BYTES = 32 * 1024 * 1024;

/** How much of an oversized batch's compressed bytes its dead letter keeps. */
export const OVERSIZED_PREFIX_BYTES = 64 * 1024;

let level = ZLIB_DEFAULT_LEVEL;
let maxInflated = DEFAULT_MAX_INFLATED_BYTES;

/**
 * A batch that does not fit in what is left of the bound in this turn of the event loop; kafkajs
 * fetches it again. Named as kafkajs' own error for a batch cut off by the fetch size, the one
 * error its fetch decoder stops at without failing the response (protocol/requests/fetch/v4/decodeMessages.js).
 */
class DeferredBatchError extends StrataError {
  constructor() {
    super('record batch deferred to the next fetch: the inflate bound is used up in this turn', {
      retriable: true,
    });
    this.name = 'KafkaJSPartialMessageError';
  }
}

/** Bytes inflated from record batches since the event loop last turned. */
let turnBytes = 0;
let turnResetPending = false;

function countTurnBytes(n: number): void {
  turnBytes += n;
  if (turnResetPending) return;
  turnResetPending = true;
  setImmediate(() => {
    turnBytes = 0;
    turnResetPending = false;
  });
}

/** Compressed data that inflates past the bound it was inflated under. Never retriable. */
export class InflateLimitError extends InvalidDataError {
  constructor(
    /** Bytes of the compressed input. */
    readonly compressedBytes: number,
    /** The bound that was passed. */
    readonly limit: number,
    /** What a gzip trailer says the data inflates to (mod 2^32, unverified), if it has one. */
    readonly claimedBytes: number | undefined,
  ) {
    super(
      `${compressedBytes} bytes of compressed data inflate past the ${limit}-byte bound` +
        (claimedBytes !== undefined ? ` (the gzip trailer claims ${claimedBytes} bytes)` : ''),
    );
  }
}

/**
 * A kafkajs codec (the factory kafkajs calls) compressing at `gzipLevel`, inflating any level up
 * to `maxInflatedBytes` per record batch (past it: stand-in records, see oversizedBatchOf).
 */
export function gzipCodec(gzipLevel: number, maxInflatedBytes = DEFAULT_MAX_INFLATED_BYTES) {
  return () => ({
    async compress(encoder: { buffer: Buffer }): Promise<Buffer> {
      return zlib.gzipSync(encoder.buffer, { level: gzipLevel });
    },
    async decompress(buffer: Buffer): Promise<Buffer> {
      return inflateRecords(buffer, maxInflatedBytes);
    },
  });
}

/** Above this, a gzip trailer's size is not trusted as an allocation size (zlib's chunks are used). */
const MAX_SIZE_HINT = 16 << 20;

/**
 * Inflates a gzip (or zlib) buffer in one output allocation when it can.
 *
 * zlib.unzipSync alone writes into 16 KiB chunks and concatenates them: a 21-entity tick
 * (≈ 18 KB of JSON) costs three ArrayBuffers of 16–18 KB. Besides the copies, V8 counts every
 * ArrayBuffer as external memory and starts a full mark-compact of the heap each time 64 MB of it
 * has been allocated since the last one; on a processor reading 300 nodes at 1 Hz that was one in
 * three of its mark-compacts (docs/processor.md "Cost"). gzip's trailer ends with
 * ISIZE, the inflated size mod 2^32 (RFC 1952 §2.3.1); a chunk one byte larger lets zlib finish in
 * one pass into one buffer. ISIZE is only a hint: a stream of several gzip members (whose last
 * member's size it is), a zlib stream, a size past MAX_SIZE_HINT or a lying trailer all still
 * inflate correctly, in more chunks.
 *
 * Output past `maxBytes` throws an InflateLimitError (with the sizes) as soon as zlib has produced
 * it, whatever the trailer says.
 */
export function inflate(buffer: Buffer, maxBytes = DEFAULT_MAX_INFLATED_BYTES): Buffer {
  const n = buffer.length;
  const gzip = n >= 18 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  const isize = gzip ? buffer.readUInt32LE(n - 4) : 0;
  // zlib checks the output against maxOutputLength after every chunk and stops there: memory and
  // CPU end at the bound plus one chunk, however far the data would inflate.
  const options: zlib.ZlibOptions = { maxOutputLength: maxBytes };
  if (isize !== 0 && isize < MAX_SIZE_HINT && isize <= maxBytes) {
    options.chunkSize = Math.max(zlib.constants.Z_MIN_CHUNK, isize + 1);
  }
  try {
    return zlib.unzipSync(buffer, options);
  } catch (err) {
    if (errorCode(err) === 'ERR_BUFFER_TOO_LARGE') {
      throw new InflateLimitError(n, maxBytes, gzip ? isize : undefined);
    }
    throw err;
  }
}

/** A record batch that inflated past the bound, as the codec saw it in kafkajs' fetch response. */
export interface OversizedBatch {
  /** Offset of its first record (Kafka's baseOffset). */
  firstOffset: string;
  /** Offset of its last record (baseOffset + lastOffsetDelta). */
  lastOffset: string;
  /** Records it holds (none of them decoded). */
  records: number;
  /** Its compressed records' bytes. */
  compressedBytes: number;
  /** The bound it passed. */
  limit: number;
  /** What its gzip trailer claims it inflates to (unverified), if it has one. */
  claimedBytes: number | undefined;
}

/** Stand-in record buffers → the oversized batch they stand for. */
const standIns = new WeakMap<ArrayBufferLike, OversizedBatch>();

/**
 * The oversized batch a record value stands in for, or undefined for a real record. Each record of
 * an oversized batch reaches the consumer as a stand-in: an empty value, except the batch's last
 * record (its offset is the batch's last offset, so kafkajs never filters it out), whose value is
 * the first OVERSIZED_PREFIX_BYTES of the compressed records. Values are recognised by the memory
 * they point into, which only this module allocates, so no producer can forge a stand-in.
 */
export function oversizedBatchOf(value: Buffer | null | undefined): OversizedBatch | undefined {
  return value ? standIns.get(value.buffer) : undefined;
}

/** Bytes of a v2 record batch before its records: baseOffset … recordsCount (Kafka's DefaultRecordBatch). */
const BATCH_HEADER = 61;
/** batchLength counts from partitionLeaderEpoch on: 49 header bytes plus the records. */
const BATCH_LENGTH_OVERHEAD = 49;

/**
 * kafkajs' record batch decoder reads a batch's header, then hands the codec the compressed records
 * as a view into the fetch response: the header is the 61 bytes just before them in the same
 * memory. Returns it when it is there and consistent (magic 2, gzip, a batch length matching the
 * buffer), else undefined.
 */
function enclosingBatchHeader(buffer: Buffer) {
  if (buffer.byteOffset < BATCH_HEADER) return undefined;
  const h = Buffer.from(buffer.buffer, buffer.byteOffset - BATCH_HEADER, BATCH_HEADER);
  const batchLength = h.readInt32BE(8);
  const magic = h.readInt8(16);
  const codec = h.readInt16BE(21) & 0x7;
  if (magic !== 2 || codec !== 1 || batchLength !== BATCH_LENGTH_OVERHEAD + buffer.length) return undefined;
  const count = h.readInt32BE(57);
  const lastOffsetDelta = h.readInt32BE(23);
  if (count <= 0 || lastOffsetDelta < 0) return undefined;
  const base = h.readBigInt64BE(0);
  return { base, lastOffsetDelta, count };
}

/** Zig-zag varint (kafkajs' and Kafka's record encoding) of a non-negative 31-bit number or -1. */
function writeVarInt(out: Buffer, at: number, n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

/**
 * Inflates a record batch's records, up to `maxBytes` for all the batches inflated in this turn
 * of the event loop. A batch that alone passes it: stand-in records for kafkajs to decode instead
 * (oversizedBatchOf); the InflateLimitError only when the batch's header cannot be found (kafkajs
 * then fails the fetch, and retries it). A batch that does not fit beside the others of this turn:
 * a DeferredBatchError, and kafkajs fetches it again.
 */
export function inflateRecords(buffer: Buffer, maxBytes: number): Buffer {
  const room = maxBytes - turnBytes;
  if (room <= 0) throw new DeferredBatchError();
  try {
    const out = inflate(buffer, room);
    countTurnBytes(out.length);
    return out;
  } catch (err) {
    if (!(err instanceof InflateLimitError)) throw err;
    if (room < maxBytes) {
      // What it inflated to is gone; the bound's work for this turn is spent.
      countTurnBytes(room);
      throw new DeferredBatchError();
    }
    countTurnBytes(maxBytes);
    const header = enclosingBatchHeader(buffer);
    // Each stand-in costs kafkajs a message object: a count no batch within the bound could hold
    // (a record is at least 7 bytes) is not honoured.
    if (header === undefined || header.count > Math.ceil(maxBytes / 7)) throw err;
    const prefix = buffer.subarray(0, OVERSIZED_PREFIX_BYTES);
    // Per record at most: length 5 + attributes 1 + timestamp delta 1 + offset delta 5 + key 1 +
    // value length 5 + headers 1 bytes, plus the prefix in the last one.
    const out = Buffer.from(new ArrayBuffer(header.count * 19 + prefix.length));
    let at = 0;
    const body = Buffer.alloc(19);
    for (let i = 0; i < header.count; i++) {
      const last = i === header.count - 1;
      // Consecutive offsets ending at the batch's last one (what a batch that was never compacted
      // holds); never below the base offset.
      const delta = Math.max(0, header.lastOffsetDelta - (header.count - 1 - i));
      let b = 0;
      body[b++] = 0; // attributes
      body[b++] = 0; // timestamp delta 0: the batch's first timestamp
      b = writeVarInt(body, b, delta);
      b = writeVarInt(body, b, -1); // no key
      b = writeVarInt(body, b, last ? prefix.length : 0);
      at = writeVarInt(out, at, b + (last ? prefix.length : 0) + 1);
      at += body.copy(out, at, 0, b);
      if (last) at += prefix.copy(out, at);
      at = writeVarInt(out, at, 0); // no headers
    }
    standIns.set(out.buffer, {
      firstOffset: String(header.base),
      lastOffset: String(header.base + BigInt(header.lastOffsetDelta)),
      records: header.count,
      compressedBytes: buffer.length,
      limit: maxBytes,
      claimedBytes: err.claimedBytes,
    });
    return out.subarray(0, at);
  }
}

/**
 * Installs strata's gzip codec in kafkajs. With a level (the agent's kafka.gzipLevel) it becomes
 * the process's compression level; without one (the processor, which only inflates and sends
 * small alert and dead-letter records) the level already chosen stays. Likewise the inflate bound
 * (the processor's kafka.maxInflatedBatchBytes).
 */
export function installGzipCodec(gzipLevel?: number, maxInflatedBytes?: number): void {
  if (gzipLevel !== undefined) level = gzipLevel;
  if (maxInflatedBytes !== undefined) maxInflated = maxInflatedBytes;
  CompressionCodecs[CompressionTypes.GZIP] = gzipCodec(level, maxInflated) as never;
}
