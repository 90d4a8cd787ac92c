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
      return zlib.unzipSync(buffer);
    },
  });
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
