// A bench layer runs workload commands natively, in a container or in a VM, and says how much CPU
// the host spent on them. Each layer is set up once per bench (the VM boots once), then opened per
// workload case (a container is started with that case's ports and mounts) and closed after it.
import type { LayerName } from '../config.ts';
import type { ServerContext, WorkloadCase } from '../workloads/index.ts';

export interface ExecResult {
  code: number;
  /** stdout (the VM's control port merges stderr into it). */
  output: string;
  wallMs: number;
  /**
   * CPU µs of the command's process tree as the layer itself accounts it (utime+stime+cutime+cstime
   * of the wrapper shell, read from its /proc/PID/stat inside the layer: the guest's view in a VM).
   */
  procCpuUsec?: number;
}

export interface ServerHandle {
  /** Where the host-side client connects. */
  host: string;
  port: number;
  /** CPU µs the server used so far, when only the process itself shows it (native). */
  cpuUsec(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** Thrown by setup/open when a layer cannot run here; the message says why and how to fix it. */
export class LayerUnavailableError extends Error {
  constructor(
    readonly layer: LayerName,
    readonly reason: string,
  ) {
    super(`layer ${layer} unavailable: ${reason}`);
    this.name = 'LayerUnavailableError';
  }
}

export interface CaseSession {
  /** File or device the I/O workloads use, as seen inside the layer. */
  ioPath: string;
  ioIsDevice: boolean;
  /** A directory for servers' data on the layer's own disk (host disk, container filesystem or volume, guest disk). */
  dataDir: string;
  exec(argv: string[], opts: { timeoutMs: number }): Promise<ExecResult>;
  /** Starts the server inside the layer on an address and port the layer picks; waits until it accepts. */
  startServer(makeArgv: (ctx: ServerContext) => string[]): Promise<ServerHandle>;
  /**
   * CPU µs the whole layer has consumed so far as the host sees it: the container's cgroup, the
   * QEMU process. Undefined for native, whose cost is the processes' own accounting.
   */
  hostCpuUsec(): Promise<number | undefined>;
  /** CPU µs of the VM's vCPU threads so far (the guest's share of the QEMU process), VMs only. */
  vcpuUsec?(): Promise<number | undefined>;
  /** Where this number comes from, for the report ("cgroup v1 cpuacct.usage /docker/ab12"...). */
  cpuSource: string;
  close(): Promise<void>;
}

export interface BenchLayer {
  readonly name: LayerName;
  /** Facts for the report: accel, kernel, storage driver, network mode... */
  readonly info: Record<string, string>;
  /** Checks prerequisites and starts what lives for the whole bench (the VM). */
  setup(cases: readonly WorkloadCase[]): Promise<void>;
  /** Why this layer cannot run this case, or undefined when it can. */
  unsupported(c: WorkloadCase): string | undefined;
  open(c: WorkloadCase): Promise<CaseSession>;
  close(): Promise<void>;
}
