// On-disk overflow for the tick buffer: an append-only log split into segments
// (<base>.000001, <base>.000002, ...) so that dropping the oldest ticks is deleting the oldest
// segment, and the bytes on disk stay bounded. Records carry a CRC so a torn write (power loss,
// kill -9 mid-append) is detected on recovery and counted instead of corrupting the stream.
//
// Record: u32 bodyLength | u32 crc32(body) | body = f64 ts | f64 seq | u16 keyLength | key | value
//
// The disk is not trusted to take what is written: a full or failing disk (ENOSPC, EIO, a short
// write) rolls the segment back to its last complete record and throws SpillWriteError, so the
// file never holds a record the index does not describe. A record that later fails its CRC (the
// file changed underneath, a bad sector) is skipped and reported, never thrown at the drain loop.
// On start-up, records are recovered around corrupt regions (a scan for the next valid record),
// a torn tail is cut off, and a segment with corruption before good records is linked aside as
// `<segment>.corrupt-<time>` (quarantine, bounded in files and bytes) for inspection.
//
// Synchronous I/O on purpose: spilling only happens during an outage, records are small, and a
// single-threaded, ordered file needs no locking against the drain loop.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { errorCode, errorMessage, StrataError } from '../lib/errors.ts';

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
  /** End of the last complete record (where the next append goes). */
  bytes: number;
  /** No more appends (recovered with corruption, or a rollback failed): the next append opens a new segment. */
  sealed: boolean;
}

const HEADER = 8;
/** ts, seq, key length. */
const BODY_FIXED = 18;
/** Beyond any tick time this code writes (year 33658): bounds the scan for the next valid record. */
const MAX_TS = 1e15;

export interface SpillRecovery {
  records: number;
  /** Bytes that failed the record checks (torn tails cut off, corrupt regions skipped). */
  corruptBytes: number;
  /** Segments with corruption before good records, linked (or, if empty of records, renamed) aside. */
  quarantined: number;
}

/** A spill append that did not reach the disk; the segment was rolled back to its last complete record. */
export class SpillWriteError extends StrataError {
  /** ENOSPC, EIO, EDQUOT, ... or SHORT_WRITE. */
  readonly code: string;
  constructor(message: string, code: string, cause?: unknown) {
    super(message, { retriable: true, cause });
    this.code = code;
  }
}

export interface SpillOptions {
  /** Quarantined segment files kept at most (oldest deleted first). */
  quarantineMaxFiles?: number;
  /** Bytes of quarantined segment files kept at most (oldest deleted first). */
  quarantineMaxBytes?: number;
  /** Called for each unreadable record skipped at the head of the spill (CRC or read error). */
  onUnreadable?: (detail: { file: string; offset: number; err: string }) => void;
}

export class SpillStore {
  private readonly segments: Segment[] = [];
  private readonly segmentBytes: number;
  private bytesOnDisk = 0;
  private skipped = 0;

