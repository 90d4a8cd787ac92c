// Process, port and file helpers shared by the stack's services (Kafka, InfluxDB, Docker engine).
// Everything here works from PIDs and /proc so that `strata stack down` in another process can
// stop what `strata stack up` started, and never touches a process it cannot prove is its own.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCode, MissingPrerequisiteError, StrataError } from '../lib/errors.ts';

export const SERVICES = ['kafka', 'influxdb', 'docker'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Progress lines for people watching a first install ("kafka: fetching jars..."). */
export type Progress = (line: string) => void;
export const silentProgress: Progress = () => {};

/** Where installs (Kafka jars, influxd, the Maven repository, Docker's data root) are cached. */
export function defaultCacheDir(): string {
  const fromEnv = process.env.STRATA_CACHE_DIR;
  if (fromEnv) return path.resolve(fromEnv);
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.cache'), 'strata');
}

/** Finds an executable on PATH (plus the sbin dirs, where Debian puts dockerd for root). */
export function which(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Returns the path of `command` or throws MissingPrerequisiteError saying how to get it. */
export function requireCommand(command: string, neededFor: string, howToInstall: string): string {
  const found = which(command);
  if (found) return found;
  throw new MissingPrerequisiteError(
    `${command} is needed ${neededFor} but was not found on PATH (${process.env.PATH ?? ''}); install it with: ${howToInstall}`,
  );
}

/** Throws a message naming the port, the service and how to choose another when `port` is taken. */
export async function assertPortFree(
  port: number,
  service: string,
  flag: string,
  envVar: string,
): Promise<void> {
  if (await isPortFree(port)) return;
  throw new StrataError(
    `port ${port} for ${service} is in use (by another process); choose another with ${flag} or ${envVar}`,
  );
}

/** True when nothing listens on 127.0.0.1:port (a wildcard listener also makes this false). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the kernel says is free now (it may be taken again before use; callers re-check). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `preferred` when free, otherwise an ephemeral free port. */
export async function preferredOrFreePort(preferred: number, avoid: readonly number[] = []): Promise<number> {
  if (!avoid.includes(preferred) && (await isPortFree(preferred))) return preferred;
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    if (!avoid.includes(port)) return port;
  }
  throw new StrataError('could not find a free port on 127.0.0.1');
}

/** Runs a command to completion; rejects with its exit code and the tail of its output. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.once('error', (e) =>
      reject(new StrataError(`could not run ${command}: ${e.message}`, { cause: e })),
    );
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve({ stdout, stderr });
      else {
        const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-25).join('\n');
        reject(
          new StrataError(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${tail}`),
        );
      }
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Calls `progress` every `everyMs` with the elapsed time while `work` runs (long, silent installs). */
export async function withHeartbeat<T>(
  progress: Progress,
  what: string,
  work: Promise<T>,
  everyMs = 15_000,
): Promise<T> {
  const start = Date.now();
  const timer = setInterval(
    () => progress(`${what}: still working (${Math.round((Date.now() - start) / 1000)} s)`),
    everyMs,
  );
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/**
 * Alive and not a zombie. A multi-threaded process (the JVM) whose main thread is already a zombie
 * still runs while other threads exit and still holds its ports: alive until they are gone too.
 */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state !== 'Z' && state !== 'X') return true;
    return readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return false;
  }
}

/** The process's argv joined by spaces, or undefined when it is gone. */
export function pidCommandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** True when `pid` runs and its command line contains `marker` (guards against PID reuse). */
export function pidIsOurs(pid: number, marker: string): boolean {
  return pidAlive(pid) && (pidCommandLine(pid)?.includes(marker) ?? false);
}

/** Resident set size in bytes from /proc/PID/status, or undefined when the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** PIDs of all descendants of `pid` (for RSS of dockerd + its containerd, and for cleanup). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const next = queue.shift()!;
    for (const c of children.get(next) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** PIDs whose command line contains `marker` (e.g. a private run dir), for orphan cleanup. */
