// The Dockerfile builds, and its image runs as the Kubernetes DaemonSet and the compose file run it.
//
// No registry is reachable here, so the build's BASE is a Node image imported offline from this
// machine's own Node runtime (stack/node-base-image.ts); `npm ci` inside the build reaches the npm
// registry through the host's network (--network host), as it would on a user's build machine.
// Then:
// - `agent --once --output ndjson` with the host's /proc and /sys mounted read-only at /host/...,
//   HOST_PROC/HOST_SYS, the host's PID namespace and the Docker socket: the host entity and a
//   container running on the same engine (by its Docker name) are in the output;
// - `processor --check-config` (the spelling deploy scripts use; --print-config since) accepts the
//   env deploy/kubernetes/processor-deployment.yaml gives it, run as that Deployment runs it (a
//   non-root user, read-only root file system, no capabilities);
// - the image size and the agent's RSS inside it are printed (docs/deploy.md quotes them).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ensureNodeBaseImage } from '../../stack/node-base-image.ts';
import { defaultCacheDir } from '../../stack/util.ts';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dockerHost = inject('dockerHost');
const socketPath = dockerHost.replace(/^unix:\/\//, '');
const busybox = inject('dockerImage');
const IMAGE = `strata-image-test:${process.pid}`;
const WORKLOAD = `strata-image-workload-${process.pid}`;
const AGENT = `strata-image-agent-${process.pid}`;

async function docker(args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await run('docker', ['-H', dockerHost, ...args], {
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
      // The classic builder: the CLI's BuildKit path needs the buildx plugin, which Debian ships apart.
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    });
    return stdout.trim();
  } catch (e) {
    const { stdout = '', stderr = '' } = e as { stdout?: string; stderr?: string };
    const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`docker ${args.slice(0, 2).join(' ')} failed:\n${tail}`);
  }
}

/**
 * The flags the DaemonSet (and docker-compose.yml) run the agent with, less `privileged` (which
 * this sandbox's engine cannot grant; the agent only needs it to enter containers' network
 * namespaces, and reads everything else through the read-only mounts).
 */
const agentRunFlags = [
  '--pid=host',
  '--read-only',
  '-v',
  '/proc:/host/proc:ro',
  '-v',
  '/sys:/host/sys:ro',
  '-v',
  `${socketPath}:/var/run/docker.sock:ro`,
  '-e',
  'HOST_PROC=/host/proc',
  '-e',
  'HOST_SYS=/host/sys',
  '-e',
  'DOCKER_HOST=unix:///var/run/docker.sock',
  '-e',
  'NODE_OPTIONS=--max-semi-space-size=2',
  '-e',
  'STRATA_NODE_ID=image-test-node',
];

let built = false;

beforeAll(async () => {
  const base = await ensureNodeBaseImage(socketPath, defaultCacheDir(), (l) =>
    process.stderr.write(`${l}\n`),
  );
  await docker(['build', '--network', 'host', '--build-arg', `BASE=${base}`, '-t', IMAGE, repo], 900_000);
  built = true;
  await docker(['run', '-d', '--name', WORKLOAD, busybox, 'sleep', '600']);
}, 960_000);

afterAll(async () => {
  await docker(['rm', '-f', WORKLOAD, AGENT]).catch(() => {});
  if (built) await docker(['rmi', '-f', IMAGE]).catch(() => {});
  // The build stage's image is left untagged; the vfs driver keeps a full copy per layer.
  await docker(['image', 'prune', '-f']).catch(() => {});
}, 120_000);

describe('the strata image', () => {
  it('runs the agent as the DaemonSet does: the host and a running container are in one tick', async () => {
    const out = await docker([
      'run',
      '--rm',
      ...agentRunFlags,
      IMAGE,
      'agent',
      '--once',
      '--output',
      'ndjson',
    ]);
    const tick = JSON.parse(out.split('\n').filter(Boolean).at(-1) ?? '{}');
    expect(tick.node?.id).toBe('image-test-node');
    const entities: { layer: string; name: string }[] = (tick.samples ?? []).map(
      (s: { entity: { layer: string; name: string } }) => s.entity,
    );
    expect(entities.map((e) => e.layer)).toContain('host');
    const names = entities.filter((e) => e.layer === 'container').map((e) => e.name);
    expect(names).toContain(WORKLOAD);
  });

  it('runs processor --check-config as the Deployment runs it, with its env', async () => {
    const manifest = parseYaml(
      readFileSync(path.join(repo, 'deploy/kubernetes/processor-deployment.yaml'), 'utf8'),
    ) as {
      spec: {
        template: {
          spec: {
            securityContext: { runAsUser: number; runAsGroup: number };
            containers: {
              args: string[];
              env: { name: string; value?: string; valueFrom?: { secretKeyRef?: unknown } }[];
            }[];
          };
        };
      };
    };
    const pod = manifest.spec.template.spec;
    const container = pod.containers[0]!;
    // Literal values as written; the Secret's key as Kubernetes would fill it in.
    const envFlags = container.env.flatMap((e) =>
      e.value !== undefined
        ? ['-e', `${e.name}=${e.value}`]
        : e.valueFrom?.secretKeyRef
          ? ['-e', `${e.name}=secret-token-value`]
          : [],
    );
    const out = await docker([
      'run',
      '--rm',
      '--user',
      `${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`,
      '--read-only',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      ...envFlags,
      IMAGE,
      ...container.args,
      '--check-config',
    ]);
    const printed = JSON.parse(out) as {
      config: { kafka: { brokers: string[] }; influxdb: { url: string; token: string } };
      sources: Record<string, string>;
    };
    expect(printed.config.kafka.brokers).toEqual(['kafka.kafka.svc:9092']);
    expect(printed.config.influxdb.url).toBe('http://influxdb.monitoring.svc:8086');
    expect(printed.sources['influxdb.token']).toBe('env INFLUX_TOKEN');
    expect(out).not.toContain('secret-token-value');
  });

  it('reports its size and the agent RSS inside it', async () => {
    const size = Number(await docker(['image', 'inspect', '--format', '{{.Size}}', IMAGE]));
    expect(size).toBeGreaterThan(0);
    // A running agent (1 s ticks, output discarded) for a few ticks; RSS read from the host's /proc.
    await docker(['run', '-d', '--name', AGENT, ...agentRunFlags, IMAGE, 'agent', '--output', 'ndjson']);
    await new Promise((r) => setTimeout(r, 8000));
    const pid = Number(await docker(['inspect', '--format', '{{.State.Pid}}', AGENT]));
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1]);
    expect(kb('VmRSS')).toBeGreaterThan(0);
    process.stderr.write(
      `[image] size ${(size / 1e6).toFixed(1)} MB (base included); agent RSS ${(kb('VmRSS') / 1024).toFixed(1)} MB, ` +
        `peak ${(kb('VmHWM') / 1024).toFixed(1)} MB after 8 s\n`,
    );
  });
});
