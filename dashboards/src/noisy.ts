// Noisy neighbours: incidents, who caused them, who suffered, and the evidence behind each.
import { Board, IDLE_GAP, IDLE_ZERO, incidentAnnotation, VAR } from './board.ts';
import { cond, fillFor, InfluxQL, meanFor, overheadSeries, q, rowCond, select } from './influxql.ts';
import { ALERT_FIELDS as A, LAYER_FIELDS as L, MEASUREMENT, OVERHEAD_FIELDS as O, TAG } from './schema.ts';

/**
 * Incidents fired and not resolved, per hour: every event has alert_id, only resolved ones have
 * ends_at_ms, so firing − resolved = count(alert_id) − 2 × count(ends_at_ms). An incident that
 * resolves in a later hour gives +1 then −1: sum the buckets. fill(0) makes an hour without a
 * resolved event count 0 rather than null.
 */
export function openIncidents(where: string[], by: string[]): string {
  return `SELECT count(${q(A.alertId)}) - 2 * count(${q(A.endsAtMs)}) AS ${q('open')} FROM ${q(MEASUREMENT.alert)} WHERE ${where.join(' AND ')} GROUP BY ${['time(1h)', ...by.map(q)].join(', ')} fill(0)`;
}

export function noisy(): Board {
  const b = new Board(
    'strata-noisy-neighbours',
    'strata — noisy neighbours',
    "NoisyNeighborIO incidents (docs/overhead.md §3): a tenant (container, or VM with a known backing device) takes most of a shared host device while others stall on I/O. Firing and resolved events are in strata_alert; the evidence series are the device shares (strata_container device rows) and the tenants' PSI io stall.",
  );
  b.builder.withVariable(VAR.node()).annotation(incidentAnnotation());
  b.row('Incidents')
    .table(
      'Incident events',
      {
        unit: 'count',
        description:
          'Every firing and resolved event, newest first: antagonist, device, victims, the summary text.',
      },
      new InfluxQL(
        `SELECT ${[A.title, A.victims, A.startsAtMs, A.endsAtMs, A.text].map(q).join(', ')} FROM ${q(MEASUREMENT.alert)} WHERE ${cond.node} AND $timeFilter GROUP BY ${[TAG.node, TAG.device, TAG.antagonist, TAG.status].map(q).join(', ')} ORDER BY time DESC LIMIT 200`,
        { table: true, expect: 'noisy' },
      ),
    )
    .stat(
      'Open incidents',
      {
        unit: 'count',
        thresholds: [1],
        description:
          'Incidents fired in the range and not resolved: firing events minus resolved ones (resolved events carry ends_at_ms). 0 = none open.',
        w: 8,
      },
      new InfluxQL(openIncidents([cond.node, '$timeFilter'], []), { expect: 'noisy' }),
    )
    .bargauge(
      'Antagonists',
      { unit: 'count', description: 'Incidents fired per antagonist and device in the range.', w: 8 },
      new InfluxQL(
        `SELECT count(${q(A.alertId)}) FROM ${q(MEASUREMENT.alert)} WHERE ${q(TAG.status)} = 'firing' AND ${cond.node} AND $timeFilter GROUP BY ${[TAG.node, TAG.antagonist, TAG.device].map(q).join(', ')}`,
        { expect: 'noisy' },
      ),
    )
    .table(
      'Victims',
      {
        unit: 'count',
        description: 'The tenants that stalled in each incident (comma-separated), per antagonist.',
        w: 8,
      },
      new InfluxQL(
        `SELECT last(${q(A.victims)}) AS ${q('victims')} FROM ${q(MEASUREMENT.alert)} WHERE ${q(TAG.status)} = 'firing' AND ${cond.node} AND $timeFilter GROUP BY ${[TAG.node, TAG.antagonist, TAG.device].map(q).join(', ')}`,
        { table: true, expect: 'noisy' },
      ),
    );
  b.row('Evidence')
    .timeseries(
      'Incident evidence: shares and stall',
      {
        unit: 'ratio',
        description:
          "At each firing event: the antagonist's share of the device's ops and bytes, the victims' io stall now and at baseline, and the correlation of the antagonist's I/O with the victims' stall (0–100 %).",
      },
      new InfluxQL(
        `SELECT ${[A.antagonistIopsShare, A.antagonistBytesShare, A.victimStall, A.victimBaselineStall, A.correlation].map((f) => `mean(${q(f)}) AS ${q(f)}`).join(', ')} FROM ${q(MEASUREMENT.alert)} WHERE ${cond.node} AND $timeFilter GROUP BY time($__interval), ${[TAG.node, TAG.antagonist].map(q).join(', ')}`,
        { expect: 'noisy' },
      ),
    )
    .timeseries(
      'Device shares per tenant',
      {
        unit: 'ratio',
        thresholds: [0.8],
        description: `iops_share_ratio: each container's share of a host device's ops (0 = none, 1.0 = all). The antagonist of an incident holds most of it. ${IDLE_GAP}`,
      },
      new InfluxQL(overheadSeries([O.iopsShare], { by: [TAG.node, TAG.name, TAG.device] }), {
        alias: '$tag_name $tag_device',
        expect: 'noisy',
      }),
    )
    .timeseries(
      "Tenants' I/O stall",
      {
        unit: 'ratio',
        thresholds: [0.1, 0.3],
        description:
          'PSI io some: share of time each container had tasks waiting on I/O. Victims rise while the antagonist runs.',
      },
      new InfluxQL(
        select({
          select: [{ field: L.psiIoSome, agg: meanFor(L.psiIoSome) }],
          from: q(MEASUREMENT.container),
          where: [cond.node, ...rowCond(L.psiIoSome)],
          groupBy: [TAG.node, TAG.name],
          fill: fillFor(L.psiIoSome),
        }),
        { alias: '$tag_name', expect: 'noisy' },
      ),
    )
    .timeseries(
      'Host device IOPS',
      { unit: 'iops', description: `The shared devices' own ops per second. ${IDLE_ZERO}` },
      new InfluxQL(
        select({
          select: [{ field: L.iops, agg: meanFor(L.iops) }],
          from: q(MEASUREMENT.host),
          where: [cond.node, ...rowCond(L.iops)],
          groupBy: [TAG.node, TAG.device],
          fill: fillFor(L.iops),
        }),
        { alias: '$tag_node $tag_device', expect: 'noisy' },
      ),
    );
  return b;
}
