// Container labels are picked by whoever creates the container; the cgroup collector turns some of
// them (io.kubernetes.pod.name, …) into entity labels that reach InfluxDB tags and `strata run`'s
// terminal. A real container on the stack's Docker engine with escape sequences and an over-long
// value in its labels: the Docker client hands them over clean, and counts what it changed.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { listDockerContainers } from '../../collectors/cgroup/docker.ts';
import { registry } from '../../lib/metrics.ts';
import { hasControlChars } from '../../lib/terminal.ts';
import { dockerRequest } from '../../stack/index.ts';

const socketPath = inject('dockerHost').replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const name = `strata-hostile-${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  await dockerRequest(socketPath, 'DELETE', `/containers/${name}?force=true`).catch(() => {});
});

async function sanitizedTotal(): Promise<number> {
  const m = await registry.getSingleMetric('strata_collector_cgroup_docker_names_sanitized_total')?.get();
  return m?.values.reduce((a, v) => a + v.value, 0) ?? 0;
}

describe('Docker names and labels from a hostile container', () => {
  it('strips control characters and cuts over-long values, counting each', async () => {
    const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${name}`, {
      Image: image,
      Cmd: ['sleep', '600'],
      Labels: {
        'io.kubernetes.pod.name': '\x1b]0;owned\x07pod-\x1b[2Ja',
        'io.kubernetes.pod.namespace': 'n'.repeat(1000),
        'strata.test': 'plain',
      },
    });
    expect(created.status, created.body).toBe(201);
    expect((await dockerRequest(socketPath, 'POST', `/containers/${name}/start`)).status).toBe(204);
    const before = await sanitizedTotal();
    const list = await listDockerContainers(socketPath, 5000, 64);
    const c = list.find((x) => x.name === name);
    expect(c).toBeDefined();
    expect(c!.labels['io.kubernetes.pod.name']).toBe('pod-a');
    expect(c!.labels['io.kubernetes.pod.namespace']).toBe('n'.repeat(64));
    expect(c!.labels['strata.test']).toBe('plain');
    for (const x of list) {
      for (const text of [x.id, x.name, x.image, ...Object.keys(x.labels), ...Object.values(x.labels)])
        expect(hasControlChars(text)).toBe(false);
    }
    expect((await sanitizedTotal()) - before).toBeGreaterThanOrEqual(2);
  });
});
