// The Grafana dashboards' InfluxQL runs against real data: `strata run --influx-url` writes real ticks
// of this machine (with a container on the stack's Docker engine) into a fresh InfluxDB database,
// then every panel query and annotation query of dashboards/*.json is executed as Grafana would
// (with $timeFilter, $__interval and $node substituted). No query may fail, and the host and
// container panels must return data.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dockerRequest } from '../../stack/index.ts';

const influxUrl = inject('influxUrl');
const socketPath = inject('dockerHost').replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const db = `strata_dash_${randomUUID().slice(0, 8)}`;
const container = `strata-dash-${randomUUID().slice(0, 8)}`;

interface Panel {
  type: string;
  title: string;
  targets?: { query: string }[];
}
interface Dashboard {
  title: string;
  panels: Panel[];
  annotations: { list: { query?: string; name: string }[] };
}

async function influxql(q: string): Promise<{ series?: { values: unknown[][] }[]; error?: string }> {
  const res = await fetch(`${influxUrl}/query?db=${db}&q=${encodeURIComponent(q)}`, { method: 'POST' });
  const body = (await res.json()) as {
    results?: { series?: { values: unknown[][] }[]; error?: string }[];
    error?: string;
  };
  if (body.error) return { error: body.error };
  return body.results?.[0] ?? { error: 'no result' };
}

function asGrafana(q: string): string {
  return q
    .replaceAll('$timeFilter', 'time > now() - 10m')
    .replaceAll('$__interval', '1s')
    .replaceAll('/^$node$/', '/.*/');
}

beforeAll(async () => {
  expect((await influxql(`CREATE DATABASE "${db}"`)).error).toBeUndefined();
  const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${container}`, {
    Image: image,
    Cmd: [
      'sh',
      '-c',
      'while true; do dd if=/dev/zero of=/tmp/f bs=4k count=64 oflag=direct 2>/dev/null; done',
    ],
  });
  expect(created.status, created.body).toBe(201);
  expect((await dockerRequest(socketPath, 'POST', `/containers/${container}/start`)).status).toBe(204);
  const run = spawnSync(
    process.execPath,
    [
      'bin/strata.js',
      'run',
      '--output',
      'ndjson',
      '--ticks',
      '4',
      '--influx-url',
      influxUrl,
      '--influx-bucket',
      `${db}/autogen`,
    ],
    {
      env: { ...process.env, DOCKER_HOST: `unix://${socketPath}`, STRATA_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(run.status, run.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await dockerRequest(socketPath, 'DELETE', `/containers/${container}?force=true`).catch(() => {});
  await influxql(`DROP DATABASE "${db}"`).catch(() => {});
});

const dashboards = readdirSync(new URL('../../dashboards/', import.meta.url))
  .filter((f) => f.endsWith('.json'))
  .map(
    (f) => JSON.parse(readFileSync(new URL(`../../dashboards/${f}`, import.meta.url), 'utf8')) as Dashboard,
  );

describe('Grafana dashboards on real data', () => {
  it('has dashboards to check', () => {
    expect(dashboards.length).toBeGreaterThan(0);
  });

  for (const dash of dashboards) {
    it(`${dash.title}: every panel and annotation query runs; host and container panels have data`, async () => {
      const queries = [
        ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, query: t.query }))),
        ...dash.annotations.list
          .filter((a) => a.query)
          .map((a) => ({ title: `annotation ${a.name}`, query: a.query! })),
      ];
      expect(queries.length).toBeGreaterThan(5);
      for (const { title, query } of queries) {
        const r = await influxql(asGrafana(query));
        expect(r.error, `${title}: ${query}`).toBeUndefined();
        // The machine has a host and a running container, so these must show something.
        if (/^(Host|Container)/.test(title)) {
          const values = (r.series ?? [])
            .flatMap((s) => s.values)
            .filter((v) => v.slice(1).some((x) => x !== null));
          expect(values.length, `${title} returned no data`).toBeGreaterThan(0);
        }
      }
    });
  }
});
