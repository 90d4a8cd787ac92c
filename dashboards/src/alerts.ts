// Grafana-managed alert rules (provisioning file format) and contact point examples. Rules read
// InfluxDB through the provisioned data source (uid strata-influxql, deploy/grafana/provisioning);
// alert rules cannot use a dashboard's datasource variable.
import * as alerting from '@grafana/grafana-foundation-sdk/alerting';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as expr from '@grafana/grafana-foundation-sdk/expr';
import { type Expect, InfluxQL, overheadSeries, q, rowCond } from './influxql.ts';
import { openIncidents } from './noisy.ts';
import { LAYER_FIELDS as L, MEASUREMENT, OVERHEAD_FIELDS as O, TAG } from './schema.ts';

export const ALERT_DATASOURCE_UID = 'strata-influxql';
export const ALERT_FOLDER = 'strata';

interface RuleSpec {
  uid: string;
  title: string;
  query: string;
  /** Which scenario of the integration test must give the query data. */
  expect: Expect;
  /** Seconds of data the query sees ($timeFilter). */
  window: number;
  reducer: 'last' | 'max' | 'mean' | 'sum';
  op: 'gt' | 'lt';
  threshold: number;
  for: string;
  summary: string;
  description: string;
  noData: 'OK' | 'NoData' | 'Alerting';
}

function rule(s: RuleSpec): alerting.RuleBuilder {
  const ds = { type: '__expr__', uid: '__expr__' };
  return new alerting.RuleBuilder(s.title)
    .uid(s.uid)
    .condition('C')
    .withQuery(
      new alerting.QueryBuilder('A')
        .datasourceUid(ALERT_DATASOURCE_UID)
        .relativeTimeRange({ from: s.window, to: 0 })
        .model(
          new InfluxQL(s.query, {
            expect: s.expect,
            datasource: { type: 'influxdb', uid: ALERT_DATASOURCE_UID },
          }),
        ),
    )
    .withQuery(
      new alerting.QueryBuilder('B')
        .datasourceUid('__expr__')
        .model(
          new expr.TypeReduceBuilder()
            .refId('B')
            .datasource(ds)
            .expression('A')
            .reducer(s.reducer) as cog.Builder<cog.Dataquery>,
        ),
    )
    .withQuery(
      new alerting.QueryBuilder('C').datasourceUid('__expr__').model(
        new expr.TypeThresholdBuilder()
          .refId('C')
          .datasource(ds)
          .expression('B')
          .conditions([{ evaluator: { type: s.op, params: [s.threshold] } }]) as cog.Builder<cog.Dataquery>,
      ),
    )
    .forDuration(s.for)
    .noDataState(s.noData)
    .execErrState('Error')
    .annotations({ summary: s.summary, description: s.description })
    .labels({ team: 'strata' });
}

export const RULE_SPECS: RuleSpec[] = [
  {
    uid: 'strata-noisy-neighbour-open',
    title: 'Noisy neighbour incident open',
    query: openIncidents(['$timeFilter'], [TAG.node, TAG.device, TAG.antagonist]),
    expect: 'noisy',
    window: 24 * 3600,
    reducer: 'sum',
    op: 'gt',
    threshold: 0,
    for: '0s',
    summary: '{{ $labels.antagonist }} dominates I/O on {{ $labels.node }}:{{ $labels.device }}',
    description:
      'A NoisyNeighborIO incident fired by the processor (strata_alert) in the last 24 h has not resolved. See the "strata — noisy neighbours" dashboard for the victims and the evidence.',
    noData: 'OK',
  },
  {
    uid: 'strata-vm-cpu-overhead',
    title: 'VM hypervisor CPU per guest CPU high',
    // Every node: alert rules have no dashboard variables.
    query: overheadSeries([O.cpuOverheadRatio], { by: [TAG.node, TAG.name], timeSeries: false }).replace(
      `${q(TAG.node)} =~ /^$node$/ AND `,
      '',
    ),
    expect: 'vm',
    window: 300,
    reducer: 'last',
    op: 'gt',
    threshold: 2,
    for: '10m',
    summary: "VM {{ $labels.name }} on {{ $labels.node }} costs {{ $values.B }}× its guest's CPU",
    description:
      "cpu_overhead_ratio (hypervisor CPU ÷ guest busy CPU, docs/overhead.md §2.1) averaged over 5 min stayed above 2 for 10 min: the VM costs more than twice its guest's own work. 1.0 = free virtualization.",
    noData: 'OK',
  },
  {
    uid: 'strata-node-silent',
    title: 'Node stopped reporting',
    // Host points per minute, empty minutes as 0, averaged over the last three minute buckets.
    // The last bucket is the minute in progress and can be empty on a live node (10 s ticks, an
    // evaluation early in the minute): judged alone it would fire on every evaluation that lands
    // there. Counts are whole, so the average is below 1/3 only when all three buckets are empty.
    // Counted by interval_seconds, on every host point with rates and never left out (a rate at 0
    // may be: pipeline.output.zeroRates).
    query: `SELECT moving_average(count(${q(L.intervalSeconds.field)}), 3) AS ${q('points')} FROM ${q(MEASUREMENT.host)} WHERE ${[...rowCond(L.intervalSeconds), '$timeFilter'].join(' AND ')} GROUP BY time(1m), ${q(TAG.node)} fill(0)`,
    expect: 'host',
    window: 3600,
    reducer: 'last',
    op: 'lt',
    threshold: 0.3,
    for: '1m',
    summary: '{{ $labels.node }} has written no host point for over 2 minutes',
    description:
      'No strata_host point from this node in the last three minute buckets (the one in progress and the two before): the agent, Kafka or the processor stopped. Nodes silent for over an hour leave the query; the processor also resolves their incidents as node_silent.',
    noData: 'OK',
  },
];

