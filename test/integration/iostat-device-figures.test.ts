// strata's device figures against the standard tool: Debian's `iostat -x` (sysstat) runs beside the
// real agent (host collector, 1 s ticks) on the same disk during a real, rate-limited fio load
// (random 16 KiB reads and writes, O_DIRECT, 300 + 300 ops/s), and r/s, w/s, r_await, w_await,
// aqu-sz and %util are compared with strata's read_iops, write_iops, read/write_latency_ms_per_op,
// avg_queue_depth and utilization_ratio (docs/overhead.md §3, "Device figures and iostat").
// Both read /proc/diskstats; their 1 s intervals start at different instants, so figures are
// compared as means over the same span of wall time (every interval of each tool that ends inside
// it), awaits weighted by ops: ≤ 1 s of each edge differs, a few % of a 25 s span under steady load.
// Other tenants' I/O on the disk (benches of the stack) is in both tools' figures alike.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { backingDevice } from '../../collectors/vm/backing.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';

const DIR = '/var/tmp';
const FILE = `${DIR}/strata-iostat-${randomUUID().slice(0, 8)}`;
const RUN_S = 40;
/** Seconds left out at each end: fio's start-up, the tools' first intervals, the end of the load. */
const EDGE_S = 4;

interface Figures {
  rps: number;
  wps: number;
  rAwait: number;
  wAwait: number;
  aqu: number;
  util: number;
}

/** The whole disk that holds `dir` (vda), as /proc/diskstats names it. */
async function diskOf(dir: string): Promise<string> {
  // The vm collector's resolver: st_dev → /sys/dev/block → the whole disk (a partition's parent).
  const disk = await backingDevice(dir, '/sys');
  if (!disk) throw new Error(`no single whole disk holds ${dir}`);
  return disk;
}

/** Means over intervals (end time in ms, figures): rates and aqu/util plain, awaits weighted by ops. */
function means(xs: { end: number; f: Figures }[]): Figures {
  const n = Math.max(1, xs.length);
  const sum = (g: (f: Figures) => number) => xs.reduce((a, x) => a + g(x.f), 0);
  const rOps = sum((f) => f.rps);
  const wOps = sum((f) => f.wps);
  return {
    rps: rOps / n,
    wps: wOps / n,
    rAwait: rOps > 0 ? sum((f) => f.rAwait * f.rps) / rOps : 0,
    wAwait: wOps > 0 ? sum((f) => f.wAwait * f.wps) / wOps : 0,
    aqu: sum((f) => f.aqu) / n,
    util: sum((f) => f.util) / n,
  };
}

const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) p.kill('SIGTERM');
  fs.rmSync(FILE, { force: true });
});

function collect(p: ChildProcess, onLine: (l: string) => void): Promise<void> {
  procs.push(p);
  readline.createInterface({ input: p.stdout! }).on('line', onLine);
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('exit', () => resolve());
  });
}

