// Helpers every layer shares: the CPU-accounting wrapper, /proc/PID/stat, ldd, TCP readiness, and
// installing the workloads' Debian packages on demand.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { MissingPrerequisiteError, StrataError } from '../../lib/errors.ts';
import { componentLogger } from '../../lib/log.ts';
import { PACKAGE_OF } from '../workloads/packages.ts';

const execFileP = promisify(execFile);
const log = componentLogger('bench.layers');

/** USER_HZ is 100 on every Linux ABI we run on: one tick = 10 ms. */
export const USEC_PER_TICK = 10_000;

/**
 * Runs "$@" under a shell, then prints the shell's own /proc/PID/stat: after `wait`, its
 * cutime+cstime hold the CPU of the whole (reaped) process tree. Works with busybox sh, so the
 * same accounting runs natively, in a container and inside the VM guest.
 */
export const WRAP = '"$@"; rc=$?; read -r s < /proc/$$/stat; echo "STRATA-STAT $s" >&2; exit $rc';

export interface ProcTimes {
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/** Fields 14-17 of /proc/PID/stat (after the parenthesised comm, which may hold spaces). */
export function parseProcStat(line: string): ProcTimes | undefined {
  const close = line.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = line
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // f[0] is field 3 (state): field N is f[N - 3].
  const n = (i: number) => Number(f[i - 3]);
  const t = { utime: n(14), stime: n(15), cutime: n(16), cstime: n(17) };
  return Object.values(t).every(Number.isFinite) ? t : undefined;
}

/** Strips the wrapper's STRATA-STAT line from `text`; returns the tree's CPU µs from it. */
export function takeStatMarker(text: string): { text: string; cpuUsec?: number } {
  const m = /^STRATA-STAT (.*)$/m.exec(text);
  if (!m) return { text };
  const t = parseProcStat(m[1]!);
  const rest = text.slice(0, m.index) + text.slice(m.index + m[0].length + 1);
  if (!t) return { text: rest };
  return { text: rest, cpuUsec: (t.utime + t.stime + t.cutime + t.cstime) * USEC_PER_TICK };
}

/** utime+stime of a live process (all its threads), µs; undefined when it is gone. */
export async function pidCpuUsec(pid: number, proc = '/proc'): Promise<number | undefined> {
  try {
    const t = parseProcStat(await fs.readFile(`${proc}/${pid}/stat`, 'utf8'));
    return t ? (t.utime + t.stime) * USEC_PER_TICK : undefined;
  } catch {
    return undefined;
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export async function waitTcp(host: string, port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createConnection({ host, port });
      s.setTimeout(1000);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', (e) => {
        last = e.message;
        resolve(false);
      });
      s.once('timeout', () => {
        s.destroy();
        last = 'connect timeout';
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new StrataError(
    `${what} did not accept connections on ${host}:${port} within ${timeoutMs} ms (${last})`,
  );
}

export interface ProcResult {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** Runs argv to completion, capturing bounded output; kills it after timeoutMs. */
export function runProcess(
  argv: readonly string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const cap = 4 * 1024 * 1024; // bounded: fio JSON is ~10 KiB, nothing legitimate comes near this
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < cap) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < cap) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new StrataError(`could not run ${argv[0]}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, wallMs: performance.now() - started });
    });
  });
}

async function which(cmd: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      await fs.access(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

export { which };

/**
 * Finds each tool on the host; installs the missing ones' Debian packages with apt-get when
 * allowed and running as root; otherwise throws naming the packages and the command to run.
 */
export async function ensureTools(tools: readonly string[], install: boolean): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const t of new Set(tools)) {
    const p = await which(t);
    if (p) found.set(t, p);
    else missing.push(t);
  }
  if (!missing.length) return found;
  const pkgs = [...new Set(missing.map((t) => PACKAGE_OF[t] ?? t))];
  const how = `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  if (!install) {
    throw new MissingPrerequisiteError(
      `missing ${missing.join(', ')}; install with: ${how} (or drop --no-install)`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new MissingPrerequisiteError(
      `missing ${missing.join(', ')} and not root, so the bench cannot install them; run: sudo ${how}`,
    );
  }
  log.info({ packages: pkgs }, 'installing workload packages');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = ['-o', 'DPkg::Lock::Timeout=300', '-y', '-qq', '--no-install-recommends'];
  try {
    await execFileP('apt-get', [...apt, 'install', ...pkgs], { env, maxBuffer: 16 << 20 });
  } catch {
    // The package lists may be stale or empty on a fresh machine: refresh once and retry.
    await execFileP('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update', '-qq'], {
      env,
      maxBuffer: 16 << 20,
    });
    await execFileP('apt-get', [...apt, 'install', ...pkgs], { env, maxBuffer: 16 << 20 }).catch((err) => {
      throw new MissingPrerequisiteError(`${how} failed: ${(err as Error).message.slice(0, 500)}`);
    });
  }
  for (const t of missing) {
    const p = await which(t);
    if (!p) throw new MissingPrerequisiteError(`installed ${pkgs.join(' ')} but ${t} is still not on PATH`);
    found.set(t, p);
  }
  return found;
}

/** The shared libraries (resolved real paths) and the ELF interpreter a binary loads, via ldd. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await execFileP('ldd', [binary]).catch((err) => {
    throw new MissingPrerequisiteError(`ldd ${binary} failed (${(err as Error).message}); install libc-bin`);
  });
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}
