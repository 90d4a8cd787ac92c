// The committed dashboards, alert rules and examples are what dashboards/src generates: a panel
// edited in the JSON by hand, or a query changed in the TypeScript without `npm run dashboards`,
// fails here.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALERT_DATASOURCE_UID, ALERT_FOLDER } from '../../dashboards/src/alerts.ts';
import { generatedFiles } from '../../dashboards/src/index.ts';
import { DS, TICK_MIN_INTERVAL, TICK_VAR } from '../../dashboards/src/influxql.ts';
import { LAYER_FIELDS } from '../../dashboards/src/schema.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const files = generatedFiles();

describe('generated Grafana files', () => {
  it('generates the six dashboards and the alert rules', () => {
    expect(Object.keys(files).filter((f) => f.endsWith('.json'))).toHaveLength(6);
    expect(Object.keys(files)).toContain('dashboards/alerting/strata-rules.yaml');
  });

  for (const [rel, text] of Object.entries(files)) {
    it(`${rel} is up to date (npm run dashboards)`, () => {
      expect(readFileSync(path.join(ROOT, rel), 'utf8')).toBe(text);
    });
  }

  it('no dashboard names a data source uid other than its datasource variable', () => {
    for (const [rel, text] of Object.entries(files)) {
      if (!rel.endsWith('.json')) continue;
      const uids = [...text.matchAll(/"uid": "([^"]*)"/g)]
        .map((m) => m[1])
        .filter((u) => !u!.startsWith('strata-'));
      expect(new Set(uids), rel).toEqual(new Set([DS.uid]));
    }
  });

  it('device and interface rates (idle rows skipped) are averaged over time, in panels of one tick at least', () => {
    const zero = Object.values(LAYER_FIELDS)
      .filter((f) => 'idle' in f && f.idle === 'zero')
      .map((f) => f.field);
    let timeMeans = 0;
    for (const [rel, text] of Object.entries(files)) {
      if (!rel.endsWith('.json')) continue;
      const dash = JSON.parse(text) as {
        templating: { list: { name: string; query?: string; hide?: number }[] };
        panels: { title: string; interval?: string; targets?: { query: string }[] }[];
      };
      for (const p of dash.panels)
        for (const t of p.targets ?? []) {
          // mean() over the rows written would average the busy ticks only (docs/schema.md).
          for (const f of zero) expect(t.query, `${rel} ${p.title}`).not.toContain(`mean("${f}")`);
          if (!t.query.includes(`$${TICK_VAR}`)) continue;
          timeMeans++;
          // One field, or a sum of fields (read_iops + write_iops): (sum("a") + sum("b")) * ...
          expect(t.query, `${rel} ${p.title}`).toMatch(
            /(sum\("[a-z_]+"\)|\(sum\("[a-z_]+"\)( \+ sum\("[a-z_]+"\))+\)) \* \$tick_ms \/ \$__interval_ms/,
          );
          expect(p.interval, `${rel} ${p.title}`).toBe(TICK_MIN_INTERVAL);
          const tick = dash.templating.list.find((v) => v.name === TICK_VAR);
          expect(tick?.query?.split(',')[0], rel).toBe('1000');
          expect(tick?.hide, rel).toBe(2);
        }
    }
    expect(timeMeans).toBeGreaterThanOrEqual(10);
  });

  it('docker-compose.yml provisions the alert rules into Grafana, reading the provisioned data source', () => {
    const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { volumes?: string[] }>;
    };
    const volumes = compose.services.grafana!.volumes ?? [];
    expect(volumes).toContain('./dashboards/alerting:/etc/grafana/provisioning/alerting:ro');
    expect(volumes).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    // The nested mount needs its mount point inside the read-only provisioning mount.
    expect(statSync(path.join(ROOT, 'deploy/grafana/provisioning/alerting')).isDirectory()).toBe(true);
    const ds = parse(
      readFileSync(path.join(ROOT, 'deploy/grafana/provisioning/datasources/strata.yaml'), 'utf8'),
    ) as { datasources: { uid: string; type: string; jsonData?: { version?: string } }[] };
    const influxql = ds.datasources.find((d) => d.uid === ALERT_DATASOURCE_UID);
    expect(influxql?.type).toBe('influxdb');
    expect(influxql?.jsonData?.version ?? 'InfluxQL').toBe('InfluxQL');
    const rules = parse(files['dashboards/alerting/strata-rules.yaml']!) as {
      groups: { folder: string; rules: { data: { datasourceUid: string }[] }[] }[];
    };
    for (const g of rules.groups) {
      expect(g.folder).toBe(ALERT_FOLDER);
      for (const r of g.rules)
        for (const d of r.data) expect([ALERT_DATASOURCE_UID, '__expr__']).toContain(d.datasourceUid);
    }
  });

  it('the example policy sends strata alerts to both contact points', () => {
    const cp = parse(files['deploy/grafana/contact-points.example.yaml']!) as {
      contactPoints: { name: string }[];
      policies: {
        receiver: string;
        routes: { receiver: string; object_matchers: string[][]; continue?: boolean }[];
      }[];
    };
    // Grafana's routing: child routes in order, stopping after the first match without `continue`;
    // the policy's own receiver only when no child matched.
    const labels: Record<string, string> = { team: 'strata', alertname: 'x' };
    const reached: string[] = [];
    for (const r of cp.policies[0]!.routes) {
      if (!r.object_matchers.every(([k, op, v]) => op === '=' && labels[k!] === v)) continue;
      reached.push(r.receiver);
      if (!r.continue) break;
    }
    if (!reached.length) reached.push(cp.policies[0]!.receiver);
    expect(reached.sort()).toEqual(cp.contactPoints.map((c) => c.name).sort());
  });
});
