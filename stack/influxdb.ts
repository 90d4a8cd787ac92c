// InfluxDB OSS 1.8.10 built from source with `go install` (pure Go, CGO off): the newest 1.x that
// serves /api/v2/write (what @influxdata/influxdb-client uses), InfluxQL /query and Flux.
// Debian's influxdb package is 1.6.7, which has no /api/v2/write.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConnectionError, StrataError } from '../lib/errors.ts';
import {
  assertPortFree,
  defaultCacheDir,
  fileExists,
  killPid,
  type Progress,
  requireCommand,
  runCommand,
  type ServiceHandle,
  silentProgress,
  spawnService,
  stopPid,
  treeRssBytes,
  waitUntilReady,
  withHeartbeat,
} from './util.ts';

export const DEFAULT_INFLUXDB_VERSION = '1.8.10';
export const DEFAULT_INFLUX_DATABASE = 'strata';

export interface InfluxdbInstallOptions {
  cacheDir?: string;
  version?: string;
  progress?: Progress;
}

/** <cache>/influxdb-<version>/bin/influxd, built once with `go install` (~80 s on 2 cores). */
export async function installInfluxdb(options: InfluxdbInstallOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const version = options.version ?? DEFAULT_INFLUXDB_VERSION;
  const progress = options.progress ?? silentProgress;
  const bin = path.join(cacheDir, `influxdb-${version}`, 'bin');
  const influxd = path.join(bin, 'influxd');
  if (fileExists(influxd)) return influxd;

  const go = requireCommand(
    'go',
    'to build influxd from source (InfluxDB 1.8 has no Debian package with /api/v2/write)',
    'apt-get install -y golang-go (Go >= 1.13), or a Go toolchain from the Go project on PATH',
  );
  // GOBIN is private to this install; the binary is renamed into place so a concurrent install
  // never leaves a half-written influxd behind.
  const staging = path.join(bin, `.tmp-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  progress(`influxdb: building influxd ${version} with go install into ${bin} (first run only, ~2 min)`);
  await withHeartbeat(
    progress,
    'influxdb: go install',
    runCommand(go, ['install', `github.com/influxdata/influxdb/cmd/influxd@v${version}`], {
      env: { ...process.env, CGO_ENABLED: '0', GOBIN: staging },
    }),
  ).catch((err: unknown) => {
    rmSync(staging, { recursive: true, force: true });
    throw new StrataError(
      `could not build influxd ${version} (is the Go module proxy reachable? see GOPROXY): ${(err as Error).message}`,
      { cause: err },
    );
  });
  renameSync(path.join(staging, 'influxd'), influxd);
  rmSync(staging, { recursive: true, force: true });
  progress(`influxdb: influxd built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return influxd;
}

export interface InfluxdbOptions {
  /** HTTP API port on 127.0.0.1. */
  port: number;
  /** RPC (backup/restore) port on 127.0.0.1. */
  rpcPort: number;
  /** Holds influxdb.conf, meta/, data/, wal/ and influxd.log. Reusing it restarts on the same data. */
  dataDir: string;
  cacheDir?: string;
  version?: string;
  /** Created once ready (CREATE DATABASE is idempotent). */
  database?: string;
  detached?: boolean;
  readyTimeoutMs?: number;
  progress?: Progress;
}

export interface InfluxdbHandle extends ServiceHandle {
  /** "http://127.0.0.1:<port>". */
  readonly url: string;
  readonly port: number;
  readonly rpcPort: number;
  readonly database: string;
}

export async function startInfluxdb(options: InfluxdbOptions): Promise<InfluxdbHandle> {
  const progress = options.progress ?? silentProgress;
  await assertPortFree(options.port, 'influxdb', '--influx-port', 'STRATA_INFLUX_PORT');
  await assertPortFree(
    options.rpcPort,
    'the influxdb RPC service',
    '--influx-rpc-port',
    'STRATA_INFLUX_RPC_PORT',
  );
  const influxd = await installInfluxdb({ cacheDir: options.cacheDir, version: options.version, progress });

  const dataDir = path.resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const config = path.join(dataDir, 'influxdb.conf');
  writeFileSync(config, influxConfig(options.port, options.rpcPort, dataDir));
  const logFile = path.join(dataDir, 'influxd.log');
  const url = `http://127.0.0.1:${options.port}`;
  const database = options.database ?? DEFAULT_INFLUX_DATABASE;

  const started = Date.now();
  progress(`influxdb: starting on ${url}`);
  const { pid } = spawnService(influxd, ['run', '-config', config], {
    logFile,
    detached: options.detached ?? false,
  });
  try {
    await waitUntilReady(`influxdb (${url})`, () => influxReady(url), {
      pid,
      logFile,
      timeoutMs: options.readyTimeoutMs ?? 60_000,
      intervalMs: 200,
    });
    await influxQuery(url, `CREATE DATABASE "${database}"`, { method: 'POST' });
  } catch (err) {
    await stopPid(pid, config, 10_000);
    throw err;
  }
  return {
    service: 'influxdb',
    pid,
    address: url,
    url,
    port: options.port,
    rpcPort: options.rpcPort,
    database,
    dataDir,
    logFile,
    marker: config,
    startMs: Date.now() - started,
    stop: async () => {
      await stopPid(pid, config, 20_000);
    },
    kill: () => killPid(pid, config),
    rssBytes: () => treeRssBytes(pid),
  };
}

function influxConfig(port: number, rpcPort: number, dataDir: string): string {
  const q = (s: string) => JSON.stringify(s);
  return `# Written by strata stack on each start; edit the stack code, not this file.
reporting-disabled = true
bind-address = ${q(`127.0.0.1:${rpcPort}`)}

[meta]
  dir = ${q(path.join(dataDir, 'meta'))}
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = ${q(path.join(dataDir, 'data'))}
  wal-dir = ${q(path.join(dataDir, 'wal'))}
  index-version = "inmem"
  query-log-enabled = false
  cache-max-memory-size = "256m"

[monitor]
  # No _internal database: less disk and CPU on a shared development machine.
  store-enabled = false

[http]
  enabled = true
  bind-address = ${q(`127.0.0.1:${port}`)}
  auth-enabled = false
  log-enabled = false
  flux-enabled = true
  pprof-enabled = false

[logging]
  level = "info"
  suppress-logo = true
`;
}

/** Ready = GET /ping answers 204. */
export async function influxReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2000) });
    return res.status === 204;
  } catch {
    return false;
  }
}

/** Runs one InfluxQL statement through /query; throws ConnectionError on HTTP or statement errors. */
export async function influxQuery(
  url: string,
  q: string,
  options: { db?: string; method?: 'GET' | 'POST'; epoch?: 'ms' | 's' | 'ns' } = {},
): Promise<InfluxQueryResult> {
  const params = new URLSearchParams({ q });
  if (options.db) params.set('db', options.db);
  if (options.epoch) params.set('epoch', options.epoch);
  const res = await fetch(`${url}/query?${params}`, {
    method: options.method ?? 'GET',
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json().catch(() => ({}))) as InfluxQueryResult;
  const statementError = body.results?.find((r) => r.error)?.error;
  if (!res.ok || body.error || statementError) {
    throw new ConnectionError(
      `influxdb ${url} /query "${q}": HTTP ${res.status} ${body.error ?? statementError ?? ''}`.trim(),
      { retriable: res.status >= 500 },
    );
  }
  return body;
}

export interface InfluxQueryResult {
  error?: string;
  results?: {
    statement_id?: number;
    error?: string;
    series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[];
  }[];
}
