// The built-in workloads, each one or more "cases" (redis runs with 1 and with 50 connections).
// A case is either `single` (one command runs inside the layer under test) or `client-server` (the
// server runs inside the layer, the client on the host, as the papers drove their servers from
// outside). Commands are argv arrays; the layer decides how to run them (host process, docker
// exec, the test VM's control port).
import type { WorkloadName } from '../config.ts';
import {
  type Measured,
  parseCommand,
  parseFio,
  parseIperf3,
  parseRedisBenchmark,
  parseSysbenchCpu,
  parseSysbenchMemory,
} from './parse.ts';

/** Debian package of each tool the workloads run (installed on demand). */
export const PACKAGE_OF: Record<string, string> = {
  sysbench: 'sysbench',
  fio: 'fio',
  iperf3: 'iperf3',
  'redis-server': 'redis-server',
  'redis-benchmark': 'redis-tools',
};

export interface CaseContext {
  durationS: number;
  /** File (or block device in the VM) the I/O workloads use, as seen inside the layer. */
  ioPath: string;
  ioIsDevice: boolean;
  ioSizeMb: number;
}

export interface ServerContext {
  /** Address the server listens on inside the layer. */
  bind: string;
  port: number;
}

export interface ClientContext {
  host: string;
  port: number;
  durationS: number;
  /** redis-benchmark is request-count based: -n, from a calibration run. */
  requests: number;
}

interface BaseCase {
  /** Unique label: "cpu", "redis-c50". */
  id: string;
  workload: WorkloadName;
  /** What it does, for the report (tool and options). */
  description: string;
  /** Tools that must exist inside the layer. */
  binaries: string[];
}

export interface SingleCase extends BaseCase {
  kind: 'single';
  io: boolean;
  /** Unmeasured preparation inside the layer (fio lays out its file), or undefined. */
  prepare?(ctx: CaseContext): string[] | undefined;
  command(ctx: CaseContext): string[];
  parse(output: string, wallMs: number): Measured;
}

export interface ClientServerCase extends BaseCase {
  kind: 'client-server';
  /** The server, started fresh for every run on the address and port the layer picks. */
  server(ctx: ServerContext): string[];
  /** Tools the host-side client needs. */
  clientBinaries: string[];
  client(ctx: ClientContext): string[];
  /** A short unmeasured client run whose throughput sizes `requests` to the duration. */
  calibrate?: { requests: number };
  parse(output: string, requests: number): Measured;
}

export type WorkloadCase = SingleCase | ClientServerCase;

const fio = (name: string, rw: string, bs: string, depth: number) => (ctx: CaseContext) => [
  'fio',
  `--name=${name}`,
  `--filename=${ctx.ioPath}`,
  `--rw=${rw}`,
  `--bs=${bs}`,
  '--direct=1',
  '--ioengine=libaio',
  `--iodepth=${depth}`,
  `--size=${ctx.ioSizeMb}M`,
  '--time_based',
  `--runtime=${ctx.durationS}`,
  '--output-format=json',
];

const fioPrepare = (name: string) => (ctx: CaseContext) =>
  ctx.ioIsDevice
    ? undefined
    : [
        'fio',
        `--name=${name}`,
        `--filename=${ctx.ioPath}`,
        `--size=${ctx.ioSizeMb}M`,
        '--rw=read',
        '--create_only=1',
        '--output-format=json',
      ];

const REDIS_CONNS = [1, 50] as const;

export function casesFor(workload: WorkloadName, cmd?: string): WorkloadCase[] {
  switch (workload) {
    case 'cpu':
      return [
        {
          id: 'cpu',
          workload,
          kind: 'single',
          io: false,
          description: 'sysbench cpu --cpu-max-prime=10000 --threads=1 (primes; events/s)',
          binaries: ['sysbench'],
          command: (ctx) => [
            'sysbench',
            'cpu',
            '--cpu-max-prime=10000',
            '--threads=1',
            `--time=${ctx.durationS}`,
            '--percentile=99',
            'run',
          ],
          parse: (out) => parseSysbenchCpu(out),
        },
      ];
    case 'memory':
      return [
        {
          id: 'memory',
          workload,
          kind: 'single',
          io: false,
          description: 'sysbench memory, 1 MiB blocks, sequential writes (bandwidth, STREAM-like)',
          binaries: ['sysbench'],
          command: (ctx) => [
            'sysbench',
            'memory',
            '--memory-block-size=1M',
            '--memory-total-size=100000G',
            '--threads=1',
            `--time=${ctx.durationS}`,
            '--percentile=99',
            'run',
          ],
          parse: (out) => parseSysbenchMemory(out),
        },
      ];
    case 'randio':
      return [
        {
          id: 'randio',
          workload,
          kind: 'single',
          io: true,
          description: 'fio 4 KiB random reads, O_DIRECT, libaio, queue depth 32',
          binaries: ['fio'],
          prepare: fioPrepare('randio'),
          command: fio('randio', 'randread', '4k', 32),
          parse: (out) => parseFio(out, 'iops'),
        },
      ];
    case 'seqio':
      return [
        {
          id: 'seqio',
          workload,
          kind: 'single',
          io: true,
          description: 'fio 1 MiB sequential reads, O_DIRECT, libaio, queue depth 8',
          binaries: ['fio'],
          prepare: fioPrepare('seqio'),
          command: fio('seqio', 'read', '1m', 8),
          parse: (out) => parseFio(out, 'bandwidth'),
        },
      ];
    case 'net-bulk':
      return [
        {
          id: 'net-bulk',
          workload,
          kind: 'client-server',
          description: 'iperf3 TCP bulk, client on the host sends to the server in the layer',
          binaries: ['iperf3'],
          clientBinaries: ['iperf3'],
          server: (s) => ['iperf3', '-s', '-B', s.bind, '-p', String(s.port)],
          client: (c) => ['iperf3', '-c', c.host, '-p', String(c.port), '-t', String(c.durationS), '-J'],
          parse: (out) => parseIperf3(out),
        },
      ];
    case 'redis':
      return REDIS_CONNS.map(
        (conns): ClientServerCase => ({
          id: `redis-c${conns}`,
          workload,
          kind: 'client-server',
          description: `redis-benchmark GET, ${conns} connection${conns > 1 ? 's' : ''}, client on the host`,
          binaries: ['redis-server'],
          clientBinaries: ['redis-benchmark'],
          server: (s) => [
            'redis-server',
            '--bind',
            s.bind,
            '--port',
            String(s.port),
            '--save',
            '',
            '--appendonly',
            'no',
            '--protected-mode',
            'no',
          ],
          calibrate: { requests: 2000 },
          client: (c) => [
            'redis-benchmark',
            '-h',
            c.host,
            '-p',
            String(c.port),
            '-t',
            'get',
            '-c',
            String(conns),
            '-n',
            String(c.requests),
            '--csv',
          ],
          parse: (out, requests) => parseRedisBenchmark(out, requests),
        }),
      );
    case 'cmd':
      return [
        {
          id: 'cmd',
          workload,
          kind: 'single',
          io: false,
          description: `sh -c ${JSON.stringify(cmd ?? '')}`,
          binaries: [],
          command: () => ['sh', '-c', cmd ?? 'true'],
          parse: (_out, wallMs) => parseCommand(wallMs),
        },
      ];
  }
}
