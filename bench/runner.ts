// `strata bench`: runs each workload case at each layer, one layer after another (or all layers at
// once with `concurrent`), `repeats` times, measures throughput, latency and the CPU the host spent,
// and summarises median and min–max per case and layer with the overhead against native.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../lib/errors.ts';
import { componentLogger } from '../lib/log.ts';
import type { BenchConfig, LayerName } from './config.ts';
import { ensureTools } from './layers/common.ts';
import { ContainerLayer } from './layers/container.ts';
import { execNative, NativeLayer } from './layers/native.ts';
import { type BenchLayer, type CaseSession, LayerUnavailableError } from './layers/types.ts';
import { VmLayer } from './layers/vm.ts';
import { makeProgress, type ProgressSink } from './report/progress.ts';
import { type CaseContext, casesFor, type WorkloadCase } from './workloads/index.ts';
import type { Measured } from './workloads/parse.ts';

const log = componentLogger('bench');

/** One timed run of one case at one layer. */
export interface RunRecord {
  run_id: string;
  workload: string;
  case: string;
  layer: LayerName;
  mode: 'sequential' | 'concurrent';
  repeat: number;
  started_at: string;
  ok: boolean;
  error?: string;
  throughput?: number;
  throughput_unit?: string;
  ops?: number;
  op_unit?: string;
  latency_avg?: number;
  latency_p50?: number;
  latency_p99?: number;
  latency_unit?: string;
  wall_ms: number;
  /** Host CPU µs of the work at this layer (see cpu_source), plus the host-side client's. */
  cpu_usec?: number;
  /** The layer's part: cgroup / QEMU process / native processes (+ docker-proxy for NAT). */
  layer_cpu_usec?: number;
  /** The host-side client's part (client-server workloads). */
  client_cpu_usec?: number;
  /** The workload's CPU as accounted inside the layer (the guest's own view in a VM). */
  inner_cpu_usec?: number;
  /** VM only: CPU µs of the vCPU threads during the run (collectors/vm vcpu_usec_total). */
  vcpu_usec?: number;
  /** VM only: QEMU process CPU ÷ vCPU-thread CPU (the hypervisor's CPU per guest CPU: what running the guest costs beyond its own work). */
  qemu_per_vcpu?: number;
  cpu_per_op_us?: number;
  cpu_source?: string;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
}

export interface Summary {
  workload: string;
  case: string;
  description: string;
  layer: LayerName;
  mode: 'sequential' | 'concurrent';
  runs: number;
  failed: number;
  throughput?: Stat;
  throughput_unit?: string;
  latency_p50?: Stat;
  latency_p99?: Stat;
  latency_avg?: Stat;
  latency_unit?: string;
  cpu_per_op_us?: Stat;
  op_unit?: string;
  /** (native − layer) ÷ native × 100 on median throughput: positive = slower than native. */
  throughput_overhead_pct?: number;
  /** (layer − native) ÷ native × 100 on median CPU per op: positive = costlier than native. */
  cpu_overhead_pct?: number;
}

export interface LayerStatus {
  layer: LayerName;
  /** skipped: none of the selected workloads can run in this layer, so it was not even set up. */
  status: 'ok' | 'unavailable' | 'skipped';
  reason?: string;
  info: Record<string, string>;
}

export interface BenchResult {
  run_id: string;
  /** Interrupted by SIGINT/SIGTERM: the runs that finished before are reported. */
  aborted?: boolean;
  started_at: string;
  finished_at: string;
  host: { hostname: string; cpu_model: string; cpus: number; kernel: string; memory_mb: number };
  config: Omit<BenchConfig, 'influxToken'>;
  layers: LayerStatus[];
  skipped: { case: string; layer: LayerName; reason: string }[];
  runs: RunRecord[];
  summaries: Summary[];
}

