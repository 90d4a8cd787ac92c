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
// level: the last one an agent asked for (strata run starts one agent).
import zlib from 'node:zlib';
import kafkajs from 'kafkajs';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** zlib's default, what kafkajs (and Kafka's own producer) use unless told otherwise. */
export const ZLIB_DEFAULT_LEVEL = 6;

let level = ZLIB_DEFAULT_LEVEL;

/** A kafkajs codec (the factory kafkajs calls) compressing at `gzipLevel`, inflating any level. */
export function gzipCodec(gzipLevel: number) {
  return () => ({
    async compress(encoder: { buffer: Buffer }): Promise<Buffer> {
      return zlib.gzipSync(encoder.buffer, { level: gzipLevel });
    },
    async decompress(buffer: Buffer): Promise<Buffer> {
      return inflate(buffer);
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
 * three of its mark-compacts (docs/processor.md, "Cost", sixth round). gzip's trailer ends with
 * ISIZE, the inflated size mod 2^32 (RFC 1952 §2.3.1); a chunk one byte larger lets zlib finish in
 * one pass into one buffer. ISIZE is only a hint: a stream of several gzip members (whose last
 * member's size it is), a zlib stream, a size past MAX_SIZE_HINT or a lying trailer all still
 * inflate correctly, in more chunks.
 */
export function inflate(buffer: Buffer): Buffer {
  const n = buffer.length;
  const isize = n >= 18 && buffer[0] === 0x1f && buffer[1] === 0x8b ? buffer.readUInt32LE(n - 4) : 0;
  if (isize === 0 || isize >= MAX_SIZE_HINT) return zlib.unzipSync(buffer);
  return zlib.unzipSync(buffer, { chunkSize: Math.max(zlib.constants.Z_MIN_CHUNK, isize + 1) });
}

/**
 * Installs strata's gzip codec in kafkajs. With a level (the agent's kafka.gzipLevel) it becomes
 * the process's compression level; without one (the processor, which only inflates and sends
 * small alert and dead-letter records) the level already chosen stays.
 */
export function installGzipCodec(gzipLevel?: number): void {
  if (gzipLevel !== undefined) level = gzipLevel;
  CompressionCodecs[CompressionTypes.GZIP] = gzipCodec(level) as never;
}
