// InfluxQL for Grafana's InfluxDB data source. The foundation SDK has typed builders for panels,
// variables and annotations but no InfluxDB query type, so this file supplies one that plugs into
// them (a cog.Builder<cog.Dataquery>), and composes the query text from the tables of schema.ts.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as common from '@grafana/grafana-foundation-sdk/common';
import { type Field, LAYERS, type Layer, MEASUREMENT, TAG } from './schema.ts';

/** Every panel, variable and annotation reads through the dashboard's `datasource` variable. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, not a JS template
export const DS: common.DataSourceRef = { type: 'influxdb', uid: '${datasource}' };

/** Which scenario of test/integration/dashboards.test.ts must give a query data. */
export type Expect = 'host' | 'container' | 'vm' | 'guest' | 'noisy' | 'bench' | 'none';

export interface InfluxQLTarget extends cog.Dataquery {
  refId: string;
  datasource: common.DataSourceRef;
  query: string;
  rawQuery: true;
  resultFormat: 'time_series' | 'table';
  alias?: string;
}

/** A raw InfluxQL target; `expect` is the scenario the integration test requires data from. */
export class InfluxQL implements cog.Builder<cog.Dataquery> {
  readonly expect: Expect;
  private readonly target: InfluxQLTarget;
  constructor(
    query: string,
    opts: {
      refId?: string;
      table?: boolean;
      alias?: string;
      expect: Expect;
      datasource?: common.DataSourceRef;
    },
  ) {
    this.expect = opts.expect;
    this.target = {
      refId: opts.refId ?? 'A',
      datasource: opts.datasource ?? DS,
      query,
      rawQuery: true,
      resultFormat: opts.table ? 'table' : 'time_series',
      ...(opts.alias ? { alias: opts.alias } : {}),
      _implementsDataqueryVariant() {},
    };
  }
  build(): cog.Dataquery {
    return this.target;
  }
}

export const q = (s: string) => `"${s.replaceAll('"', '\\"')}"`;

/** Regex conditions on Grafana variables, as Grafana expects for multi-value and "All". */
export const cond = {
  node: `${q(TAG.node)} =~ /^$node$/`,
  layer: `${q(TAG.layer)} =~ /^$layer$/`,
  entity: `${q(TAG.name)} =~ /^$entity$/`,
  device: `${q(TAG.device)} =~ /^$device$/`,
};

/** `FROM` for one layer, or a regex over several layer measurements (one series per measurement). */
export function fromLayers(layers: readonly Layer[] = LAYERS): string {
  if (layers.length === 1) return q(MEASUREMENT[layers[0]!]);
  return `/^(${layers.map((l) => MEASUREMENT[l]).join('|')})$/`;
}

/** Only the rows that carry the field: entity rows have neither a device nor an interface tag. */
export function rowCond(field: Field): string[] {
  if (field.row === 'device') return [`${q(TAG.device)} != ''`];
  if (field.row === 'interface') return [`${q(TAG.iface)} != ''`];
  return [`${q(TAG.device)} = ''`, `${q(TAG.iface)} = ''`];
}

/** The tag that tells a field's rows apart within an entity (device, interface), if any. */
export function rowTag(field: Field): string[] {
  if (field.row === 'device') return [TAG.device];
  if (field.row === 'interface') return [TAG.iface];
  return [];
}

/**
 * How empty time buckets of a field read: 0 for the rates of idle devices and for the entity rates
 * a point may leave out at 0 (Field.per), a gap otherwise.
 */
export function fillFor(field: Field): '0' | 'none' | undefined {
  if (field.idle === 'zero' || field.per !== undefined) return '0';
  if (field.idle === 'gap') return 'none';
  return undefined;
}

/**
 * The dashboard variable holding the agents' tick in ms (board.ts VAR.tick: hidden, default 1000;
 * docs/deploy.md "Grafana" says to set it to the agents' interval).
 */
