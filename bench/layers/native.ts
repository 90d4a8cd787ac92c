// Layer `native`: the workload as plain host processes. CPU comes from the processes' own
// accounting in /proc (the wrapper shell's cutime+cstime for commands, /proc/PID/stat of a server).
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { WorkloadCase } from '../workloads/index.ts';
import { freePort, pidCpuUsec, runProcess, takeStatMarker, WRAP, waitTcp } from './common.ts';
import type { BenchLayer, CaseSession, ExecResult, ServerHandle } from './types.ts';

/** Runs argv on the host under the accounting wrapper. */
export async function execNative(argv: string[], timeoutMs: number): Promise<ExecResult> {
  const r = await runProcess(['sh', '-c', WRAP, 'sh', ...argv], { timeoutMs });
  const { text: stderr, cpuUsec } = takeStatMarker(r.stderr);
  return {
    code: r.code,
    output: r.code === 0 ? r.stdout : `${r.stdout}\n${stderr}`,
    wallMs: r.wallMs,
    ...(cpuUsec !== undefined ? { procCpuUsec: cpuUsec } : {}),
  };
}

export class NativeLayer implements BenchLayer {
  readonly name = 'native' as const;
  readonly info: Record<string, string> = { runs_as: 'host processes' };
  constructor(private readonly ioDir: string) {}

  async setup(): Promise<void> {
    await fs.mkdir(this.ioDir, { recursive: true });
  }

  unsupported(): string | undefined {
    return undefined;
  }

  async open(c: WorkloadCase): Promise<CaseSession> {
    return {
      ioPath: path.join(this.ioDir, `${c.id}.native.dat`),
      ioIsDevice: false,
      dataDir: path.join(this.ioDir, `${c.id}.native.d`),
      cpuSource: '/proc/PID/stat of the workload processes (wrapper cutime+cstime; servers utime+stime)',
      exec: (argv, opts) => execNative(argv, opts.timeoutMs),
      startServer: async (makeArgv) => {
        const port = await freePort();
        const dataDir = path.join(this.ioDir, `${c.id}.native.d`);
        return startNativeServer(makeArgv({ bind: '127.0.0.1', port, dataDir }), '127.0.0.1', port);
      },
      hostCpuUsec: async () => undefined,
      close: async () => {},
    };
  }

  async close(): Promise<void> {}
}

/** Starts a server as a host process and waits until host:port accepts connections. */
export async function startNativeServer(argv: string[], host: string, port: number): Promise<ServerHandle> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('close', () => resolve()));
  void exit.then(() => {
    exited = true;
  });
  child.once('error', () => {});
  try {
    await waitTcp(host, port, 10_000, `${argv[0]} (native)`);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}${stderr ? `; its stderr: ${stderr.trim()}` : ''}`);
  }
  let lastCpu: number | undefined;
  return {
    host,
    port,
    async cpuUsec() {
      // iperf3 -1 exits right after its client: keep the last value read while it was alive.
      if (child.pid && !exited) lastCpu = (await pidCpuUsec(child.pid)) ?? lastCpu;
      return lastCpu;
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exit;
        clearTimeout(t);
      }
    },
  };
}
