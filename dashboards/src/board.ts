// A dashboard under construction: the foundation SDK's builders plus the conventions every strata
// dashboard follows (datasource variable, one unit per panel, thresholds where a line means
// something), and a record of which test scenario must give each query data.
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import {
  cond,
  DS,
  type Expect,
  fromLayers,
  type InfluxQL,
  q,
  TICK_MIN_INTERVAL,
  TICK_VAR,
} from './influxql.ts';
import { ALERT_FIELDS, LAYERS, type Layer, MEASUREMENT, TAG, type Unit } from './schema.ts';

/** Grafana unit ids; cores have none of their own, so they get a suffix. */
const GRAFANA_UNIT: Record<Unit, string> = {
  cores: 'suffix: cores',
  ratio: 'percentunit',
  per_second: 'short',
  iops: 'iops',
  Bps: 'Bps',
  ms: 'ms',
  pps: 'pps',
  us: 'µs',
  bytes: 'bytes',
  count: 'short',
  s: 's',
};

const AXIS_LABEL: Record<Unit, string> = {
  cores: 'CPU cores',
  ratio: 'share (0–100 %)',
  per_second: 'per second',
  iops: 'ops/s',
  Bps: 'bytes/s',
  ms: 'ms per op',
  pps: 'packets/s',
  us: 'µs per packet',
  bytes: 'bytes',
  count: 'count',
  s: 'seconds',
};

/** Said in the description of every panel on device or interface rows (schema.ts, Field.idle). */
export const IDLE_ZERO =
  "Each point is the mean over the bucket's time: Σ values × tick ÷ bucket. An idle device or interface writes a point only when it turns idle and once a minute, so a mean over the points written would average its busy ticks only; fill(0): a bucket without points reads 0. The dashboard variable tick_ms must be the agents' interval (docs/deploy.md, Grafana); the panel's min interval is one tick.";
export const IDLE_GAP =
  'The mean over the ticks with ops (busy ticks), not over time: no ops, no figure, so an idle device is a gap (fill(none)), not 0.';

/** Said in the description of a dashboard that has IDLE_ZERO panels. */
const TICK_NOTE = `Device and interface rates are averaged over time with the hidden variable ${TICK_VAR} (the agents' interval in ms, default 1000): set it to the agents' interval (Dashboard settings → Variables, or ?var-${TICK_VAR}=10000).`;

export interface PanelOpts {
  unit: Unit;
  description: string;
  /** Values at which a line is drawn (first step green, then orange, then red). */
  thresholds?: number[];
  axisLabel?: string;
  w?: number;
  h?: number;
  stack?: boolean;
  min?: number;
  /** Stat panels: how the series reduce to one value (default the last one). */
  calc?: 'lastNotNull' | 'sum';
}

function thresholdSteps(values: number[] = []): dashboard.ThresholdsConfigBuilder {
  const colors = ['orange', 'red'];
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps([
      { value: null, color: 'green' },
      ...values.map((value, i) => ({ value, color: colors[Math.min(i, colors.length - 1)]! })),
    ]);
}

/** Agent intervals offered for tick_ms, in ms; the first is the default (the agent's 1 s). */
const TICK_VALUES = ['1000', '2000', '5000', '10000', '15000', '30000', '60000'];

