// Layers `container`, `container-nat`, `container-volume`: the workload inside a container on the
// stack's Docker engine (DOCKER_HOST). The image is a bare busybox; the host's workload binaries and
// the shared libraries `ldd` names are bind-mounted read-only, so every layer runs the same bytes.
//   container         host network, I/O on the container's own filesystem (the storage driver)
//   container-nat     bridge network, the server reached through a port published on 127.0.0.1
//   container-volume  host network, I/O on a bind-mounted host directory (a Docker volume)
//   container-nat-volume  bridge network + published port, data on a bind volume: Felter et al.'s
//                     MySQL configuration ("NAT, volume"), for servers that keep data (oltp)
// CPU: the container's cgroup (cpuacct.usage on cgroup v1, cpu.stat usage_usec on v2), read while
// the container idles before and after each run, so it covers everything the workload did inside.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { componentLogger } from '../../lib/log.ts';
import type { LayerName } from '../config.ts';
import type { WorkloadCase } from '../workloads/index.ts';
import {
  freePort,
  pidCpuUsec,
  runProcess,
  sharedLibraries,
  shellQuote,
  takeStatMarker,
  WRAP,
  waitTcp,
  which,
} from './common.ts';
import { cgroupCollectorProbe } from './probe.ts';
import { type BenchLayer, type CaseSession, LayerUnavailableError, type ServerHandle } from './types.ts';

const log = componentLogger('bench.container');
const BIN_DIR = '/opt/strata/bin';
/** The port servers listen on inside a NAT container (the host side is an ephemeral published port). */
const NAT_PORT = 7000;

export interface ContainerLayerOptions {
  name: Extract<LayerName, 'container' | 'container-nat' | 'container-volume' | 'container-nat-volume'>;
  dockerHost: string;
  image: string;
  /** Host directory bind-mounted for container-volume (the same disk the native layer uses). */
  ioDir: string;
  runId: string;
  /** Host paths of the workload tools (from ensureTools). */
  tools: Map<string, string>;
}

export class ContainerLayer implements BenchLayer {
  readonly name: ContainerLayerOptions['name'];
  readonly info: Record<string, string> = {};
  private docker = 'docker';
  private mounts: string[] = [];
  private libPath = '';
  private readonly env: NodeJS.ProcessEnv;
  private readonly live = new Set<string>();

  constructor(private readonly opts: ContainerLayerOptions) {
    this.name = opts.name;
    this.env = { ...process.env, DOCKER_HOST: opts.dockerHost };
    this.info.docker_host = opts.dockerHost;
    this.info.network = this.nat ? 'bridge + published port (NAT)' : 'host';
    this.info.io_on = this.volume ? 'bind volume' : "container's own filesystem";
  }

  private get nat(): boolean {
    return this.name === 'container-nat' || this.name === 'container-nat-volume';
  }

  private get volume(): boolean {
    return this.name === 'container-volume' || this.name === 'container-nat-volume';
  }

  private unavailable(reason: string): never {
    throw new LayerUnavailableError(this.name, reason);
  }

  private async docker_(args: string[], timeoutMs = 60_000) {
    return runProcess([this.docker, ...args], { timeoutMs, env: this.env });
  }

