// A container on the stack's real Docker engine doing direct 4K writes is found by the cgroup
// collector with its Docker name and image and non-zero writes; and a Docker socket that answers
// HTTP 500 is counted while the container, found by the cgroup scan, still comes out.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { registry } from '../../lib/metrics.ts';
import type { EntitySample } from '../../schemas/sample.ts';

const dockerHost = inject('dockerHost');
const image = inject('dockerImage');
const NAME = `strata-dd-${process.pid}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function docker(...args: string[]): string {
  return execFileSync('docker', ['-H', dockerHost, ...args], { encoding: 'utf8' }).trim();
}

async function gather(c: CgroupCollector) {
  const samples: EntitySample[] = [];
  await c.gather({ add: (s) => samples.push(s), error: () => {} });
  return samples;
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const v = await registry.getSingleMetric(name)?.get();
  const match = (l: Record<string, unknown>) => Object.entries(labels).every(([k, x]) => l[k] === x);
  return v?.values.filter((x) => match(x.labels)).reduce((a, x) => a + x.value, 0) ?? 0;
}

let id = '';
let id2 = '';
let errorServer: http.Server | undefined;
let sockDir = '';

beforeAll(() => {
  // dockerd's data root (vfs) is on the host disk: direct writes in the container reach it. Kernels
  // >= 6.9 account v1 blkio.throttle.* only once a throttle rule exists on that disk's queue, so
  // give the container a write-iops limit nothing reaches.
  const root = docker('info', '--format', '{{.DockerRootDir}}');
  const majMin = execFileSync('stat', ['-c', '%Hd:%Ld', root], { encoding: 'utf8' }).trim();
  const uevent = readFileSync(`/sys/dev/block/${majMin}/uevent`, 'utf8');
  const devname = /DEVNAME=(.*)/.exec(uevent)?.[1];
  const limit = devname ? ['--device-write-iops', `/dev/${devname}:1000000000`] : [];
  id = docker(
    'run',
    '-d',
    '--name',
    NAME,
    ...limit,
    image,
    'sh',
    '-c',
    'while :; do dd if=/dev/zero of=/tmp/x bs=4k count=200 oflag=direct 2>/dev/null; done',
  );
}, 60_000);

afterAll(async () => {
  if (id) docker('rm', '-f', id);
  if (id2) docker('rm', '-f', id2);
  await new Promise<void>((r) => (errorServer ? errorServer.close(() => r()) : r()));
  if (sockDir) rmSync(sockDir, { recursive: true, force: true });
}, 60_000);

describe('cgroup collector with the Docker engine', () => {
  it('finds the dd container with its name, image and growing writes', async () => {
    const c = new CgroupCollector(parseCgroupConfig({ docker: { socket: dockerHost } }), {
      nodeId: 'docker-node',
    });
    await c.start();
    await sleep(1000);
    const first = (await gather(c)).find((s) => s.entity.id === id);
    await sleep(1500);
    const second = (await gather(c)).find((s) => s.entity.id === id);
    await c.shutdown();
    expect(first?.entity).toMatchObject({
      layer: 'container',
      kind: 'docker',
      name: NAME,
      labels: { image, container_name: NAME, runtime: 'docker' },
      parent: { layer: 'host', id: 'docker-node' },
    });
    // The engine's storage driver as it states it (the stack's engine: vfs, no shared page cache).
    expect(first?.entity.labels.storage_driver).toBe(docker('info', '--format', '{{.Driver}}'));
    // Page cache and anonymous memory apart: dd writes through the page cache.
    expect(second!.gauges.memory_file_bytes).toBeGreaterThan(0);
    expect(second!.gauges.memory_anon_bytes).toBeGreaterThanOrEqual(0);
    const writes = (s: EntitySample) =>
      Object.values(s.devices ?? {}).reduce((n, d) => n + (d.counters.writes_completed_total ?? 0), 0);
    expect(writes(first!)).toBeGreaterThan(0);
    expect(writes(second!)).toBeGreaterThan(writes(first!));
    expect(second!.counters.cpu_usage_usec_total).toBeGreaterThan(0);
    // bridge networking: its own netns, eth0 inside, lo excluded
    expect(Object.keys(second!.interfaces ?? {})).toEqual(['eth0']);
  });

  it('a container started after discovery appears on the next tick through the /events stream', async () => {
    // discoveryInterval 1h: without the event the new container would not be seen for an hour
    const c = new CgroupCollector(
      parseCgroupConfig({ discoveryInterval: '1h', docker: { socket: dockerHost } }),
      { nodeId: 'docker-node' },
    );
    await c.start();
    await gather(c);
    const name2 = `${NAME}-late`;
    id2 = docker('run', '-d', '--name', name2, image, 'sleep', '600');
    let s: EntitySample | undefined;
    for (let i = 0; i < 20 && !s; i++) {
      await sleep(250);
      s = (await gather(c)).find((x) => x.entity.id === id2);
    }
    await c.shutdown();
    expect(s?.entity).toMatchObject({ kind: 'docker', name: name2, labels: { image } });
  });

  it('a Docker socket answering 500 is counted; the container still comes out, named by short id', async () => {
    sockDir = mkdtempSync('/tmp/strata-docker-500-');
    const sock = `${sockDir}/docker.sock`;
    const requests: string[] = [];
    errorServer = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      res.statusCode = 500;
      res.end('{"message":"injected failure"}');
    });
    await new Promise<void>((r) => errorServer!.listen(sock, r));
    const before = await metricValue('strata_collector_cgroup_docker_errors_total', { request: 'list' });
    const c = new CgroupCollector(parseCgroupConfig({ docker: { socket: `unix://${sock}` } }), {
      nodeId: 'docker-node',
    });
    await c.start();
    const samples = await gather(c);
    await c.shutdown();
    const s = samples.find((x) => x.entity.id === id);
    expect(s?.entity).toMatchObject({ kind: 'docker', name: id.slice(0, 12) });
    expect(s?.entity.labels.image).toBeUndefined();
    expect(requests.filter((u) => u === '/containers/json')).toHaveLength(1);
    expect(await metricValue('strata_collector_cgroup_docker_errors_total', { request: 'list' })).toBe(
      before + 1,
    );
  });
});