  /**
   * @param base path prefix of the segment files (its directory is created if missing)
   * @param maxBytes bound on the bytes of all segments; the oldest segment goes when exceeded
   */
  constructor(
    private readonly base: string,
    private readonly maxBytes: number,
    private readonly opts: SpillOptions = {},
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
    const out: SpillRecovery = { records: 0, corruptBytes: 0, quarantined: 0 };
    for (const index of indexes) {
      const seg = this.openSegment(index);
      let data: Buffer;
      try {
        data = fs.readFileSync(seg.file);
      } catch {
        // Unreadable as a whole (EIO): set it aside, start clean after it.
        fs.closeSync(seg.fd);
        if (this.quarantine(seg.file, false)) out.quarantined++;
        continue;
      }
      const { good, corrupt } = scanRecords(data);
      for (const [off, len] of good) {
        seg.offsets.push(off);
        seg.lengths.push(len);
      }
      const lastGoodEnd = good.length ? good[good.length - 1]![0] + good[good.length - 1]![1] : 0;
      let corruptHere = 0;
      for (const [s, e] of corrupt) corruptHere += e - s;
      out.corruptBytes += corruptHere;
      // Corruption before a good record (or a segment of nothing but garbage) is more than a torn
      // append: keep the evidence aside. A corrupt tail alone is the usual crash mid-append: cut it.
      // (A last segment of garbage only is a crash during its first append: a torn tail too.)
      const isLast = index === indexes[indexes.length - 1];
      const midCorruption =
        corrupt.some(([s]) => s < lastGoodEnd) || (good.length === 0 && corruptHere > 0 && !isLast);
      if (midCorruption) {
        if (this.quarantine(seg.file, good.length > 0)) out.quarantined++;
        seg.sealed = true;
      } else if (lastGoodEnd < data.length) {
        try {
          fs.ftruncateSync(seg.fd, lastGoodEnd); // keep appending after the last good record
        } catch {
          seg.sealed = true; // read-only or failing disk: the index still describes the good records
        }
      }
      seg.bytes = lastGoodEnd;
      this.bytesOnDisk += lastGoodEnd;
      out.records += seg.offsets.length;
      if (seg.offsets.length === 0) {
        if (midCorruption)
          fs.closeSync(seg.fd); // renamed aside: nothing to delete
        else this.deleteSegment(seg);
      } else this.segments.push(seg);
    }
    return out;
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
   * within maxBytes. Throws SpillWriteError (nothing appended, the file rolled back) when the
   * disk does not take it.
   */
  append(rec: SpillRecord): number {
    const key = Buffer.from(rec.key, 'utf8');
    const bodyLength = BODY_FIXED + key.length + rec.value.length;
    // Header and body in one write: one syscall, and a short write leaves one partial record.
    const buf = Buffer.allocUnsafe(HEADER + bodyLength);
    const body = buf.subarray(HEADER);
    body.writeDoubleLE(rec.ts, 0);
    body.writeDoubleLE(rec.seq, 8);
    body.writeUInt16LE(key.length, 16);
    key.copy(body, BODY_FIXED);
    rec.value.copy(body, BODY_FIXED + key.length);
    buf.writeUInt32LE(bodyLength, 0);
    buf.writeUInt32LE(zlib.crc32(body), 4);

    let seg = this.segments[this.segments.length - 1];
    let created = false;
    if (!seg || seg.sealed || seg.bytes >= this.segmentBytes) {
      try {
        seg = this.openSegment((seg?.index ?? this.lastIndexOnDisk()) + 1);
      } catch (err) {
        throw new SpillWriteError(
          `spill file ${this.base}: cannot create a segment (${errorMessage(err)})`,
          errorCode(err) ?? 'EIO',
          err,
        );
      }
      created = true;
    }
    this.writeAll(seg, buf, created);
    if (created) this.segments.push(seg);
    seg.offsets.push(seg.bytes);
    seg.lengths.push(buf.length);
    seg.bytes += buf.length;
    this.bytesOnDisk += buf.length;

    let dropped = 0;
    while (this.bytesOnDisk > this.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift()!;
      dropped += oldest.offsets.length - oldest.readPos;
      this.bytesOnDisk -= oldest.bytes;
      this.deleteSegment(oldest);
    }
    return dropped;
  }

  /**
   * Reads up to `max` unconsumed records, oldest first, without consuming them. An unreadable
   * record at the head is consumed and counted in takeSkipped() (and reported to onUnreadable);
   * one further in ends the batch, so the next peek finds it at the head.
   */
  peek(max: number, maxBytes = Number.POSITIVE_INFINITY): SpillRecord[] {
    const out: SpillRecord[] = [];
    let bytes = 0;
    for (let si = 0; si < this.segments.length; si++) {
      const seg = this.segments[si]!;
      for (let i = seg.readPos; i < seg.offsets.length; i++) {
        if (out.length >= max) return out;
        const len = seg.lengths[i]!;
        if (out.length > 0 && bytes + len > maxBytes) return out;
        const offset = seg.offsets[i]!;
        let rec: SpillRecord | string;
        try {
          const buf = Buffer.allocUnsafe(len);
          const n = fs.readSync(seg.fd, buf, 0, len, offset);
          rec = n < len ? `short read (${n} of ${len} bytes)` : decodeRecord(buf);
        } catch (err) {
          rec = errorMessage(err);
        }
        if (typeof rec !== 'string') {
          out.push(rec);
          bytes += len;
          continue;
        }
        if (out.length > 0) return out;
        // The head record: it can never be sent, so it is consumed here and reported.
        this.opts.onUnreadable?.({ file: seg.file, offset, err: rec });
        this.skipped++;
        this.consume(1);
        // consume() may have deleted this segment: continue from the head again.
        si = -1;
        break;
      }
    }
    return out;
  }

  /** Unreadable head records skipped (and consumed) by peek since the last call. */
  takeSkipped(): number {
    const n = this.skipped;
    this.skipped = 0;
    return n;
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

  /** Writes buf at the segment's end; on any failure truncates back to it and throws. */
  private writeAll(seg: Segment, buf: Buffer, created: boolean): void {
    let done = 0;
    try {
      while (done < buf.length) {
        const n = fs.writeSync(seg.fd, buf, done, buf.length - done, seg.bytes + done);
        if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'SHORT_WRITE' });
        done += n;
      }
      return;
    } catch (err) {
      const code = errorCode(err) ?? 'EIO';
      if (created) {
        this.deleteSegment(seg);
      } else {
        try {
          fs.ftruncateSync(seg.fd, seg.bytes);
        } catch {
          // The bytes past seg.bytes are not indexed, so this run never reads them; a restart cuts
          // them as a torn tail. No more appends here, so they cannot end up between records.
          seg.sealed = true;
        }
      }
      throw new SpillWriteError(
        `spill file ${seg.file}: append of ${buf.length} bytes failed after ${done} (${errorMessage(err)}); rolled back to the last complete record`,
        code,
        err,
      );
    }
  }