export function pidsWithMarker(marker: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    if (pidCommandLine(Number(entry))?.includes(marker)) out.push(Number(entry));
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if (errorCode(err) !== 'ESRCH') throw err;
  }
}

/** Waits until `pid` is gone; false on timeout. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * SIGTERM, then SIGKILL after `graceMs`. Only signals when the command line still contains
 * `marker`, so a recycled PID is never hit. Returns how it ended.
 */
export async function stopPid(
  pid: number,
  marker: string,
  graceMs: number,
): Promise<'not-running' | 'stopped' | 'killed'> {
  if (!pidIsOurs(pid, marker)) return 'not-running';
  signal(pid, 'SIGTERM');
  if (await waitForExit(pid, graceMs)) return 'stopped';
  if (pidIsOurs(pid, marker)) signal(pid, 'SIGKILL');
  await waitForExit(pid, 10_000);
  return 'killed';
}

/** SIGKILL now (a crash, for failure tests). */
export async function killPid(pid: number, marker: string): Promise<void> {
  if (!pidIsOurs(pid, marker)) return;
  signal(pid, 'SIGKILL');
  await waitForExit(pid, 10_000);
}

/** The last `lines` lines of a log file, for error messages. */
export function tailFile(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface SpawnedService {
  pid: number;
  child: ChildProcess;
}

/**
 * Starts a server with stdout+stderr appended to `logFile`. `detached` puts it in its own session
 * so it outlives the CLI (`stack up`); attached children die with their parent's process group
 * (Ctrl-C on a test run takes them down too).
 */
export function spawnService(
  command: string,
  args: readonly string[],
  options: { logFile: string; detached: boolean; env?: NodeJS.ProcessEnv; cwd?: string },
): SpawnedService {
  const fd = openSync(options.logFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: options.detached,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) {
      throw new StrataError(`could not start ${command} (see ${options.logFile})`);
    }
    // Errors after spawn (e.g. ENOENT) surface as a dead PID during readiness; don't crash on them.
    child.on('error', () => {});
    if (options.detached) child.unref();
    return { pid: child.pid, child };
  } finally {
    closeSync(fd);
  }
}

/**
 * Polls `check` until it returns true. Fails early when `pid` died, and on timeout, with the tail
 * of `logFile` so the reason is on screen.
 */
export async function waitUntilReady(
  what: string,
  check: () => Promise<boolean>,
  options: { pid: number; logFile: string; timeoutMs: number; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (!pidAlive(options.pid)) {
      throw new StrataError(
        `${what} exited during start-up; last lines of ${options.logFile}:\n${tailFile(options.logFile)}`,
      );
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new StrataError(
        `${what} was not ready within ${Math.round(options.timeoutMs / 1000)} s (pid ${options.pid}); ` +
          `last lines of ${options.logFile}:\n${tailFile(options.logFile)}`,
      );
    }
    await sleep(options.intervalMs ?? 300);
  }
}

export function fileExists(file: string): boolean {
  return existsSync(file);
}

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** What every started service gives back; the same for a private test instance and `stack up`. */
export interface ServiceHandle {
  readonly service: ServiceName;
  readonly pid: number;
  /** Kafka: "127.0.0.1:19092"; InfluxDB: "http://127.0.0.1:18086"; Docker: "unix:///.../docker.sock". */
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** A substring of the process's command line proving a PID is still this service. */
  readonly marker: string;
  /** Milliseconds from spawn to ready. */
  readonly startMs: number;
  /** Graceful stop (SIGTERM, SIGKILL after a grace period); safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash; the data dir is kept so the service can be started again on it. */
  kill(): Promise<void>;
  /** Resident memory of the service (with its child processes), bytes. */
  rssBytes(): number | undefined;
}

/** RSS of pid plus its descendants. */
export function treeRssBytes(pid: number): number | undefined {
  const own = rssBytes(pid);
  if (own === undefined) return undefined;
  return descendants(pid).reduce((sum, p) => sum + (rssBytes(p) ?? 0), own);
}
