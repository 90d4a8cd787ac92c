// The remedy an alert carries, applied live as an on-call engineer would: a steady antagonist (8
// loops of random 1 MiB O_DIRECT writes, which saturate this machine's disk on bandwidth) beside a
// light synchronous writer (one 4 KiB O_DIRECT write every 50 ms), both on the stack's Docker
// engine, sampled by the real agent (host + cgroup collectors, 1 s ticks) and fed to the pipeline
// with its default settings. The cgroup lines of the firing alert's runbook are run as printed
// (cgroup v1 blkio.throttle.* or v2 io.max, written directly); when the incident stays open under
// that cap, the alert announces a tighter one (same id, remedy_step + 1), which is applied in turn.
// The victim's ms stalled per op and io stall must come back toward their baseline (or, when other
// tenants made the disk busier meanwhile, toward what the victim gets once the antagonist is gone),
// and the incident resolve (recovered) while the antagonist keeps running, capped.
// Only this test's containers (and the host) are fed to the pipeline: a foreign tenant on the same
// disk (another bench) only lowers this antagonist's share, it is never a candidate.
// STRATA_RECORD=<file.ndjson> keeps the agent's output (testdata/processor/noisy-1m-capped).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { backingDevice } from '../../collectors/vm/backing.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { AlertEvent } from '../../schemas/alert.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';
import { dockerRequest } from '../../stack/index.ts';

const dockerHost = inject('dockerHost');
const socketPath = dockerHost.replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const prefix = `nnr-${randomUUID().slice(0, 6)}`;
const victim = `${prefix}-victim`;
const antagonist = `${prefix}-antagonist`;
const record = process.env.STRATA_RECORD;

const WARM_S = 40; // > warm-up (4 windows × 5 ticks) + the first ticks, and a baseline to compare with
const HEAVY =
  'dd if=/dev/zero of=/a bs=1M count=256 2>/dev/null; for i in 1 2 3 4 5 6 7 8; do ' +
  '(while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & ' +
  'done; wait';

let agent: ChildProcess | undefined;
const pipeline = createPipeline();
const alerts: AlertEvent[] = [];
/** The victim per tick: ms stalled on I/O per op (the detector's latency proxy) and io stall ratio. */
const victimTicks: { ts: number; msPerOp: number; stall: number }[] = [];
let ticks = 0;
let disk = '';
let prevVictim: { ops: number; stallUs: number; ts: number } | undefined;
let out: fs.WriteStream | undefined;

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

/**
 * Median of per-tick figures: a light writer's ms stalled per op jumps to 20–250 ms in single ticks
 * when the host flushes or another tenant on the disk (a bench, a test) bursts, whatever the
 * antagonist does; a mean would be those ticks.
 */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The cgroup part of an alert's runbook, as printed (v1 blkio.throttle lines or the v2 io.max line). */
function cgroupCommand(remedy: string | undefined): string | undefined {
  return /cgroup v[12]: ([^;]+(?:; echo [^;]+)*)/.exec(remedy ?? '')?.[1];
}

beforeAll(async () => {
  disk = await dataRootDisk();
  if (record) out = fs.createWriteStream(record);
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
    out?.write(`${JSON.stringify(m)}\n`);
    ticks++;
    alerts.push(...pipeline.handle(m).alerts);
    // From the raw counters (not the points, whose schema may move): Δ io stall ÷ Δ ops.
    const v = m.samples.find((x) => x.entity.name === victim);
    const c = v?.devices?.[disk]?.counters;
    const stallUs = v?.counters?.psi_io_some_usec_total;
    if (c !== undefined && stallUs !== undefined) {
      const ops = (c.reads_completed_total ?? 0) + (c.writes_completed_total ?? 0);
      if (prevVictim !== undefined && ops > prevVictim.ops && m.ts > prevVictim.ts) {
        victimTicks.push({
          ts: Date.now(),
          msPerOp: (stallUs - prevVictim.stallUs) / 1000 / (ops - prevVictim.ops),
          stall: (stallUs - prevVictim.stallUs) / 1000 / (m.ts - prevVictim.ts),
        });
      }
      prevVictim = { ops, stallUs, ts: m.ts };
    }
  });
}, 60_000);

afterAll(async () => {
  agent?.kill('SIGTERM');
  await remove(antagonist);
  await remove(victim);
  out?.end();
});

