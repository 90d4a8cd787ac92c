// Every built-in workload through `strata bench` natively (real fio, iperf3, redis-server +
// redis-benchmark on this host), short runs: each tool's output is parsed into the units the report
// promises, with non-zero throughput, operations and CPU. The container and VM layers of the same
// code paths are covered in bench.test.ts.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/runner.ts';

const execFileP = promisify(execFile);
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-bench-wl-'));
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

it('parses fio, iperf3 and redis-benchmark output into throughput, latency and CPU per op', async () => {
  const out = path.join(tmp, 'all');
  await execFileP(
    'node',
    [
      path.resolve('bin/strata.js'),
      'bench',
      ...['--workload', 'randio,seqio,net-bulk,redis', '--layers', 'native', '--repeats', '1'],
      ...['--duration', '2s', '--io-size-mb', '32', '--out', out, '--progress', 'none', '--no-html'],
    ],
    { env: { ...process.env, STRATA_LOG_LEVEL: 'warn' }, timeout: 240_000 },
  );
  const result = JSON.parse(await fs.readFile(path.join(out, 'bench.json'), 'utf8')) as BenchResult;
  const run = (id: string) => {
    const r = result.runs.find((x) => x.case === id);
    expect(r?.ok, `${id}: ${r?.error}`).toBe(true);
    expect(r?.throughput).toBeGreaterThan(0);
    expect(r?.ops).toBeGreaterThan(0);
    expect(r?.cpu_per_op_us).toBeGreaterThan(0);
    return r!;
  };
  const rand = run('randio');
  expect([rand.throughput_unit, rand.op_unit, rand.latency_unit]).toEqual(['IOPS', 'I/O', 'µs']);
  // fio's clat percentiles: p50 ≤ p99, both positive.
  expect(rand.latency_p50).toBeGreaterThan(0);
  expect(rand.latency_p99).toBeGreaterThanOrEqual(rand.latency_p50!);
  const seq = run('seqio');
  expect(seq.throughput_unit).toBe('MB/s');
  const net = run('net-bulk');
  expect([net.throughput_unit, net.op_unit]).toEqual(['Gbit/s', 'MiB']);
  // iperf3 moved ops MiB in ~2 s: the rate and the volume agree within a factor of 2.
  const impliedGbps = (net.ops! * 8 * 1024 * 1024) / 2 / 1e9;
  expect(impliedGbps / net.throughput!).toBeGreaterThan(0.5);
  expect(impliedGbps / net.throughput!).toBeLessThan(2);
  for (const id of ['redis-c1', 'redis-c50']) {
    const r = run(id);
    expect([r.throughput_unit, r.op_unit, r.latency_unit]).toEqual(['requests/s', 'request', 'ms']);
    // Client and server CPU are both counted for client-server workloads.
    expect(r.client_cpu_usec).toBeGreaterThan(0);
    expect(r.layer_cpu_usec).toBeGreaterThan(0);
  }
  // The I/O files were cleaned up with the work dir.
  await expect(fs.access(path.join(out, 'work'))).rejects.toThrow();
});
