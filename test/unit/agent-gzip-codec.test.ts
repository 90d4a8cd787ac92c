// strata's gzip codec for kafkajs (lib/kafka/gzip.ts): the configured zlib level is the one used, and what it
// compresses reads back byte for byte (kafkajs' own codec always uses zlib's default, 6).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gzipCodec, inflate } from '../../lib/kafka/gzip.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// Real agent messages (one per line) recorded on the development machine.
const ticks = fs.readFileSync(path.join(here, '../../testdata/processor/agent-host-1s.ndjson'));

/** gzip header byte 8 (XFL, RFC 1952): 2 = slowest/best compression, 4 = fastest. */
const xfl = (gz: Buffer) => gz[8];

describe('gzip codec', () => {
  it('compresses at the configured level and decompresses to the same bytes', async () => {
    const fast = await gzipCodec(1)().compress({ buffer: ticks });
    const best = await gzipCodec(9)().compress({ buffer: ticks });
    expect(xfl(fast)).toBe(4);
    expect(xfl(best)).toBe(2);
    expect(best.length).toBeLessThan(fast.length);
    expect(fast).toEqual(zlib.gzipSync(ticks, { level: 1 }));
    expect(await gzipCodec(1)().decompress(best)).toEqual(ticks);
    expect(await gzipCodec(9)().decompress(fast)).toEqual(ticks);
  });

  it('inflates a tick into one buffer sized from the gzip trailer', () => {
    const gz = zlib.gzipSync(ticks, { level: 1 });
    const out = inflate(gz);
    expect(out).toEqual(ticks);
    // One allocation of ISIZE + 1 bytes (zlib.unzipSync alone: 16 KiB chunks, then a concatenation).
    expect(out.buffer.byteLength).toBe(ticks.length + 1);
  });

  it('inflates what the size hint does not describe: several gzip members, zlib streams, empty input', () => {
    const half = Math.floor(ticks.length / 2);
    const members = Buffer.concat([
      zlib.gzipSync(ticks.subarray(0, half)),
      zlib.gzipSync(ticks.subarray(half, half + 100)), // the trailer names only this member's 100 bytes
      zlib.gzipSync(ticks.subarray(half + 100)),
    ]);
    expect(inflate(members)).toEqual(ticks);
    expect(inflate(zlib.deflateSync(ticks))).toEqual(ticks);
    expect(inflate(zlib.gzipSync(Buffer.alloc(0)))).toEqual(Buffer.alloc(0));
  });

  it('fails on a corrupt stream as zlib does', () => {
    const gz = zlib.gzipSync(ticks, { level: 1 });
    const torn = gz.subarray(0, gz.length - 9);
    expect(() => inflate(torn)).toThrow(/unexpected end of file/);
    const lying = Buffer.from(gz);
    lying.writeUInt32LE(ticks.length + 7, lying.length - 4); // ISIZE no longer matches
    expect(() => inflate(lying)).toThrow(/incorrect length check/);
  });
});
