// The development/CI stack as a TypeScript API: `strata stack up|down|status` and the vitest global
// setup call stackUp/stackDown/stackStatus; tests that need a private server (to stop a broker for
// 30 s, say) call startKafka/startInfluxdb/startDocker directly with their own ports and data dir.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../lib/errors.ts';
import type { StackConfig } from './config.ts';
import { bridgeName, type DockerHandle, dockerPing, startDocker, stopDockerd } from './docker.ts';
import { influxReady, startInfluxdb } from './influxdb.ts';
import { kafkaReady, STACK_TOPICS, startKafka } from './kafka.ts';
import {
  assertPortFree,
  type Progress,
  pidCommandLine,
  pidIsOurs,
  pidsWithMarker,
  type ServiceHandle,
  type ServiceName,
  silentProgress,
  stopPid,
  treeRssBytes,
} from './util.ts';

export { DEFAULT_PORTS, resolveStackConfig, StackConfig, type StackFlags } from './config.ts';
export {
  busyboxRootfsTarball,
  DEFAULT_DOCKER_IMAGE,
  type DockerHandle,
  type DockerOptions,
  dockerPing,
  dockerRequest,
  ensureBusyboxImage,
  startDocker,
} from './docker.ts';
export {
  DEFAULT_INFLUX_DATABASE,
  DEFAULT_INFLUXDB_VERSION,
  type InfluxdbHandle,
  type InfluxdbOptions,
  influxQuery,
  influxReady,
  installInfluxdb,
  startInfluxdb,
} from './influxdb.ts';
export {
  addScramUsers,
  createTopics,
  DEFAULT_KAFKA_VERSION,
  installKafka,
  type KafkaHandle,
  type KafkaOptions,
  kafkaReady,
  STACK_TOPICS,
  startKafka,
} from './kafka.ts';
export {
  type ClientTlsFiles,
  DEFAULT_KAFKA_USERS,
  ensureClientTlsFiles,
  ensureTlsFiles,
  type KafkaSecurityInfo,
  type KafkaSecurityOptions,
  type KafkaUser,
} from './kafka-security.ts';
export {
  defaultCacheDir,
  freePort,
  isPortFree,
  type Progress,
  preferredOrFreePort,
  SERVICES,
  type ServiceHandle,
  type ServiceName,
} from './util.ts';

/** One service as recorded in <dataDir>/state.json. */
export interface ServiceState {
  pid: number;
  address: string;
  /** Substring of the command line that proves the PID is still ours. */
  marker: string;
  dataDir: string;
  logFile: string;
  startedAt: string;
  startMs: number;
  /** Docker only: the bridge to delete when stopping. */
  bridge?: string;
  /** InfluxDB: the database; Docker: the image. */
  database?: string;
  image?: string;
}

export interface StackState {
  version: 1;
  /** The process that started the services, when it should stop them itself (test runs). */
  ownerPid?: number;
  services: Partial<Record<ServiceName, ServiceState>>;
}

export function stateFile(dataDir: string): string {
  return path.join(dataDir, 'state.json');
}

export function readState(dataDir: string): StackState {
  try {
    const parsed = JSON.parse(readFileSync(stateFile(dataDir), 'utf8')) as StackState;
    if (parsed.version === 1 && typeof parsed.services === 'object') return parsed;
  } catch {
    // missing or unreadable: nothing started
  }
  return { version: 1, services: {} };
}

export function writeState(dataDir: string, state: StackState): void {
  mkdirSync(dataDir, { recursive: true });
  const file = stateFile(dataDir);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  // rename is atomic: a concurrent `status` never reads half a file
  renameSync(tmp, file);
}

export function toState(handle: ServiceHandle, extra: Partial<ServiceState> = {}): ServiceState {
  return {
    pid: handle.pid,
    address: handle.address,
    marker: handle.marker,
    dataDir: handle.dataDir,
    logFile: handle.logFile,
    startedAt: new Date().toISOString(),
    startMs: handle.startMs,
    ...extra,
  };
}

