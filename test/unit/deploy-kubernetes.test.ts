// deploy/kubernetes is what users apply to a cluster (none here), so this test keeps it in step
// with the code: every env var one that the agent or processor really reads, HOST_PROC/HOST_SYS
// pointing at mounted host paths, the metrics port the same in the env, the container port and
// the Prometheus annotation, and secrets never written into the manifest; resources that hold
// the measured cost (docs/agent.md and docs/processor.md "Cost"), probes on /healthz, and no more
// processor replicas than the samples topic's partitions the manifest tells users to create.
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
interface Resources {
  requests?: { cpu?: string; memory?: string };
  limits?: { cpu?: string; memory?: string };
}
interface Container {
  args: string[];
  resources?: Resources;
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  securityContext?: {
    privileged?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
  };
  env: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: { httpGet: { path: string; port: string | number } };
}
interface Workload {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    replicas?: number;
    template: {
      metadata: { annotations?: Record<string, string> };
      spec: {
        hostPID?: boolean;
        containers: Container[];
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
      };
    };
  };
}
const text = (file: string) =>
  readFileSync(new URL(`../../deploy/kubernetes/${file}`, import.meta.url), 'utf8');
const load = (file: string) => parse(text(file)) as Workload;

/** Kubernetes quantities: "200m" -> 0.2 cores, "192Mi" -> bytes. */
function cores(q: string | undefined): number {
  expect(q, 'cpu quantity').toBeDefined();
  return q!.endsWith('m') ? Number(q!.slice(0, -1)) / 1000 : Number(q);
}
function bytes(q: string | undefined): number {
  expect(q, 'memory quantity').toBeDefined();
  const m = /^(\d+)(Ki|Mi|Gi|M|G)?$/.exec(q!);
  expect(m, `memory quantity ${q}`).not.toBeNull();
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, M: 1e6, G: 1e9 }[m![2] ?? ''] ?? 1;
  return Number(m![1]) * unit;
}
const MB = 1e6;
const MiB = 1024 ** 2;
/** Both components: probes on /healthz by the metrics port's name. */
function probes(c: Container): void {
  expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  expect(c.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
}
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
    probes(c);
  });

  it('the agent DaemonSet: resources from the measured cost', () => {
    const c = load('agent-daemonset.yaml').spec.template.spec.containers[0]!;
    const r = c.resources!;
    // Max RSS 76 MB at 200 containers as deployed; the request covers steady RSS (64-68 MB).
    expect(bytes(r.requests?.memory)).toBeGreaterThanOrEqual(76 * MB);
    // The limit must also hold the in-memory outage buffer (buffer.maxBytes default 64 MiB).
    expect(bytes(r.limits?.memory)).toBeGreaterThanOrEqual(76 * MB + 64 * MiB);
    // ≈ 12 ms of CPU per second at 200 active containers published to Kafka.
    expect(cores(r.requests?.cpu)).toBeGreaterThanOrEqual(0.012);
    expect(cores(r.limits?.cpu)).toBeGreaterThan(cores(r.requests?.cpu));
  });

  it('the processor Deployment: env vars the processor reads, the token from a Secret, liveness and readiness on /healthz', () => {
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
    probes(c);
  });

  it('the processor Deployment: resources from the measured cost, no privileges', () => {
    const dep = load('processor-deployment.yaml');
    const c = dep.spec.template.spec.containers[0]!;
    const r = c.resources!;
    // 0.16 core for 300 nodes × 21 entities at 1 s ticks (22-25 CPU-µs per entity-sample).
    expect(cores(r.requests?.cpu)).toBeGreaterThanOrEqual(0.16);
    // Peak RSS 298-320 MB draining a backlog: the limit above it, the request near it.
    expect(bytes(r.limits?.memory)).toBeGreaterThan(320 * MB);
    expect(bytes(r.requests?.memory)).toBeGreaterThanOrEqual(298 * MB);
    expect(dep.spec.template.spec.securityContext?.runAsNonRoot).toBe(true);
    expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
  });

  it('the processor Deployment: replicas ≤ the partitions of the samples topic it tells users to create', () => {
    const dep = load('processor-deployment.yaml');
    const create = /kafka-topics\.sh --create --topic (\S+) --partitions (\d+)/.exec(
      text('processor-deployment.yaml'),
    );
    expect(create, 'the manifest says how to create the samples topic').not.toBeNull();
    const vars = env(dep.spec.template.spec.containers[0]!);
    expect(create![1]).toBe(vars.get('STRATA_SAMPLES_TOPIC')?.value);
    expect(dep.spec.replicas).toBeGreaterThanOrEqual(1);
    expect(dep.spec.replicas).toBeLessThanOrEqual(Number(create![2]));
  });
});
