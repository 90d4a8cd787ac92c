// strata itself: what InfluxDB shows of the pipeline's health. The agent's and processor's own
// metrics (consumer lag, dead letters, write errors, dropped points) are Prometheus metrics on
// /metrics and are not written to InfluxDB.
import { Board, VAR } from './board.ts';
import { cond, InfluxQL, q, rowCond, select } from './influxql.ts';
import { ALERT_FIELDS as A, LAYER_FIELDS as L, MEASUREMENT, OVERHEAD_FIELDS as O, TAG } from './schema.ts';

export function self(): Board {
  const b = new Board(
    'strata-self',
    'strata — pipeline health',
    "What InfluxDB shows of strata itself: points arriving per node, the interval each rate covers (longer than the tick = lost ticks or a stalled agent), time since each node's last point, entities tracked, alert events. Consumer lag, dead letters (strata.dlq), InfluxDB write errors and dropped points are Prometheus metrics on the agent's and processor's /metrics (docs/processor.md, docs/agent.md), not stored in InfluxDB: scrape them with Prometheus and alert with deploy/grafana/prometheus-rules.example.yaml.",
  );
  b.builder.withVariable(VAR.node());
  // Host points counted and dated by interval_seconds, which every host point with rates carries
  // and which is never left out (a rate such as cpu_cores may be: pipeline.output.zeroRates).
  const hostRow = [cond.node, ...rowCond(L.intervalSeconds)];
  b.row('Ingestion')
    .timeseries(
      'Host points per node',
      {
        unit: 'count',
        axisLabel: 'points per interval',
        description:
          'strata_host entity points stored per node per interval: one per tick. A drop to 0 = the node stopped reporting (agent, Kafka or processor).',
      },
      new InfluxQL(
        select({
          select: [{ field: L.intervalSeconds, agg: 'count' }],
          from: q(MEASUREMENT.host),
          where: hostRow,
          groupBy: [TAG.node],
          fill: '0',
        }),
        { alias: '$tag_node', expect: 'host' },
      ),
    )
    .timeseries(
      'Interval covered by each rate',
      {
        unit: 's',
        thresholds: [5, 30],
        description:
          'interval_seconds of the host rows: the time between two samples of a node. Equal to the tick (STRATA_INTERVAL) when healthy; longer = lost ticks, an agent that stalled, or a processor restart.',
      },
      new InfluxQL(
        select({
          select: [{ field: L.intervalSeconds, agg: 'max' }],
          from: q(MEASUREMENT.host),
          where: hostRow,
          groupBy: [TAG.node],
        }),
        { alias: '$tag_node', expect: 'host' },
      ),
    )
    .table(
      'Last point per node',
      {
        unit: 'count',
        description:
          "Time of each node's last host point in the range: a node far behind now stopped reporting.",
      },
      new InfluxQL(
        select({
          select: [{ field: L.intervalSeconds, agg: 'last' }],
          from: q(MEASUREMENT.host),
          where: hostRow,
          groupBy: [TAG.node],
          timeSeries: false,
        }),
        { table: true, expect: 'host' },
      ),
    )
    .timeseries(
      'Entities per node',
      {
        unit: 'count',
        description:
          'Containers, VMs and VMs joined with a guest view, per node (strata_overhead layer=node).',
      },
      new InfluxQL(
        select({
          select: [
            { field: O.containers, agg: 'max', as: 'containers' },
            { field: O.vms, agg: 'max', as: 'VMs' },
            { field: O.vmsWithGuest, agg: 'max', as: 'VMs with guest view' },
          ],
          from: q(MEASUREMENT.overhead),
          where: [`${q(TAG.layer)} = 'node'`, cond.node],
          groupBy: [TAG.node],
        }),
        { expect: 'host' },
      ),
    )
    .timeseries(
      'Alert events',
      { unit: 'count', description: 'strata_alert events per interval, by status (firing, resolved).' },
      new InfluxQL(
        select({
          select: [{ field: A.alertId, agg: 'count' }],
          from: q(MEASUREMENT.alert),
          where: [cond.node],
          groupBy: [TAG.status],
          fill: '0',
        }),
        { alias: '$tag_status', expect: 'noisy' },
      ),
    );
  return b;
}