export interface ServiceStatus {
  service: ServiceName;
  state: 'running' | 'not running' | 'not started';
  address?: string;
  pid?: number;
  rssBytes?: number;
  startMs?: number;
  logFile?: string;
  /** Responds to its readiness check right now. */
  healthy?: boolean;
}

export interface StackUpResult {
  /** Services started by this call. */
  started: ServiceName[];
  /** Services that were already running (left alone). */
  alreadyRunning: ServiceName[];
  status: ServiceStatus[];
}

/**
 * Starts what `config.only` names and is not already running, detached so it outlives the caller.
 * Ports are all checked before anything is installed, so a taken port fails in a second.
 */
export async function stackUp(
  config: StackConfig,
  options: { progress?: Progress; detached?: boolean; ownerPid?: number } = {},
): Promise<StackUpResult> {
  const progress = options.progress ?? silentProgress;
  const detached = options.detached ?? true;
  const state = readState(config.dataDir);
  if (options.ownerPid !== undefined) state.ownerPid = options.ownerPid;
  const running = (s: ServiceName) => {
    const entry = state.services[s];
    return entry !== undefined && pidIsOurs(entry.pid, entry.marker);
  };
  const toStart = config.only.filter((s) => !running(s));
  const alreadyRunning = config.only.filter((s) => running(s));
  for (const s of alreadyRunning) {
    progress(`${s}: already running at ${state.services[s]?.address} (pid ${state.services[s]?.pid})`);
  }

  // A service of this stack that runs without a state entry (its `up` was interrupted before it
  // was ready) would hold the ports: its command line names our data dir, so stop it first.
  for (const service of toStart) {
    const marker = unrecordedMarker(config.dataDir, service);
    for (const pid of pidsWithMarker(marker)) {
      if (service === 'docker' && !pidCommandLine(pid)?.includes('dockerd')) continue; // then its containerd
      progress(`${service}: stopping pid ${pid}, left running by an interrupted \`up\` of this stack`);
      if (service === 'docker') await stopDockerd(pid, marker, bridgeName(marker));
      else await stopPid(pid, marker, 30_000);
    }
  }

  if (toStart.includes('kafka')) {
    await assertPortFree(config.kafka.port, 'kafka', '--kafka-port', 'STRATA_KAFKA_PORT');
    await assertPortFree(
      config.kafka.controllerPort,
      'the kafka controller',
      '--kafka-controller-port',
      'STRATA_KAFKA_CONTROLLER_PORT',
    );
  }
  if (toStart.includes('influxdb')) {
    await assertPortFree(config.influxdb.port, 'influxdb', '--influx-port', 'STRATA_INFLUX_PORT');
    await assertPortFree(
      config.influxdb.rpcPort,
      'the influxdb RPC service',
      '--influx-rpc-port',
      'STRATA_INFLUX_RPC_PORT',
    );
  }

  const started: ServiceName[] = [];
  for (const service of toStart) {
    const dataDir = path.join(config.dataDir, service);
    const common = {
      dataDir,
      cacheDir: config.cacheDir,
      detached,
      readyTimeoutMs: config.readyTimeoutMs,
      progress,
    };
    let entry: ServiceState;
    if (service === 'kafka') {
      const h = await startKafka({
        ...common,
        port: config.kafka.port,
        controllerPort: config.kafka.controllerPort,
        version: config.kafka.version,
        heapMb: config.kafka.heapMb,
        topics: STACK_TOPICS,
      });
      entry = toState(h);
    } else if (service === 'influxdb') {
      const h = await startInfluxdb({
        ...common,
        port: config.influxdb.port,
        rpcPort: config.influxdb.rpcPort,
        version: config.influxdb.version,
        database: config.influxdb.database,
      });
      entry = toState(h, { database: h.database });
    } else {
      const h: DockerHandle = await startDocker({
        ...common,
        dataRoot: config.docker.dataRoot,
        image: config.docker.image,
      });
      entry = toState(h, { bridge: h.bridge, image: h.image });
    }
    progress(
      `${service}: ready at ${entry.address} (pid ${entry.pid}) in ${(entry.startMs / 1000).toFixed(1)} s`,
    );
    state.services[service] = entry;
    writeState(config.dataDir, state);
    started.push(service);
  }
  writeState(config.dataDir, state);
  return { started, alreadyRunning, status: await stackStatus(config) };
}

