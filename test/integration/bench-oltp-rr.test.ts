// The papers' MySQL and request/response workloads through `strata bench`, as a user runs them: real
// MariaDB (Debian's mariadbd) driven by real sysbench oltp_read_write, real sockperf ping-pong, natively
// and in containers on the stack's Docker engine with host networking, NAT, and NAT plus a volume.
// Short runs: the point is that each layer runs, the tools' output is parsed into the promised units,
// and the figures agree with each other (Little's law), not the figures themselves.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, inject, it } from 'vitest';
import { freePort } from '../../bench/layers/common.ts';
import { startNativeServer } from '../../bench/layers/native.ts';
import type { BenchResult, RunRecord } from '../../bench/runner.ts';
import { casesFor, OLTP_THREADS } from '../../bench/workloads/index.ts';

const execFileP = promisify(execFile);
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-bench-oltp-'));
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const LAYERS = ['native', 'container', 'container-nat', 'container-nat-volume'] as const;

it('runs oltp (MariaDB + sysbench) and net-rr (sockperf) natively, in a container, under NAT and NAT + volume', async () => {
  const out = path.join(tmp, 'run');
  const env = { ...process.env, STRATA_LOG_LEVEL: 'warn', DOCKER_HOST: inject('dockerHost') };
  await execFileP(
    'node',
    [
      path.resolve('bin/strata.js'),
      'bench',
      ...['--workload', 'net-rr,oltp', '--layers', LAYERS.join(','), '--repeats', '1', '--duration', '2s'],
      ...['--image', inject('dockerImage'), '--out', out, '--progress', 'none', '--no-html'],
    ],
    { env, timeout: 400_000, maxBuffer: 16 << 20 },
  );
  const result = JSON.parse(await fs.readFile(path.join(out, 'bench.json'), 'utf8')) as BenchResult;
  expect(result.layers.map((l) => [l.layer, l.status])).toEqual(LAYERS.map((l) => [l, 'ok']));
  const run = (c: string, layer: string): RunRecord => {
    const r = result.runs.find((x) => x.case === c && x.layer === layer);
    expect(r?.ok, `${c} @ ${layer}: ${r?.error}`).toBe(true);
    expect(r!.throughput).toBeGreaterThan(0);
    expect(r!.ops).toBeGreaterThan(0);
    // Both sides are counted: the server in the layer and the client on the host.
    expect(r!.layer_cpu_usec).toBeGreaterThan(0);
    expect(r!.client_cpu_usec).toBeGreaterThan(0);
    expect(r!.cpu_per_op_us).toBeGreaterThan(0);
    return r!;
  };

  for (const layer of ['native', 'container', 'container-nat']) {
    const rr = run('net-rr', layer);
    expect([rr.throughput_unit, rr.op_unit, rr.latency_unit]).toEqual([
      'transactions/s',
      'transaction',
      'µs',
    ]);
    expect(rr.latency_p50).toBeGreaterThan(0);
    expect(rr.latency_p99).toBeGreaterThanOrEqual(rr.latency_p50!);
    // One request outstanding: round trips per second × mean round trip is the share of the run
    // spent waiting for replies, at most 1 (it would exceed 1 with requests in flight together).
    const busy = rr.throughput! * (rr.latency_avg! / 1e6);
    expect(busy).toBeGreaterThan(0.5);
    expect(busy).toBeLessThanOrEqual(1.01);
  }
  // NAT adds docker-proxy to every round trip: slower than the same container on the host network.
  expect(run('net-rr', 'container-nat').latency_avg!).toBeGreaterThan(
    run('net-rr', 'container').latency_avg!,
  );

  for (const layer of LAYERS) {
    const tx = run('oltp', layer);
    expect([tx.throughput_unit, tx.op_unit, tx.latency_unit]).toEqual([
      'transactions/s',
      'transaction',
      'ms',
    ]);
    expect(tx.latency_p99).toBeGreaterThanOrEqual(tx.latency_avg!);
    // The median from sysbench's histogram.
    expect(tx.latency_p50).toBeGreaterThan(0);
    expect(tx.latency_p50).toBeLessThanOrEqual(tx.latency_p99!);
    // Little's law: transactions/s × mean transaction time = transactions in flight = the client threads.
    const inFlight = tx.throughput! * (tx.latency_avg! / 1000);
    expect(inFlight).toBeGreaterThan(OLTP_THREADS * 0.8);
    expect(inFlight).toBeLessThanOrEqual(OLTP_THREADS * 1.01);
  }
  // container-nat-volume is for servers that keep data; sockperf keeps none.
  expect(result.skipped).toContainEqual(
    expect.objectContaining({ case: 'net-rr', layer: 'container-nat-volume' }),
  );
  // Its containers are gone.
  const { stdout } = await execFileP(
    'docker',
    ['ps', '-aq', '--filter', `name=strata-bench-${result.run_id}`],
    { env },
  );
  expect(stdout.trim()).toBe('');
}, 420_000);

