// Vitest global setup of the `integration` project: real Kafka, InfluxDB and a Docker engine.
//
// Where the servers come from, per service, first match wins:
//   1. KAFKA_BROKERS / INFLUX_URL / DOCKER_HOST set in the environment: used as they are;
//   2. a healthy `strata stack up` in the default data dir (<cache>/stack): reused, left running
//      (set STRATA_TEST_STACK=private to skip this);
//   3. otherwise started here with the stack API in a per-run dir <cache>/runs/run-*, on the
//      default ports when free (else free ephemeral ports), and stopped in teardown.
// The first run on a machine installs Kafka (Maven Central) and builds influxd (go install),
// which takes minutes; progress is printed.
//
// Tests read them with inject('kafkaBrokers') etc.; children spawned by tests find them in
// KAFKA_BROKERS, INFLUX_URL, INFLUX_DATABASE, DOCKER_HOST, STRATA_DOCKER_IMAGE.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { errorMessage } from '../../lib/errors.ts';
import { bridgeName, deleteBridge, stopDockerd } from '../../stack/docker.ts';
import {
  createTopics,
  DEFAULT_DOCKER_IMAGE,
  DEFAULT_INFLUX_DATABASE,
  DEFAULT_PORTS,
  defaultCacheDir,
  ensureBusyboxImage,
  freePort,
  influxQuery,
  preferredOrFreePort,
  readState,
  resolveStackConfig,
  type ServiceHandle,
  type ServiceName,
  STACK_TOPICS,
  stackStatus,
  startDocker,
  startInfluxdb,
  startKafka,
  toState,
  writeState,
} from '../../stack/index.ts';
import { killPid, pidAlive, pidCommandLine, pidsWithMarker } from '../../stack/util.ts';
import './provided-context.ts';