  async setup(cases: readonly WorkloadCase[]): Promise<void> {
    const cli = await which('docker');
    if (!cli) this.unavailable('the docker CLI is not on PATH; install it with: apt-get install docker.io');
    this.docker = cli;
    const socket = this.opts.dockerHost.replace(/^unix:\/\//, '');
    const st = await fs.stat(socket).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error) {
      this.unavailable(
        `no Docker engine socket at ${socket} (DOCKER_HOST=${this.opts.dockerHost}: ${st.code}); ` +
          'start the stack (`strata stack up`) or point DOCKER_HOST / --docker-host at a running engine',
      );
    }
    const v = await this.docker_(['version', '--format', '{{.Server.Version}}'], 15_000);
    if (v.code !== 0) {
      this.unavailable(
        `the Docker engine at ${this.opts.dockerHost} does not answer: ${v.stderr.trim().slice(0, 300)}`,
      );
    }
    this.info.docker_version = v.stdout.trim();
    const di = await this.docker_(
      ['info', '--format', '{{.Driver}} {{.CgroupDriver}} {{.CgroupVersion}}'],
      15_000,
    );
    const [driver, cgDriver, cgVersion] = di.stdout.trim().split(' ');
    if (driver) this.info.storage_driver = driver;
    if (cgDriver) this.info.cgroup_driver = cgDriver;
    if (cgVersion) this.info.cgroup_version = cgVersion;
    let img = await this.docker_(['image', 'inspect', '--format', '{{.Id}}', this.opts.image], 15_000);
    if (img.code !== 0 && /^strata\/busybox(:latest)?$/.test(this.opts.image)) {
      // The stack's own image: import it the way `strata stack up` does (busybox-static rootfs).
      try {
        const { ensureBusyboxImage } = await import('../../stack/docker.ts');
        await ensureBusyboxImage(socket, 'strata/busybox:latest');
        img = await this.docker_(['image', 'inspect', '--format', '{{.Id}}', this.opts.image], 15_000);
      } catch (err) {
        log.warn({ err: String(err) }, 'importing strata/busybox failed');
      }
    }
    if (img.code !== 0) {
      this.unavailable(
        `image ${this.opts.image} is not on the engine at ${this.opts.dockerHost} (the stack imports it on ` +
          '`strata stack up`); or pass --image NAME of a busybox image that is there',
      );
    }
    this.info.image = this.opts.image;
    // Binaries at /opt/strata/bin, their libraries' directories at the same paths, read-only.
    const binaries = new Set<string>();
    for (const c of cases) for (const b of c.binaries) binaries.add(b);
    const libDirs = new Set<string>();
    const files = new Set<string>();
    for (const b of binaries) {
      const host = this.opts.tools.get(b);
      if (!host) continue;
      this.mounts.push('-v', `${await fs.realpath(host)}:${BIN_DIR}/${b}:ro`);
      for (const lib of await sharedLibraries(host)) {
        if (/ld-linux/.test(path.basename(lib))) files.add(lib);
        else libDirs.add(path.dirname(await fs.realpath(lib)));
      }
    }
    for (const d of libDirs) this.mounts.push('-v', `${d}:${d}:ro`);
    // Data and message files servers read (the MariaDB template), at the host's paths.
    for (const f of new Set(cases.flatMap((c) => c.files ?? []))) this.mounts.push('-v', `${f}:${f}:ro`);
    for (const f of files) this.mounts.push('-v', `${await fs.realpath(f)}:${f}:ro`);
    this.libPath = [...libDirs].join(':');
  }

  unsupported(c: WorkloadCase): string | undefined {
    if (this.name === 'container-nat' && c.kind === 'single') {
      return 'container-nat differs from container only in networking; this workload uses none';
    }
    if (this.name === 'container-volume' && !c.io) {
      return 'container-volume differs from container only in where files live; this workload does no file I/O';
    }
    if (this.name === 'container-nat-volume' && !(c.kind === 'client-server' && c.io)) {
      return 'container-nat-volume is for servers that keep data (NAT and a volume together); this workload is not one';
    }
    return undefined;
  }