/** What the command line of a service of the stack in `dataDir` contains (see startKafka & co). */
function unrecordedMarker(dataDir: string, service: ServiceName): string {
  if (service === 'kafka') return path.join(dataDir, 'kafka', 'server.properties');
  if (service === 'influxdb') return path.join(dataDir, 'influxdb', 'influxdb.conf');
  return path.join(dataDir, 'docker', 'docker-run');
}

/** Stops only what this stack's state file records and whose PID still runs our command line. */
export async function stackDown(
  config: Pick<StackConfig, 'dataDir' | 'only'>,
  options: { progress?: Progress; purge?: boolean } = {},
): Promise<ServiceName[]> {
  const progress = options.progress ?? silentProgress;
  const state = readState(config.dataDir);
  const stopped: ServiceName[] = [];
  // Reverse start order: containers and writers go before the broker they may talk to.
  for (const service of [...config.only].reverse()) {
    const entry = state.services[service];
    if (!entry) {
      progress(`${service}: not started by this stack (${stateFile(config.dataDir)})`);
      continue;
    }
    if (!pidIsOurs(entry.pid, entry.marker)) {
      progress(`${service}: pid ${entry.pid} is no longer running; forgetting it`);
    } else {
      progress(`${service}: stopping pid ${entry.pid}`);
      if (service === 'docker') await stopDockerd(entry.pid, entry.marker, entry.bridge);
      else await stopPid(entry.pid, entry.marker, service === 'kafka' ? 30_000 : 20_000);
      stopped.push(service);
    }
    delete state.services[service];
    writeState(config.dataDir, state);
  }
  if (options.purge) {
    const left = Object.keys(state.services);
    if (left.length) {
      throw new StrataError(`not purging ${config.dataDir}: ${left.join(', ')} still recorded as running`);
    }
    progress(`purging ${config.dataDir}`);
    rmSync(config.dataDir, { recursive: true, force: true });
  }
  return stopped;
}

/** Each service of the stack: running or not, its address, PID, RSS and whether it answers. */
export async function stackStatus(config: Pick<StackConfig, 'dataDir'>): Promise<ServiceStatus[]> {
  const state = readState(config.dataDir);
  const out: ServiceStatus[] = [];
  for (const service of ['kafka', 'influxdb', 'docker'] as const) {
    const entry = state.services[service];
    if (!entry) {
      out.push({ service, state: 'not started' });
      continue;
    }
    const alive = pidIsOurs(entry.pid, entry.marker);
    out.push({
      service,
      state: alive ? 'running' : 'not running',
      address: entry.address,
      pid: entry.pid,
      startMs: entry.startMs,
      logFile: entry.logFile,
      rssBytes: alive ? treeRssBytes(entry.pid) : undefined,
      healthy: alive ? await healthy(service, entry.address) : false,
    });
  }
  return out;
}

async function healthy(service: ServiceName, address: string): Promise<boolean> {
  if (service === 'kafka') return kafkaReady(address);
  if (service === 'influxdb') return influxReady(address);
  return dockerPing(address.replace(/^unix:\/\//, ''));
}

/** The environment variables that point clients (and the vitest global setup) at a stack. */
export function stackEnv(status: readonly ServiceStatus[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of status) {
    if (s.state !== 'running' || !s.address) continue;
    if (s.service === 'kafka') env.KAFKA_BROKERS = s.address;
    if (s.service === 'influxdb') env.INFLUX_URL = s.address;
    if (s.service === 'docker') env.DOCKER_HOST = s.address;
  }
  return env;
}
