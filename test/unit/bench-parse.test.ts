// The bench's parsers for the OLTP and request/response workloads, on output captured from the real
// tools on this project's machines (testdata/bench/: sysbench 1.0.20 against MariaDB 10.11, sockperf
// 3.7 ping-pong over loopback TCP). Each figure is checked against the capture's own numbers.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  histogramPercentile,
  parseSockperfPingPong,
  parseSysbenchOltp,
} from '../../bench/workloads/parse.ts';
import { InvalidDataError } from '../../lib/errors.ts';

const capture = (name: string) => fs.readFileSync(`testdata/bench/${name}`, 'utf8');

describe('parseSysbenchOltp', () => {
  it('reads transactions/s, the transaction count and latency in ms', () => {
    const m = parseSysbenchOltp(capture('sysbench-oltp-read-write.txt'));
    expect(m.throughput).toEqual({ value: 303.12, unit: 'transactions/s' });
    expect(m.ops).toBe(911);
    expect(m.opUnit).toBe('transaction');
    expect(m.latency).toEqual({ unit: 'ms', avg: 3.29, p99: 9.39 });
  });

  it('takes the median from --histogram=on, computed as sysbench computes its own 99th percentile', () => {
    const text = capture('sysbench-oltp-read-write-histogram.txt');
    const m = parseSysbenchOltp(text);
    expect(m.ops).toBe(1607);
    expect(m.throughput.value).toBe(532.59);
    expect(m.latency).toEqual({ unit: 'ms', avg: 7.49, p50: 7.039, p99: 18.95 });
    // The histogram holds every transaction, and its 99th percentile is the one sysbench printed.
    expect(histogramPercentile(text, 99)).toBe(18.95);
    expect(histogramPercentile(text, 0.0001)).toBe(2.305);
    expect(histogramPercentile(text, 100)).toBeGreaterThan(18.95);
  });

  it('refuses output without a transactions line, naming what is missing', () => {
    const text = capture('sysbench-oltp-read-write.txt').replace(/transactions:.*\n/, '');
    expect(() => parseSysbenchOltp(text)).toThrow(InvalidDataError);
    expect(() => parseSysbenchOltp(text)).toThrow(/transactions: N/);
  });

  it('refuses a run that committed nothing (a rate of 0 would read as a result)', () => {
    const text = capture('sysbench-oltp-read-write.txt').replace(
      /transactions:\s*911\s*\(303\.12 per sec\.\)/,
      'transactions:                        0      (0.00 per sec.)',
    );
    expect(() => parseSysbenchOltp(text)).toThrow(/any committed transaction/);
  });
});

describe('parseSockperfPingPong', () => {
  it('reads round trips per second over the valid duration and the round-trip percentiles in µs', () => {
    const m = parseSockperfPingPong(capture('sockperf-ping-pong-tcp.txt'));
    // 70326 round trips in the 2.550 s after warm-up.
    expect(m.throughput.unit).toBe('transactions/s');
    expect(m.throughput.value).toBeCloseTo(70326 / 2.55, 6);
    expect(m.ops).toBe(70326);
    expect(m.opUnit).toBe('transaction');
    expect(m.latency).toEqual({ unit: 'µs', avg: 36.18, p50: 34.714, p99: 74.479 });
    // One outstanding request: round trips × mean round trip fill the valid duration (2.544 of 2.550 s).
    expect((m.ops * m.latency!.avg!) / 1e6 / 2.55).toBeGreaterThan(0.99);
  });

  it('fails on a refused connection although sockperf exits 0, with its own error text', () => {
    expect(() => parseSockperfPingPong(capture('sockperf-connect-refused.txt'))).toThrow(
      /sockperf ping-pong failed: Can`t connect socket \(errno=111 Connection refused\)/,
    );
  });

  it('refuses half round trips (no --full-rtt) rather than mixing units', () => {
    const text = capture('sockperf-ping-pong-tcp.txt').replace('avg-rtt', 'avg-latency');
    expect(() => parseSockperfPingPong(text)).toThrow(/--full-rtt/);
  });
});
