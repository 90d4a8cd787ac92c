// On-disk overflow for the tick buffer: an append-only log split into segments
// (<base>.000001, <base>.000002, ...) so that dropping the oldest ticks is deleting the oldest
// segment, and the bytes on disk stay bounded. Records carry a CRC so a torn write (power loss,
// kill -9 mid-append) is detected on recovery and counted instead of corrupting the stream.
//
// Record: u32 bodyLength | u32 crc32(body) | body = f64 ts | f64 seq | u16 keyLength | key | value
//
// Synchronous I/O on purpose: spilling only happens during an outage, records are small, and a
// single-threaded, ordered file needs no locking against the drain loop.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { InvalidDataError } from '../lib/errors.ts';

export interface SpillRecord {
  ts: number;
  seq: number;
  key: string;
  value: Buffer;
}

interface Segment {
  index: number;
  file: string;
  fd: number;
  /** Byte offset and length of each complete record, in order. */
  offsets: number[];
  lengths: number[];
  /** Records before this index were consumed (sent). */
  readPos: number;
  bytes: number;
}

const HEADER = 8;

export interface SpillRecovery {
  records: number;
  /** Torn or corrupt tails found and cut off. */
  corruptBytes: number;
}

export class SpillStore {
  private readonly segments: Segment[] = [];
  private readonly segmentBytes: number;
  private bytesOnDisk = 0;

  /**
   * @param base path prefix of the segment files (its directory is created if missing)
   * @param maxBytes bound on the bytes of all segments; the oldest segment goes when exceeded
   */
  constructor(
    private readonly base: string,
    private readonly maxBytes: number,
  ) {
    // Four segments per bound: dropping one loses at most a quarter of the spill.
    this.segmentBytes = Math.max(4096, Math.floor(maxBytes / 4));
  }

  /** Opens existing segments (from a previous run) and returns what was recovered. */
  open(): SpillRecovery {
    const dir = path.dirname(this.base);
    fs.mkdirSync(dir, { recursive: true });
    const prefix = `${path.basename(this.base)}.`;
    const indexes = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && /^\d{6,}$/.test(f.slice(prefix.length)))
      .map((f) => Number(f.slice(prefix.length)))
      .sort((a, b) => a - b);
    let corruptBytes = 0;
    let records = 0;
    for (const index of indexes) {
      const seg = this.openSegment(index);
      const data = fs.readFileSync(seg.file);
      let off = 0;
      while (off + HEADER <= data.length) {
        const len = data.readUInt32LE(off);
        const crc = data.readUInt32LE(off + 4);
        if (
          off + HEADER + len > data.length ||
          zlib.crc32(data.subarray(off + HEADER, off + HEADER + len)) !== crc
        ) {
          break;
        }
        seg.offsets.push(off);
        seg.lengths.push(HEADER + len);
        off += HEADER + len;
      }
      if (off < data.length) {
        corruptBytes += data.length - off;
        fs.ftruncateSync(seg.fd, off); // keep appending after the last good record
      }
      seg.bytes = off;
      this.bytesOnDisk += off;
      records += seg.offsets.length;
      if (seg.offsets.length === 0) this.deleteSegment(seg);
      else this.segments.push(seg);
    }
    return { records, corruptBytes };
  }

  /** Records not yet consumed. */
  get count(): number {
    let n = 0;
    for (const s of this.segments) n += s.offsets.length - s.readPos;
    return n;
  }

  get bytes(): number {
    return this.bytesOnDisk;
  }

  /**
   * Appends one record. Returns how many unconsumed records were dropped (oldest first) to stay
   * within maxBytes.
   */
  append(rec: SpillRecord): number {
    const key = Buffer.from(rec.key, 'utf8');
    const body = Buffer.allocUnsafe(18 + key.length + rec.value.length);
    body.writeDoubleLE(rec.ts, 0);
    body.writeDoubleLE(rec.seq, 8);
    body.writeUInt16LE(key.length, 16);
    key.copy(body, 18);
    rec.value.copy(body, 18 + key.length);
    const header = Buffer.allocUnsafe(HEADER);
    header.writeUInt32LE(body.length, 0);
    header.writeUInt32LE(zlib.crc32(body), 4);

    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.bytes >= this.segmentBytes) {
      seg = this.openSegment((seg?.index ?? 0) + 1);
      this.segments.push(seg);
    }
    fs.writeSync(seg.fd, header, 0, HEADER, seg.bytes);
    fs.writeSync(seg.fd, body, 0, body.length, seg.bytes + HEADER);
    seg.offsets.push(seg.bytes);
    seg.lengths.push(HEADER + body.length);
    seg.bytes += HEADER + body.length;
    this.bytesOnDisk += HEADER + body.length;

    let dropped = 0;
    while (this.bytesOnDisk > this.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift()!;
      dropped += oldest.offsets.length - oldest.readPos;
      this.bytesOnDisk -= oldest.bytes;
      this.deleteSegment(oldest);
    }
    return dropped;
  }

  /** Reads up to `max` unconsumed records, oldest first, without consuming them. */
  peek(max: number, maxBytes = Number.POSITIVE_INFINITY): SpillRecord[] {
    const out: SpillRecord[] = [];
    let bytes = 0;
    for (const seg of this.segments) {
      for (let i = seg.readPos; i < seg.offsets.length; i++) {
        if (out.length >= max) return out;
        const len = seg.lengths[i]!;
        if (out.length > 0 && bytes + len > maxBytes) return out;
        const buf = Buffer.allocUnsafe(len);
        fs.readSync(seg.fd, buf, 0, len, seg.offsets[i]!);
        out.push(decodeRecord(buf, seg.file, seg.offsets[i]!));
        bytes += len;
      }
    }
    return out;
  }

  /** Marks the `n` oldest unconsumed records as consumed; fully consumed segments are deleted. */
  consume(n: number): void {
    let left = n;
    while (left > 0 && this.segments.length) {
      const seg = this.segments[0]!;
      const take = Math.min(left, seg.offsets.length - seg.readPos);
      seg.readPos += take;
      left -= take;
      if (seg.readPos >= seg.offsets.length) {
        this.segments.shift();
        this.bytesOnDisk -= seg.bytes;
        this.deleteSegment(seg);
      }
    }
  }

  close(): void {
    for (const s of this.segments) fs.closeSync(s.fd);
    this.segments.length = 0;
  }

  private openSegment(index: number): Segment {
    const file = `${this.base}.${String(index).padStart(6, '0')}`;
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    return { index, file, fd, offsets: [], lengths: [], readPos: 0, bytes: 0 };
  }

  private deleteSegment(seg: Segment): void {
    fs.closeSync(seg.fd);
    fs.rmSync(seg.file, { force: true });
  }
}

function decodeRecord(buf: Buffer, file: string, offset: number): SpillRecord {
  const body = buf.subarray(HEADER);
  if (zlib.crc32(body) !== buf.readUInt32LE(4)) {
    throw new InvalidDataError(
      `spill file ${file}: record at byte ${offset} fails its CRC (file changed underneath?)`,
    );
  }
  const keyLen = body.readUInt16LE(16);
  return {
    ts: body.readDoubleLE(0),
    seq: body.readDoubleLE(8),
    key: body.toString('utf8', 18, 18 + keyLen),
    value: Buffer.from(body.subarray(18 + keyLen)),
  };
}
