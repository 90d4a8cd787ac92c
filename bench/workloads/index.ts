// The built-in workloads, each one or more "cases" (redis runs with 1 and with 50 connections).
// A case is either `single` (one command runs inside the layer under test) or `client-server` (the
// server runs inside the layer, the client on the host, as the papers drove their servers from
// outside). Commands are argv arrays; the layer decides how to run them (host process, docker
// exec, the test VM's control port).
import type { WorkloadName } from '../config.ts';
import { shellQuote } from '../layers/common.ts';
import {
  ensureMariadbTemplate,
  MARIADB_SHARE,
  mariadbServerArgv,
  OLTP_DATABASE,
  OLTP_PASSWORD,
  OLTP_USER,
  templateDir,
} from './mariadb.ts';
import {
  type Measured,
  parseCommand,
  parseFio,
  parseIperf3,
  parseRedisBenchmark,
  parseSockperfPingPong,
  parseSysbenchCpu,
  parseSysbenchMemory,
  parseSysbenchOltp,
} from './parse.ts';

export { PACKAGE_OF } from './packages.ts';

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
  /** A directory for the server's data, on the layer's own disk (see CaseSession.dataDir). */
  dataDir: string;
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
  /** Host files or directories the layer must show read-only at the same path (data, messages). */
  files?: string[];
  /** Does file I/O inside the layer (so container-volume, where files live elsewhere, applies). */
  io?: boolean;
  /** Unmeasured host-side preparation, once per bench before any layer starts (a data template). */
  hostSetup?(tools: Map<string, string>): Promise<void>;
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
  /** Unmeasured host-side client run before each timed run, against the fresh server (load the tables). */
  prepare?(ctx: ClientContext): string[];
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

/** sysbench oltp_read_write: 4 tables of 10000 rows (~10 MB, in the 128 MiB buffer pool), 4 client threads. */
export const OLTP_TABLES = 4;
export const OLTP_TABLE_SIZE = 10_000;
export const OLTP_THREADS = 4;

const sysbenchOltp = (c: ClientContext, step: string) => [
  'sysbench',
  'oltp_read_write',
  '--db-driver=mysql',
  `--mysql-host=${c.host}`,
  `--mysql-port=${c.port}`,
  `--mysql-user=${OLTP_USER}`,
  `--mysql-password=${OLTP_PASSWORD}`,
  `--mysql-db=${OLTP_DATABASE}`,
  `--tables=${OLTP_TABLES}`,
  `--table-size=${OLTP_TABLE_SIZE}`,
  `--threads=${OLTP_THREADS}`,
  // The histogram gives the median beside sysbench's one printed percentile.
  ...(step === 'run' ? [`--time=${c.durationS}`, '--percentile=99', '--histogram=on'] : []),
  step,
];

export interface CasesOptions {
  cmd?: string;
  /** Host directory for data the cases prepare once (the MariaDB template); shown in every layer. */
  assetDir?: string;
}

export function casesFor(workload: WorkloadName, opts: CasesOptions = {}): WorkloadCase[] {
  const { cmd } = opts;
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
    case 'net-rr':
      return [
        {
          id: 'net-rr',
          workload,
          kind: 'client-server',
          description:
            'sockperf ping-pong TCP, one request outstanding (like netperf TCP_RR), client on the host; round-trip µs',
          binaries: ['sockperf'],
          clientBinaries: ['sockperf'],
          // SO_REUSEADDR: the port may still hold TIME_WAIT connections of the case before it (the
          // VM and NAT layers reuse one port), and without it sockperf cannot bind.
          server: (s) => [
            'sockperf',
            'server',
            '--tcp',
            '-i',
            s.bind,
            '-p',
            String(s.port),
            '--uc-reuseaddr',
          ],
          client: (c) => [
            'sockperf',
            'ping-pong',
            '--tcp',
            '-i',
            c.host,
            '-p',
            String(c.port),
            '-t',
            String(c.durationS),
            '--full-rtt',
          ],
          parse: (out) => parseSockperfPingPong(out),
        },
      ];
    case 'oltp': {
      const assetDir = opts.assetDir ?? '/nonexistent';
      return [
        {
          id: 'oltp',
          workload,
          kind: 'client-server',
          io: true,
          description: `sysbench oltp_read_write against MariaDB in the layer, ${OLTP_TABLES}×${OLTP_TABLE_SIZE} rows, ${OLTP_THREADS} client threads on the host`,
          binaries: ['mariadbd'],
          clientBinaries: ['sysbench', 'mariadb-install-db'],
          files: [templateDir(assetDir), ...MARIADB_SHARE],
          hostSetup: (tools) => ensureMariadbTemplate(assetDir, tools),
          server: (s) => mariadbServerArgv(assetDir, s.dataDir, s.bind, s.port),
          // Fresh tables before every timed run: oltp_read_write deletes and inserts rows, so each
          // repeat starts from the same data.
          prepare: (c) => [
            'sh',
            '-c',
            `${shellQuote(sysbenchOltp(c, 'cleanup'))} && ${shellQuote(sysbenchOltp(c, 'prepare'))}`,
          ],
          client: (c) => sysbenchOltp(c, 'run'),
          parse: (out) => parseSysbenchOltp(out),
        },
      ];
    }
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
