// The inflate bound of strata's gzip codec (lib/kafka/gzip.ts): real gzip data under the bound
// inflates to the same bytes; past it zlib stops and a typed error names the sizes; a record
// batch past it reaches kafkajs' own decoder as stand-in records the processor can skip.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { InvalidDataError } from '../../lib/errors.ts';
import {
  gzipCodec,
  InflateLimitError,
  inflate,
  inflateRecords,
  OVERSIZED_PREFIX_BYTES,
  oversizedBatchOf,
} from '../../lib/kafka/gzip.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// Real agent messages (one per line) recorded on the development machine.
const ticks = fs.readFileSync(path.join(here, '../../testdata/processor/agent-host-1s.ndjson'));
const lines = ticks.toString('utf8').trim().split('\n');

// kafkajs' own record batch encoder and decoder, as its producer and its fetch use them.
const require = createRequire(import.meta.url);
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js');
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js');
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js');
const decodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js');
const Decoder = require('kafkajs/src/protocol/decoder.js');
const Long = require('kafkajs/src/utils/long.js');
const { CompressionCodecs, CompressionTypes } = require('kafkajs');

interface DecodedRecord {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

/**
 * A gzip record batch at `firstOffset` holding `values`, encoded by kafkajs (with strata's codec),
 * then decoded by kafkajs the way a fetch does: from a view into a larger response buffer.
 */
async function roundTrip(values: Buffer[], firstOffset: number, maxInflated: number) {
  const encoder = await encodeBatch(values, firstOffset);
  await nextTurn(); // the bound is shared by what is inflated in one turn of the event loop
  const saved = CompressionCodecs[CompressionTypes.GZIP];
  CompressionCodecs[CompressionTypes.GZIP] = gzipCodec(1, maxInflated);
  try {
    // What precedes a batch in a fetch response (topic, partition header...), so that the batch
    // is a view at an offset, as in kafkajs.
    const response = Buffer.concat([Buffer.alloc(100, 7), encoder.buffer]);
    const d = new Decoder(response);
    d.forward(100);
    const batch = await decodeRecordBatch(d);
    return { batch: batch as { records: DecodedRecord[] }, compressed: encoder.buffer.length - 61 };
  } finally {
    CompressionCodecs[CompressionTypes.GZIP] = saved;
  }
}

/** A gzip record batch at `firstOffset` holding `values`, as kafkajs' producer encodes it. */
async function encodeBatch(values: Buffer[], firstOffset: number): Promise<{ buffer: Buffer }> {
  const saved = CompressionCodecs[CompressionTypes.GZIP];
  CompressionCodecs[CompressionTypes.GZIP] = gzipCodec(1);
  try {
    return await RecordBatch({
      compression: CompressionTypes.GZIP,
      firstOffset: Long.fromNumber(firstOffset),
      lastOffsetDelta: values.length - 1,
      records: values.map((value, i) => Record({ offsetDelta: i, key: Buffer.from(`k${i}`), value })),
    });
  } finally {
    CompressionCodecs[CompressionTypes.GZIP] = saved;
  }
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('bounded inflate', () => {
  it('inflates real gzip under the bound to identical bytes', () => {
    const gz = zlib.gzipSync(ticks, { level: 1 });
    expect(inflate(gz, ticks.length)).toEqual(ticks); // exactly at the bound
    expect(inflate(gz, ticks.length + 1)).toEqual(ticks);
    expect(inflate(zlib.deflateSync(ticks), ticks.length)).toEqual(ticks);
  });

  it('stops past the bound with a typed error naming the sizes', () => {
    const gz = zlib.gzipSync(ticks, { level: 1 });
    let caught: unknown;
    try {
      inflate(gz, ticks.length - 1);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InflateLimitError);
    expect(caught).toBeInstanceOf(InvalidDataError);
    const e = caught as InflateLimitError;
    expect(e.retriable).toBe(false);
    expect(e.compressedBytes).toBe(gz.length);
    expect(e.limit).toBe(ticks.length - 1);
    expect(e.claimedBytes).toBe(ticks.length);
    expect(e.message).toContain(
      `${gz.length} bytes of compressed data inflate past the ${ticks.length - 1}-byte bound`,
    );
    // A zlib stream has no trailer to claim a size.
    expect(() => inflate(zlib.deflateSync(ticks), 1000)).toThrow(InflateLimitError);
  });

  it('a bomb whose trailer lies about its size is stopped at the bound', () => {
    // 64 MiB of zeros in ≈ 64 KB of gzip; the trailer is made to claim 100 bytes.
    const bomb = zlib.gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    expect(bomb.length).toBeLessThan(100_000);
    bomb.writeUInt32LE(100, bomb.length - 4);
    const e = (() => {
      try {
        inflate(bomb, 1 << 20);
      } catch (err) {
        return err as InflateLimitError;
      }
    })();
    expect(e).toBeInstanceOf(InflateLimitError);
    expect(e?.claimedBytes).toBe(100);
    expect(e?.limit).toBe(1 << 20);
  });
});

describe('record batches through kafkajs', () => {
  it('under the bound: kafkajs decodes the real records', async () => {
    const values = lines.slice(0, 5).map((l) => Buffer.from(l));
    const { batch } = await roundTrip(values, 1000, 1 << 20);
    expect(batch.records.map((r) => r.offset)).toEqual(['1000', '1001', '1002', '1003', '1004']);
    expect(batch.records.map((r) => r.value)).toEqual(values);
    for (const r of batch.records) expect(oversizedBatchOf(r.value)).toBeUndefined();
  });

  it('past the bound: one stand-in per record, the last carrying the compressed prefix', async () => {
    // Three records of 2 MiB of zeros after a real tick: ≈ 6 MiB inflated, bound 1 MiB.
    const values = [
      Buffer.from(lines[0] ?? ''),
      Buffer.alloc(2 << 20),
      Buffer.alloc(2 << 20),
      Buffer.alloc(2 << 20),
    ];
    const { batch, compressed } = await roundTrip(values, 5000, 1 << 20);
    expect(batch.records.map((r) => r.offset)).toEqual(['5000', '5001', '5002', '5003']);
    const info = batch.records.map((r) => oversizedBatchOf(r.value));
    expect(info[0]).toMatchObject({
      firstOffset: '5000',
      lastOffset: '5003',
      records: 4,
      compressedBytes: compressed,
      limit: 1 << 20,
    });
    // The trailer's claim: the whole records stream, over 6 MiB.
    expect(info[0]?.claimedBytes).toBeGreaterThan(6 << 20);
    for (const i of info) expect(i).toBe(info[0]);
    expect(batch.records.slice(0, 3).map((r) => r.value?.length)).toEqual([0, 0, 0]);
    const carrier = batch.records[3]?.value as Buffer;
    expect(carrier.length).toBe(Math.min(compressed, OVERSIZED_PREFIX_BYTES));
    expect(carrier.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // the gzip stream's start
    for (const r of batch.records) expect(r.key).toBeNull();
  });

  it('a real record whose value looks like a stand-in is not one', async () => {
    const { batch } = await roundTrip([Buffer.alloc(0), Buffer.from('x')], 0, 1 << 20);
    expect(batch.records.map((r) => oversizedBatchOf(r.value))).toEqual([undefined, undefined]);
  });

  it('batches of one fetch response share the bound: one that does not fit is fetched again', async () => {
    // Three batches of 600 KiB each (real ticks, repeated) under a 1 MiB bound, as kafkajs' fetch
    // decoder reads a partition's record set: only the first is decoded in this turn.
    // Each batch: two records of ≈ 300 KiB of real ticks.
    const chunk = Buffer.concat(Array.from({ length: Math.ceil((300 << 10) / ticks.length) }, () => ticks));
    const n = 2;
    const batches = [
      await encodeBatch([chunk, chunk], 0),
      await encodeBatch([chunk, chunk], n),
      await encodeBatch([chunk, chunk], 2 * n),
    ];
    const set = Buffer.concat(batches.map((b) => b.buffer));
    const response = Buffer.concat([Buffer.alloc(4), set]);
    response.writeInt32BE(set.length, 0);
    const saved = CompressionCodecs[CompressionTypes.GZIP];
    CompressionCodecs[CompressionTypes.GZIP] = gzipCodec(1, 1 << 20);
    try {
      await nextTurn();
      const first: DecodedRecord[] = await decodeMessages(new Decoder(response));
      expect(first.map((r) => Number(r.offset))).toEqual(Array.from({ length: n }, (_, i) => i));
      for (const r of first) expect(r.value).toEqual(chunk);
      // The next fetch starts at the second batch; in a new turn it is decoded.
      await nextTurn();
      const rest = Buffer.concat([Buffer.alloc(4), batches[1]?.buffer as Buffer]);
      rest.writeInt32BE(rest.length - 4, 0);
      const second: DecodedRecord[] = await decodeMessages(new Decoder(rest));
      expect(second.map((r) => Number(r.offset))).toEqual(Array.from({ length: n }, (_, i) => n + i));
    } finally {
      CompressionCodecs[CompressionTypes.GZIP] = saved;
    }
  }, 30_000);

  it('without the enclosing batch header the typed error is thrown', async () => {
    await nextTurn();
    const bomb = zlib.gzipSync(Buffer.alloc(4 << 20));
    expect(() => inflateRecords(bomb, 1 << 20)).toThrow(InflateLimitError);
    await nextTurn();
    expect(inflateRecords(zlib.gzipSync(ticks), ticks.length)).toEqual(ticks);
  });
});
