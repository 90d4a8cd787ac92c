// The committed dashboards, alert rules and examples are what dashboards/src generates: a panel
// edited in the JSON by hand, or a query changed in the TypeScript without `npm run dashboards`,
// fails here.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALERT_DATASOURCE_UID, ALERT_FOLDER } from '../../dashboards/src/alerts.ts';
import { generatedFiles } from '../../dashboards/src/index.ts';
import { DS } from '../../dashboards/src/influxql.ts';

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