const log = (line: string) => process.stderr.write(`[strata global-stack] ${line}\n`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = process.env;
  const cacheDir = defaultCacheDir();
  const found: Partial<Record<ServiceName, string>> = {
    kafka: env.KAFKA_BROKERS || undefined,
    influxdb: env.INFLUX_URL || undefined,
    docker: env.DOCKER_HOST || undefined,
  };
  for (const [service, address] of Object.entries(found)) {
    if (address) log(`${service}: using ${address} from the environment`);
  }

  const missing = () => (['kafka', 'influxdb', 'docker'] as const).filter((s) => !found[s]);
  if (missing().length && env.STRATA_TEST_STACK !== 'private') {
    const status = await stackStatus(resolveStackConfig({}, process.env));
    for (const s of status) {
      if (!found[s.service] && s.state === 'running' && s.healthy && s.address) {
        found[s.service] = s.address;
        log(`${s.service}: using the running \`strata stack up\` at ${s.address} (pid ${s.pid})`);
      }
    }
  }

  const started: ServiceHandle[] = [];
  let runDir: string | undefined;
  if (missing().length) {
    await sweepStaleRuns(path.join(cacheDir, 'runs'));
    mkdirSync(path.join(cacheDir, 'runs'), { recursive: true });
    runDir = mkdtempSync(path.join(cacheDir, 'runs', 'run-'));
    const state = { version: 1 as const, ownerPid: process.pid, services: {} };
    writeState(runDir, state);
    log(`starting ${missing().join(', ')} in ${runDir} (first use installs them: minutes)`);
    try {
      const taken: number[] = [];
      // Default ports first; after a port clash (another test run started at the same moment),
      // ephemeral ones.
      const port = async (preferred: number, attempt: number) => {
        const p = attempt === 0 ? await preferredOrFreePort(preferred, taken) : await freePort();
        taken.push(p);
        return p;
      };
      const startOne = async (service: ServiceName, attempt: number): Promise<ServiceHandle> => {
        const dataDir = path.join(runDir!, service);
        if (service === 'kafka') {
          return startKafka({
            port: await port(DEFAULT_PORTS.kafka, attempt),
            controllerPort: await port(DEFAULT_PORTS.kafkaController, attempt),
            dataDir,
            cacheDir,
            topics: STACK_TOPICS,
            progress: log,
          });
        }
        if (service === 'influxdb') {
          return startInfluxdb({
            port: await port(DEFAULT_PORTS.influxdb, attempt),
            rpcPort: await port(DEFAULT_PORTS.influxdbRpc, attempt),
            dataDir,
            cacheDir,
            progress: log,
          });
        }
        return startDocker({ dataDir, cacheDir, progress: log });
      };
      for (const service of missing()) {
        let handle: ServiceHandle;
        for (let attempt = 0; ; attempt++) {
          try {
            handle = await startOne(service, attempt);
            break;
          } catch (err) {
            if (attempt >= 2 || !/address already in use|is in use/i.test(errorMessage(err))) throw err;
            log(
              `${service}: a port was taken while starting (${errorMessage(err).split('\n')[0]}); retrying on free ports`,
            );
          }
        }
        started.push(handle);
        const extra = 'bridge' in handle ? { bridge: String(handle.bridge) } : {};
        writeState(runDir, {
          ...readState(runDir),
          ownerPid: process.pid,
          services: { ...readState(runDir).services, [service]: toState(handle, extra) },
        });
        found[service] = handle.address;
        log(
          `${service}: ready at ${handle.address} (pid ${handle.pid}) in ${(handle.startMs / 1000).toFixed(1)} s`,
        );
      }
    } catch (err) {
      await stopAll(started);
      throw err;
    }
  }

  const kafkaBrokers = found.kafka!;
  const influxUrl = found.influxdb!;
  const dockerHost = found.docker!;
  const influxDatabase = env.INFLUX_DATABASE || DEFAULT_INFLUX_DATABASE;
  const dockerImage = env.STRATA_DOCKER_IMAGE || DEFAULT_DOCKER_IMAGE;

  // Servers from the environment may be bare: make sure what tests rely on exists (idempotent).
  await createTopics(kafkaBrokers, STACK_TOPICS);
  await influxQuery(influxUrl, `CREATE DATABASE "${influxDatabase}"`, { method: 'POST' });
  if (dockerHost.startsWith('unix://')) {
    await ensureBusyboxImage(dockerHost.slice('unix://'.length), dockerImage, { cacheDir, progress: log });
  }

  project.provide('kafkaBrokers', kafkaBrokers);
  project.provide('influxUrl', influxUrl);
  project.provide('influxDatabase', influxDatabase);
  project.provide('dockerHost', dockerHost);
  project.provide('dockerImage', dockerImage);
  Object.assign(process.env, {
    KAFKA_BROKERS: kafkaBrokers,
    INFLUX_URL: influxUrl,
    INFLUX_DATABASE: influxDatabase,
    DOCKER_HOST: dockerHost,
    STRATA_DOCKER_IMAGE: dockerImage,
  });

  return async () => {
    if (!started.length) return;
    log(`stopping ${started.map((h) => h.service).join(', ')} started for this run`);
    // vitest gives the whole close 10 s (teardownTimeout) before it exits and would leave orphans.
    // The run dir is deleted anyway, so Kafka and InfluxDB need no graceful shutdown; dockerd does
    // (it stops the containers tests left behind).
    await Promise.all(
      started.map((h) =>
        (h.service === 'docker' ? h.stop() : h.kill()).catch((err: unknown) =>
          log(`${h.service}: stop failed: ${(err as Error).message}`),
        ),
      ),
    );
    if (runDir) {
      try {
        rmSync(runDir, { recursive: true, force: true });
      } catch (err) {
        // Never fail a green run over a leftover dir: the next run's sweep deletes it.
        log(`could not delete ${runDir}: ${errorMessage(err)}`);
      }
    }
  };
}

async function stopAll(handles: ServiceHandle[]): Promise<void> {
  for (const h of [...handles].reverse()) {
    await h.stop().catch((err: unknown) => log(`${h.service}: stop failed: ${(err as Error).message}`));
  }
}

/**
 * Per-run dirs whose vitest process is gone (killed before its teardown): stop what they recorded
 * (PID + command line check) and delete them, so orphans do not pile up on a shared machine.
 */
async function sweepStaleRuns(runsDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync(runsDir);
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = path.join(runsDir, name);
    const state = readState(dir);
    const ownerGone = state.ownerPid !== undefined ? !pidAlive(state.ownerPid) : ageMs(dir) > 3_600_000;
    if (!ownerGone) continue;
    // Everything this run started carries its dir in its command line (config file, exec root),
    // including a service killed before its PID reached the state file.
    const dockerRunDir = path.join(dir, 'docker', 'docker-run');
    for (const pid of pidsWithMarker(dir)) {
      if (!pidCommandLine(pid)?.includes('dockerd')) continue;
      log(`docker: stopping orphan dockerd ${pid} of a killed test run (${dir})`);
      await stopDockerd(pid, dockerRunDir, undefined);
    }
    for (const pid of pidsWithMarker(dir)) {
      log(`stopping orphan pid ${pid} of a killed test run: ${pidCommandLine(pid)?.slice(0, 80)}`);
      await killPid(pid, dir);
    }
    await deleteBridge(bridgeName(dockerRunDir));
    rmSync(dir, { recursive: true, force: true });
  }
}

function ageMs(dir: string): number {
  try {
    return Date.now() - statSync(dir).mtimeMs;
  } catch {
    return 0;
  }
}