export const TICK_VAR = 'tick_ms';
/** A panel's min interval: a bucket is never shorter than one tick (Grafana interpolates it). */
export const TICK_MIN_INTERVAL = `\${${TICK_VAR}}ms`;

export interface Select {
  field: Field | string;
  /**
   * `timeMean`: the mean over the bucket's time, not over its rows: Σ values × tick ÷ bucket.
   * An idle device or interface writes no row most ticks (docs/schema.md, "When a point is
   * written"), so mean() would average the busy rows only: a disk busy 5 s of a minute at 100
   * IOPS would read ~83 instead of ~8.
   * `rateMean`: a rate of an entity point (Field.per): sum(field) ÷ count(per), the mean over the
   * points that carry it when every zero is written, a point without it counting 0. Exact in both
   * pipeline.output.zeroRates modes and for any bucket, with no tick variable: the entity point
   * itself is written every tick.
   */
  agg?: 'mean' | 'max' | 'min' | 'last' | 'sum' | 'count' | 'timeMean' | 'rateMean';
  as?: string;
}

/**
 * How a field is averaged over a bucket: over time where a missing device or interface row means
 * 0, over the entity's points where a missing rate means 0, else over the rows that have it.
 */
export function meanFor(field: Field): 'timeMean' | 'rateMean' | 'mean' {
  if (field.idle === 'zero') return 'timeMean';
  return field.per !== undefined ? 'rateMean' : 'mean';
}

/**
 * One aggregate of one or more fields, added up (`sumOf` fields: InfluxQL cannot aggregate an
 * expression, so each part is aggregated and the aggregates are added). Exact for sum, mean,
 * timeMean and last, whose parts are on the same rows; max of a sum reads max + max, an upper
 * bound. A part without a value in a bucket (QMP may report reads only) makes the sum null, except
 * under fill(0), which InfluxDB applies to each aggregate before adding: the rates of device rows
 * (timeMean) use it.
 */
function aggregate(agg: NonNullable<Select['agg']>, inners: string[], field: Field | string): string {
  if (agg === 'rateMean') {
    const per = typeof field === 'string' ? undefined : field.per;
    if (per === undefined || inners.length !== 1)
      throw new Error(`rateMean of ${String(inners)}: no per field`);
    return `sum(${inners[0]}) / count(${q(per)})`;
  }
  if (agg === 'timeMean') {
    const sums = inners.map((i) => `sum(${i})`).join(' + ');
    return `${inners.length > 1 ? `(${sums})` : sums} * $${TICK_VAR} / $__interval_ms`;
  }
  return inners.map((i) => `${agg}(${i})`).join(' + ');
}

export interface QueryParts {
  select: Select[];
  /** A measurement name, or the result of fromLayers(). */
  from: string;
  where?: string[];
  groupBy?: string[];
  /** GROUP BY time($__interval) (default true). */
  timeSeries?: boolean;
  fill?: 'none' | 'null' | '0';
  timeFilter?: boolean;
}

/** The stored fields a Select reads: one, or the parts of a `sumOf` field. */
const storedFields = (f: Field | string) => (typeof f === 'string' ? [f] : (f.sumOf ?? [f.field]));

export function select(p: QueryParts): string {
  const cols = p.select
    .map((s) => {
      const inners = storedFields(s.field).map(q);
      const expr = s.agg ? aggregate(s.agg, inners, s.field) : inners.join(' + ');
      // A sum of fields has no column name of its own: it is shown under the field's name.
      const as = s.as ?? (typeof s.field !== 'string' && s.field.sumOf ? s.field.field : undefined);
      return as ? `${expr} AS ${q(as)}` : expr;
    })
    .join(', ');
  const where = [...(p.where ?? [])];
  if (p.timeFilter !== false) where.push('$timeFilter');
  const group = [...(p.timeSeries === false ? [] : ['time($__interval)']), ...(p.groupBy ?? []).map(q)];
  let s = `SELECT ${cols} FROM ${p.from}`;
  if (where.length) s += ` WHERE ${where.join(' AND ')}`;
  if (group.length) s += ` GROUP BY ${group.join(', ')}`;
  if (p.fill) s += ` fill(${p.fill})`;
  return s;
}

