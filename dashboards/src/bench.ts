// strata bench results (strata_bench): the same workload natively, in a container and in a VM.
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { Board } from './board.ts';
import { DS, InfluxQL, q } from './influxql.ts';
import { BENCH_FIELDS as B, MEASUREMENT, TAG } from './schema.ts';

const runCond = `${q(TAG.runId)} =~ /^$run_id$/ AND ${q(TAG.workload)} =~ /^$workload$/`;
const by = [TAG.workload, TAG.case, TAG.layer].map(q).join(', ');

/** One figure per workload, case and layer: the median of the run's repeats. */
const perLayer = (field: string, as: string) =>
  `SELECT median(${q(field)}) AS ${q(as)} FROM ${q(MEASUREMENT.bench)} WHERE ${runCond} AND ${q(B.ok)} = true AND $timeFilter GROUP BY ${by}`;

export function bench(): Board {
  const b = new Board(
    'strata-bench',
    'strata — bench',
    "`strata bench --influx-url` results (strata_bench, one point per run at its start time): throughput, latency and CPU per op of each workload natively, in a container and in a VM — the papers' comparison table. Pick the run with run_id; widen the time range to the run's date.",
  );
  b.builder
    .withVariable(
      new dashboard.QueryVariableBuilder('run_id')
        .label('run')
        .datasource(DS)
        .query(`SHOW TAG VALUES FROM ${q(MEASUREMENT.bench)} WITH KEY = ${q(TAG.runId)}`)
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalDesc)
        .multi(true)
        .includeAll(true),
    )
    .withVariable(
      new dashboard.QueryVariableBuilder('workload')
        .label('workload')
        .datasource(DS)
        .query(
          `SHOW TAG VALUES FROM ${q(MEASUREMENT.bench)} WITH KEY = ${q(TAG.workload)} WHERE ${q(TAG.runId)} =~ /^$run_id$/`,
        )
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .multi(true)
        .includeAll(true),
    );
  b.row('Comparison table')
    .table(
      'Per workload and layer (median of repeats)',
      {
        unit: 'count',
        description:
          "One row per workload, case and layer: throughput (in the workload's unit), latency p50/p99 (its latency unit), CPU µs per op, QEMU CPU per vCPU CPU (VM rows; 1.0 = free), wall ms.",
      },
      new InfluxQL(
        `SELECT median(${q(B.throughput)}) AS ${q('throughput')}, median(${q(B.latencyP50)}) AS ${q('latency p50')}, median(${q(B.latencyP99)}) AS ${q('latency p99')}, median(${q(B.cpuPerOp)}) AS ${q('CPU µs per op')}, median(${q(B.qemuPerVcpu)}) AS ${q('QEMU per vCPU')}, median(${q(B.wallMs)}) AS ${q('wall ms')}, count(${q(B.wallMs)}) AS ${q('runs')} FROM ${q(MEASUREMENT.bench)} WHERE ${runCond} AND $timeFilter GROUP BY ${by}`,
        { table: true, expect: 'bench' },
      ),
    )
    .bargauge(
      'Throughput per workload and layer',
      {
        unit: 'count',
        description:
          "Median throughput of the ok runs, in the workload's own unit (events/s, MiB/s, IOPS, requests/s).",
      },
      new InfluxQL(perLayer(B.throughput, 'throughput'), {
        alias: '$tag_workload $tag_layer',
        expect: 'bench',
      }),
    )
    .bargauge(
      'CPU per op per workload and layer',
      {
        unit: 'us',
        description:
          "Median host CPU µs per operation of the ok runs; the gap to native is the layer's cost.",
      },
      new InfluxQL(perLayer(B.cpuPerOp, 'CPU µs per op'), {
        alias: '$tag_workload $tag_layer',
        expect: 'bench',
      }),
    )
    .bargauge(
      'Latency p99 per workload and layer',
      { unit: 'count', description: "Median p99 latency of the ok runs, in the workload's latency unit." },
      new InfluxQL(perLayer(B.latencyP99, 'latency p99'), {
        alias: '$tag_workload $tag_layer',
        expect: 'none',
      }),
    )
    .timeseries(
      'Wall time of each run',
      {
        unit: 'ms',
        description:
          'Wall ms of every run at its start time, per workload and layer: repeats that wander show noise.',
      },
      new InfluxQL(
        `SELECT mean(${q(B.wallMs)}) FROM ${q(MEASUREMENT.bench)} WHERE ${runCond} AND $timeFilter GROUP BY time($__interval), ${by} fill(none)`,
        { alias: '$tag_workload $tag_layer', expect: 'bench' },
      ),
    );
  return b;
}