export const VAR = {
  datasource: () =>
    new dashboard.DatasourceVariableBuilder('datasource')
      .label('InfluxDB (InfluxQL)')
      .type('influxdb')
      .description('Any InfluxDB data source in InfluxQL mode: 1.8+, 2.x with a DBRP mapping, 3.x'),
  node: () =>
    new dashboard.QueryVariableBuilder('node')
      .label('node')
      .datasource(DS)
      .query(`SHOW TAG VALUES FROM ${q(MEASUREMENT.host)} WITH KEY = ${q(TAG.node)}`)
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .sort(dashboard.VariableSort.AlphabeticalAsc)
      .multi(true)
      .includeAll(true),
  layer: (layers: readonly Layer[] = LAYERS) =>
    new dashboard.CustomVariableBuilder('layer')
      .label('layer')
      .values(layers.join(','))
      .multi(true)
      .includeAll(true),
  entity: () =>
    new dashboard.QueryVariableBuilder('entity')
      .label('entity')
      .datasource(DS)
      .query(
        `SHOW TAG VALUES FROM ${fromLayers()} WITH KEY = ${q(TAG.name)} WHERE ${cond.node} AND ${cond.layer}`,
      )
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .sort(dashboard.VariableSort.AlphabeticalAsc)
      .multi(true)
      .includeAll(true),
  /**
   * The agents' tick in ms, for the device and interface rates averaged over time
   * (influxql.ts, Select.agg `timeMean`): hidden, set once per deployment.
   */
  tick: () =>
    new dashboard.CustomVariableBuilder(TICK_VAR)
      .label("agents' interval (ms)")
      .description(
        "The agents' tick in ms (agent interval): device and interface rates are Σ values × tick ÷ bucket, and a panel's min interval is one tick.",
      )
      .values(TICK_VALUES.join(','))
      .current({ text: TICK_VALUES[0]!, value: TICK_VALUES[0]! })
      .hide(dashboard.VariableHide.HideVariable),
  device: () =>
    new dashboard.QueryVariableBuilder('device')
      .label('device')
      .datasource(DS)
      .query(
        `SHOW TAG VALUES FROM ${fromLayers()} WITH KEY = ${q(TAG.device)} WHERE ${cond.node} AND ${cond.layer} AND ${cond.entity}`,
      )
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .sort(dashboard.VariableSort.AlphabeticalAsc)
      .multi(true)
      .includeAll(true),
};

/** Noisy-neighbour incidents (strata_alert) as annotations: firing and resolved events. */
export function incidentAnnotation(): dashboard.AnnotationQueryBuilder {
  const a = new dashboard.AnnotationQueryBuilder()
    .name('noisy-neighbour incidents')
    .datasource(DS)
    .enable(true)
    .iconColor('red');
  // The InfluxDB annotation editor stores its query and column mapping beside the standard keys.
  const built = a.build() as dashboard.AnnotationQuery & Record<string, unknown>;
  Object.assign(built, {
    query: `SELECT ${[ALERT_FIELDS.title, ALERT_FIELDS.text, ALERT_FIELDS.victims].map(q).join(', ')} FROM ${q(MEASUREMENT.alert)} WHERE ${cond.node} AND $timeFilter`,
    titleColumn: ALERT_FIELDS.title,
    textColumn: ALERT_FIELDS.text,
    tagsColumn: `${TAG.status},${TAG.device},${TAG.antagonist}`,
  });
  return { build: () => built } as unknown as dashboard.AnnotationQueryBuilder;
}

export class Board {
  readonly builder: dashboard.DashboardBuilder;
  /** `${panel title}#${refId}` → the scenario that must give it data. */
  readonly expects = new Map<string, Expect>();
  private readonly titles = new Set<string>();
  private hasTick = false;

  constructor(
    readonly uid: string,
    title: string,
    private readonly description: string,
  ) {
    this.builder = new dashboard.DashboardBuilder(title)
      .uid(uid)
      .description(description)
      .tags(['strata'])
      .editable()
      .refresh('10s')
      .time({ from: 'now-1h', to: 'now' })
      .timezone('browser')
      .tooltip(dashboard.DashboardCursorSync.Crosshair)
      .withVariable(VAR.datasource());
  }

  /**
   * Records the panel's targets; true when one reads the tick variable, which the dashboard then
   * gets (once, with a note in its description) and the panel takes as its min interval.
   */
  private record(title: string, targets: InfluxQL[]): boolean {
    if (this.titles.has(title)) throw new Error(`${this.uid}: two panels titled "${title}"`);
    this.titles.add(title);
    let tick = false;
    for (const t of targets) {
      const built = t.build() as unknown as { refId: string; query: string };
      this.expects.set(`${title}#${built.refId}`, t.expect);
      if (built.query.includes(`$${TICK_VAR}`)) tick = true;
    }
    if (tick && !this.hasTick) {
      this.hasTick = true;
      this.builder.withVariable(VAR.tick()).description(`${this.description} ${TICK_NOTE}`);
    }
    return tick;
  }