  async open(c: WorkloadCase): Promise<CaseSession> {
    const name = `strata-bench-${this.opts.runId}-${this.name}-${c.id}`.replace(/[^\w.-]/g, '-');
    const args = ['run', '-d', '--rm', '--name', name, '--label', 'strata.bench=1'];
    const nat = this.nat;
    if (nat) args.push('-p', `127.0.0.1::${NAT_PORT}`);
    else args.push('--network', 'host');
    if (this.volume) args.push('-v', `${this.opts.ioDir}:/data`);
    args.push(...this.mounts);
    args.push('-e', `PATH=${BIN_DIR}:/bin:/usr/bin:/sbin:/usr/sbin`, '-e', `LD_LIBRARY_PATH=${this.libPath}`);
    args.push(this.opts.image, 'sleep', '2147483647');
    const run = await this.docker_(args, 60_000);
    if (run.code !== 0) this.unavailable(`docker run failed: ${run.stderr.trim().slice(0, 400)}`);
    this.live.add(name);
    const probes: CgroupCpu[] = [];
    try {
      const [pidText, id] = (await this.docker_(['inspect', '-f', '{{.State.Pid}} {{.Id}}', name])).stdout
        .trim()
        .split(' ');
      const pid = Number(pidText);
      const cg = await containerCpu(pid, id ?? '', this.opts.dockerHost);
      probes.push(cg);
      let hostPort = NAT_PORT;
      if (nat) {
        const p = await this.docker_(['port', name, `${NAT_PORT}/tcp`]);
        const m = /127\.0\.0\.1:(\d+)/.exec(p.stdout);
        if (!m)
          this.unavailable(
            `docker port ${name} ${NAT_PORT}/tcp gave no 127.0.0.1 mapping: ${p.stdout}${p.stderr}`,
          );
        hostPort = Number(m[1]);
      }
      const volume = this.volume;
      const ioPath = volume ? `/data/${c.id}.volume.dat` : `/var/strata-io/${c.id}.dat`;
      // Per layer on the volume: native and the two volume layers share the host directory.
      const dataDir = volume ? `/data/${c.id}.${this.name}.d` : `/var/strata-io/${c.id}.d`;
      if (!volume) await this.docker_(['exec', name, 'mkdir', '-p', '/var/strata-io']);
      const session: CaseSession = {
        ioPath,
        ioIsDevice: false,
        dataDir,
        cpuSource: cg.source,
        hostCpuUsec: async () => cg.read(),
        exec: async (argv, o) => {
          const r = await this.docker_(['exec', name, 'sh', '-c', WRAP, 'sh', ...argv], o.timeoutMs);
          const { text: stderr, cpuUsec } = takeStatMarker(r.stderr);
          return {
            code: r.code,
            output: r.code === 0 ? r.stdout : `${r.stdout}\n${stderr}`,
            wallMs: r.wallMs,
            ...(cpuUsec !== undefined ? { procCpuUsec: cpuUsec } : {}),
          };
        },
        startServer: async (makeArgv) => {
          const port = nat ? NAT_PORT : await freePort();
          const argv = makeArgv({ bind: nat ? '0.0.0.0' : '127.0.0.1', port, dataDir });
          const r = await this.docker_([
            'exec',
            name,
            'sh',
            '-c',
            `${shellQuote(argv)} >/tmp/server-${port}.log 2>&1 & echo $!`,
          ]);
          const spid = r.stdout.trim();
          const connectPort = nat ? hostPort : port;
          try {
            await waitTcp('127.0.0.1', connectPort, 15_000, `${argv[0]} in ${this.name}`);
            if (nat) await this.waitListening(name, port, 60_000, argv[0]!);
          } catch (err) {
            const logText = await this.docker_(['exec', name, 'cat', `/tmp/server-${port}.log`]);
            throw new Error(`${(err as Error).message}; server log: ${logText.stdout.trim().slice(-400)}`);
          }
          const proxy = nat ? await findDockerProxy(connectPort) : undefined;
          const handle: ServerHandle = {
            host: '127.0.0.1',
            port: connectPort,
            // In the cgroup already; docker-proxy (NAT on loopback) is a host process: add its CPU.
            cpuUsec: async () => (proxy ? await pidCpuUsec(proxy) : undefined),
            stop: async () => {
              // Wait until it is gone: the next run's server reuses the data directory (and the
              // port, under NAT); a database flushes on SIGTERM before it exits. The container's
              // PID 1 is `sleep`, which reaps nobody: an exited server stays a zombie, so "gone"
              // is no /proc entry or state Z.
              await this.docker_(
                [
                  'exec',
                  name,
                  'sh',
                  '-c',
                  `kill ${spid}; i=0; while [ $i -lt 300 ] && [ -e /proc/${spid} ] && ! grep -q '^State:.*Z' /proc/${spid}/status; do sleep 0.1; i=$((i+1)); done`,
                ],
                60_000,
              );
            },
          };
          return handle;
        },
        close: async () => {
          for (const p of probes) await p.close?.();
          await this.docker_(['rm', '-f', name]);
          this.live.delete(name);
        },
      };
      return session;
    } catch (err) {
      for (const p of probes) await p.close?.();
      await this.docker_(['rm', '-f', name]);
      this.live.delete(name);
      throw err;
    }
  }

