// Parsers for each tool's machine-readable output. Each returns throughput (with unit), the number
// of operations the run did (what "CPU per op" divides by) and latency where the tool reports it.
// Each throws InvalidDataError naming the tool and what was missing, with the output's tail.
import { InvalidDataError } from '../../lib/errors.ts';

export interface Measured {
  throughput: { value: number; unit: string };
  /** Operations done in the run, in `opUnit` (events, 4 KiB reads, MiB moved, requests). */
  ops: number;
  opUnit: string;
  latency?: { avg?: number; p50?: number; p99?: number; unit: string };
}

function fail(tool: string, what: string, output: string): never {
  const tail = output.trim().split('\n').slice(-8).join('\n');
  throw new InvalidDataError(`${tool}: ${what} not found in its output; last lines:\n${tail}`);
}

function num(re: RegExp, text: string, tool: string, what: string): number {
  const m = re.exec(text);
  if (!m) fail(tool, what, text);
  return Number(m[1]);
}

/** sysbench 1.0 `cpu` text output: events per second, total events, latency in ms (avg, 99th). */
export function parseSysbenchCpu(out: string): Measured {
  const eps = num(/events per second:\s*([\d.]+)/, out, 'sysbench cpu', '"events per second"');
  const events = num(/total number of events:\s*(\d+)/, out, 'sysbench cpu', '"total number of events"');
  return {
    throughput: { value: eps, unit: 'events/s' },
    ops: events,
    opUnit: 'event',
    latency: sysbenchLatency(out),
  };
}

/** sysbench 1.0 `memory` text output: MiB/sec transferred, total operations (blocks). */
export function parseSysbenchMemory(out: string): Measured {
  const mibps = num(/\(([\d.]+) MiB\/sec\)/, out, 'sysbench memory', '"MiB/sec"');
  const mib = num(/([\d.]+) MiB transferred/, out, 'sysbench memory', '"MiB transferred"');
  return {
    throughput: { value: mibps, unit: 'MiB/s' },
    ops: mib,
    opUnit: 'MiB',
    latency: sysbenchLatency(out),
  };
}

function sysbenchLatency(out: string): Measured['latency'] {
  const avg = /avg:\s*([\d.]+)/.exec(out);
  const p = /(\d+)th percentile:\s*([\d.]+)/.exec(out);
  return {
    unit: 'ms',
    ...(avg ? { avg: Number(avg[1]) } : {}),
    ...(p && p[1] === '99' ? { p99: Number(p[2]) } : {}),
  };
}

/** The first JSON object in `out` (tools may print warnings around it on a merged stream). */
function extractJson(out: string, tool: string): unknown {
  const start = out.indexOf('{');
  const end = out.lastIndexOf('}');
  if (start < 0 || end < start) fail(tool, 'a JSON document', out);
  try {
    return JSON.parse(out.slice(start, end + 1));
  } catch (err) {
    fail(tool, `valid JSON (${(err as Error).message})`, out);
  }
}

interface FioDir {
  iops: number;
  bw_bytes: number;
  total_ios: number;
  io_bytes: number;
  clat_ns?: { mean?: number; percentile?: Record<string, number> };
}

/**
 * fio --output-format=json. Sums read and write; latency is completion latency (clat) in µs, p50
 * and p99 from the percentile table. `mode` picks the throughput unit: IOPS for small random I/O,
 * MB/s for sequential (as in the papers).
 */
export function parseFio(out: string, mode: 'iops' | 'bandwidth'): Measured {
  const json = extractJson(out, 'fio') as { jobs?: { read?: FioDir; write?: FioDir }[] };
  const job = json.jobs?.[0];
  if (!job?.read || !job.write) fail('fio', 'jobs[0].read/write', out);
  const dirs = [job.read, job.write].filter((d) => d.total_ios > 0);
  if (!dirs.length) fail('fio', 'any completed I/O (jobs[0].read.total_ios = 0)', out);
  const iops = dirs.reduce((s, d) => s + d.iops, 0);
  const bw = dirs.reduce((s, d) => s + d.bw_bytes, 0);
  const ios = dirs.reduce((s, d) => s + d.total_ios, 0);
  const main = dirs[0]!;
  const pct = main.clat_ns?.percentile ?? {};
  const us = (ns: number | undefined) => (ns === undefined ? undefined : ns / 1000);
  const latency: Measured['latency'] = { unit: 'µs' };
  const avg = us(main.clat_ns?.mean);
  const p50 = us(pct['50.000000']);
  const p99 = us(pct['99.000000']);
  if (avg !== undefined) latency.avg = avg;
  if (p50 !== undefined) latency.p50 = p50;
  if (p99 !== undefined) latency.p99 = p99;
  return mode === 'iops'
    ? { throughput: { value: iops, unit: 'IOPS' }, ops: ios, opUnit: 'I/O', latency }
    : { throughput: { value: bw / 1e6, unit: 'MB/s' }, ops: ios, opUnit: 'I/O', latency };
}

/** iperf3 -J (client side): bits/s received by the server, bytes moved (ops = MiB). */
export function parseIperf3(out: string): Measured {
  const json = extractJson(out, 'iperf3') as {
    error?: string;
    end?: { sum_received?: { bytes: number; bits_per_second: number } };
  };
  if (json.error) throw new InvalidDataError(`iperf3 reported an error: ${json.error}`);
  const r = json.end?.sum_received;
  if (!r) fail('iperf3', 'end.sum_received', out);
  return {
    throughput: { value: r.bits_per_second / 1e9, unit: 'Gbit/s' },
    ops: r.bytes / (1024 * 1024),
    opUnit: 'MiB',
  };
}

/**
 * redis-benchmark --csv (7.x): "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
 * "p95_latency_ms","p99_latency_ms","max_latency_ms" then one row per test. `requests` is -n.
 */