  row(title: string): this {
    this.builder.withRow(new dashboard.RowBuilder(title));
    return this;
  }

  timeseries(title: string, o: PanelOpts, ...targets: InfluxQL[]): this {
    const tick = this.record(title, targets);
    const p = new timeseries.PanelBuilder()
      .title(title)
      .description(o.description)
      .datasource(DS)
      .unit(GRAFANA_UNIT[o.unit])
      .axisLabel(o.axisLabel ?? AXIS_LABEL[o.unit])
      .span(o.w ?? 12)
      .height(o.h ?? 8)
      .lineWidth(1)
      .fillOpacity(o.stack ? 40 : 10)
      .spanNulls(false)
      .legend(
        new common.VizLegendOptionsBuilder()
          .displayMode(common.LegendDisplayMode.Table)
          .placement(common.LegendPlacement.Bottom)
          .showLegend(true)
          .calcs(['mean', 'max', 'lastNotNull']),
      )
      .tooltip(
        new common.VizTooltipOptionsBuilder()
          .mode(common.TooltipDisplayMode.Multi)
          .sort(common.SortOrder.Descending),
      )
      .thresholds(thresholdSteps(o.thresholds));
    if (o.min !== undefined) p.min(o.min);
    if (o.thresholds?.length)
      p.thresholdsStyle(
        new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed),
      );
    if (o.stack) p.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
    if (tick) p.interval(TICK_MIN_INTERVAL);
    for (const t of targets) p.withTarget(t);
    this.builder.withPanel(p);
    return this;
  }

  stat(title: string, o: PanelOpts, ...targets: InfluxQL[]): this {
    const tick = this.record(title, targets);
    const p = new stat.PanelBuilder()
      .title(title)
      .description(o.description)
      .datasource(DS)
      .unit(GRAFANA_UNIT[o.unit])
      .span(o.w ?? 6)
      .height(o.h ?? 5)
      .graphMode(common.BigValueGraphMode.Area)
      .colorMode(common.BigValueColorMode.Value)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs([o.calc ?? 'lastNotNull']).values(false))
      .thresholds(thresholdSteps(o.thresholds));
    if (tick) p.interval(TICK_MIN_INTERVAL);
    for (const t of targets) p.withTarget(t);
    this.builder.withPanel(p);
    return this;
  }

  bargauge(title: string, o: PanelOpts, ...targets: InfluxQL[]): this {
    const tick = this.record(title, targets);
    const p = new bargauge.PanelBuilder()
      .title(title)
      .description(o.description)
      .datasource(DS)
      .unit(GRAFANA_UNIT[o.unit])
      .span(o.w ?? 12)
      .height(o.h ?? 8)
      .orientation(common.VizOrientation.Horizontal)
      .displayMode(common.BarGaugeDisplayMode.Gradient)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
      .thresholds(thresholdSteps(o.thresholds));
    if (o.min !== undefined) p.min(o.min);
    if (tick) p.interval(TICK_MIN_INTERVAL);
    for (const t of targets) p.withTarget(t);
    this.builder.withPanel(p);
    return this;
  }

  table(title: string, o: PanelOpts, ...targets: InfluxQL[]): this {
    const tick = this.record(title, targets);
    const p = new table.PanelBuilder()
      .title(title)
      .description(o.description)
      .datasource(DS)
      .unit(GRAFANA_UNIT[o.unit])
      .span(o.w ?? 24)
      .height(o.h ?? 8)
      .thresholds(thresholdSteps(o.thresholds));
    if (tick) p.interval(TICK_MIN_INTERVAL);
    for (const t of targets) p.withTarget(t);
    this.builder.withPanel(p);
    return this;
  }

  build(): dashboard.Dashboard {
    return this.builder.build();
  }
}
