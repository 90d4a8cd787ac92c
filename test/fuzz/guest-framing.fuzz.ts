// The in-guest agent's framing decoder (collectors/guest/framing.ts) on mutated captured streams
// (testdata/guest) and arbitrary bytes, fed whole or in arbitrary chunks: it never throws, its
// counts are whole numbers ≥ 0, records carry an integer seq, a finite uptime and string files,
// and how the bytes were chunked does not change what comes out.
import fc from 'fast-check';
import { decodeGuestStream, GuestFrameDecoder, type GuestRecord } from '../../collectors/guest/framing.ts';
import { capturedFiles, type FuzzTarget, hostileText } from './harness.ts';

const streams = capturedFiles('guest', (p) => p.endsWith('.stream'));
/** Whole streams are ~100 KB: fuzz a few records' worth, starting anywhere. */
const excerpts = streams.flatMap((s) => {
  const out: string[] = [];
  for (let at = 0; at < s.length && out.length < 8; at = s.indexOf('STRATA-GUEST', at + 1)) {
    if (at < 0) break;
    out.push(s.slice(at, at + 20_000));
  }
  return out;
});

function checkRecords(records: GuestRecord[]): void {
  for (const r of records) {
    if (!Number.isInteger(r.seq) || !Number.isFinite(r.uptimeSec))
      throw new Error(`record ${r.seq} ${r.uptimeSec}`);
    for (const [k, v] of Object.entries(r.files))
      if (typeof k !== 'string' || typeof v !== 'string') throw new Error('file');
  }
}

export const targets: FuzzTarget[] = [
  {
    name: 'guest framing: whole and chunked streams',
    property: () =>
      fc.property(
        hostileText(excerpts),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.integer({ min: 64, max: 1 << 20 }),
        (text, cuts, maxRecordBytes) => {
          const bytes = Buffer.from(text, 'latin1');
          const whole = decodeGuestStream(bytes, maxRecordBytes);
          checkRecords(whole.records);
          for (const v of Object.values(whole.stats))
            if (!Number.isSafeInteger(v) || v < 0) throw new Error('stats');
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const d = new GuestFrameDecoder(maxRecordBytes);
          const records: GuestRecord[] = [];
          let from = 0;
          for (const p of [...points, bytes.length]) {
            records.push(...d.push(bytes.subarray(from, p)));
            from = p;
          }
          if (JSON.stringify(records) !== JSON.stringify(whole.records)) {
            throw new Error(
              `chunked at ${points.join(',')}: ${records.length} records vs ${whole.records.length} whole`,
            );
          }
        },
      ),
  },
];