export function parseRedisBenchmark(out: string, requests: number): Measured {
  const lines = out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('"'));
  const header = lines.find((l) => l.startsWith('"test"'));
  const row = lines.find((l) => !l.startsWith('"test"'));
  if (!header || !row) fail('redis-benchmark', 'a CSV header and result row', out);
  const cols = header.split(',').map((c) => c.replace(/"/g, ''));
  const vals = row.split(',').map((c) => c.replace(/"/g, ''));
  const get = (name: string) => {
    const i = cols.indexOf(name);
    return i >= 0 && vals[i] !== undefined ? Number(vals[i]) : undefined;
  };
  const rps = get('rps');
  if (rps === undefined || !Number.isFinite(rps)) fail('redis-benchmark', 'the "rps" column', out);
  const latency: Measured['latency'] = { unit: 'ms' };
  const avg = get('avg_latency_ms');
  const p50 = get('p50_latency_ms');
  const p99 = get('p99_latency_ms');
  if (avg !== undefined) latency.avg = avg;
  if (p50 !== undefined) latency.p50 = p50;
  if (p99 !== undefined) latency.p99 = p99;
  return { throughput: { value: rps, unit: 'requests/s' }, ops: requests, opUnit: 'request', latency };
}

/**
 * sysbench 1.0 `oltp_read_write` text output: transactions per second, total transactions (one
 * transaction = 20 queries: BEGIN, 14 reads, 4 writes, COMMIT), latency of one transaction in ms
 * (avg, 99th percentile; the median from the histogram when the run printed one). Deadlocks sysbench retried ("ignored errors") are not transactions and
 * are not in the count.
 */
export function parseSysbenchOltp(out: string): Measured {
  const tool = 'sysbench oltp_read_write';
  const tx = /transactions:\s*(\d+)\s*\(([\d.]+) per sec\.\)/.exec(out);
  if (!tx) fail(tool, '"transactions: N (R per sec.)"', out);
  if (Number(tx[1]) === 0) fail(tool, 'any committed transaction', out);
  const latency = sysbenchLatency(out) ?? { unit: 'ms' };
  const p50 = histogramPercentile(out, 50);
  if (p50 !== undefined) latency.p50 = p50;
  return {
    throughput: { value: Number(tx[2]), unit: 'transactions/s' },
    ops: Number(tx[1]),
    opUnit: 'transaction',
    latency,
  };
}

/**
 * A percentile from sysbench's `--histogram=on` table ("value |*** count", values in ms, ~1000
 * logarithmic buckets about 2% apart): the first bucket where the running count reaches p% of all
 * events, which is how sysbench computes the one percentile it prints (its 99th equals this one's).
 */
export function histogramPercentile(out: string, p: number): number | undefined {
  const start = out.indexOf('Latency histogram');
  if (start < 0) return undefined;
  const rows = [...out.slice(start).matchAll(/^\s*([\d.]+) \|\**\s+(\d+)\s*$/gm)].map(
    (m) => [Number(m[1]), Number(m[2])] as const,
  );
  const total = rows.reduce((n, [, c]) => n + c, 0);
  if (!total) return undefined;
  let seen = 0;
  for (const [value, count] of rows) {
    seen += count;
    if (seen >= (total * p) / 100) return value;
  }
  return rows[rows.length - 1]?.[0];
}

/** sockperf prints its summary with colour escapes even into a pipe. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/**
 * sockperf 3.x `ping-pong --tcp --full-rtt`: one message outstanding at a time, like netperf
 * TCP_RR. Throughput = round trips per second over the valid part of the run (sockperf leaves out
 * its warm-up), i.e. ReceivedMessages ÷ RunTime of "[Valid Duration]"; latency = the round-trip
 * time in µs (avg, p50, p99 from its percentile table). sockperf exits 0 even when it cannot
 * connect, so a missing summary is the failure.
 */
export function parseSockperfPingPong(out: string): Measured {
  const text = out.replace(ANSI, '');
  const tool = 'sockperf ping-pong';
  const err = /sockperf: ERROR: (.*)/.exec(text);
  const valid = /\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)/.exec(
    text,
  );
  if (!valid) {
    if (err) throw new InvalidDataError(`${tool} failed: ${err[1]!.trim()}`);
    fail(tool, '"[Valid Duration] RunTime=… ReceivedMessages=…"', text);
  }
  const seconds = Number(valid[1]);
  const received = Number(valid[3]);
  if (!(seconds > 0) || received === 0) fail(tool, 'any round trip in the valid duration', text);
  if (!/avg-rtt=/.test(text)) {
    // Without --full-rtt sockperf halves the round trip ("avg-latency"): refuse rather than mix units.
    fail(tool, '"avg-rtt" (run it with --full-rtt)', text);
  }
  const pct = (p: string) => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')} =\\s*([\\d.]+)`).exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const latency: Measured['latency'] = { unit: 'µs', avg: num(/avg-rtt=([\d.]+)/, text, tool, 'avg-rtt') };
  const p50 = pct('50.000');
  const p99 = pct('99.000');
  if (p50 !== undefined) latency.p50 = p50;
  if (p99 !== undefined) latency.p99 = p99;
  return {
    throughput: { value: received / seconds, unit: 'transactions/s' },
    ops: received,
    opUnit: 'transaction',
    latency,
  };
}

/** A user command: one run is one operation; throughput is runs per second of wall time. */
export function parseCommand(wallMs: number): Measured {
  return {
    throughput: { value: 1000 / wallMs, unit: 'runs/s' },
    ops: 1,
    opUnit: 'run',
    latency: { avg: wallMs, p50: wallMs, unit: 'ms' },
  };
}
