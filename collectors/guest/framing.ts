// Decoder for the in-guest agent's framing, version 1 (written by strata-guest-agent.sh; docs/vm.md):
//   STRATA-GUEST 1 <seq> <uptime seconds>\n
//   --- <file under /proc>\n<contents>...        (zero or more sections)
//   STRATA-END <seq>\n
// The decoder is a streaming state machine over bytes from the virtio-serial socket. It resyncs on
// the next header after garbage or a cut record (a new header before STRATA-END, an END whose seq
// does not match), and it bounds everything: a record larger than maxRecordBytes is dropped and
// counted, and bytes outside records are discarded line by line.

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

export class GuestFrameDecoder {
  readonly stats: FrameDecoderStats = {
    records: 0,
    truncated: 0,
    oversized: 0,
    malformed: 0,
    skippedBytes: 0,
  };
  private pending = '';
  private current:
    | { version: number; seq: number; uptimeSec: number; lines: string[]; bytes: number }
    | undefined;
  private oversizedSkip = false;
  // UTF-8 aware across chunk boundaries (an interface name may be UTF-8).
  private readonly utf8 = new StringDecoder('utf8');

  constructor(private readonly maxRecordBytes = 1024 * 1024) {}

  /** Feeds bytes; returns the records completed by them, oldest first. */
  push(chunk: Buffer | string): GuestRecord[] {
    this.pending += typeof chunk === 'string' ? chunk : this.utf8.write(chunk);
    const out: GuestRecord[] = [];
    let start = 0;
    let nl = this.pending.indexOf('\n', start);
    while (nl >= 0) {
      const rec = this.line(this.pending.slice(start, nl));
      if (rec) out.push(rec);
      start = nl + 1;
      nl = this.pending.indexOf('\n', start);
    }
    this.pending = this.pending.slice(start);
    // A line without a newline may not grow without bound either.
    if (this.pending.length > this.maxRecordBytes) {
      this.stats.skippedBytes += this.pending.length;
      if (this.current) {
        this.stats.oversized++;
        this.current = undefined;
        this.oversizedSkip = true;
      }
      this.pending = '';
    }
    return out;
  }

  private line(raw: string): GuestRecord | undefined {
    let line = raw;
    // A cut record glued to the next header ("...vda 2001 0 16STRATA-GUEST 1 3 ..."): /proc text
    // never contains the marker, so a header anywhere in a line starts a new record.
    const at = line.indexOf(HEADER);
    if (at > 0) {
      if (!this.current) this.stats.skippedBytes += at;
      line = line.slice(at);
    }
    if (line.startsWith(HEADER)) {
      if (this.current) this.stats.truncated++;
      this.current = undefined;
      this.oversizedSkip = false;
      const parts = line.split(' ');
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
        return undefined;
      }
      this.current = { version, seq, uptimeSec, lines: [], bytes: 0 };
      return undefined;
    }
    const cur = this.current;
    if (!cur) {
      if (!this.oversizedSkip) this.stats.skippedBytes += line.length + 1;
      return undefined;
    }
    if (line.startsWith(END) && (line.length === END.length || line[END.length] === ' ')) {
      this.current = undefined;
      const endSeq = line.slice(END.length).trim();
      if (endSeq !== '' && Number(endSeq) !== cur.seq) {
        this.stats.malformed++;
        return undefined;
      }
      this.stats.records++;
      return { version: cur.version, seq: cur.seq, uptimeSec: cur.uptimeSec, files: sections(cur.lines) };
    }
    cur.bytes += line.length + 1;
    if (cur.bytes > this.maxRecordBytes) {
      this.stats.oversized++;
      this.current = undefined;
      this.oversizedSkip = true;
      return undefined;
    }
    cur.lines.push(line);
    return undefined;
  }
}

function sections(lines: string[]): Record<string, string> {
  const files: Record<string, string> = {};
  let name: string | undefined;
  let body: string[] = [];
  const flush = () => {
    if (name !== undefined) files[name] = body.length ? `${body.join('\n')}\n` : '';
  };
  for (const line of lines) {
    if (line.startsWith(SECTION)) {
      flush();
      name = line.slice(SECTION.length).trim();
      body = [];
    } else if (name !== undefined) {
      body.push(line);
    }
  }
  flush();
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
