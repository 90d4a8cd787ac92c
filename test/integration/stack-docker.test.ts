// The stack's Docker engine runs real containers from the offline-imported busybox image, and the
// Engine API (HTTP over its unix socket, what the container collector uses) shows them.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { dockerRequest } from '../../stack/index.ts';

const socketPath = inject('dockerHost').replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const name = `strata-stack-test-${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  // Removes the container even when an assertion failed half-way.
  await dockerRequest(socketPath, 'DELETE', `/containers/${name}?force=true`).catch(() => {});
});

describe('stack docker engine', () => {
  it('runs a busybox container that the Engine API lists by name and image, then removes it', async () => {
    const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${name}`, {
      Image: image,
      Cmd: ['sleep', '300'],
      Labels: { 'strata.test': 'stack-docker' },
    });
    expect(created.status, created.body).toBe(201);
    const id = (JSON.parse(created.body) as { Id: string }).Id;

    const startedRes = await dockerRequest(socketPath, 'POST', `/containers/${id}/start`);
    expect(startedRes.status, startedRes.body).toBe(204);

    const filters = encodeURIComponent(JSON.stringify({ name: [name] }));
    const list = await dockerRequest(socketPath, 'GET', `/containers/json?filters=${filters}`);
    expect(list.status).toBe(200);
    const containers = JSON.parse(list.body) as {
      Id: string;
      Names: string[];
      Image: string;
      State: string;
      Command: string;
      Labels: Record<string, string>;
    }[];
    expect(containers).toHaveLength(1);
    expect(containers[0]).toMatchObject({
      Id: id,
      Names: [`/${name}`],
      Image: image,
      State: 'running',
      Command: 'sleep 300',
      Labels: { 'strata.test': 'stack-docker' },
    });

    // The container's main process is a real host process running busybox sleep.
    const inspect = JSON.parse((await dockerRequest(socketPath, 'GET', `/containers/${id}/json`)).body) as {
      State: { Pid: number; Running: boolean };
    };
    expect(inspect.State.Running).toBe(true);
    expect(inspect.State.Pid).toBeGreaterThan(1);

    const removed = await dockerRequest(socketPath, 'DELETE', `/containers/${id}?force=true`);
    expect(removed.status, removed.body).toBe(204);
    const after = await dockerRequest(socketPath, 'GET', `/containers/json?all=true&filters=${filters}`);
    expect(JSON.parse(after.body)).toEqual([]);
  });
});
