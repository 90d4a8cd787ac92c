// docker-compose.yml is what users run where an engine can pull images (none can here), so this
// test keeps it in step with the code: services and images, mounts matching HOST_PROC/HOST_SYS,
// and every env var one that the agent or processor really reads, pointing at the right service;
// the DBRP mapping InfluxQL needs on InfluxDB 2.x; the processor unprivileged, both checked on /healthz.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_VARS as AGENT_ENV } from '../../agent/config.ts';
import { ENV_KEYS as PROCESSOR_ENV } from '../../processor/config.ts';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  privileged?: boolean;
  pid?: string;
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  mem_limit?: string;
  healthcheck?: { test: string[] };
}
const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8'), {
  merge: true, // the file shares env with a YAML anchor (<<: *strata-env)
}) as {
  services: Record<string, Service>;
};
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
/** Read by lib/log.ts and collectors/host/identity.ts outside the agent's config table. */
const COMMON_ENV = ['STRATA_LOG_LEVEL'];
const AGENT_EXTRA_ENV = ['HOST_ETC'];

/** A bind mount's host side, as a path inside the repository. */
const repoFile = (hostPath: string) => new URL(`../../${hostPath.replace(/^\.\//, '')}`, import.meta.url);

describe('docker-compose.yml', () => {
  it('has the five services with the images the docs name', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'agent',
      'grafana',
      'influxdb',
      'kafka',
      'processor',
    ]);
    expect(svc('kafka').image).toMatch(/^apache\/kafka:3\.9\./);
    expect(svc('influxdb').image).toBe('influxdb:2.7');
    expect(svc('grafana').image).toMatch(/^grafana\/grafana:/);
    expect(svc('agent').build).toBe('.');
    expect(svc('agent').command).toEqual(['agent']);
    expect(svc('processor').command).toEqual(['processor']);
  });

  it('gives the agent only env vars it reads, with mounts where HOST_PROC/HOST_SYS/DOCKER_HOST point', () => {
    const agent = svc('agent');
    const env = agent.environment ?? {};
    // NODE_OPTIONS is node's own: the agent's young-generation cap, as in the systemd unit and the DaemonSet.
    const accepted = new Set([
      ...AGENT_ENV.map((e) => e.env),
      ...COMMON_ENV,
      ...AGENT_EXTRA_ENV,
      'NODE_OPTIONS',
    ]);
    for (const key of Object.keys(env)) expect(accepted, `agent env ${key}`).toContain(key);
    expect(env.NODE_OPTIONS).toBe('--max-semi-space-size=2');
    expect(
      readFileSync(new URL('../../deploy/systemd/strata-agent.service', import.meta.url), 'utf8'),
    ).toContain('ExecStart=/usr/bin/node --max-semi-space-size=2 ');
    expect(agent.privileged).toBe(true);
    expect(agent.pid).toBe('host');
    const mounts = new Map((agent.volumes ?? []).map((v) => [v.split(':')[1], v]));
    expect(mounts.get(env.HOST_PROC!)).toBe(`/proc:${env.HOST_PROC}:ro`);
    expect(mounts.get(env.HOST_SYS!)).toBe(`/sys:${env.HOST_SYS}:ro`);
    const socket = env.DOCKER_HOST!.replace(/^unix:\/\//, '');
    expect(mounts.get(socket)).toBe(`/var/run/docker.sock:${socket}:ro`);
    expect(mounts.get(`${env.HOST_ETC}/machine-id`)).toBe(`/etc/machine-id:${env.HOST_ETC}/machine-id:ro`);
  });

  it('gives the processor only env vars it reads, pointing at the InfluxDB the compose file initialises', () => {
    const env = svc('processor').environment ?? {};
    const accepted = new Set([...Object.keys(PROCESSOR_ENV), ...COMMON_ENV]);
    for (const key of Object.keys(env)) expect(accepted, `processor env ${key}`).toContain(key);
    const init = svc('influxdb').environment ?? {};
    expect(env.INFLUX_URL).toBe('http://influxdb:8086');
    expect(env.INFLUX_TOKEN).toBe(init.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN);
    expect(env.INFLUX_ORG).toBe(init.DOCKER_INFLUXDB_INIT_ORG);
    expect(env.INFLUX_BUCKET).toBe(init.DOCKER_INFLUXDB_INIT_BUCKET);
    expect(init.DOCKER_INFLUXDB_INIT_MODE).toBe('setup');
  });

  it('points both at the Kafka listener the broker advertises inside the network', () => {
    const kafkaEnv = svc('kafka').environment ?? {};
    expect(kafkaEnv.KAFKA_PROCESS_ROLES).toBe('broker,controller'); // KRaft, no ZooKeeper
    const advertised = kafkaEnv.KAFKA_ADVERTISED_LISTENERS!.split(',').map((l) => l.replace(/^\w+:\/\//, ''));
    for (const s of ['agent', 'processor']) {
      const brokers = svc(s).environment?.KAFKA_BROKERS;
      expect(advertised, `${s} KAFKA_BROKERS`).toContain(brokers);
      expect(svc(s).environment?.STRATA_SAMPLES_TOPIC).toBe('strata.samples');
    }
  });

  it('publishes every port on 127.0.0.1 only, and each metrics port where the service listens', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const p of s.ports ?? []) expect(p, `${name} port`).toMatch(/^127\.0\.0\.1:/);
    }
    for (const s of ['agent', 'processor']) {
      const listen = svc(s).environment?.STRATA_METRICS_LISTEN ?? '';
      const port = listen.split(':').pop();
      expect(svc(s).ports).toContain(`127.0.0.1:${port}:${port}`);
    }
  });

  it('provisions Grafana datasources from files that exist, using env the grafana service sets', () => {
    const grafana = svc('grafana');
    const mount = (grafana.volumes ?? []).find((v) => v.endsWith(':/etc/grafana/provisioning:ro'));
    expect(mount).toBeDefined();
    const dir = new URL(`../../${mount!.split(':')[0]!.replace(/^\.\//, '')}/`, import.meta.url);
    const ds = readFileSync(new URL('datasources/strata.yaml', dir), 'utf8');
    const used = [...ds.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(0);
    for (const v of used) expect(Object.keys(grafana.environment ?? {}), `grafana env ${v}`).toContain(v);
    expect(grafana.environment?.INFLUX_TOKEN).toBe(
      svc('influxdb').environment?.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN,
    );
  });
  it('maps InfluxQL database/retention policy to the bucket on InfluxDB 2.x (DBRP), by an init script that exists', () => {
    const influx = svc('influxdb');
    const mount = (influx.volumes ?? []).find((v) =>
      v.split(':')[1]?.startsWith('/docker-entrypoint-initdb.d/'),
    );
    expect(mount, 'an init script mounted into /docker-entrypoint-initdb.d').toBeDefined();
    const [hostPath, target] = mount!.split(':') as [string, string];
    expect(target).toMatch(/\.sh$/); // the image runs *.sh files only
    const script = repoFile(hostPath);
    expect(statSync(script).mode & 0o111, 'executable (else the image sources it)').not.toBe(0);
    expect(spawnSync('bash', ['-n', script.pathname]).status, 'bash syntax').toBe(0);
    const text = readFileSync(script, 'utf8');
    const flags = new Map(
      [...text.matchAll(/--([\w-]+)(?:[ =]+"?([^"\s\\]+)"?)?/g)].map((m) => [m[1]!, m[2] ?? '']),
    );
    expect(text).toContain('influx v1 dbrp create');
    // The IDs and names the image's setup created, from the variables it exports to init scripts.
    const shellVar = (name: string) => `\${${name}}`;
    expect(flags.get('bucket-id')).toBe(shellVar('DOCKER_INFLUXDB_INIT_BUCKET_ID'));
    expect(flags.get('org')).toBe(shellVar('DOCKER_INFLUXDB_INIT_ORG'));
    expect(flags.get('db')).toBe(shellVar('DOCKER_INFLUXDB_INIT_BUCKET'));
    expect(flags.get('rp')).toBe('autogen');
    expect(flags.has('default')).toBe(true);
    // The database InfluxQL clients name is the bucket the processor writes.
    expect(influx.environment?.DOCKER_INFLUXDB_INIT_BUCKET).toBe(svc('processor').environment?.INFLUX_BUCKET);
  });

  it('runs the processor unprivileged and both on /healthz at their metrics port, with memory limits', () => {
    const processor = svc('processor');
    expect(processor.user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(processor.read_only).toBe(true);
    expect(processor.cap_drop).toEqual(['ALL']);
    expect(svc('agent').read_only).toBe(true);
    const spill = svc('agent').environment?.STRATA_SPILL_FILE ?? '';
    const stateMount = (svc('agent').volumes ?? []).find((v) => spill.startsWith(`${v.split(':')[1]}/`));
    expect(stateMount, 'the spill file on a writable volume').toBeDefined();
    for (const name of ['agent', 'processor']) {
      const s = svc(name);
      const probe = s.healthcheck?.test.join(' ') ?? '';
      expect(probe, `${name} healthcheck`).toContain('/healthz');
      expect(probe).toContain('STRATA_METRICS_LISTEN');
      expect(s.environment?.STRATA_METRICS_LISTEN).toMatch(/^0\.0\.0\.0:\d+$/);
      expect(s.mem_limit, `${name} mem_limit`).toMatch(/^\d+m$/);
    }
    expect(Number.parseInt(svc('agent').mem_limit!, 10)).toBeGreaterThanOrEqual(76 + 64);
    expect(Number.parseInt(svc('processor').mem_limit!, 10)).toBeGreaterThan(320);
  });
});