/**
 * Fields summed per node and layer. Entity rows: each entity's mean over the bucket first (a rate:
 * over its points, a point without the rate counting 0, Select.agg `rateMean`), then the sum: a
 * plain sum() over the bucket would also add up every tick in it, so the figure would grow with
 * $__interval. Device and interface rows with idle 'zero' (rows skipped while idle):
 * the sum of every row of the layer × tick ÷ bucket, which is the sum of each device's mean over
 * the bucket's time (a per-device mean() would average its busy rows only). Fields of one call
 * share their row kind.
 */
export function layerSum(
  fields: { field: Field; as: string }[],
  opts: { layers?: readonly Layer[]; fill?: QueryParts['fill'] } = {},
): string {
  const first = fields[0]!.field;
  if (meanFor(first) === 'timeMean')
    return select({
      select: fields.map((x) => ({ field: x.field, agg: 'timeMean', as: x.as })),
      from: fromLayers(opts.layers ?? first.layers ?? LAYERS),
      where: [cond.node, ...rowCond(first)],
      groupBy: [TAG.node, TAG.layer],
      fill: opts.fill ?? fillFor(first),
    });
  const inner = select({
    select: fields.map((x) => ({ field: x.field, agg: meanFor(x.field), as: x.as })),
    from: fromLayers(opts.layers ?? first.layers ?? LAYERS),
    where: [cond.node, ...rowCond(first)],
    groupBy: [TAG.node, TAG.layer, TAG.name, ...rowTag(first)],
  });
  return select({
    select: fields.map((x) => ({ field: x.as, agg: 'sum', as: x.as })),
    from: `(${inner})`,
    groupBy: [TAG.node, TAG.layer],
    fill: opts.fill ?? fillFor(first),
  });
}

/** Where the overhead figures of a layer are: the VM's or container's own points, or the node totals. */
export function overheadFrom(layer: NonNullable<Field['overheadLayer']>): { from: string; where: string[] } {
  if (layer === 'node') return { from: q(MEASUREMENT.overhead), where: [`${q(TAG.layer)} = 'node'`] };
  // No row condition: a VM's and a container's figures are on its entity point only, the shares
  // on its device rows only, so the rows without the field add nothing to an aggregate of it.
  return { from: q(MEASUREMENT[layer]), where: [] };
}

/** A query of overhead figures (docs/overhead.md §2) of one layer, per VM, container or node. */
export function overheadSeries(
  fields: (Field | Select)[],
  opts: { by?: string[]; where?: string[]; agg?: Select['agg']; timeSeries?: boolean } = {},
): string {
  const sel: Select[] = fields.map((x) => ('unit' in x ? { field: x } : x));
  const first = (sel[0]!.field as Field).overheadLayer!;
  const fill = fillFor(sel[0]!.field as Field);
  // One fill() for the whole query: its figures must read an empty bucket alike.
  if (sel.some((s) => fillFor(s.field as Field) !== fill))
    throw new Error(
      `overheadSeries: ${sel.map((s) => (s.field as Field).field)} fill empty buckets differently`,
    );
  const at = overheadFrom(first);
  return select({
    select: sel.map((s) => ({ agg: opts.agg ?? meanFor(s.field as Field), ...s })),
    from: at.from,
    where: [...at.where, cond.node, ...(opts.where ?? [])],
    groupBy: opts.by ?? (first === 'node' ? [TAG.node] : [TAG.node, TAG.name]),
    timeSeries: opts.timeSeries,
    fill: opts.timeSeries === false ? undefined : fill,
  });
}
