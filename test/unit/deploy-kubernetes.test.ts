// deploy/kubernetes is what users apply to a cluster (none here), so this test keeps it in step
// with the code: every env var one that the agent or processor really reads, HOST_PROC/HOST_SYS
// pointing at mounted host paths, the metrics port the same in the env, the container port and
// the Prometheus annotation, and secrets never written into the manifest.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_VARS as AGENT_ENV } from '../../agent/config.ts';
import { KAFKA_SECURITY_ENV_NAMES } from '../../lib/kafka/security.ts';
import { ENV_KEYS as PROCESSOR_ENV } from '../../processor/config.ts';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: unknown };
}
interface Container {
  args: string[];
  env: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: { httpGet: { path: string; port: string | number } };
}
interface Workload {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    template: {
      metadata: { annotations?: Record<string, string> };
      spec: {
        hostPID?: boolean;
        containers: Container[];
        volumes?: { name: string; hostPath?: { path: string } }[];
      };
    };
  };
}
const load = (file: string) =>
  parse(readFileSync(new URL(`../../deploy/kubernetes/${file}`, import.meta.url), 'utf8')) as Workload;
const env = (c: Container) => new Map(c.env.map((e) => [e.name, e]));
/** Read outside the agent's and processor's config tables (lib/log.ts, collectors/host/identity.ts). */
const COMMON_ENV = ['STRATA_LOG_LEVEL', 'NODE_OPTIONS'];
const SECRETS = ['INFLUX_TOKEN', 'INFLUX_PASSWORD', 'STRATA_KAFKA_SASL_PASSWORD'];

/** The metrics port: the same in STRATA_METRICS_LISTEN, the container port and the annotation. */
function metricsPort(w: Workload): number {
  const c = w.spec.template.spec.containers[0]!;
  const listen = env(c).get('STRATA_METRICS_LISTEN')?.value ?? '';
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  expect(listen.startsWith('0.0.0.0:'), 'metrics listen on all interfaces of the pod').toBe(true);
  expect(c.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(port);
  expect(w.spec.template.metadata.annotations?.['prometheus.io/port']).toBe(String(port));
  expect(w.spec.template.metadata.annotations?.['prometheus.io/scrape']).toBe('true');
  return port;
}

describe('deploy/kubernetes', () => {
  it('the agent DaemonSet: env vars the agent reads, host /proc and /sys mounted where HOST_PROC/HOST_SYS say', () => {
    const ds = load('agent-daemonset.yaml');
    expect(ds.kind).toBe('DaemonSet');
    const spec = ds.spec.template.spec;
    const c = spec.containers[0]!;
    expect(c.args).toEqual(['agent']);
    expect(spec.hostPID).toBe(true);
    const accepted = new Set([...AGENT_ENV.map((e) => e.env), ...KAFKA_SECURITY_ENV_NAMES, ...COMMON_ENV]);
    const vars = env(c);
    for (const name of vars.keys()) expect(accepted, `agent env ${name}`).toContain(name);
    expect(vars.get('NODE_OPTIONS')?.value).toBe('--max-semi-space-size=2');
    const hostPathOf = (mountPath: string) => {
      const m = c.volumeMounts?.find((v) => v.mountPath === mountPath);
      expect(m?.readOnly, `${mountPath} read-only`).toBe(true);
      return spec.volumes?.find((v) => v.name === m?.name)?.hostPath?.path;
    };
    expect(hostPathOf(vars.get('HOST_PROC')!.value!)).toBe('/proc');
    expect(hostPathOf(vars.get('HOST_SYS')!.value!)).toBe('/sys');
    metricsPort(ds);
  });

  it('the processor Deployment: env vars the processor reads, the token from a Secret, liveness on /healthz', () => {
    const dep = load('processor-deployment.yaml');
    expect(dep.kind).toBe('Deployment');
    const c = dep.spec.template.spec.containers[0]!;
    expect(c.args).toEqual(['processor']);
    const accepted = new Set([...Object.keys(PROCESSOR_ENV), ...KAFKA_SECURITY_ENV_NAMES, ...COMMON_ENV]);
    const vars = env(c);
    for (const name of vars.keys()) expect(accepted, `processor env ${name}`).toContain(name);
    for (const name of ['KAFKA_BROKERS', 'STRATA_GROUP_ID', 'INFLUX_URL', 'INFLUX_BUCKET'])
      expect(vars.get(name)?.value, name).toBeTruthy();
    for (const name of SECRETS) {
      const v = vars.get(name);
      if (v) expect(v.value, `${name} must come from a Secret`).toBeUndefined();
    }
    expect(vars.get('INFLUX_TOKEN')?.valueFrom?.secretKeyRef?.name).toBe('strata-processor');
    metricsPort(dep);
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  });
});
