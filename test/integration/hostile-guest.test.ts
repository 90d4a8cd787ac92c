// A real agent process (`strata agent --collectors guest --output ndjson`) following two guests
// the way it follows QEMU's virtio-serial chardev sockets: it connects as a client to a unix
// socket. Behind one socket this test plays a well-behaved in-guest agent (the captured records
// of testdata/guest/idle.stream, one a second); behind the other a hostile guest writes one
// attack. Each case runs for a measured window and checks that the agent keeps its bounds: the
// hostile guest's instances are capped, the agent's CPU (utime+stime from /proc/PID/stat over the
// window) and peak RSS (VmHWM) stay within generous limits, its log is bounded, and the good
// guest still comes out in nearly every tick.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasControlChars } from '../../lib/terminal.ts';
import {
  badLinesRecord,
  CAPTURED_RECORDS,
  ESCAPE_NAMES,
  netdev,
  record,
} from '../unit/guest-hostile-frames.ts';

const WINDOW_MS = 8_000;
const CLK_TCK = 100; // USER_HZ: /proc/PID/stat's utime/stime unit on every Linux architecture
// Generous limits: a whole core is 100 %; the systemd unit's MemoryMax is 256M (deploy/).
const MAX_CPU_RATIO = 0.35;
const MAX_HWM_KB = 256 * 1024;
const MAX_LOG_LINES = 200;

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-hostile-'));
const children: ChildProcess[] = [];
const servers: net.Server[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) s.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

type Feeder = (sock: net.Socket) => () => void;

/** A unix socket server standing in for QEMU's chardev: `feed` runs on the agent's connection. */
async function guestSocket(name: string, feed: Feeder): Promise<string> {
  const socket = path.join(tmp, `${name}.sock`);
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    const stop = feed(sock);
    sock.on('close', stop);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(socket, r));
  return socket;
}

/** The well-behaved guest: one captured record a second. */
const goodGuest: Feeder = (sock) => {
  let i = 0;
  const send = () => sock.write(CAPTURED_RECORDS[i++ % CAPTURED_RECORDS.length]!);
  send();
  const t = setInterval(send, 1000);
  return () => clearInterval(t);
};

/** Writes `next()` as fast as the socket takes it, with backpressure. */
function flood(sock: net.Socket, next: () => Buffer): () => void {
  let stopped = false;
  const pump = () => {
    while (!stopped && sock.writable) {
      if (!sock.write(next())) {
        sock.once('drain', pump);
        return;
      }
    }
  };
  pump();
  return () => {
    stopped = true;
  };
}

interface Tick {
  samples: Array<{
    entity: { layer: string; id: string; name: string; labels: Record<string, string> };
    interfaces?: Record<string, unknown>;
    devices?: Record<string, unknown>;
  }>;
}

