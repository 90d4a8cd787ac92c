// `strata bench` configuration: one zod schema, parsed with lib/config.ts parseConfig so that a bad
// flag names its key and the accepted values. The CLI (cli/bench.ts) maps flags and env onto it.
import { z } from 'zod';
import { durationMs } from '../lib/config.ts';

export const WORKLOADS = ['cpu', 'memory', 'randio', 'seqio', 'net-bulk', 'net-rr', 'redis', 'oltp'] as const;
export type Workload = (typeof WORKLOADS)[number];
export type WorkloadName = Workload | 'cmd';

export const LAYER_NAMES = [
  'native',
  'container',
  'container-nat',
  'container-volume',
  'container-nat-volume',
  'vm',
] as const;
export type LayerName = (typeof LAYER_NAMES)[number];

export const VM_ACCELS = ['tcg', 'kvm', 'auto'] as const;

/**
 * Named workload sets (`strata bench --preset NAME`); flags given beside a preset win over it.
 * felter: Felter et al. 2014's comparison (IBM RC25482): compute (Linpack → cpu), memory (STREAM →
 * memory), random and sequential I/O (fio), bulk and request/response network (nuttcp → net-bulk,
 * netperf TCP_RR → net-rr), Redis and MySQL (→ oltp), natively, in Docker with host networking, NAT,
 * a volume, NAT + volume, and in a VM (KVM when it boots here, else TCG).
 */
export const PRESETS = {
  felter: {
    workloads: ['cpu', 'memory', 'randio', 'seqio', 'net-bulk', 'net-rr', 'redis', 'oltp'],
    layers: ['native', 'container', 'container-nat', 'container-volume', 'container-nat-volume', 'vm'],
    vmAccel: 'auto',
  },
} as const satisfies Record<
  string,
  { workloads: readonly Workload[]; layers: readonly LayerName[]; vmAccel: (typeof VM_ACCELS)[number] }
>;
export type PresetName = keyof typeof PRESETS;

export const BenchConfig = z.strictObject({
  /** Built-in workloads to run, in order. Ignored when `cmd` is set. */
  workloads: z.array(z.enum(WORKLOADS)).min(1).default(['cpu']),
  /** Any shell command line instead of a built-in workload: reported as wall time and CPU per run. */
  cmd: z.string().min(1).optional(),
  /** Layers, in order; native first is what the overhead columns compare against. */
  layers: z.array(z.enum(LAYER_NAMES)).min(1).default(['native', 'container', 'vm']),
  /** Runs per workload and layer; the report gives the median and min–max. */
  repeats: z.number().int().min(1).max(100).default(3),
  /** Length of one timed run (time-based tools; redis-benchmark is calibrated to it). */
  durationMs: durationMs.pipe(z.number().int().min(1000).max(3_600_000)).default(10_000),
  /** Run all layers at the same time (interference study) instead of one after another. */
  concurrent: z.boolean().default(false),
  /** Where JSON, CSV and HTML go; default ./strata-bench-<run id>/. */
  outDir: z.string().min(1).optional(),
  /** InfluxDB base URL (http://127.0.0.1:8086); unset: no InfluxDB write. */
  influxUrl: z.url().optional(),
  /** InfluxDB database (v1) / bucket (v2 API). */
  influxDatabase: z.string().min(1).default('strata'),
  influxToken: z.string().optional(),
  /** Docker engine for the container layers: unix:///path/docker.sock. */
  dockerHost: z
    .string()
    .regex(/^unix:\/\/\/.+/, 'use unix:///path/to/docker.sock')
    .optional(),
  /** Image the container layers run (busybox; workload binaries are bind-mounted from the host). */
  image: z.string().min(1).default('strata/busybox'),
  /** tcg (software), kvm, or auto (kvm when /dev/kvm works and the guest boots, else tcg). */
  vmAccel: z.enum(VM_ACCELS).default('tcg'),
  /** Guest network for the client-server workloads (net-bulk, net-rr, redis, oltp): tap (a tap device + virtio-net, needs root), user (QEMU slirp,
   * a forwarded 127.0.0.1 port), auto (tap when root). */
  vmNet: z.enum(['tap', 'user', 'auto']).default('auto'),
  vmMemoryMb: z.number().int().min(128).max(8192).default(512),
  /** Size of the file (or VM disk) the I/O workloads read. */
  ioSizeMb: z.number().int().min(16).max(65_536).default(256),
  /** Install missing Debian packages with apt-get (needs root). */
  install: z.boolean().default(true),
  /** Progress bar (TTY) or plain lines. */
  progress: z.enum(['bar', 'lines', 'none']).default('lines'),
});
export type BenchConfig = z.output<typeof BenchConfig>;
export type BenchConfigInput = z.input<typeof BenchConfig>;