describe('the remedy, applied live on the stack Docker engine', () => {
  it('gives the victim its baseline back and the incident resolves, the antagonist still running (capped)', async () => {
    await sleep(WARM_S);
    expect(ticks).toBeGreaterThan(WARM_S - 10); // the agent is ticking
    const base = victimTicks.slice(-20);
    const baseline = { msPerOp: median(base.map((x) => x.msPerOp)), stall: median(base.map((x) => x.stall)) };
    await run(antagonist, HEAVY);
    await until(() => alerts.some((a) => a.status === 'firing'), 60);
    const firing = alerts.find((a) => a.status === 'firing');
    expect(firing, JSON.stringify(alerts)).toBeDefined();
    expect(firing!.labels).toMatchObject({ antagonist, victims: victim });
    const hurtTicks = victimTicks.slice(-10);
    const hurt = {
      msPerOp: median(hurtTicks.map((x) => x.msPerOp)),
      stall: median(hurtTicks.map((x) => x.stall)),
    };

    // Apply the announced cap; a tighter one announced while the incident stays open is applied in turn.
    const applied: { step: number; remedy: string; at: number; wbps: number }[] = [];
    const apply = (a: AlertEvent) => {
      const cmd = cgroupCommand(a.remedy);
      expect(cmd, a.remedy).toBeDefined();
      execFileSync('sh', ['-c', cmd!]);
      applied.push({
        step: a.evidence.remedy_step!,
        remedy: a.remedy!,
        at: Date.now(),
        wbps: a.evidence.remedy_write_bytes_per_second!,
      });
    };
    apply(firing!);
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline && !alerts.some((a) => a.status === 'resolved')) {
      const tighter = alerts.filter(
        (a) => a.status === 'firing' && (a.evidence.remedy_step ?? 1) > applied.at(-1)!.step,
      );
      if (tighter.length > 0) apply(tighter.at(-1)!);
      await sleep(1);
    }
    const resolved = alerts.find((a) => a.status === 'resolved');
    const capped = victimTicks.filter((x) => x.ts > applied.at(-1)!.at + 10_000);
    const after = {
      msPerOp: median(capped.map((x) => x.msPerOp)),
      stall: median(capped.map((x) => x.stall)),
    };
    // The antagonist still runs (capped): the incident ended because the victim recovered.
    const state = JSON.parse((await dockerRequest(socketPath, 'GET', `/containers/${antagonist}/json`)).body);
    // What the victim gets now with the antagonist gone: the disk's other tenants (the stack's
    // benches, not fed to the pipeline) may have come or gone since the first baseline.
    await remove(antagonist);
    const pausedAt = Date.now();
    await sleep(20);
    const quiet = victimTicks.filter((x) => x.ts > pausedAt + 3000);
    const control = {
      msPerOp: median(quiet.map((x) => x.msPerOp)),
      stall: median(quiet.map((x) => x.stall)),
    };
    const others = (
      JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/json')).body) as { Names: string[] }[]
    )
      .flatMap((c) => c.Names)
      .filter((n) => !n.startsWith(`/${prefix}`));
    const ref = {
      msPerOp: Math.max(baseline.msPerOp, control.msPerOp),
      stall: Math.max(baseline.stall, control.stall),
    };
    const info = JSON.stringify({
      baseline,
      hurt,
      after,
      control,
      others,
      steps: applied.map((a) => a.remedy.slice(0, a.remedy.indexOf(':'))),
      alerts: alerts.map((a) => [a.status, a.evidence.remedy_step, a.evidence.remedy_rate_fraction_ratio]),
    });
    console.log(`noisy-neighbor remedy live: ${info}`);
    expect(state.State.Running, info).toBe(true);
    expect(resolved, info).toBeDefined();
    expect(resolved!.id, info).toBe(firing!.id);
    expect(resolved!.resolved_reason, info).toBe('recovered');
    expect(new Set(alerts.map((a) => a.id)).size, info).toBe(1);
    // A few steps at most, each tighter than the one before.
    expect(applied.length, info).toBeLessThanOrEqual(3);
    for (let i = 1; i < applied.length; i++)
      expect(applied[i]!.wbps, info).toBeLessThan(applied[i - 1]!.wbps);
    // Toward the baseline (the first one, or the one without the antagonist if the disk got
    // busier since): below what the detector calls hurt (2 × it and + 0.25 ms/op), far below the
    // figure while hurt; the io stall likewise (below 2 × it and + 5 % of the time).
    expect(after.msPerOp, info).toBeLessThan(hurt.msPerOp / 4);
    expect(after.msPerOp, info).toBeLessThan(Math.max(2 * ref.msPerOp, ref.msPerOp + 0.25));
    expect(after.stall, info).toBeLessThan(hurt.stall / 2);
    expect(after.stall, info).toBeLessThan(Math.max(2 * ref.stall, ref.stall + 0.05));
  }, 480_000);
});
