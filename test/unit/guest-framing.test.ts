// The in-guest agent's framing (collectors/guest/framing.ts) on real byte streams captured from the
// TCG test VM's virtio-serial socket (testdata/guest/*.stream, by stack/qemu/capture-testdata.ts),
// and on deliberately damaged copies of them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeGuestStream, GuestFrameDecoder } from '../../collectors/guest/framing.ts';
import { procFilesOf } from '../../collectors/guest/index.ts';
import { procSampleFromFiles } from '../../collectors/procfs/parsers.ts';
import { CAPTURED_RECORDS } from './guest-hostile-frames.ts';

const idle = readFileSync('testdata/guest/idle.stream');
const busy = readFileSync('testdata/guest/busy.stream');
const FILES = [
  'stat',
  'vmstat',
  'meminfo',
  'diskstats',
  'net/dev',
  'pressure/cpu',
  'pressure/io',
  'pressure/memory',
];

describe('guest framing v1 on captured streams', () => {
  it('decodes every record of the idle and busy captures, in order, with all files', () => {
    const a = decodeGuestStream(idle);
    const b = decodeGuestStream(busy);
    expect(a.records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(b.records.map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(a.records.map((r) => r.uptimeSec)).toEqual([3.11, 4.43, 5.58, 6.67]);
    for (const r of [...a.records, ...b.records]) {
      expect(r.version).toBe(1);
      expect(Object.keys(r.files)).toEqual(FILES);
    }
    expect(a.stats).toMatchObject({
      records: 4,
      truncated: 0,
      oversized: 0,
      malformed: 0,
      headerTooLong: 0,
      rateLimited: 0,
      skippedBytes: 0,
    });
    expect(a.records[0]!.files.stat!.startsWith('cpu  8 0 235 0 0 0 2 0 0 0\n')).toBe(true);
    expect(a.records[0]!.files['pressure/cpu']).toBe(
      'some avg10=4.16 avg60=0.75 avg300=0.15 total=955828\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
    );
  });

  it('gives the same records whatever the chunking (1, 7, 4096 bytes)', () => {
    const whole = decodeGuestStream(busy).records;
    for (const size of [1, 7, 4096]) {
      const d = new GuestFrameDecoder();
      const got = [];
      for (let i = 0; i < busy.length; i += size) got.push(...d.push(busy.subarray(i, i + size)));
      expect(got).toEqual(whole);
    }
  });

  it('drops a record cut short and resyncs on the next header', () => {
    // Connect mid-record (tail of record 1 first), then a record cut in its diskstats section.
    const s = idle.toString('latin1');
    const second = s.indexOf('STRATA-GUEST 1 2 ');
    const cut = s.indexOf('--- diskstats', second) + 20;
    const third = s.indexOf('STRATA-GUEST 1 3 ');
    const damaged = s.slice(second - 300, cut) + s.slice(third);
    const r = decodeGuestStream(damaged);
    expect(r.records.map((x) => x.seq)).toEqual([3, 4]);
    expect(r.stats.truncated).toBe(1);
    expect(r.stats.skippedBytes).toBeGreaterThan(0);
  });

  it('counts unknown versions, mismatched END and oversized records, and keeps going', () => {
    const s = idle.toString('latin1');
    const rec1 = s.slice(0, s.indexOf('STRATA-GUEST 1 2 '));
    const v2 = rec1.replace('STRATA-GUEST 1 1 ', 'STRATA-GUEST 2 1 ');
    const badEnd = rec1.replace('STRATA-END 1', 'STRATA-END 9');
    const r = decodeGuestStream(v2 + badEnd + rec1);
    expect(r.records.map((x) => x.seq)).toEqual([1]);
    expect(r.stats.malformed).toBe(2);

    const small = decodeGuestStream(s, 4096); // each record is ~6 KiB
    expect(small.records).toEqual([]);
    expect(small.stats.oversized).toBe(4);
  });

  it('keeps an empty section (a /proc file the guest could not read) as an empty file, absent for the parser', () => {
    const s = idle.toString('latin1');
    const rec1 = s.slice(0, s.indexOf('STRATA-GUEST 1 2 '));
    const cpuStart = rec1.indexOf('--- pressure/cpu\n') + '--- pressure/cpu\n'.length;
    const emptied = rec1.slice(0, cpuStart) + rec1.slice(rec1.indexOf('--- pressure/io'));
    const [r] = decodeGuestStream(emptied).records;
    expect(r!.files['pressure/cpu']).toBe('');
    expect(r!.files['pressure/io']).toMatch(/^some avg10=/);
    const parts = procSampleFromFiles(procFilesOf(r!));
    expect(parts.problems).toEqual([]);
    expect(parts.counters.psi_cpu_some_usec_total).toBeUndefined();
    expect(parts.counters.psi_io_some_usec_total).toBe(5907);
  });

  it('bounds a line that never ends', () => {
    const d = new GuestFrameDecoder(4096);
    d.push(idle.subarray(0, 200));
    d.push(Buffer.alloc(10_000, 'x'));
    expect(d.stats.oversized).toBe(1);
    const rest = d.push(idle.subarray(idle.indexOf('STRATA-GUEST 1 2 ')));
    // Records 2..4 are themselves larger than 4 KiB: dropped too, but counted, not buffered.
    expect(rest).toEqual([]);
    expect(d.stats.oversized).toBe(4);
  });
});

describe('guest records through the host parsers', () => {
  it('gives the host layer names for the guest (cpu, faults, memory, vda, PSI)', () => {
    const recs = decodeGuestStream(busy).records;
    const first = procSampleFromFiles(procFilesOf(recs[0]!));
    const last = procSampleFromFiles(procFilesOf(recs[recs.length - 1]!));
    expect(first.problems).toEqual([]);
    expect(first.counters.cpu_user_usec_total).toBe(13 * 10_000);
    expect(first.counters.cpu_system_usec_total).toBe(287 * 10_000);
    expect(first.gauges.cpu_count).toBe(1);
    expect(first.gauges.memory_total_bytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(first.counters.page_faults_total).toBeGreaterThan(0);
    expect(first.counters.psi_cpu_some_usec_total).toBeGreaterThan(0);
    expect(Object.keys(first.devices)).toEqual(['vda']);
    // Between the first and the last record the guest read its disk 2000 times with O_DIRECT.
    const reads = (p: typeof first) => p.devices.vda!.counters.reads_completed_total!;
    expect(reads(last) - reads(first)).toBeGreaterThanOrEqual(2000);
  });
});

describe('guest framing against a hostile guest', () => {
  const good = CAPTURED_RECORDS.join('');

  it('scans an unfinished 1 MB header fed a byte at a time once (linear), resyncs, then decodes the captured records', () => {
    const d = new GuestFrameDecoder();
    const header = Buffer.from(`STRATA-GUEST 1 ${'7'.repeat(1_000_000)}`);
    for (let i = 0; i < header.length; i++) d.push(header.subarray(i, i + 1));
    // Each byte is searched once; only a marker still incomplete (at most 12 bytes) is looked at
    // again on the next byte: a constant, where rescanning the buffer would be ≈ 5·10¹¹ bytes.
    expect(d.stats.scannedBytes).toBeLessThanOrEqual(header.length + 256);
    expect(d.stats.headerTooLong).toBe(1);
    const recs = d.push(`\n${good}`);
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
  });

  it('scans an unfinished 1 MB record body fed a byte at a time once', () => {
    const d = new GuestFrameDecoder();
    const body = Buffer.from(`STRATA-GUEST 1 1 1.00\n--- stat\n${'cpu 1 2 3 4\n'.repeat(85_000)}`);
    for (let i = 0; i < body.length; i++) d.push(body.subarray(i, i + 1));
    expect(d.stats.scannedBytes).toBeLessThanOrEqual(body.length + 256);
    expect(d.stats.oversized).toBe(0); // still under maxRecordBytes: waiting for its END
    expect(d.push('STRATA-END 1\n').map((r) => r.seq)).toEqual([1]);
  });

  it('drops an over-long END line and resyncs on the next header', () => {
    const d = new GuestFrameDecoder({ maxHeaderBytes: 64 });
    const rec = CAPTURED_RECORDS[0]!;
    const cut = rec.slice(0, rec.indexOf('STRATA-END'));
    expect(d.push(`${cut}STRATA-END ${'1'.repeat(1000)}\n${CAPTURED_RECORDS[1]}`).map((r) => r.seq)).toEqual([
      2,
    ]);
    expect(d.stats.headerTooLong).toBe(1);
  });

  it('decodes at most maxRecordsPerSecond of a flood, counts the rest undecoded, and refills with time', () => {
    let now = 1_000_000;
    const d = new GuestFrameDecoder({ maxRecordsPerSecond: 10, now: () => now });
    const flood = Buffer.from(good.repeat(250)); // 1000 records in one burst
    let got = 0;
    for (let i = 0; i < flood.length; i += 65_536) got += d.push(flood.subarray(i, i + 65_536)).length;
    expect(got).toBe(10);
    expect(d.stats.rateLimited).toBe(990);
    now += 500; // half a second: half the bucket back
    expect(d.push(good + good).length).toBe(5);
    expect(d.stats.scannedBytes).toBeLessThanOrEqual(flood.length + 2 * good.length);
  });

  it('keeps its buffer bounded by maxRecordBytes whatever the guest sends', () => {
    const d = new GuestFrameDecoder({ maxRecordBytes: 64 * 1024 });
    const junk = Buffer.from(`STRATA-GUEST 1 1 1\n${'x'.repeat(10 * 1024 * 1024)}`);
    for (let i = 0; i < junk.length; i += 4096) d.push(junk.subarray(i, i + 4096));
    expect(d.stats.oversized).toBe(1);
    expect(d.push(good).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
  });
});