/** The provisioning file Grafana loads from provisioning/alerting/. */
export function alertRulesFile(): object {
  return escapeDollars({
    apiVersion: 1,
    groups: [
      {
        orgId: 1,
        name: 'strata',
        folder: ALERT_FOLDER,
        interval: '1m',
        rules: RULE_SPECS.map((s) => {
          const r = rule(s).build() as unknown as Record<string, unknown>;
          // Provisioning files take the rule without the API's placement fields.
          const { folderUID: _f, ruleGroup: _g, orgID: _o, ...rest } = r;
          return rest;
        }),
      },
    ],
  });
}

/**
 * Grafana expands $VAR and ${VAR} from its environment in provisioning files and reads $$ as a
 * literal $: the rules' $timeFilter and {{ $labels.x }} are written as $$.
 */
function escapeDollars(v: unknown): object {
  return JSON.parse(JSON.stringify(v), (_k, x) => (typeof x === 'string' ? x.replaceAll('$', '$$$$') : x));
}

/** Contact points and a policy: Alertmanager and a webhook, URLs from Grafana's environment. */
export function contactPointsFile(): object {
  const am = new alerting.ContactPointBuilder()
    .uid('strata-alertmanager')
    .name('strata-alertmanager')
    .type('alertmanager')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana expands ${VAR} from its environment in provisioning files
    .settings({ url: '${ALERTMANAGER_URL}' })
    .build();
  const hook = new alerting.ContactPointBuilder()
    .uid('strata-webhook')
    .name('strata-webhook')
    .type('webhook')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana expands ${VAR} from its environment in provisioning files
    .settings({ url: '${STRATA_ALERT_WEBHOOK_URL}', httpMethod: 'POST' })
    .build();
  return {
    apiVersion: 1,
    contactPoints: [
      { orgId: 1, name: am.name, receivers: [{ uid: am.uid, type: am.type, settings: am.settings }] },
      { orgId: 1, name: hook.name, receivers: [{ uid: hook.uid, type: hook.type, settings: hook.settings }] },
    ],
    policies: [
      {
        orgId: 1,
        receiver: 'strata-alertmanager',
        group_by: ['grafana_folder', 'alertname', 'node'],
        // A matching route with `continue` lets the next one match too: strata's alerts reach
        // both receivers (a matched child route replaces the default receiver, it does not add to it).
        routes: [
          { receiver: 'strata-alertmanager', object_matchers: [['team', '=', 'strata']], continue: true },
          { receiver: 'strata-webhook', object_matchers: [['team', '=', 'strata']] },
        ],
      },
    ],
  };
}

/** Processor and agent self-metrics live on /metrics: these rules are for Prometheus, not Grafana. */
export function prometheusRulesFile(): object {
  return {
    groups: [
      {
        name: 'strata',
        rules: [
          {
            alert: 'StrataProcessorLagGrowing',
            expr: 'sum by (instance) (strata_processor_consumer_lag_messages) > 1000 and sum by (instance) (delta(strata_processor_consumer_lag_messages[10m])) > 0',
            for: '10m',
            annotations: {
              summary: 'processor {{ $labels.instance }} is {{ $value }} messages behind and falling further',
            },
          },
          {
            alert: 'StrataDeadLettersGrowing',
            expr: 'sum by (instance) (increase(strata_processor_dlq_messages_total[10m])) > 0',
            for: '0m',
            annotations: {
              summary:
                'processor {{ $labels.instance }} routed {{ $value }} messages to the dead-letter topic in 10 min',
            },
          },
          {
            alert: 'StrataInfluxWriteErrors',
            expr: 'sum by (instance) (increase(strata_sink_write_errors_total[10m])) > 0 or sum by (instance) (increase(strata_sink_points_dropped_total[10m])) > 0',
            for: '5m',
            annotations: { summary: '{{ $labels.instance }} fails to write to InfluxDB or drops points' },
          },
          {
            alert: 'StrataAgentSilent',
            expr: 'time() - strata_agent_last_tick_timestamp_seconds > 60',
            for: '2m',
            annotations: {
              summary: 'agent {{ $labels.instance }} has not completed a tick for over a minute',
            },
          },
        ],
      },
    ],
  };
}
