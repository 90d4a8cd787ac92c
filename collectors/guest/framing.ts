// Decoder for the in-guest agent's framing, version 1 (written by strata-guest-agent.sh; docs/vm.md):
//   STRATA-GUEST 1 <seq> <uptime seconds>\n
//   --- <file under /proc>\n<contents>...        (zero or more sections)
//   STRATA-END <seq>\n
// The decoder is a streaming state machine over bytes from the virtio-serial socket. It resyncs on
// the next header after garbage or a cut record (a new header before STRATA-END, an END whose seq
// does not match), and it bounds everything: a record larger than maxRecordBytes is dropped and
// counted without being buffered, and bytes outside records are discarded.

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
  /** Bytes outside any record (resync noise), discarded. */
  skippedBytes: number;
}

import { StringDecoder } from 'node:string_decoder';

const HEADER = 'STRATA-GUEST ';
const END = 'STRATA-END';
const SECTION = '--- ';

// The decoder works on whole records rather than lines: it looks for the next "STRATA-" marker with
// indexOf (fast on the 6 KiB records the agent sends) and cuts sections at "\n--- ", so a record
// costs a few scans and one substring per file instead of one per line.
const MARKER = 'STRATA-';

export class GuestFrameDecoder {
  readonly stats: FrameDecoderStats = {
    records: 0,
    truncated: 0,
    oversized: 0,
    malformed: 0,
    skippedBytes: 0,
  };
  private buf = '';
  /** Where the next marker search starts in `buf` (nothing before it can start a marker). */
  private pos = 0;
  private current: { version: number; seq: number; uptimeSec: number; bodyStart: number } | undefined;
  /** After an oversized record its remaining bytes are dropped without counting them as noise. */
  private oversizedSkip = false;
  // UTF-8 aware across chunk boundaries (an interface name may be UTF-8).
  private readonly utf8 = new StringDecoder('utf8');

  constructor(private readonly maxRecordBytes = 1024 * 1024) {}

  /** Feeds bytes; returns the records completed by them, oldest first. */
  push(chunk: Buffer | string): GuestRecord[] {
    this.buf += typeof chunk === 'string' ? chunk : this.utf8.write(chunk);
    const out: GuestRecord[] = [];
    for (;;) {
      if (!this.current) {
        if (!this.findHeader()) break;
        continue;
      }
      const cur = this.current;
      const m = this.buf.indexOf(MARKER, this.pos);
      if (m < 0) {
        if (this.buf.length - cur.bodyStart > this.maxRecordBytes) this.dropOversized();
        else this.pos = Math.max(cur.bodyStart, this.buf.length - (MARKER.length - 1));
        break;
      }
      const rest = this.buf.length - m;
      const tail = rest <= HEADER.length ? this.buf.slice(m) : '';
      if ((rest < HEADER.length && HEADER.startsWith(tail)) || (rest <= END.length && END.startsWith(tail))) {
        // The marker may still become a header or an END: wait for more bytes.
        this.pos = m;
        if (this.buf.length - cur.bodyStart > this.maxRecordBytes) this.dropOversized();
        break;
      }
      if (this.buf.startsWith(HEADER, m)) {
        // A header before this record's END (possibly glued to a cut line): the record is lost.
        this.stats.truncated++;
        this.current = undefined;
        this.buf = this.buf.slice(m);
        this.pos = 0;
        continue;
      }
      const after = this.buf.charCodeAt(m + END.length);
      if (!this.buf.startsWith(END, m) || (after !== 32 && after !== 10 && !Number.isNaN(after))) {
        this.pos = m + MARKER.length; // some other "STRATA-" text: not ours to interpret
        continue;
      }
      const nl = this.buf.indexOf('\n', m);
      if (nl < 0) {
        this.pos = m; // the END line is not complete yet
        if (this.buf.length - cur.bodyStart > this.maxRecordBytes) this.dropOversized();
        break;
      }
      this.current = undefined;
      const endSeq = this.buf.slice(m + END.length, nl).trim();
      if (m - cur.bodyStart > this.maxRecordBytes) {
        this.stats.oversized++;
      } else if (endSeq !== '' && Number(endSeq) !== cur.seq) {
        this.stats.malformed++;
      } else {
        this.stats.records++;
        out.push({
          version: cur.version,
          seq: cur.seq,
          uptimeSec: cur.uptimeSec,
          files: sections(this.buf.slice(cur.bodyStart, m)),
        });
      }
      this.buf = this.buf.slice(nl + 1);
      this.pos = 0;
    }
    return out;
  }

  /** Skips to the next complete header line and opens a record; false when more bytes are needed. */
  private findHeader(): boolean {
    const h = this.buf.indexOf(HEADER, this.pos);
    if (h < 0) {
      // Keep a tail that may be the beginning of a header; the rest is noise.
      const keep = Math.min(this.buf.length, HEADER.length - 1);
      this.skip(this.buf.length - keep);
      return false;
    }
    this.skip(h);
    this.oversizedSkip = false;
    const nl = this.buf.indexOf('\n');
    if (nl < 0) {
      if (this.buf.length > this.maxRecordBytes)
        this.skip(this.buf.length); // a header line without end
      else this.pos = 0;
      return false;
    }
    const parts = this.buf.slice(0, nl).split(' ');
    const version = Number(parts[1]);
    const seq = Number(parts[2]);
    const uptimeSec = Number(parts[3]);
    if (
      parts.length < 4 ||
      version !== GUEST_FRAME_VERSION ||
      !Number.isInteger(seq) ||
      !Number.isFinite(uptimeSec)
    ) {
      this.stats.malformed++;
      this.buf = this.buf.slice(nl + 1);
      this.pos = 0;
      return true;
    }
    this.current = { version, seq, uptimeSec, bodyStart: nl + 1 };
    this.pos = nl + 1;
    return true;
  }

  private skip(n: number): void {
    if (n <= 0) return;
    if (!this.oversizedSkip) this.stats.skippedBytes += n;
    this.buf = this.buf.slice(n);
    this.pos = 0;
  }

  private dropOversized(): void {
    this.stats.oversized++;
    this.current = undefined;
    this.oversizedSkip = true;
    // Keep only a tail that may hold the start of the next header.
    this.buf = this.buf.slice(Math.max(0, this.buf.length - (HEADER.length - 1)));
    this.pos = 0;
  }
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
  maxRecordBytes?: number,
): {
  records: GuestRecord[];
  stats: FrameDecoderStats;
} {
  const d = new GuestFrameDecoder(maxRecordBytes);
  const records = d.push(data);
  return { records, stats: d.stats };
}