interface Run {
  ticks: Tick[];
  cpuRatio: number;
  hwmKb: number;
  logLines: number;
  metrics: string;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

async function runAgent(caseName: string, hostile: Feeder): Promise<Run> {
  const good = await guestSocket(`${caseName}-good`, goodGuest);
  const evil = await guestSocket(`${caseName}-evil`, hostile);
  const config = path.join(tmp, `${caseName}.json`);
  await fs.writeFile(
    config,
    JSON.stringify({
      agent: {
        collectors: {
          guest: {
            firstRecordWait: 0,
            agents: [
              { vmId: 'good', socket: good },
              { vmId: 'evil', socket: evil },
            ],
          },
        },
      },
    }),
  );
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(
    process.execPath,
    [
      'bin/strata.js',
      'agent',
      '--config',
      config,
      '--collectors',
      'guest',
      '--output',
      'ndjson',
      '--interval',
      '1s',
      '--metrics-listen',
      `127.0.0.1:${port}`,
    ],
    { env: { ...process.env, STRATA_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  const ticks: Tick[] = [];
  let out = '';
  let logLines = 0;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      ticks.push(JSON.parse(out.slice(0, nl)) as Tick);
      out = out.slice(nl + 1);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    for (const ch of d) if (ch === '\n') logLines++;
  });
  // Measure from the first tick on (the loader's start-up is not the agent's steady state).
  const deadline = Date.now() + 30_000;
  while (ticks.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(ticks.length, 'the agent emitted a first tick').toBeGreaterThan(0);
  const first = ticks.length;
  const cpu0 = cpuTicks(child.pid!);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const cpu1 = cpuTicks(child.pid!);
  const elapsedS = (performance.now() - t0) / 1000;
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  child.kill('SIGKILL');
  const run = {
    ticks: ticks.slice(first),
    cpuRatio: (cpu1 - cpu0) / CLK_TCK / elapsedS,
    hwmKb,
    logLines,
    metrics,
  };
  // The figures docs/vm.md quotes come from these lines.
  console.log(
    `hostile guest ${caseName}: CPU ${(run.cpuRatio * 100).toFixed(1)} % of a core, VmHWM ${Math.round(hwmKb / 1024)} MiB, ` +
      `${logLines} log lines, ${run.ticks.length} ticks in ${elapsedS.toFixed(1)} s`,
  );
  return run;
}

const guestOf = (t: Tick, vm: string) => t.samples.find((s) => s.entity.id === `${vm}:guest`);

function expectHealthy(run: Run) {
  expect(run.cpuRatio).toBeLessThan(MAX_CPU_RATIO);
  expect(run.hwmKb).toBeLessThan(MAX_HWM_KB);
  expect(run.logLines).toBeLessThan(MAX_LOG_LINES);
  // Ticks keep coming, and the good guest is in (nearly) every one of them.
  const expected = Math.floor(WINDOW_MS / 1000);
  expect(run.ticks.length).toBeGreaterThanOrEqual(expected - 2);
  expect(run.ticks.filter((t) => guestOf(t, 'good')).length).toBeGreaterThanOrEqual(expected - 3);
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').pop());
  return sum;
}

describe('the agent against a hostile guest', () => {
  it('caps the interfaces of a guest that invents 3,500 new names a record, and refuses escape-sequence names', async () => {
    let seq = 0;
    const run = await runAgent('cardinality', (sock) => {
      const send = () => {
        seq++;
        const n = ESCAPE_NAMES.length;
        sock.write(record(seq, { 'net/dev': netdev(n + 3500, (i) => ESCAPE_NAMES[i] ?? `r${seq}i${i}`) }));
      };
      send();
      const t = setInterval(send, 500);
      return () => clearInterval(t);
    });
    expectHealthy(run);
    const names = new Set<string>();
    let published = 0;
    for (const t of run.ticks) {
      const g = guestOf(t, 'evil');
      if (!g) continue;
      published++;
      const ifs = Object.keys(g.interfaces ?? {});
      expect(ifs.length).toBeLessThanOrEqual(64); // maxInstances
      for (const n of ifs) {
        expect(hasControlChars(n)).toBe(false);
        names.add(n);
      }
    }
    expect(published).toBeGreaterThan(0);
    // maxNewInstancesPerTick (64) a tick, maxInstanceNames (1024) in all.
    expect(names.size).toBeLessThanOrEqual(64 * run.ticks.length);
    expect(metric(run.metrics, 'strata_guest_instances_dropped_total')).toBeGreaterThan(1000);
  });

  it('drops records over maxRecordsPerSecond and stays cheap under a record flood', async () => {
    const run = await runAgent('flood', (sock) => {
      const batch = Buffer.from(CAPTURED_RECORDS.join('').repeat(40));
      return flood(sock, () => batch);
    });
    expectHealthy(run);
    expect(metric(run.metrics, 'strata_guest_records_dropped_total{reason="rate"}')).toBeGreaterThan(0);
  });

  it('resyncs on an unfinished 1 MB header fed a byte a millisecond', async () => {
    const run = await runAgent('slow-header', (sock) => {
      sock.write(`STRATA-GUEST 1 ${'7'.repeat(1_000_000)}`);
      const t = setInterval(() => sock.write('7'), 1);
      return () => clearInterval(t);
    });
    expectHealthy(run);
    expect(metric(run.metrics, 'strata_guest_records_dropped_total{reason="header_too_long"}')).toBe(1);
  });

  it('logs a few of the 60,000 bad lines of each record and counts the rest', async () => {
    let seq = 0;
    const run = await runAgent('bad-lines', (sock) => {
      const send = () => sock.write(badLinesRecord(++seq));
      send();
      const t = setInterval(send, 250);
      return () => clearInterval(t);
    });
    expectHealthy(run);
    expect(run.ticks.filter((t) => guestOf(t, 'evil')).length).toBeGreaterThan(0);
    expect(metric(run.metrics, 'strata_guest_problems_suppressed_total')).toBeGreaterThan(100_000);
  });
});
