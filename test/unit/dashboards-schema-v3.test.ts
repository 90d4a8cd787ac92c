// The generated dashboards and alert rules read schema version 3 (docs/schema.md): a VM's and a
// container's overhead figures are fields of their own strata_vm / strata_container points
// (strata_overhead keeps the node totals only), a device row has read_iops and write_iops but no
// iops, strata_container and strata_vm have cpu_cores but no cpu_usage_cores, and PSI is read as
// the stall ratio of the interval, not the kernel's avg10 gauges. A query naming a field or a row
// that is no longer written would run without error and show an empty panel: it fails here.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatedFiles } from '../../dashboards/src/index.ts';
import { LAYER_FIELDS, OVERHEAD_FIELDS } from '../../dashboards/src/schema.ts';

const files = generatedFiles();

/** Every InfluxQL query of the generated dashboards (variables, panels, annotations) and alert rules. */
function queries(): { where: string; query: string }[] {
  const out: { where: string; query: string }[] = [];
  const walk = (where: string, v: unknown) => {
    if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(`${where}[${i}]`, x);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === 'query' && typeof x === 'string' && /^(SELECT|SHOW) /.test(x))
          out.push({ where, query: x });
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

/** The quoted identifiers a query reads as fields: inside an aggregate or a selected expression. */
function fieldsRead(query: string): string[] {
  const sel = /^SELECT (.*?) FROM /.exec(query)?.[1] ?? '';
  // Names after AS are column labels, not fields.
  return [...sel.replace(/ AS "[^"]*"/g, '').matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

describe('generated queries read schema version 3', () => {
  const all = queries();

  it('finds the queries of every dashboard and of the alert rules', () => {
    expect(all.length).toBeGreaterThan(80);
    expect(all.some((q) => q.where.startsWith('dashboards/alerting/'))).toBe(true);
  });

  it('reads no field that is no longer written: iops, cpu_usage_cores, psi_*_avg10_pct', () => {
    const bad = all.filter((q) =>
      fieldsRead(q.query).some(
        (f) => f === 'iops' || f === 'cpu_usage_cores' || /^psi_.*_avg10_pct$/.test(f),
      ),
    );
    expect(bad.map((q) => `${q.where}: ${q.query}`)).toEqual([]);
  });

  it('IOPS are read as read_iops + write_iops', () => {
    const iops = all.filter((q) => /"read_iops"\) \+ \w+\("write_iops"\)/.test(q.query));
    expect(iops.length).toBeGreaterThanOrEqual(2);
  });

  it('strata_overhead is read for the node totals only', () => {
    const overhead = all.filter((q) => q.query.includes('"strata_overhead"'));
    expect(overhead.length).toBeGreaterThan(0);
    for (const q of overhead) expect(q.query, q.where).toContain(`"layer" = 'node'`);
  });

  it("a VM's and a container's overhead figures are read from strata_vm and strata_container", () => {
    // The VM's own cpu_cores, vcpu_cores and page faults are also read of the other layers.
    const shared = new Set(Object.values(LAYER_FIELDS).map((f) => f.field));
    let checked = 0;
    for (const f of Object.values(OVERHEAD_FIELDS)) {
      if (f.overheadLayer === 'node' || shared.has(f.field)) continue;
      const reading = all.filter((q) => fieldsRead(q.query).includes(f.field));
      for (const q of reading)
        expect(q.query, `${f.field} in ${q.where}`).toMatch(new RegExp(`FROM "strata_${f.overheadLayer}" `));
      checked += reading.length;
    }
    expect(checked).toBeGreaterThan(40);
  });
});
