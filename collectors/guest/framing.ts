// Decoder for the in-guest agent's framing, version 1 (written by strata-guest-agent.sh; docs/vm.md):
//   STRATA-GUEST 1 <seq> <uptime seconds>\n
//   --- <file under /proc>\n<contents>...        (zero or more sections)
//   STRATA-END <seq>\n
// The decoder is a streaming state machine over bytes from the virtio-serial socket, and the guest
// on the other end may be hostile, so:
// - every byte is searched once: each state remembers where its search stopped, and only a possible
//   marker prefix at the end of the bytes received so far (at most 12 bytes) is looked at again
//   when more arrive; bytes are appended to one growable buffer (amortized copies), never
//   re-concatenated or re-decoded per chunk;
// - it resyncs on the next header after garbage or a cut record (a new header before STRATA-END,
//   an END whose seq does not match), after a header or END line longer than maxHeaderBytes, and
//   after a record larger than maxRecordBytes (dropped and counted without being buffered);
// - at most maxRecordsPerSecond records a second are decoded (a token bucket with that burst); the
//   others are found and counted but never turned into strings.

export const GUEST_FRAME_VERSION = 1;

export interface GuestRecord {
  version: number;
  /** The agent's record counter (restarts at 1 when the agent restarts). */
  seq: number;
  /** The guest's /proc/uptime when the record was built, in seconds. */
  uptimeSec: number;
  /** Raw /proc files keyed by their path under /proc: stat, vmstat, meminfo, diskstats, net/dev, pressure/cpu... */
  files: Record<string, string>;
}

export interface FrameDecoderStats {
  records: number;
  /** Records cut short: a header arrived before the previous record's STRATA-END. */
  truncated: number;
  /** Records dropped for exceeding maxRecordBytes. */
  oversized: number;
  /** Headers of an unknown version or malformed header/END lines. */
  malformed: number;
  /** Header or END lines longer than maxHeaderBytes (the record is dropped, the decoder resyncs). */
  headerTooLong: number;
  /** Complete records over maxRecordsPerSecond, dropped without being decoded. */
  rateLimited: number;
  /** Bytes outside any record (resync noise), discarded. */
  skippedBytes: number;
  /** Bytes the marker and newline searches went over: stays linear in the bytes received. */
  scannedBytes: number;
}

export interface GuestFrameDecoderOptions {
  /** A record body larger than this is dropped and counted (bounds the buffer). */
  maxRecordBytes?: number;
  /** A header or END line longer than this is dropped and counted; the decoder resyncs. */
  maxHeaderBytes?: number;
  /** Records decoded per second (token bucket, burst of the same size); default unbounded. */
  maxRecordsPerSecond?: number;
  /** Clock for the rate bound (ms); default Date.now. */
  now?: () => number;
}

const HEADER = Buffer.from('STRATA-GUEST ');
const END = Buffer.from('STRATA-END');
const MARKER = Buffer.from('STRATA-');
const NL = 10;
const SECTION = '--- ';
const INITIAL_CAPACITY = 64 * 1024;

enum State {
  /** Between records: looking for a header. */
  Outside,
  /** Inside a header line, looking for its newline. */
  Header,
  /** Inside a record body, looking for the next marker. */
  Body,
  /** Inside an END line, looking for its newline. */
  End,
}

export class GuestFrameDecoder {
  readonly stats: FrameDecoderStats = {
    records: 0,
    truncated: 0,
    oversized: 0,
    malformed: 0,
    headerTooLong: 0,
    rateLimited: 0,
    skippedBytes: 0,
    scannedBytes: 0,
  };
  private buf = Buffer.allocUnsafe(INITIAL_CAPACITY);
  /** Bytes [0, len) of buf are received; those before `live()` are no longer needed. */
  private len = 0;
  private state = State.Outside;
  /** Outside: first byte not yet skipped. Header: where the header starts. */
  private start = 0;
  /** Where the current state's search goes on. */
  private pos = 0;
  private bodyStart = 0;
  private endStart = 0;
  private current: { version: number; seq: number; uptimeSec: number } | undefined;
  /** After an oversized record its remaining bytes are dropped without counting them as noise. */
  private oversizedSkip = false;
  private readonly maxRecordBytes: number;
  private readonly maxHeaderBytes: number;
  private readonly maxPerSecond: number;
  private readonly now: () => number;
  private tokens: number;
  private refilledAt = 0;

  constructor(opts: GuestFrameDecoderOptions | number = {}) {
    const o = typeof opts === 'number' ? { maxRecordBytes: opts } : opts;
    this.maxRecordBytes = o.maxRecordBytes ?? 1024 * 1024;
    this.maxHeaderBytes = o.maxHeaderBytes ?? 256;
    this.maxPerSecond = o.maxRecordsPerSecond ?? Number.POSITIVE_INFINITY;
    this.now = o.now ?? Date.now;
    this.tokens = this.maxPerSecond;
  }

