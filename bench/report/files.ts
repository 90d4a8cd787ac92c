// JSON (everything), CSV (one line per run, and one per summary row), and the InfluxDB write of the
// `strata_bench` measurement.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConnectionError } from '../../lib/errors.ts';
import type { Point } from '../../schemas/point.ts';
import { encodePoints } from '../../sinks/influxdb/line-protocol.ts';
import type { BenchResult, RunRecord, Summary } from '../runner.ts';

const RUN_COLUMNS: (keyof RunRecord)[] = [
  'run_id',
  'workload',
  'case',
  'layer',
  'mode',
  'repeat',
  'started_at',
  'ok',
  'throughput',
  'throughput_unit',
  'ops',
  'op_unit',
  'latency_avg',
  'latency_p50',
  'latency_p99',
  'latency_unit',
  'wall_ms',
  'cpu_usec',
  'layer_cpu_usec',
  'client_cpu_usec',
  'inner_cpu_usec',
  'vcpu_usec',
  'qemu_per_vcpu',
  'cpu_per_op_us',
  'cpu_source',
  'error',
];

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function runsCsv(runs: readonly RunRecord[]): string {
  const lines = [RUN_COLUMNS.join(',')];
  for (const r of runs) lines.push(RUN_COLUMNS.map((k) => csvCell(r[k])).join(','));
  return `${lines.join('\n')}\n`;
}

export function summaryCsv(summaries: readonly Summary[]): string {
  const cols = [
    'workload',
    'case',
    'layer',
    'mode',
    'runs',
    'failed',
    'throughput_median',
    'throughput_min',
    'throughput_max',
    'throughput_unit',
    'latency_p50_median',
    'latency_p99_median',
    'latency_unit',
    'cpu_per_op_us_median',
    'cpu_per_op_us_min',
    'cpu_per_op_us_max',
    'op_unit',
    'throughput_overhead_pct',
    'cpu_overhead_pct',
  ];
  const lines = [cols.join(',')];
  for (const s of summaries) {
    lines.push(
      [
        s.workload,
        s.case,
        s.layer,
        s.mode,
        s.runs,
        s.failed,
        s.throughput?.median,
        s.throughput?.min,
        s.throughput?.max,
        s.throughput_unit,
        s.latency_p50?.median,
        s.latency_p99?.median,
        s.latency_unit,
        s.cpu_per_op_us?.median,
        s.cpu_per_op_us?.min,
        s.cpu_per_op_us?.max,
        s.op_unit,
        s.throughput_overhead_pct,
        s.cpu_overhead_pct,
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function writeFiles(result: BenchResult, dir: string): Promise<Record<string, string>> {
  await fs.mkdir(dir, { recursive: true });
  const files = {
    json: path.join(dir, 'bench.json'),
    runsCsv: path.join(dir, 'runs.csv'),
    summaryCsv: path.join(dir, 'summary.csv'),
  };
  await fs.writeFile(files.json, `${JSON.stringify(result, null, 2)}\n`);
  await fs.writeFile(files.runsCsv, runsCsv(result.runs));
  await fs.writeFile(files.summaryCsv, summaryCsv(result.summaries));
  return files;
}

/** One point per run, tagged run_id, workload, case, layer, mode; the run's start time. */
export function benchPoints(result: BenchResult): Point[] {
  const points: Point[] = [];
  for (const r of result.runs) {
    const fields: Point['fields'] = { ok: r.ok, repeat: r.repeat, wall_ms: r.wall_ms };
    const num = (k: keyof RunRecord) => {
      const v = r[k];
      if (typeof v === 'number') fields[k] = v;
    };
    for (const k of [
      'throughput',
      'ops',
      'latency_avg',
      'latency_p50',
      'latency_p99',
      'cpu_usec',
      'layer_cpu_usec',
      'client_cpu_usec',
      'inner_cpu_usec',
      'vcpu_usec',
      'qemu_per_vcpu',
      'cpu_per_op_us',
    ] as const) {
      num(k);
    }
    if (r.throughput_unit) fields.throughput_unit = r.throughput_unit;
    if (r.latency_unit) fields.latency_unit = r.latency_unit;
    if (r.error) fields.error = r.error.slice(0, 1000);
    points.push({
      measurement: 'strata_bench',
      tags: {
        run_id: r.run_id,
        workload: r.workload,
        case: r.case,
        layer: r.layer,
        mode: r.mode,
        host: result.host.hostname,
      },
      fields,
      timeMs: Date.parse(r.started_at),
    });
  }
  return points;
}

/** Writes line protocol to /api/v2/write (bucket = database), falling back to v1 /write on 404. */
export async function writeInflux(
  result: BenchResult,
  opts: { url: string; database: string; token?: string },
): Promise<number> {
  const lines: string[] = [];
  encodePoints(benchPoints(result), lines);
  if (!lines.length) return 0;
  const body = `${lines.join('\n')}\n`;
  const base = opts.url.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (opts.token) headers.authorization = `Token ${opts.token}`;
  const db = encodeURIComponent(opts.database);
  const attempt = async (url: string) => {
    try {
      return await fetch(url, { method: 'POST', body, headers });
    } catch (err) {
      throw new ConnectionError(`InfluxDB at ${base} unreachable: ${(err as Error).message}`, { cause: err });
    }
  };
  let res = await attempt(`${base}/api/v2/write?bucket=${db}&precision=ms`);
  if (res.status === 404) res = await attempt(`${base}/write?db=${db}&precision=ms`);
  if (res.status !== 204 && res.status !== 200) {
    throw new ConnectionError(
      `InfluxDB write to ${base} (database ${opts.database}) failed: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`,
      { retriable: res.status >= 500 },
    );
  }
  return lines.length;
}
