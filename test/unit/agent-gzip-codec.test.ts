// strata's gzip codec for kafkajs (lib/kafka-gzip.ts): the configured zlib level is the one used, and what it
// compresses reads back byte for byte (kafkajs' own codec always uses zlib's default, 6).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gzipCodec } from '../../lib/kafka-gzip.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// Real agent messages (one per line) recorded on the development machine.
const ticks = fs.readFileSync(path.join(here, '../../testdata/processor/agent-host-1s.ndjson'));

/** gzip header byte 8 (XFL, RFC 1952): 2 = slowest/best compression, 4 = fastest. */
const xfl = (gz: Buffer) => gz[8];

describe('agent gzip codec', () => {
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
});