  /** Feeds bytes; returns the records completed by them, oldest first. */
  push(chunk: Buffer | string): GuestRecord[] {
    this.append(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    const out: GuestRecord[] = [];
    const view = this.buf.subarray(0, this.len);
    for (;;) {
      if (this.state === State.Outside) {
        if (!this.findHeader(view)) break;
      } else if (this.state === State.Header) {
        if (!this.readHeader(view)) break;
      } else if (this.state === State.Body) {
        if (!this.findEnd(view)) break;
      } else if (!this.readEnd(view, out)) break;
    }
    return out;
  }

  /** Outside a record: skips to the next header. False when more bytes are needed. */
  private findHeader(view: Buffer): boolean {
    const h = this.search(view, HEADER, this.pos);
    if (h < 0) {
      // Keep a tail that may be the beginning of a header; the rest is noise.
      const keep = partialTail(view, HEADER, this.pos);
      this.skipTo(this.len - keep);
      this.pos = this.len - keep;
      return false;
    }
    this.skipTo(h);
    this.oversizedSkip = false;
    this.state = State.Header;
    this.start = h;
    this.pos = h + HEADER.length;
    return true;
  }

  private readHeader(view: Buffer): boolean {
    const nl = this.searchByte(view, NL, this.pos);
    if (nl < 0 || nl - this.start > this.maxHeaderBytes) {
      if (nl < 0 && this.len - this.start <= this.maxHeaderBytes) {
        this.pos = this.len;
        return false;
      }
      // A header line without end (or far too long): drop its first maxHeaderBytes and resync
      // on a header after them, the same wherever the chunks were cut.
      this.stats.headerTooLong++;
      this.state = State.Outside;
      this.start = this.start + this.maxHeaderBytes + 1;
      this.pos = this.start;
      return true;
    }
    const parts = view.toString('latin1', this.start, nl).split(' ');
    const version = Number(parts[1]);
    const seq = Number(parts[2]);
    const uptimeSec = Number(parts[3]);
    this.state = State.Outside;
    this.start = nl + 1;
    this.pos = nl + 1;
    if (
      parts.length < 4 ||
      version !== GUEST_FRAME_VERSION ||
      !Number.isInteger(seq) ||
      !Number.isFinite(uptimeSec)
    ) {
      this.stats.malformed++;
      return true;
    }
    this.current = { version, seq, uptimeSec };
    this.state = State.Body;
    this.bodyStart = nl + 1;
    return true;
  }

  /** Inside a body: finds the next marker and tells a header, an END and other text apart. */
  private findEnd(view: Buffer): boolean {
    const m = this.search(view, MARKER, this.pos);
    if (m < 0) {
      this.pos = this.len - partialTail(view, MARKER, this.pos);
      return this.checkOversized(view);
    }
    const rest = this.len - m;
    if (
      (rest < HEADER.length && startsWithPart(view, m, HEADER)) ||
      (rest <= END.length && startsWithPart(view, m, END))
    ) {
      // The marker may still become a header or an END: wait for more bytes.
      this.pos = m;
      return this.checkOversized(view);
    }
    if (startsWith(view, m, HEADER)) {
      // A header before this record's END (possibly glued to a cut line): the record is lost.
      this.stats.truncated++;
      this.current = undefined;
      this.state = State.Header;
      this.start = m;
      this.pos = m + HEADER.length;
      return true;
    }
    const after = view[m + END.length];
    if (!startsWith(view, m, END) || (after !== 32 && after !== NL)) {
      this.pos = m + MARKER.length; // some other "STRATA-" text: not ours to interpret
      return true;
    }
    this.state = State.End;
    this.endStart = m;
    this.pos = m + END.length;
    return true;
  }

  private readEnd(view: Buffer, out: GuestRecord[]): boolean {
    const nl = this.searchByte(view, NL, this.pos);
    if (nl < 0 || nl - this.endStart > this.maxHeaderBytes) {
      if (nl < 0 && this.len - this.endStart <= this.maxHeaderBytes) {
        this.pos = this.len;
        return this.checkOversized(view);
      }
      this.stats.headerTooLong++;
      this.current = undefined;
      this.state = State.Outside;
      this.start = this.endStart + this.maxHeaderBytes + 1;
      this.pos = this.start;
      return true;
    }
    const cur = this.current!;
    this.current = undefined;
    this.state = State.Outside;
    this.start = nl + 1;
    this.pos = nl + 1;
    const endSeq = view.toString('latin1', this.endStart + END.length, nl).trim();
    if (this.endStart - this.bodyStart > this.maxRecordBytes) {
      this.stats.oversized++;
    } else if (endSeq !== '' && Number(endSeq) !== cur.seq) {
      this.stats.malformed++;
    } else if (!this.takeToken()) {
      this.stats.rateLimited++;
    } else {
      this.stats.records++;
      out.push({
        version: cur.version,
        seq: cur.seq,
        uptimeSec: cur.uptimeSec,
        files: sections(view.toString('utf8', this.bodyStart, this.endStart)),
      });
    }
    return true;
  }

  /** Drops the record being read once it is over maxRecordBytes; always false (needs more bytes). */
  private checkOversized(view: Buffer): false {
    if (this.len - this.bodyStart > this.maxRecordBytes) {
      this.stats.oversized++;
      this.current = undefined;
      this.oversizedSkip = true;
      // Keep only a tail that may hold the start of the next header.
      const keep = partialTail(view, HEADER, Math.max(this.bodyStart, this.pos));
      this.state = State.Outside;
      this.start = this.len - keep;
      this.pos = this.start;
    }
    return false;
  }

  private takeToken(): boolean {
    if (this.maxPerSecond === Number.POSITIVE_INFINITY) return true;
    const now = this.now();
    this.tokens = Math.min(
      this.maxPerSecond,
      this.tokens + ((now - this.refilledAt) / 1000) * this.maxPerSecond,
    );
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private search(view: Buffer, needle: Buffer, from: number): number {
    const at = view.indexOf(needle, from);
    this.stats.scannedBytes += (at < 0 ? this.len : at + needle.length) - from;
    return at;
  }

  private searchByte(view: Buffer, byte: number, from: number): number {
    const at = view.indexOf(byte, from);
    this.stats.scannedBytes += (at < 0 ? this.len : at + 1) - from;
    return at;
  }

  /** Outside a record: the bytes before `to` are noise. */
  private skipTo(to: number): void {
    if (to > this.start && !this.oversizedSkip) this.stats.skippedBytes += to - this.start;
    if (to > this.start) this.start = to;
  }

  /** The first byte still needed. */
  private live(): number {
    return this.state === State.Body || this.state === State.End ? this.bodyStart : this.start;
  }

  /** Appends a chunk; moves the live bytes to the front or grows only when the buffer is full. */
  private append(chunk: Buffer): void {
    const live = this.live();
    if (live === this.len && this.buf.length > 4 * INITIAL_CAPACITY && chunk.length <= INITIAL_CAPACITY) {
      // Nothing pending after a large record: give the memory back.
      this.buf = Buffer.allocUnsafe(INITIAL_CAPACITY);
      this.shift(live);
    }
    if (this.len + chunk.length > this.buf.length) {
      const need = this.len - live + chunk.length;
      // Grow when the live part would fill more than half the buffer: each byte is then moved a
      // bounded number of times (amortized linear).
      const target = need * 2 > this.buf.length ? Math.max(need * 2, this.buf.length * 2) : this.buf.length;
      const next = target === this.buf.length ? this.buf : Buffer.allocUnsafe(target);
      this.buf.copy(next, 0, live, this.len);
      this.buf = next;
      this.shift(live);
    }
    chunk.copy(this.buf, this.len);
    this.len += chunk.length;
  }

  private shift(n: number): void {
    if (n === 0) return;
    this.len -= n;
    this.start -= n;
    this.pos -= n;
    this.bodyStart -= n;
    this.endStart -= n;
  }
}

function startsWith(view: Buffer, at: number, needle: Buffer): boolean {
  if (at + needle.length > view.length) return false;
  for (let i = 0; i < needle.length; i++) if (view[at + i] !== needle[i]) return false;
  return true;
}

/** The bytes from `at` to the end are a prefix of `needle`. */
function startsWithPart(view: Buffer, at: number, needle: Buffer): boolean {
  for (let i = at; i < view.length; i++) if (view[i] !== needle[i - at]) return false;
  return true;
}

/** Length of the longest end of view[from..] that is a proper prefix of `needle` (a marker cut by the chunking). */
function partialTail(view: Buffer, needle: Buffer, from: number): number {
  for (let k = Math.min(needle.length - 1, view.length - from); k > 0; k--) {
    if (startsWithPart(view, view.length - k, needle)) return k;
  }
  return 0;
}

/** Cuts a record body into its sections at "--- <name>" lines. */
function sections(body: string): Record<string, string> {
  const files: Record<string, string> = {};
  let p = body.startsWith(SECTION) ? 0 : body.indexOf(`\n${SECTION}`);
  if (p > 0) p += 1;
  while (p >= 0 && p < body.length) {
    const nl = body.indexOf('\n', p);
    if (nl < 0) {
      files[body.slice(p + SECTION.length).trim()] = '';
      break;
    }
    const next = body.indexOf(`\n${SECTION}`, nl);
    files[body.slice(p + SECTION.length, nl).trim()] = body.slice(nl + 1, next < 0 ? body.length : next + 1);
    p = next < 0 ? -1 : next + 1;
  }
  return files;
}

/** Decodes a whole captured stream (tests, tools). */
export function decodeGuestStream(
  data: Buffer | string,
  opts?: GuestFrameDecoderOptions | number,
): {
  records: GuestRecord[];
  stats: FrameDecoderStats;
} {
  const d = new GuestFrameDecoder(opts);
  const records = d.push(data);
  return { records, stats: d.stats };
}