it('--preset felter expands to the paper set; flags beside it win; a bad preset exits 2 naming the accepted ones', async () => {
  const strata = (args: string[]) =>
    execFileP('node', [path.resolve('bin/strata.js'), 'bench', ...args], {
      env: { ...process.env, STRATA_LOG_LEVEL: 'warn' },
      timeout: 120_000,
    }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
  const bad = await strata(['--preset', 'felterr']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--preset: "felterr" is not accepted; use one of felter');
  const both = await strata(['--preset', 'felter', '--cmd', 'true']);
  expect(both.code).toBe(2);
  expect(both.stderr).toContain('--cmd and --preset exclude each other');
  // The preset's VM accelerator stays; its workloads and layers give way to the flags.
  const out = path.join(tmp, 'preset');
  const r = await strata([
    ...['--preset', 'felter', '--workload', 'cpu', '--layers', 'native', '--repeats', '1'],
    ...['--duration', '1s', '--out', out, '--progress', 'none', '--no-html'],
  ]);
  expect(r.code, r.stderr).toBe(0);
  const result = JSON.parse(await fs.readFile(path.join(out, 'bench.json'), 'utf8')) as BenchResult;
  expect(result.config.workloads).toEqual(['cpu']);
  expect(result.config.layers).toEqual(['native']);
  expect(result.config.vmAccel).toBe('auto');
  const { PRESETS } = await import('../../bench/config.ts');
  expect(PRESETS.felter.workloads).toEqual([
    'cpu',
    'memory',
    'randio',
    'seqio',
    'net-bulk',
    'net-rr',
    'redis',
    'oltp',
  ]);
  expect(PRESETS.felter.layers).toContain('container-nat-volume');
});

it('runs MariaDB and sockperf inside the test VM: data on the guest virtio disk, clients on the host', async () => {
  const out = path.join(tmp, 'vm');
  await execFileP(
    'node',
    [
      path.resolve('bin/strata.js'),
      'bench',
      ...['--workload', 'net-rr,oltp', '--layers', 'vm', '--repeats', '1', '--duration', '2s'],
      ...['--out', out, '--progress', 'none', '--no-html'],
    ],
    { env: { ...process.env, STRATA_LOG_LEVEL: 'warn' }, timeout: 600_000, maxBuffer: 16 << 20 },
  );
  const result = JSON.parse(await fs.readFile(path.join(out, 'bench.json'), 'utf8')) as BenchResult;
  const vm = result.layers.find((l) => l.layer === 'vm');
  expect(vm?.status, vm?.reason).toBe('ok');
  // The database's files are on a filesystem on the guest's second virtio disk, not in its RAM.
  expect(vm?.info.data_fs).toMatch(/^\/dev\/vdb \/mnt\/data ext[24] rw/);
  for (const c of ['net-rr', 'oltp']) {
    const r = result.runs.find((x) => x.case === c && x.layer === 'vm');
    expect(r?.ok, `${c}: ${r?.error}`).toBe(true);
    expect(r!.throughput_unit).toBe('transactions/s');
    expect(r!.throughput).toBeGreaterThan(0);
    // The guest's server runs inside QEMU: its CPU is the QEMU process's, the client's is the host's.
    expect(r!.cpu_source).toMatch(/QEMU|collectors\/vm/);
    expect(r!.layer_cpu_usec).toBeGreaterThan(0);
    expect(r!.client_cpu_usec).toBeGreaterThan(0);
  }
  const tx = result.runs.find((x) => x.case === 'oltp')!;
  const inFlight = tx.throughput! * (tx.latency_avg! / 1000);
  expect(inFlight).toBeGreaterThan(OLTP_THREADS * 0.8);
  expect(inFlight).toBeLessThanOrEqual(OLTP_THREADS * 1.01);
}, 660_000);

it("net-rr's sockperf server binds a port that still holds TIME_WAIT connections (the VM and NAT layers reuse one port)", async () => {
  const port = await freePort();
  // A server that closes first leaves its side of the connection in TIME_WAIT on `port` for 60 s.
  const srv = net.createServer((sock) => sock.end());
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => {
    const c = net.createConnection({ host: '127.0.0.1', port });
    c.on('end', () => c.end());
    c.on('close', () => resolve());
    c.resume();
  });
  await new Promise((resolve) => srv.close(resolve));
  const ss = await execFileP('ss', ['-tanH', 'state', 'time-wait', `( sport = :${port} )`]);
  expect(ss.stdout).toContain(`127.0.0.1:${port}`);
  const [rr] = casesFor('net-rr');
  if (rr?.kind !== 'client-server') throw new Error('net-rr is a client-server case');
  const server = await startNativeServer(
    rr.server({ bind: '127.0.0.1', port, dataDir: tmp }),
    '127.0.0.1',
    port,
  );
  await server.stop();
}, 60_000);
