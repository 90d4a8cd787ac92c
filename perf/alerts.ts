// Alert quality of the noisy-neighbour detector on real scenarios (docs/alerts.md): containers on the
// stack's Docker engine (and the stack's TCG test VM) share the engine's data disk, the real agent
// samples them (host + cgroup [+ vm] collectors, 1 s ticks), and the pipeline judges them with its
// default settings (or --episode-gap). Per scenario: incidents opened, whether the antagonist and the
// victims are the right ones, false alerts (incidents in a scenario that should have none, or naming
// another antagonist), time to fire (from the start of the harmful load) and to resolve (from its end).
// Only the scenario's own tenants (and the host) are fed to the pipeline: another tenant on the disk
// (a bench, a test) only adds to the device's totals.
// Usage (root, stack up): npm run bench:alerts [-- --only steady,vm --episode-gap 2m --out alerts.json --record dir]
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { backingDevice } from '../collectors/vm/backing.ts';
import { durationMs } from '../lib/config.ts';
import { NoisyNeighborConfig } from '../processors/noisy-neighbor/config.ts';
import { timingBounds } from '../processors/noisy-neighbor/detector.ts';
import { createPipeline } from '../processors/pipeline.ts';
import type { AlertEvent } from '../schemas/alert.ts';
import { decodeSampleMessage } from '../schemas/sample.ts';
import { DEFAULT_DOCKER_IMAGE, dockerRequest } from '../stack/docker.ts';
import { startTestVm, type TestVm } from '../stack/qemu.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'episode-gap': { type: 'string' },
    out: { type: 'string' },
    /** Keep what each scenario fed the pipeline: <dir>/<scenario>.ndjson (to replay, or record). */
    record: { type: 'string' },
    image: { type: 'string', default: process.env.STRATA_DOCKER_IMAGE || DEFAULT_DOCKER_IMAGE },
  },
});
const dockerHost = process.env.DOCKER_HOST;
if (!dockerHost?.startsWith('unix://')) {
  console.error(
    'bench:alerts: set DOCKER_HOST to the stack engine (node bin/strata.js stack status prints it)',
  );
  process.exit(2);
}
const socketPath = dockerHost.slice('unix://'.length);
const image = values.image!;
const nn = values['episode-gap'] !== undefined ? { episodeGap: durationMs.parse(values['episode-gap']) } : {};
const cfg = NoisyNeighborConfig.parse(nn);
const bounds = timingBounds(cfg, 1000);

const WARM_S = 35; // > warm-up (4 windows × 5 ticks) and a settled baseline
const LIGHT =
  'while :; do dd if=/dev/zero of=/v bs=4k count=1 oflag=direct conv=notrunc 2>/dev/null; sleep 0.05; done';
const HEAVY =
  'for i in 1 2 3 4 5 6 7 8; do ' +
  '(while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & ' +
  'done';
const PREP = 'dd if=/dev/zero of=/a bs=1M count=256 2>/dev/null';

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

async function diskOf(p: string): Promise<string> {
  // The vm collector's resolver: st_dev → /sys/dev/block → the whole disk (a partition's parent).
  const disk = await backingDevice(p, '/sys');
  if (!disk) throw new Error(`no single whole disk holds ${p}`);
  return disk;
}

