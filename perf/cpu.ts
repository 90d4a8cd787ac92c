// CPU accounting shared by the perf scripts: per-thread CPU from /proc (Linux) and rounding.
import fs from 'node:fs';

/**
 * CPU time (µs, user + system) of this process's threads, from /proc/self/task/<tid>/stat (Linux;
 * empty elsewhere): `main` and `other` (Node 20 leaves every thread named `node`: the others are
 * V8's helpers — concurrent JIT compiling, concurrent marking/sweeping — and libuv's pool, which
 * runs the gzip). BENCH_TIDS=1 splits `other` per thread (`t<tid - pid>`: V8's helpers have the
 * lowest numbers, libuv's pool threads start when the first gzip runs).
 */
export function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  const tickUs = 1e6 / 100; // USER_HZ is 100 on Linux
  for (const tid of tids) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const close = stat.lastIndexOf(')');
    const name =
      tid === String(process.pid)
        ? 'main'
        : process.env.BENCH_TIDS
          ? `t${Number(tid) - process.pid}`
          : 'other';
    const f = stat.slice(close + 2).split(' ');
    const us = (Number(f[11]) + Number(f[12])) * tickUs;
    out.set(name, (out.get(name) ?? 0) + us);
  }
  return out;
}

/** Per-thread-name CPU-µs per entity-sample between two threadCpu() readings. */
export function threadCpuPerSample(before: Map<string, number>, after: Map<string, number>, samples: number) {
  const out: Record<string, number> = {};
  for (const [name, us] of after) {
    const d = us - (before.get(name) ?? 0);
    if (d > 0) out[name] = round(d / samples);
  }
  return out;
}

export const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
export const cpuUs = (u: NodeJS.CpuUsage) => u.user + u.system;