export function newRunId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${t}-${randomBytes(2).toString('hex')}`;
}

export interface RunBenchOptions {
  runId?: string;
  progress?: ProgressSink;
}

export async function runBench(config: BenchConfig, opts: RunBenchOptions = {}): Promise<BenchResult> {
  const runId = opts.runId ?? newRunId();
  const started = new Date();
  const progress = opts.progress ?? makeProgress(config.progress);
  const outDir = path.resolve(config.outDir ?? `strata-bench-${runId}`);
  const workDir = path.join(outDir, 'work');
  await fs.mkdir(workDir, { recursive: true });
  const assetDir = path.join(workDir, 'assets');
  const allCases = config.cmd
    ? casesFor('cmd', { cmd: config.cmd })
    : config.workloads.flatMap((w) => casesFor(w, { assetDir }));

  // Tools: everything the cases run, inside layers and as host-side clients.
  const toolNames = allCases.flatMap((c) =>
    c.kind === 'single' ? c.binaries : [...c.binaries, ...c.clientBinaries],
  );
  const tools = await ensureTools(toolNames, config.install);

  // Host-side preparation (the MariaDB data template): a case whose preparation fails is reported
  // as skipped in every layer, and the other cases run.
  const skipped: BenchResult['skipped'] = [];
  const cases: WorkloadCase[] = [];
  for (const c of allCases) {
    try {
      await c.hostSetup?.(tools);
      cases.push(c);
    } catch (err) {
      const reason = `preparing ${c.id} on the host failed: ${errorMessage(err)}`;
      for (const layer of config.layers) skipped.push({ case: c.id, layer, reason });
      progress.note(`${c.id}: ${reason}`);
    }
  }

  const ioDir = path.join(workDir, 'io');
  await fs.mkdir(ioDir, { recursive: true });
  const dockerHost = config.dockerHost ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const layers: BenchLayer[] = config.layers.map((name) => {
    switch (name) {
      case 'native':
        return new NativeLayer(ioDir);
      case 'vm':
        return new VmLayer({
          accel: config.vmAccel,
          net: config.vmNet === 'auto' ? (process.getuid?.() === 0 ? 'tap' : 'user') : config.vmNet,
          memoryMb: config.vmMemoryMb,
          workDir: path.join(workDir, 'vm'),
          ioSizeMb: config.ioSizeMb,
          tools,
        });
      default:
        return new ContainerLayer({ name, dockerHost, image: config.image, ioDir, runId, tools });
    }
  });

  const statuses: LayerStatus[] = [];
  const ready: BenchLayer[] = [];
  for (const layer of layers) {
    const reasons = cases.map((c) => layer.unsupported(c));
    if (reasons.every((r) => r !== undefined)) {
      // Nothing to run there (e.g. only network workloads and a VM without a network): don't boot it.
      const reason = [...new Set(reasons)].join('; ');
      statuses.push({ layer: layer.name, status: 'skipped', reason, info: layer.info });
      for (const c of cases)
        skipped.push({ case: c.id, layer: layer.name, reason: reasons[cases.indexOf(c)]! });
      progress.note(`layer ${layer.name} skipped: ${reason}`);
      continue;
    }
    try {
      progress.note(`setting up layer ${layer.name}...`);
      await layer.setup(cases);
      statuses.push({ layer: layer.name, status: 'ok', info: layer.info });
      ready.push(layer);
    } catch (err) {
      const reason = err instanceof LayerUnavailableError ? err.reason : errorMessage(err);
      statuses.push({ layer: layer.name, status: 'unavailable', reason, info: layer.info });
      progress.note(`layer ${layer.name} cannot run: ${reason}`);
      log.warn({ layer: layer.name, reason }, 'layer unavailable; the other layers run');
      await layer.close().catch(() => {});
    }
  }

  const runs: RunRecord[] = [];
  // Ctrl-C / SIGTERM: remove the containers and stop the VM before leaving (the wrapped sleep keeps
  // a container alive forever, a QEMU child would outlive us).
  let aborted = false;
  // The runs in flight fail once their layer is gone; what finished is still reported. A second
  // signal exits at once.
  const onSignal = (signal: NodeJS.Signals) => {
    if (aborted) process.exit(130);
    aborted = true;
    progress.note(
      `${signal}: stopping containers and the VM, then writing what finished (again to quit now)`,
    );
    void Promise.allSettled(ready.map((l) => l.close()));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const mode = config.concurrent ? 'concurrent' : 'sequential';
  const durationS = Math.round(config.durationMs / 1000);
  try {
    for (const c of cases) {
      if (aborted) break;
      const sessions: { layer: BenchLayer; session: CaseSession }[] = [];
      for (const layer of ready) {
        const why = layer.unsupported(c);
        if (why) {
          skipped.push({ case: c.id, layer: layer.name, reason: why });
          progress.note(`${c.id} @ ${layer.name}: skipped: ${why}`);
          continue;
        }
        try {
          const session = await layer.open(c);
          await prepareCase(c, session, config, durationS);
          sessions.push({ layer, session });
        } catch (err) {
          const reason = err instanceof LayerUnavailableError ? err.reason : errorMessage(err);
          skipped.push({ case: c.id, layer: layer.name, reason });
          progress.note(`${c.id} @ ${layer.name}: cannot run: ${reason}`);
        }
      }
      try {
        for (let repeat = 1; repeat <= config.repeats && !aborted; repeat++) {
          const one = (s: (typeof sessions)[number]) =>
            runOne({
              runId,
              c,
              layer: s.layer.name,
              session: s.session,
              repeat,
              mode,
              config,
              durationS,
              progress,
            });
          if (config.concurrent) runs.push(...(await Promise.all(sessions.map(one))));
          else for (const s of sessions) if (!aborted) runs.push(await one(s));
        }
      } finally {
        for (const s of sessions) await s.session.close().catch(() => {});
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const layer of ready) await layer.close().catch(() => {});
    await fs.rm(ioDir, { recursive: true, force: true });
    await fs.rm(path.join(workDir, 'vm'), { recursive: true, force: true });
    await fs.rm(assetDir, { recursive: true, force: true });
    await fs.rmdir(workDir).catch(() => {});
  }

  const { influxToken: _t, ...publicConfig } = config;
  return {
    run_id: runId,
    ...(aborted ? { aborted: true } : {}),
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    host: {
      hostname: os.hostname(),
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      cpus: os.cpus().length,
      kernel: os.release(),
      memory_mb: Math.round(os.totalmem() / 1024 / 1024),
    },
    config: { ...publicConfig, outDir },
    layers: statuses,
    skipped,
    runs,
    summaries: summarise(cases, runs),
  };
}

function caseContext(session: CaseSession, config: BenchConfig, durationS: number): CaseContext {
  return { durationS, ioPath: session.ioPath, ioIsDevice: session.ioIsDevice, ioSizeMb: config.ioSizeMb };
}

function timeoutFor(config: BenchConfig): number {
  // TCG guests run tools several times slower than the host; fio may lay out its file first.
  return config.durationMs * 4 + 180_000;
}

async function prepareCase(c: WorkloadCase, session: CaseSession, config: BenchConfig, durationS: number) {
  if (c.kind !== 'single' || !c.prepare) return;
  const argv = c.prepare(caseContext(session, config, durationS));
  if (!argv) return;
  const r = await session.exec(argv, { timeoutMs: timeoutFor(config) });
  if (r.code !== 0) throw new Error(`preparing ${c.id} failed (exit ${r.code}): ${tail(r.output)}`);
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-6).join(' | ').slice(-600);
}

interface RunOneArgs {
  runId: string;
  c: WorkloadCase;
  layer: LayerName;
  session: CaseSession;
  repeat: number;
  mode: 'sequential' | 'concurrent';
  config: BenchConfig;
  durationS: number;
  progress: ProgressSink;
}

async function runOne(a: RunOneArgs): Promise<RunRecord> {
  const { c, session, config } = a;
  const label = `${c.id} @ ${a.layer} ${a.repeat}/${config.repeats}`;
  const startedAt = new Date();
  const base = {
    run_id: a.runId,
    workload: c.workload,
    case: c.id,
    layer: a.layer,
    mode: a.mode,
    repeat: a.repeat,
    started_at: startedAt.toISOString(),
    cpu_source: session.cpuSource,
  };
  a.progress.start(label, config.durationMs);
  const t0 = performance.now();
  try {
    let measured: Measured;
    let layerCpu: number | undefined;
    let clientCpu: number | undefined;
    let innerCpu: number | undefined;
    let vcpu: number | undefined;
    if (c.kind === 'single') {
      const before = await session.hostCpuUsec();
      const vBefore = await session.vcpuUsec?.();
      const r = await session.exec(c.command(caseContext(session, config, a.durationS)), {
        timeoutMs: timeoutFor(config),
      });
      const vAfter = await session.vcpuUsec?.();
      const after = await session.hostCpuUsec();
      if (vBefore !== undefined && vAfter !== undefined) vcpu = vAfter - vBefore;
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${tail(r.output)}`);
      measured = c.parse(r.output, r.wallMs);
      innerCpu = r.procCpuUsec;
      layerCpu = before !== undefined && after !== undefined ? after - before : r.procCpuUsec;
    } else {
      const server = await session.startServer((ctx) => c.server(ctx));
      try {
        let requests = 0;
        if (c.calibrate) {
          const cal = await execNative(
            c.client({ host: server.host, port: server.port, durationS: 1, requests: c.calibrate.requests }),
            60_000,
          );
          if (cal.code !== 0)
            throw new Error(`calibration run failed (exit ${cal.code}): ${tail(cal.output)}`);
          const rate = c.parse(cal.output, c.calibrate.requests).throughput.value;
          requests = Math.max(c.calibrate.requests, Math.round(rate * a.durationS));
        }
        if (c.prepare) {
          const prep = await execNative(
            c.prepare({ host: server.host, port: server.port, durationS: a.durationS, requests }),
            timeoutFor(config),
          );
          if (prep.code !== 0)
            throw new Error(`preparing the run failed (exit ${prep.code}): ${tail(prep.output)}`);
        }
        const before = await session.hostCpuUsec();
        const vBefore = await session.vcpuUsec?.();
        const sBefore = await server.cpuUsec();
        const r = await execNative(
          c.client({ host: server.host, port: server.port, durationS: a.durationS, requests }),
          timeoutFor(config),
        );
        const sAfter = await server.cpuUsec();
        const vAfter = await session.vcpuUsec?.();
        const after = await session.hostCpuUsec();
        if (vBefore !== undefined && vAfter !== undefined) vcpu = vAfter - vBefore;
        if (r.code !== 0) throw new Error(`client exit ${r.code}: ${tail(r.output)}`);
        measured = c.parse(r.output, requests);
        clientCpu = r.procCpuUsec;
        const serverPart = sBefore !== undefined && sAfter !== undefined ? sAfter - sBefore : 0;
        const cgroupPart = before !== undefined && after !== undefined ? after - before : 0;
        layerCpu = cgroupPart + serverPart;
      } finally {
        await server.stop().catch(() => {});
      }
    }
    const cpu = (layerCpu ?? 0) + (clientCpu ?? 0);
    const rec: RunRecord = {
      ...base,
      ok: true,
      throughput: measured.throughput.value,
      throughput_unit: measured.throughput.unit,
      ops: measured.ops,
      op_unit: measured.opUnit,
      wall_ms: Math.round(performance.now() - t0),
      cpu_usec: cpu,
      ...(layerCpu !== undefined ? { layer_cpu_usec: layerCpu } : {}),
      ...(clientCpu !== undefined ? { client_cpu_usec: clientCpu } : {}),
      ...(innerCpu !== undefined ? { inner_cpu_usec: innerCpu } : {}),
      ...(vcpu !== undefined ? { vcpu_usec: vcpu } : {}),
      ...(vcpu && layerCpu ? { qemu_per_vcpu: layerCpu / vcpu } : {}),
      ...(measured.ops > 0 && cpu > 0 ? { cpu_per_op_us: cpu / measured.ops } : {}),
    };
    if (measured.latency) {
      rec.latency_unit = measured.latency.unit;
      if (measured.latency.avg !== undefined) rec.latency_avg = measured.latency.avg;
      if (measured.latency.p50 !== undefined) rec.latency_p50 = measured.latency.p50;
      if (measured.latency.p99 !== undefined) rec.latency_p99 = measured.latency.p99;
    }
    a.progress.done(
      label,
      `${fmt(rec.throughput!)} ${rec.throughput_unit}, CPU ${rec.cpu_per_op_us !== undefined ? `${fmt(rec.cpu_per_op_us)} µs/${rec.op_unit}` : 'n/a'}`,
    );
    return rec;
  } catch (err) {
    const error = errorMessage(err);
    a.progress.done(label, `FAILED: ${error}`);
    return { ...base, ok: false, error, wall_ms: Math.round(performance.now() - t0) };
  }
}

