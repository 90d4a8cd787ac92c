// Noisy neighbour, live, as an on-call engineer lives it: containers on the stack's Docker engine,
// sampled by the real agent (host + cgroup collectors, 1 s ticks) and fed to the pipeline with its
// default settings (episode gap 2 min).
// An intermittent antagonist — 3 bursts of 15 s of random 1 MiB O_DIRECT writes from 8 loops,
//    25 s apart (longer than the 15 s resolve time) — beside a light synchronous writer: one
//    incident (one id, one firing and one resolved strata_alert point), marked intermittent.
// Only this test's containers (and the host) are fed to the pipeline.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { backingDevice } from '../../collectors/vm/backing.ts';
import { createPipeline, type ProcessingPipeline } from '../../processors/pipeline.ts';
import type { AlertEvent } from '../../schemas/alert.ts';
import type { Point } from '../../schemas/point.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';
import { dockerRequest } from '../../stack/index.ts';

const dockerHost = inject('dockerHost');
const socketPath = dockerHost.replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const prefix = `nne-${randomUUID().slice(0, 6)}`;
const victim = `${prefix}-victim`;

const WARM_S = 30; // > warm-up (4 windows × 5 ticks) + the first ticks
let agent: ChildProcess | undefined;
let pipeline: ProcessingPipeline = createPipeline();
const alerts: AlertEvent[] = [];
const points: Point[] = [];
let ticks = 0;
let disk = '';

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** The whole disk under the engine's data root, as its name (vda). */
async function dataRootDisk(): Promise<string> {
  const info = JSON.parse((await dockerRequest(socketPath, 'GET', '/info')).body) as {
    DockerRootDir: string;
  };
  // The vm collector's resolver: st_dev → /sys/dev/block → the whole disk (a partition's parent).
  const disk = await backingDevice(info.DockerRootDir, '/sys');
  if (!disk) throw new Error(`no single whole disk holds ${info.DockerRootDir}`);
  return disk;
}

async function run(name: string, script: string): Promise<void> {
  const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${name}`, {
    Image: image,
    Cmd: ['sh', '-c', script],
    Labels: { 'strata.test': 'noisy-neighbor' },
    // Kernels ≥ 6.9 account v1 blkio.throttle.* only once a throttle rule exists on the queue.
    HostConfig: { BlkioDeviceWriteIOps: [{ Path: `/dev/${disk}`, Rate: 1_000_000_000 }] },
  });
  expect(created.status, created.body).toBe(201);
  expect((await dockerRequest(socketPath, 'POST', `/containers/${name}/start`)).status).toBe(204);
}

async function remove(name: string): Promise<void> {
  await dockerRequest(socketPath, 'DELETE', `/containers/${name}?force=true`).catch(() => {});
}

async function until(cond: () => boolean, maxS: number): Promise<void> {
  const deadline = Date.now() + maxS * 1000;
  while (Date.now() < deadline && !cond()) await sleep(1);
}

function reset(): void {
  pipeline = createPipeline();
  alerts.length = 0;
  points.length = 0;
}

beforeAll(async () => {
  disk = await dataRootDisk();
  await run(
    victim,
    'while :; do dd if=/dev/zero of=/v bs=4k count=1 oflag=direct conv=notrunc 2>/dev/null; sleep 0.05; done',
  );
  agent = spawn(
    process.execPath,
    ['bin/strata.js', 'agent', '--output', 'ndjson', '--interval', '1s', '--collectors', 'host,cgroup'],
    {
      env: { ...process.env, DOCKER_HOST: dockerHost, STRATA_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  readline.createInterface({ input: agent.stdout! }).on('line', (line) => {
    const r = decodeSampleMessage(line);
    if (!r.ok) return;
    const m = r.message;
    m.samples = m.samples.filter((s) => s.entity.layer === 'host' || s.entity.name.startsWith(prefix));
    ticks++;
    const out = pipeline.handle(m);
    alerts.push(...out.alerts);
    points.push(...out.points.filter((p) => p.measurement === 'strata_alert'));
  });
}, 60_000);

afterAll(async () => {
  agent?.kill('SIGTERM');
  await remove(`${prefix}-bursty`);
  await remove(victim);
});

describe('noisy neighbour episodes on the stack Docker engine', () => {
  it('an antagonist in 3 bursts 25 s apart is one incident, marked intermittent, resolved once', async () => {
    reset();
    await sleep(WARM_S);
    expect(ticks).toBeGreaterThan(WARM_S - 10); // the agent is ticking
    const name = `${prefix}-bursty`;
    await run(
      name,
      'dd if=/dev/zero of=/a bs=1M count=256 2>/dev/null; ' +
        'for b in 1 2 3; do pids=; for i in 1 2 3 4 5 6 7 8; do ' +
        '(while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & pids="$pids $!"; ' +
        'done; sleep 15; kill $pids; wait; [ $b -lt 3 ] && sleep 25; done; sleep 3600',
    );
    await sleep(15 * 3 + 25 * 2 + 2);
    await remove(name);
    // The default episode gap (2 min) after the last bad window, then up to a window more.
    await until(() => alerts.some((a) => a.status === 'resolved'), 150);

    const summary = JSON.stringify(alerts.map((a) => [a.status, a.id, a.labels, a.evidence.episode_bursts]));
    expect(new Set(alerts.map((a) => a.id)).size, summary).toBe(1);
    expect(alerts[0]!.labels, summary).toMatchObject({ antagonist: name, victims: victim });
    expect(alerts.at(-1)!.status, summary).toBe('resolved');
    expect(
      points.map((p) => p.tags.status),
      summary,
    ).toEqual(['firing', 'resolved']);
    const last = alerts.at(-1)!;
    expect(last.evidence.episode_bursts, summary).toBeGreaterThanOrEqual(2);
    expect(last.evidence.intermittent).toBe(1);
    expect(last.evidence.episode_duty_cycle_ratio).toBeLessThan(0.9);
  }, 420_000);
});
