// With pipeline.output.zeroRates: skip, a rate field of a layer measurement's point (isRateField
// in processors/output/zero-rates.ts) at 0 is written when it turns 0 and once per
// idleHeartbeatMs, and left out of the points between: a point without it is a 0. The generated
// dashboards and alert rules read every such field so that a missing value counts 0 — as sum over
// the bucket divided by the points (count of a field always written beside it) or by the bucket's
// ticks, with fill(0) — and never with an aggregate over the values present (mean, max, min, last,
// count), which would read the non-zero ticks only. test/integration/dashboards.test.ts runs every
// query on data written in both modes and compares the figures.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatedFiles } from '../../dashboards/src/index.ts';
import { type Field, LAYER_FIELDS, MEASUREMENT, OVERHEAD_FIELDS } from '../../dashboards/src/schema.ts';
import { isRateField, ZeroRateFilter } from '../../processors/output/zero-rates.ts';
import type { Point } from '../../schemas/point.ts';

const files = generatedFiles();

/** Every InfluxQL query of the generated dashboards (variables, panels, annotations) and alert rules. */
function queries(): { where: string; query: string }[] {
  const out: { where: string; query: string }[] = [];
  const walk = (where: string, v: unknown) => {
    if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(`${where}[${i}]`, x);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === 'query' && typeof x === 'string' && /^SELECT /.test(x)) out.push({ where, query: x });
        else walk(`${where}.${k}`, x);
      }
  };
  for (const [rel, text] of Object.entries(files)) {
    if (rel.endsWith('.json')) walk(rel, JSON.parse(text));
    // Grafana reads $$ in provisioning files as a literal $.
    else if (rel.startsWith('dashboards/alerting/')) walk(rel, parse(text.replaceAll('$$', '$')));
  }
  return out;
}

const LAYER_MEASUREMENTS = [MEASUREMENT.host, MEASUREMENT.container, MEASUREMENT.vm, MEASUREMENT.guest];
const readsLayers = (query: string) => LAYER_MEASUREMENTS.some((m) => query.includes(m));

describe('dashboards read rates right when zero rates are skipped (pipeline.output.zeroRates: skip)', () => {
  it('every rate field of a layer measurement is read as a sum over the bucket ÷ points or ticks, with fill(0)', () => {
    let rates = 0;
    const wrong: string[] = [];
    for (const { where, query } of queries()) {
      if (!readsLayers(query)) continue;
      for (const m of query.matchAll(/(\w+)\("([a-z0-9_]+)"\)/g)) {
        const [call, fn, field] = [m[0], m[1]!, m[2]!];
        if (!isRateField(field)) continue;
        rates++;
        const after = query.slice(m.index! + call.length);
        // sum("x") / count("per"), or sum("x") [+ sum("y")]) * $tick_ms / $__interval_ms.
        const divided =
          /^ \/ count\("[a-z_]+"\)/.test(after) ||
          /^(\)| \+ sum\("[a-z_]+"\))*\)? \* \$tick_ms \/ \$__interval_ms/.test(after);
        if (fn !== 'sum' || !divided) wrong.push(`${where}: ${call} in ${query}`);
        else if (/GROUP BY time\(/.test(query) && !query.endsWith(' fill(0)'))
          wrong.push(`${where}: no fill(0) in ${query}`);
      }
    }
    expect(wrong).toEqual([]);
    // Faults, CPU, PSI, IOPS, bytes, packets, the VMs' cores and faults: most panels.
    expect(rates).toBeGreaterThan(30);
  });

  it('no query counts, dates or bounds points by a rate field (cpu_cores at 0 may be left out)', () => {
    for (const { where, query } of queries()) {
      if (!readsLayers(query)) continue;
      for (const m of query.matchAll(/(count|last|first|max|min)\("([a-z0-9_]+)"\)/g))
        expect(isRateField(m[2]!), `${where}: ${m[0]} in ${query}`).toBe(false);
    }
  });

  it('schema.ts marks an entity-row field as a rate (Field.per) exactly when isRateField() says so', () => {
    const fields: Field[] = [...Object.values(LAYER_FIELDS), ...Object.values(OVERHEAD_FIELDS)];
    const marked = fields.filter((f) => f.per !== undefined).map((f) => f.field);
    const rates = fields
      .filter((f) => f.row === 'entity' && f.overheadLayer !== 'node' && isRateField(f.field))
      .map((f) => f.field);
    expect(marked.sort()).toEqual(rates.sort());
    // Rates and gauges alike: the classification is by name, so check both kinds are there.
    expect(marked).toContain('cpu_cores');
    expect(marked).toContain('psi_io_some_stall_ratio');
    expect(marked).toContain('guest_cpu_busy_cores');
    expect(marked).not.toContain('memory_usage_bytes');
    expect(marked).not.toContain('cpu_overhead_ratio');
    expect(marked).not.toContain('io_stall_ms_per_op');
  });

  it('the node totals (strata_overhead) keep their zeros, so mean() reads them', () => {
    // The dashboards average strata_overhead's *_cores with mean(): right only while the filter
    // leaves that measurement alone.
    const filter = new ZeroRateFilter(60_000);
    const tags = { node: 'n', layer: 'node' };
    const points = (t: number): Point[] => [
      { measurement: MEASUREMENT.overhead, tags, fields: { ksmd_cpu_cores: 0, containers: 1 }, timeMs: t },
      {
        measurement: MEASUREMENT.host,
        tags,
        fields: { cpu_throttled_cores: 0, interval_seconds: 1 },
        timeMs: t,
      },
    ];
    filter.apply(points(0));
    const second = points(1000);
    filter.apply(second);
    expect(second.find((p) => p.measurement === MEASUREMENT.overhead)?.fields).toEqual({
      ksmd_cpu_cores: 0,
      containers: 1,
    });
    // The same zero on a layer measurement is left out: the test sees the filter at work.
    expect(second.find((p) => p.measurement === MEASUREMENT.host)?.fields).toEqual({ interval_seconds: 1 });
  });
});