describe('device figures match iostat -x on the same disk, intervals and load', () => {
  it('r/s, w/s, r_await, w_await, aqu-sz and %util within the stated tolerance', async () => {
    const dev = await diskOf(DIR);
    // The file is laid out first, so the measured span has only the rate-limited random I/O.
    fs.writeFileSync(FILE, Buffer.alloc(64 * 2 ** 20, 1));
    const fio = spawn(
      'fio',
      [
        '--name=strata-iostat',
        `--filename=${FILE}`,
        '--size=64M',
        '--rw=randrw',
        '--rwmixread=50',
        '--bs=16k',
        '--direct=1',
        '--ioengine=libaio',
        '--iodepth=4',
        '--rate_iops=300,300',
        '--time_based',
        `--runtime=${RUN_S + 2}`,
        '--output-format=terse',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const fioDone = collect(fio, () => {});
    const pipeline = createPipeline();
    const strata: { end: number; f: Figures }[] = [];
    const agent = spawn(
      process.execPath,
      ['bin/strata.js', 'agent', '--output', 'ndjson', '--interval', '1s', '--collectors', 'host'],
      { env: { ...process.env, STRATA_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    void collect(agent, (line) => {
      const r = decodeSampleMessage(line);
      if (!r.ok) return;
      for (const p of pipeline.handle(r.message).points) {
        const f = p.fields;
        // The host's row for the disk (containers' device rows carry no utilisation).
        if (p.tags.device !== dev || typeof f.utilization_ratio !== 'number') continue;
        const num = (k: string) => (typeof f[k] === 'number' ? (f[k] as number) : 0);
        strata.push({
          end: p.timeMs,
          f: {
            rps: num('read_iops'),
            wps: num('write_iops'),
            rAwait: num('read_latency_ms_per_op'),
            wAwait: num('write_latency_ms_per_op'),
            aqu: num('avg_queue_depth'),
            util: num('utilization_ratio') * 100,
          },
        });
      }
    });
    // JSON with ISO timestamps (the end of each interval); -y: no since-boot first report.
    const iostat = spawn('iostat', ['-x', '-d', '-t', '-y', '-o', 'JSON', dev, '1', String(RUN_S)], {
      env: { ...process.env, S_TIME_FORMAT: 'ISO', LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let json = '';
    await collect(iostat, (l) => {
      json += `${l}\n`;
    });
    agent.kill('SIGTERM');
    await fioDone;
    type Stat = { timestamp: string; disk: Record<string, number | string>[] };
    const stats = (JSON.parse(json) as { sysstat: { hosts: { statistics: Stat[] }[] } }).sysstat.hosts[0]!
      .statistics;
    const ref = stats.map((s) => {
      const d = s.disk.find((x) => x.disk_device === dev)!;
      const n = (k: string) => Number(d[k]);
      return {
        end: Date.parse(s.timestamp),
        f: {
          rps: n('r/s'),
          wps: n('w/s'),
          rAwait: n('r_await'),
          wAwait: n('w_await'),
          aqu: n('aqu-sz'),
          util: n('util'),
        },
      };
    });
    expect(ref.length).toBeGreaterThan(RUN_S - 5);
    expect(strata.length).toBeGreaterThan(RUN_S - 10);
    // The same span of wall time for both tools.
    const from = Math.max(ref[0]!.end, strata[0]!.end) + EDGE_S * 1000;
    const to = Math.min(ref.at(-1)!.end, strata.at(-1)!.end) - EDGE_S * 1000;
    expect(to - from).toBeGreaterThan(20_000);
    const inSpan = (x: { end: number }) => x.end > from && x.end <= to;
    const a = means(ref.filter(inSpan));
    const b = means(strata.filter(inSpan));
    const info = JSON.stringify({ dev, iostat: a, strata: b, intervals: ref.filter(inSpan).length });
    console.log(`iostat vs strata: ${info}`);
    // The load is there: fio's 300 + 300 ops/s (and whatever else the disk does).
    expect(a.rps, info).toBeGreaterThan(250);
    expect(a.wps, info).toBeGreaterThan(250);
    // Tolerances: 5 % on rates; 10 % on awaits (or 0.05 ms), aqu-sz (or 0.02) and %util (or 1 point),
    // whose per-interval values swing more with the edges and which iostat prints to 2 decimals.
    const near = (x: number, y: number, rel: number, abs: number) =>
      expect(Math.abs(x - y), info).toBeLessThanOrEqual(Math.max(abs, rel * Math.max(x, y)));
    near(b.rps, a.rps, 0.05, 0);
    near(b.wps, a.wps, 0.05, 0);
    near(b.rAwait, a.rAwait, 0.1, 0.05);
    near(b.wAwait, a.wAwait, 0.1, 0.05);
    near(b.aqu, a.aqu, 0.1, 0.02);
    near(b.util, a.util, 0.1, 1);
  }, 120_000);
});
