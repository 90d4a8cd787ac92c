// The terminal table, laid out like the papers' comparison tables: one row per workload case and
// layer, medians with min–max, and the overhead against native in percent.
import { type BenchResult, fmt, type Stat, type Summary } from '../runner.ts';

const range = (s: Stat | undefined) =>
  s ? (s.min === s.max ? fmt(s.median) : `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`) : '–';
const pct = (v: number | undefined) => (v === undefined ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);

export function renderTable(result: BenchResult): string {
  const header = [
    'workload',
    'layer',
    'throughput (median [min–max])',
    'latency p50',
    'latency p99',
    'CPU per op',
    'Δ tput vs native',
    'Δ CPU/op vs native',
    'runs',
  ];
  const rows: string[][] = result.summaries.map((s: Summary) => [
    s.case,
    s.layer,
    s.throughput ? `${range(s.throughput)} ${s.throughput_unit}` : 'failed',
    s.latency_p50 ? `${fmt(s.latency_p50.median)} ${s.latency_unit}` : '–',
    s.latency_p99 ? `${fmt(s.latency_p99.median)} ${s.latency_unit}` : '–',
    s.cpu_per_op_us ? `${range(s.cpu_per_op_us)} µs/${s.op_unit}` : '–',
    s.layer === 'native' ? 'baseline' : pct(s.throughput_overhead_pct),
    s.layer === 'native' ? 'baseline' : pct(s.cpu_overhead_pct),
    s.failed ? `${s.runs - s.failed}/${s.runs}` : String(s.runs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [
    `strata bench ${result.run_id} on ${result.host.hostname} (${result.host.cpus} CPUs, ${result.host.cpu_model}), ` +
      `${result.config.repeats} repeat(s) of ${result.config.durationMs / 1000} s, ${result.config.concurrent ? 'layers concurrently' : 'layers one after another'}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ];
  const notes: string[] = [];
  for (const l of result.layers) {
    if (l.status === 'unavailable') notes.push(`layer ${l.layer} did not run: ${l.reason}`);
    else if (l.status === 'skipped')
      continue; // its cases are listed as skipped below
    else if (Object.keys(l.info).length) {
      notes.push(
        `layer ${l.layer}: ${Object.entries(l.info)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')}`,
      );
    }
  }
  for (const s of result.skipped) notes.push(`${s.case} @ ${s.layer} skipped: ${s.reason}`);
  for (const r of result.runs)
    if (!r.ok) notes.push(`${r.case} @ ${r.layer} run ${r.repeat} failed: ${r.error}`);
  if (notes.length) out.push('', ...notes);
  out.push(
    '',
    'Δ tput = (native − layer) ÷ native on median throughput (positive: slower than native); ' +
      'Δ CPU/op = (layer − native) ÷ native on median host CPU per operation (positive: costlier).',
  );
  return `${out.join('\n')}\n`;
}