export function fmt(v: number): string {
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export function stat(values: readonly number[]): Stat | undefined {
  if (!values.length) return undefined;
  const s = [...values].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

export function summarise(cases: readonly WorkloadCase[], runs: readonly RunRecord[]): Summary[] {
  const out: Summary[] = [];
  for (const c of cases) {
    const byLayer = new Map<LayerName, RunRecord[]>();
    for (const r of runs) {
      if (r.case !== c.id) continue;
      const list = byLayer.get(r.layer) ?? [];
      list.push(r);
      byLayer.set(r.layer, list);
    }
    const rows: Summary[] = [];
    for (const [layer, list] of byLayer) {
      const ok = list.filter((r) => r.ok);
      const pick = (f: (r: RunRecord) => number | undefined) =>
        stat(ok.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v)));
      const s: Summary = {
        workload: c.workload,
        case: c.id,
        description: c.description,
        layer,
        mode: list[0]!.mode,
        runs: list.length,
        failed: list.length - ok.length,
      };
      const assign = <K extends keyof Summary>(k: K, v: Summary[K] | undefined) => {
        if (v !== undefined) s[k] = v;
      };
      assign(
        'throughput',
        pick((r) => r.throughput),
      );
      assign('throughput_unit', ok[0]?.throughput_unit);
      assign(
        'latency_p50',
        pick((r) => r.latency_p50),
      );
      assign(
        'latency_p99',
        pick((r) => r.latency_p99),
      );
      assign(
        'latency_avg',
        pick((r) => r.latency_avg),
      );
      assign('latency_unit', ok[0]?.latency_unit);
      assign(
        'cpu_per_op_us',
        pick((r) => r.cpu_per_op_us),
      );
      assign('op_unit', ok[0]?.op_unit);
      rows.push(s);
    }
    const native = rows.find((r) => r.layer === 'native');
    for (const r of rows) {
      if (!native || r === native) continue;
      if (native.throughput && r.throughput && native.throughput.median > 0) {
        r.throughput_overhead_pct =
          ((native.throughput.median - r.throughput.median) / native.throughput.median) * 100;
      }
      if (native.cpu_per_op_us && r.cpu_per_op_us && native.cpu_per_op_us.median > 0) {
        r.cpu_overhead_pct =
          ((r.cpu_per_op_us.median - native.cpu_per_op_us.median) / native.cpu_per_op_us.median) * 100;
      }
    }
    out.push(...rows);
  }
  return out;
}