  /** Highest segment index still on disk (quarantined files included) so a new one never reuses a name. */
  private lastIndexOnDisk(): number {
    try {
      const prefix = `${path.basename(this.base)}.`;
      let max = 0;
      for (const f of fs.readdirSync(path.dirname(this.base))) {
        const m = f.startsWith(prefix) ? /^(\d{6,})/.exec(f.slice(prefix.length)) : null;
        if (m) max = Math.max(max, Number(m[1]));
      }
      return max;
    } catch {
      return 0;
    }
  }

  /**
   * Sets a corrupt segment aside as `<file>.corrupt-<ms>`: a hard link while its good records are
   * still to be sent (no bytes copied, works on a full disk), a rename when nothing in it is
   * readable. Then enforces the quarantine bounds. Returns whether it was set aside.
   */
  private quarantine(file: string, keep: boolean): boolean {
    let aside = `${file}.corrupt-${Date.now()}`;
    for (let i = 1; fs.existsSync(aside); i++) aside = `${file}.corrupt-${Date.now() + i}`;
    try {
      if (keep) fs.linkSync(file, aside);
      else fs.renameSync(file, aside);
    } catch {
      if (!keep) fs.rmSync(file, { force: true });
      return false;
    }
    this.boundQuarantine();
    return true;
  }

  private boundQuarantine(): void {
    try {
      this.boundQuarantineFiles();
    } catch {
      // Best effort: the bound is enforced again at the next quarantine.
    }
  }

  private boundQuarantineFiles(): void {
    const maxFiles = this.opts.quarantineMaxFiles ?? 4;
    const maxBytes = this.opts.quarantineMaxBytes ?? 64 * 1024 * 1024;
    const dir = path.dirname(this.base);
    const prefix = `${path.basename(this.base)}.`;
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && f.includes('.corrupt-'))
      .map((f) => {
        const st = fs.statSync(path.join(dir, f));
        return { f, size: st.size, mtime: Number(f.slice(f.lastIndexOf('-') + 1)) || st.mtimeMs };
      })
      .sort((a, b) => b.mtime - a.mtime); // newest first
    let bytes = 0;
    for (const [i, q] of files.entries()) {
      bytes += q.size;
      if (i >= maxFiles || bytes > maxBytes) fs.rmSync(path.join(dir, q.f), { force: true });
    }
  }

  private openSegment(index: number): Segment {
    const file = `${this.base}.${String(index).padStart(6, '0')}`;
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    return { index, file, fd, offsets: [], lengths: [], readPos: 0, bytes: 0, sealed: false };
  }

  private deleteSegment(seg: Segment): void {
    // A failing disk must not turn a sent (or dropped) segment into an exception in the drain
    // loop: a segment that cannot be removed now is read again (at-least-once) after a restart.
    try {
      fs.closeSync(seg.fd);
    } catch {}
    try {
      fs.rmSync(seg.file, { force: true });
    } catch {}
  }
}

/** Whether a complete, intact record starts at `off`; returns its total length or 0. */
function recordAt(data: Buffer, off: number): number {
  if (off + HEADER + BODY_FIXED > data.length) return 0;
  const len = data.readUInt32LE(off);
  if (len < BODY_FIXED || off + HEADER + len > data.length) return 0;
  // Cheap plausibility first so scanning a corrupt region rarely pays for a CRC.
  const ts = data.readDoubleLE(off + HEADER);
  const seq = data.readDoubleLE(off + HEADER + 8);
  if (!(ts >= 0 && ts < MAX_TS) || !Number.isInteger(seq) || seq < 0 || seq > Number.MAX_SAFE_INTEGER)
    return 0;
  if (data.readUInt16LE(off + HEADER + 16) > len - BODY_FIXED) return 0;
  if (zlib.crc32(data.subarray(off + HEADER, off + HEADER + len)) !== data.readUInt32LE(off + 4)) return 0;
  return HEADER + len;
}

/**
 * Splits a segment's bytes into intact records and corrupt regions. After a bad record the scan
 * looks for the next offset where an intact record starts, so one flipped byte costs one record,
 * not the rest of the segment.
 */
export function scanRecords(data: Buffer): { good: [number, number][]; corrupt: [number, number][] } {
  const good: [number, number][] = [];
  const corrupt: [number, number][] = [];
  let off = 0;
  while (off < data.length) {
    const len = recordAt(data, off);
    if (len > 0) {
      good.push([off, len]);
      off += len;
      continue;
    }
    const start = off;
    off++;
    while (off < data.length && recordAt(data, off) === 0) off++;
    corrupt.push([start, off]);
  }
  return { good, corrupt };
}

function decodeRecord(buf: Buffer): SpillRecord | string {
  const body = buf.subarray(HEADER);
  if (buf.readUInt32LE(0) !== body.length || zlib.crc32(body) !== buf.readUInt32LE(4)) {
    return 'record fails its CRC (file changed underneath?)';
  }
  const keyLen = body.readUInt16LE(16);
  return {
    ts: body.readDoubleLE(0),
    seq: body.readDoubleLE(8),
    key: body.toString('utf8', BODY_FIXED, BODY_FIXED + keyLen),
    value: Buffer.from(body.subarray(BODY_FIXED + keyLen)),
  };
}
