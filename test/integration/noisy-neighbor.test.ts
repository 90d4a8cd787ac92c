// Noisy neighbour, live: two containers on the stack's Docker engine, sampled by the real agent
// (host + cgroup collectors, 1 s ticks, NDJSON on stdout) and fed into the pipeline with its
// default settings. One container does light synchronous I/O (one 4 KiB O_DIRECT write every
// 50 ms), the other, for 30 s, heavy random 1 MiB O_DIRECT writes from 8 loops (smaller writes do
// not hurt anyone on this machine's virtio disk: see docs/overhead.md). Expected: a firing alert
// naming the second as antagonist and the first as victim, then a resolved one after it stops;
// a quiet run of the same length (the light container alone) produces none.
// Only this test's containers (and the host) are fed to the pipeline: other engineers' containers
// on the same engine must not be accused or accuse ours.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPipeline, type ProcessingPipeline } from '../../processors/pipeline.ts';
import type { AlertEvent } from '../../schemas/alert.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';
import { dockerRequest } from '../../stack/index.ts';

const dockerHost = inject('dockerHost');
const socketPath = dockerHost.replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const prefix = `nn-${randomUUID().slice(0, 6)}`;
const victim = `${prefix}-victim`;
const antagonist = `${prefix}-antagonist`;

const WARM_S = 30; // > warm-up (4 windows × 5 ticks) + the first ticks
const HEAVY_S = 30;
const COOL_S = 35; // ≥ 3 good windows (15 s) after the window that still saw the antagonist

let agent: ChildProcess | undefined;
// One steady episode, judged without the episode gap (2 min by default) so that it resolves within
// COOL_S; noisy-neighbor-episodes.test.ts runs the defaults.
const STEADY = { noisyNeighbor: { episodeGap: 0 } } as const;
let pipeline: ProcessingPipeline = createPipeline(STEADY);
const alerts: AlertEvent[] = [];
let ticks = 0;

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** The whole disk under the engine's data root, as /dev/<name>, for a never-reached throttle rule. */
async function dataRootDisk(): Promise<string> {
  const info = JSON.parse((await dockerRequest(socketPath, 'GET', '/info')).body) as {
    DockerRootDir: string;
  };
  const dev = fs.statSync(info.DockerRootDir).dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | ((Math.floor(dev / 4096) & 0xfff00) >>> 0);
  let sys = fs.realpathSync(`/sys/dev/block/${major}:${minor}`);
  if (fs.existsSync(`${sys}/partition`)) sys = fs.realpathSync(`${sys}/..`);
  const name = /DEVNAME=(\S+)/.exec(fs.readFileSync(`${sys}/uevent`, 'utf8'))?.[1];
  if (!name) throw new Error(`no DEVNAME in ${sys}/uevent`);
  return `/dev/${name}`;
}

async function run(name: string, script: string, disk: string): Promise<void> {
  const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${name}`, {
    Image: image,
    Cmd: ['sh', '-c', script],
    Labels: { 'strata.test': 'noisy-neighbor' },
    // Kernels ≥ 6.9 account v1 blkio.throttle.* only once a throttle rule exists on the queue.
    HostConfig: { BlkioDeviceWriteIOps: [{ Path: disk, Rate: 1_000_000_000 }] },
  });
  expect(created.status, created.body).toBe(201);
  expect((await dockerRequest(socketPath, 'POST', `/containers/${name}/start`)).status).toBe(204);
}

async function remove(name: string): Promise<void> {
  await dockerRequest(socketPath, 'DELETE', `/containers/${name}?force=true`).catch(() => {});
}

beforeAll(async () => {
  const disk = await dataRootDisk();
  await run(
    victim,
    'while :; do dd if=/dev/zero of=/v bs=4k count=1 oflag=direct conv=notrunc 2>/dev/null; sleep 0.05; done',
    disk,
  );
  (globalThis as { nnDisk?: string }).nnDisk = disk;
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
    alerts.push(...pipeline.handle(m).alerts);
  });
}, 60_000);

afterAll(async () => {
  agent?.kill('SIGTERM');
  await remove(antagonist);
  await remove(victim);
});

describe('noisy neighbour on the stack Docker engine', () => {
  it('names the heavy writer as antagonist and the light one as victim, then resolves', async () => {
    const disk = (globalThis as { nnDisk?: string }).nnDisk!;
    await sleep(WARM_S);
    expect(ticks).toBeGreaterThan(WARM_S - 10); // the agent is ticking
    await run(
      antagonist,
      'dd if=/dev/zero of=/a bs=1M count=256 2>/dev/null; for i in 1 2 3 4 5 6 7 8; do ' +
        '(while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & ' +
        'done; wait',
      disk,
    );
    await sleep(HEAVY_S);
    const firingWhileHeavy = alerts.filter((a) => a.status === 'firing').length;
    await remove(antagonist);
    const deadline = Date.now() + COOL_S * 1000;
    while (Date.now() < deadline && !alerts.some((a) => a.status === 'resolved')) await sleep(1);

    const summary = alerts.map((a) => [a.status, a.labels.antagonist, a.labels.victims, a.evidence]);
    expect(firingWhileHeavy, JSON.stringify(summary)).toBe(1);
    expect(
      alerts.map((a) => [a.status, a.labels.antagonist, a.labels.victims]),
      JSON.stringify(summary),
    ).toEqual([
      ['firing', antagonist, victim],
      ['resolved', antagonist, victim],
    ]);
    expect(alerts[1]!.id).toBe(alerts[0]!.id);
    expect(alerts[0]!.evidence.antagonist_iops_share_ratio).toBeGreaterThan(0.5);
    expect(alerts[1]!.ends_at).toBeGreaterThan(alerts[0]!.starts_at);
  }, 200_000);

  it('a quiet run of the same length (the light writer alone) produces no alert', async () => {
    pipeline = createPipeline(STEADY); // fresh baselines, as for the heavy run
    alerts.length = 0;
    const start = ticks;
    await sleep(WARM_S + HEAVY_S + COOL_S);
    expect(ticks - start).toBeGreaterThan(WARM_S + HEAVY_S + COOL_S - 15);
    expect(alerts).toEqual([]);
  }, 200_000);
});