async function run(name: string, script: string, disk: string): Promise<void> {
  const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${name}`, {
    Image: image,
    Cmd: ['sh', '-c', script],
    Labels: { 'strata.bench': 'alerts' },
    // Kernels ≥ 6.9 account v1 blkio.throttle.* only once a throttle rule exists on the queue.
    HostConfig: { BlkioDeviceWriteIOps: [{ Path: `/dev/${disk}`, Rate: 1_000_000_000 }] },
  });
  if (created.status !== 201) throw new Error(`create ${name}: ${created.status} ${created.body}`);
  const started = await dockerRequest(socketPath, 'POST', `/containers/${name}/start`);
  if (started.status !== 204) throw new Error(`start ${name}: ${started.status} ${started.body}`);
}

async function remove(name: string): Promise<void> {
  await dockerRequest(socketPath, 'DELETE', `/containers/${name}?force=true`).catch(() => {});
}

/** What a scenario does and what a trustworthy detector says about it. */
interface Ctx {
  prefix: string;
  disk: string;
  /** Names fed to the pipeline besides the host (and the scenario's containers, by prefix). */
  extra: Set<string>;
  /** Wall time (ms) the harmful load started and stopped; undefined when there is none. */
  loadStart?: number;
  loadStop?: number;
  vm?: TestVm;
  agentArgs: string[];
}

interface Scenario {
  name: string;
  what: string;
  /** Expected antagonist and victims (names without the prefix); undefined: no incident expected. */
  expect?: { antagonist: string; victims: string[] };
  setup?: (c: Ctx) => Promise<void>;
  act: (c: Ctx) => Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'steady',
    what: 'antagonist: 8 loops of 1 MiB O_DIRECT writes for 30 s; victim: one 4 KiB O_DIRECT write / 50 ms',
    expect: { antagonist: 'antagonist', victims: ['victim'] },
    setup: (c) => run(`${c.prefix}victim`, LIGHT, c.disk),
    act: async (c) => {
      await run(`${c.prefix}antagonist`, `${PREP}; ${HEAVY}; wait`, c.disk);
      c.loadStart = Date.now();
      await sleep(30);
      await remove(`${c.prefix}antagonist`);
      c.loadStop = Date.now();
    },
  },
  {
    name: 'intermittent',
    what: 'the same antagonist in 3 bursts of 15 s, 25 s apart (a backup, a compaction)',
    expect: { antagonist: 'antagonist', victims: ['victim'] },
    setup: (c) => run(`${c.prefix}victim`, LIGHT, c.disk),
    act: async (c) => {
      await run(
        `${c.prefix}antagonist`,
        `${PREP}; for b in 1 2 3; do pids=; for i in 1 2 3 4 5 6 7 8; do ` +
          '(while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & pids="$pids $!"; ' +
          'done; sleep 15; kill $pids; wait; [ $b -lt 3 ] && sleep 25; done; sleep 3600',
        c.disk,
      );
      c.loadStart = Date.now();
      await sleep(15 * 3 + 25 * 2 + 2);
      await remove(`${c.prefix}antagonist`);
      c.loadStop = Date.now();
    },
  },
  {
    name: 'two-victims',
    what: 'the steady antagonist beside two light synchronous writers',
    expect: { antagonist: 'antagonist', victims: ['victim1', 'victim2'] },
    setup: async (c) => {
      await run(`${c.prefix}victim1`, LIGHT, c.disk);
      await run(`${c.prefix}victim2`, LIGHT, c.disk);
    },
    act: async (c) => {
      await run(`${c.prefix}antagonist`, `${PREP}; ${HEAVY}; wait`, c.disk);
      c.loadStart = Date.now();
      await sleep(30);
      await remove(`${c.prefix}antagonist`);
      c.loadStop = Date.now();
    },
  },
  {
    name: 'self-inflicted',
    what: 'one container doing the heavy writes and its own light synchronous writes (it hurts only itself)',
    setup: (c) => run(`${c.prefix}self`, LIGHT, c.disk),
    act: async (c) => {
      // The heavy loops join the light writer's container: same cgroup, one tenant.
      const ex = await dockerRequest(socketPath, 'POST', `/containers/${c.prefix}self/exec`, {
        Cmd: [
          'sh',
          '-c',
          `${PREP}; pids=; for i in 1 2 3 4 5 6 7 8; do ` +
            '(while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & pids="$pids $!"; ' +
            'done; sleep 30; kill $pids',
        ],
      });
      const id = (JSON.parse(ex.body) as { Id: string }).Id;
      await dockerRequest(socketPath, 'POST', `/exec/${id}/start`, { Detach: true });
      await sleep(35);
    },
  },
  {
    name: 'moderate',
    what: 'two tenants writing 4 KiB O_DIRECT blocks, ~100 ops/s each, on an otherwise idle disk',
    setup: async (c) => {
      const moderate =
        'while :; do dd if=/dev/zero of=/m bs=4k count=10 oflag=direct conv=notrunc 2>/dev/null; sleep 0.1; done';
      await run(`${c.prefix}a`, moderate, c.disk);
      await run(`${c.prefix}b`, moderate, c.disk);
    },
    act: async () => {
      await sleep(40);
    },
  },
  {
    name: 'vm',
    what: 'the TCG test VM (raw image on the same disk) writing 1 MiB O_DIRECT blocks with fsync for 30 s; victim: a light container',
    expect: { antagonist: 'vm', victims: ['victim'] },
    setup: async (c) => {
      const dir = fs.mkdtempSync(path.join('/var/tmp', 'strata-bench-alerts-'));
      if ((await diskOf(dir)) !== c.disk) throw new Error(`/var/tmp is not on ${c.disk}: no VM scenario`);
      c.vm = await startTestVm({
        memoryMb: 192,
        cpus: 1,
        name: `${c.prefix}vm`,
        qmpSocket: path.join(dir, 'qmp', `${c.prefix}vm.sock`),
        agentSocket: path.join(dir, 'agent.sock'),
        workDir: dir,
        diskMb: 512,
      });
      const agentCfg = path.join(dir, 'agent.yaml');
      fs.writeFileSync(
        agentCfg,
        `agent:\n  collectors:\n    vm:\n      qmpSockets: ["${path.join(dir, 'qmp', '*.sock')}"]\n`,
      );
      c.agentArgs = ['--config', agentCfg, '--collectors', 'host,cgroup,vm'];
      await run(`${c.prefix}victim`, LIGHT, c.disk);
    },
    act: async (c) => {
      await c.vm!.exec(
        'for i in 1 2 3 4; do (while :; do dd if=/dev/zero of=/dev/vda bs=1M count=16 seek=$((RANDOM % 496)) oflag=direct conv=fsync 2>/dev/null; done) & echo $! >> /tmp/io.pids; done',
      );
      c.loadStart = Date.now();
      await sleep(30);
      await c.vm!.exec('kill $(cat /tmp/io.pids); killall dd 2>/dev/null; true');
      c.loadStop = Date.now();
    },
  },
];

interface Result {
  scenario: string;
  what: string;
  incidents: number;
  expected: number;
  antagonistOk: boolean | undefined;
  victimsOk: boolean | undefined;
  falseAlerts: number;
  fireS: number | undefined;
  resolveS: number | undefined;
  remedySteps: number;
  /** Other containers running on the engine during the scenario (benches, tests): not fed, but on the disk. */
  foreign: string[];
}

async function runScenario(s: Scenario, disk: string): Promise<Result> {
  const prefix = `nnb-${randomUUID().slice(0, 4)}-${s.name}-`;
  const c: Ctx = { prefix, disk, extra: new Set(), agentArgs: ['--collectors', 'host,cgroup'] };
  const pipeline = createPipeline({ noisyNeighbor: nn });
  const foreign = new Set<string>();
  const others = async () => {
    const list = JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/json')).body) as {
      Names: string[];
    }[];
    for (const x of list) for (const n of x.Names) if (!n.startsWith(`/${prefix}`)) foreign.add(n.slice(1));
  };
  const alerts: AlertEvent[] = [];
  let agent: ChildProcess | undefined;
  try {
    await s.setup?.(c);
    agent = spawn(
      process.execPath,
      ['bin/strata.js', 'agent', '--output', 'ndjson', '--interval', '1s', ...c.agentArgs],
      {
        env: { ...process.env, STRATA_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    readline.createInterface({ input: agent.stdout! }).on('line', (line) => {
      const r = decodeSampleMessage(line);
      if (!r.ok) return;
      const m = r.message;
      m.samples = m.samples.filter((x) => x.entity.layer === 'host' || x.entity.name.startsWith(prefix));
      if (values.record)
        fs.appendFileSync(path.join(values.record, `${s.name}.ndjson`), `${JSON.stringify(m)}\n`);
      alerts.push(...pipeline.handle(m).alerts);
    });
    await sleep(WARM_S);
    await others();
    await s.act(c);
    await others();
    // Until every incident resolved, or the longest resolve time the settings allow (and a margin).
    const deadline = Date.now() + bounds.resolve[1] + 15_000;
    const open = () => {
      const ids = new Set(alerts.map((a) => a.id));
      for (const a of alerts) if (a.status === 'resolved') ids.delete(a.id);
      return ids.size;
    };
    if (s.expect !== undefined || alerts.length > 0)
      while (Date.now() < deadline && open() > 0) await sleep(1);
    else await sleep(10);
  } finally {
    agent?.kill('SIGTERM');
    const list = JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/json?all=1')).body) as {
      Names: string[];
    }[];
    for (const x of list) for (const n of x.Names) if (n.startsWith(`/${prefix}`)) await remove(n.slice(1));
    if (c.vm !== undefined) {
      await c.vm.stop();
      fs.rmSync(path.dirname(c.vm.diskImage), { recursive: true, force: true });
    }
  }
  const ids = [...new Set(alerts.map((a) => a.id))];
  const first = (id: string) => alerts.find((a) => a.id === id)!;
  const last = (id: string) => alerts.filter((a) => a.id === id).at(-1)!;
  const strip = (n: string | undefined) => (n ?? '').slice(prefix.length);
  const exp = s.expect;
  const right = ids.filter(
    (id) => exp !== undefined && strip(first(id).labels.antagonist) === exp.antagonist,
  );
  const main = right[0];
  const resolved =
    main !== undefined ? alerts.find((a) => a.id === main && a.status === 'resolved') : undefined;
  return {
    scenario: s.name,
    what: s.what,
    incidents: ids.length,
    expected: exp === undefined ? 0 : 1,
    antagonistOk: exp === undefined ? undefined : main !== undefined,
    victimsOk:
      main === undefined
        ? undefined
        : JSON.stringify((last(main).labels.victims ?? '').split(',').map(strip).sort()) ===
          JSON.stringify([...exp!.victims].sort()),
    falseAlerts: ids.length - right.length,
    fireS:
      main !== undefined && c.loadStart !== undefined
        ? (first(main).starts_at - c.loadStart) / 1000
        : undefined,
    resolveS:
      resolved !== undefined && c.loadStop !== undefined
        ? (resolved.ends_at! - c.loadStop) / 1000
        : undefined,
    foreign: [...foreign].sort(),
    remedySteps:
      main !== undefined
        ? Math.max(...alerts.filter((a) => a.id === main).map((a) => a.evidence.remedy_step ?? 1))
        : 0,
  };
}

const info = JSON.parse((await dockerRequest(socketPath, 'GET', '/info')).body) as { DockerRootDir: string };
const disk = await diskOf(info.DockerRootDir);
const only = values.only?.split(',');
const results: Result[] = [];
for (const s of scenarios) {
  if (only !== undefined && !only.includes(s.name)) continue;
  process.stderr.write(`bench:alerts: ${s.name}: ${s.what}\n`);
  try {
    const r = await runScenario(s, disk);
    results.push(r);
    process.stderr.write(`bench:alerts: ${s.name}: ${JSON.stringify(r)}\n`);
  } catch (err) {
    process.stderr.write(`bench:alerts: ${s.name}: left out: ${(err as Error).message}\n`);
  }
}
const yn = (x: boolean | undefined) => (x === undefined ? '–' : x ? 'yes' : 'NO');
const sec = (x: number | undefined) => (x === undefined ? '–' : `${x.toFixed(1)} s`);
const lines = [
  `Disk ${disk}; episodeGap ${cfg.episodeGap / 1000} s; stated bounds: fire ${bounds.fire.map((x) => x / 1000).join('–')} s, resolve ${bounds.resolve.map((x) => x / 1000).join('–')} s.`,
  '',
  '| scenario | incidents (expected) | right antagonist | right victims | false alerts | time to fire | time to resolve | remedy steps | other containers on the engine |',
  '|---|---|---|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.scenario} | ${r.incidents} (${r.expected}) | ${yn(r.antagonistOk)} | ${yn(r.victimsOk)} | ${r.falseAlerts} | ${sec(r.fireS)} | ${sec(r.resolveS)} | ${r.remedySteps || '–'} | ${r.foreign.length} |`,
  ),
];
console.log(lines.join('\n'));
if (values.out)
  fs.writeFileSync(
    values.out,
    `${JSON.stringify({ disk, episodeGapMs: cfg.episodeGap, results }, null, 2)}\n`,
  );