  /**
   * docker-proxy accepts on the published port before anything listens in the container (then drops
   * the connection), so under NAT readiness is asked of the container's own network namespace: a
   * socket in state LISTEN (0A) on `port` in /proc/net/tcp or tcp6. A database takes seconds to listen.
   */
  private async waitListening(name: string, port: number, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const re = `:${procNetPort(port)} [0-9A-F]+:0000 0A`;
    for (;;) {
      const r = await this.docker_(['exec', name, 'grep', '-qE', re, '/proc/net/tcp', '/proc/net/tcp6']);
      if (r.code === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`${what} in ${this.name} did not listen on ${port} within ${timeoutMs} ms`);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  async close(): Promise<void> {
    for (const name of this.live) await this.docker_(['rm', '-f', name]);
    this.live.clear();
  }
}

/** `port` as /proc/net/tcp{,6} write it: 4 upper-case hex digits. */
export function procNetPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** The docker-proxy process forwarding host port `port` (userland proxy for loopback NAT), if any. */
export async function findDockerProxy(port: number): Promise<number | undefined> {
  for (const d of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await fs.readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (!cmd.includes('docker-proxy')) continue;
    const args = cmd.split('\0');
    const i = args.indexOf('-host-port');
    if (i >= 0 && args[i + 1] === String(port)) return Number(d);
  }
  return undefined;
}

interface CgroupCpu {
  source: string;
  read(): Promise<number | undefined>;
  close?(): Promise<void>;
}

/** The project's cgroup collector when it sees the container, else the cgroup files read here. */
async function containerCpu(pid: number, containerId: string, dockerHost: string): Promise<CgroupCpu> {
  try {
    const probe = await cgroupCollectorProbe(containerId, dockerHost);
    if (probe) {
      return {
        source: probe.source,
        read: async () => (await probe.read())?.cpu_usage_usec_total,
        close: () => probe.close(),
      };
    }
    log.warn({ containerId }, 'collectors/cgroup does not report the container; reading its cgroup directly');
  } catch (err) {
    log.warn({ err: String(err) }, 'collectors/cgroup failed; reading the container cgroup directly');
  }
  return cgroupCpuReader(pid);
}

/**
 * The CPU counter of the cgroup `pid` is in: cgroup v1 cpuacct.usage (ns) when a cpuacct hierarchy
 * is mounted, else cgroup v2 cpu.stat usage_usec. Mount points come from /proc/self/mountinfo.
 */
export async function cgroupCpuReader(pid: number): Promise<CgroupCpu> {
  const membership = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8');
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const mounts = mountinfo.split('\n').map((l) => {
    const [pre, post] = l.split(' - ');
    const f = (pre ?? '').split(' ');
    const g = (post ?? '').split(' ');
    return { root: f[3] ?? '/', point: f[4] ?? '', fstype: g[0] ?? '', super: g[2] ?? '' };
  });
  const rel = (cgPath: string, root: string) =>
    root !== '/' && cgPath.startsWith(root) ? cgPath.slice(root.length) || '/' : cgPath;
  for (const line of membership.split('\n')) {
    const [, controllers, cgPath] = line.split(':');
    if (!controllers || cgPath === undefined) continue;
    if (controllers.split(',').includes('cpuacct')) {
      const m = mounts.find((x) => x.fstype === 'cgroup' && x.super.split(',').includes('cpuacct'));
      if (m) {
        const file = path.join(m.point, rel(cgPath, m.root), 'cpuacct.usage');
        return {
          source: `cgroup v1 ${file}`,
          read: async () => {
            const ns = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
            return Number.isFinite(ns) && ns > 0 ? ns / 1000 : undefined;
          },
        };
      }
    }
  }
  const v2 = /^0::(.*)$/m.exec(membership);
  const m2 = mounts.find((x) => x.fstype === 'cgroup2');
  if (v2 && m2) {
    const file = path.join(m2.point, rel(v2[1]!, m2.root), 'cpu.stat');
    return {
      source: `cgroup v2 ${file} usage_usec`,
      read: async () => {
        const text = await fs.readFile(file, 'utf8').catch(() => '');
        const u = /^usage_usec (\d+)/m.exec(text);
        return u ? Number(u[1]) : undefined;
      },
    };
  }
  log.warn({ pid }, 'no cpuacct or cgroup2 CPU counter for the container; falling back to its main process');
  return {
    source: `/proc/${pid}/stat (no cgroup CPU counter found on ${os.hostname()})`,
    read: () => pidCpuUsec(pid),
  };
}
