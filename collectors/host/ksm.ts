// KSM (kernel same-page merging) on the host: the state and effect from /sys/kernel/mm/ksm/*, and
// the CPU the ksmd kernel thread pays for it. Pure parsing here (unit tests run it on files captured
// under testdata/ksm); index.ts keeps the files open and reads them once per tick.
import { readdirSync, readFileSync } from 'node:fs';
import { MAX_KERNEL_VALUE, USER_HZ } from '../procfs/parsers.ts';
import { KSM_FILES, KSMD_CPU } from './metrics.ts';

const USEC_PER_TICK = 1_000_000 / USER_HZ;

/**
 * One KSM attribute: a decimal integer, signed for general_profit (its rmap_items can cost more
 * than the merged pages save). undefined for anything else.
 */
export function parseKsmValue(text: string): number | undefined {
  const t = text.trim();
  if (!/^-?\d{1,20}$/.test(t)) return undefined;
  const v = Number(t);
  return Math.abs(v) <= MAX_KERNEL_VALUE ? v : undefined;
}

export type KsmTexts = Partial<Record<(typeof KSM_FILES)[number]['file'], string>>;

/**
 * The KSM entries from the attribute texts read this tick: gauges (pages × `pageSize`), and the
 * full_scans counter. A missing file (older kernel) gives no entry; a garbled one a problem line.
 */
export function ksmMetrics(
  texts: KsmTexts,
  pageSize: number,
  out: { counters: Record<string, number>; gauges: Record<string, number> },
  problems: string[] = [],
): void {
  for (const { file, metric, pages } of KSM_FILES) {
    const text = texts[file];
    if (text === undefined) continue;
    const v = parseKsmValue(text);
    if (v === undefined) {
      problems.push(`ksm ${file}: not an integer`);
      continue;
    }
    if (metric.kind === 'counter') {
      if (v >= 0) out.counters[metric.name] = v;
      else problems.push(`ksm ${file}: negative counter`);
    } else out.gauges[metric.name] = pages ? v * pageSize : v;
  }
}

/** ksmd's utime + stime in µs from its /proc/PID/stat (comm has no ')' for a kernel thread). */
export function ksmdUsec(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0 || !stat.slice(0, close).includes('(ksmd')) return undefined;
  const f = stat
    .slice(close + 2)
    .trim()
    .split(' ');
  const utime = Number(f[14 - 3]);
  const stime = Number(f[15 - 3]);
  if (!(utime >= 0 && stime >= 0 && utime + stime <= MAX_KERNEL_VALUE)) return undefined;
  return (utime + stime) * USEC_PER_TICK;
}

export const KSMD_CPU_NAME = KSMD_CPU.name;

/**
 * The pid of the ksmd kernel thread: the lowest pid whose comm is `ksmd` (kernel threads start
 * with low pids, so the scan in pid order stops within the first few hundred entries).
 */
export function findKsmdPid(proc: string): number | undefined {
  let pids: number[];
  try {
    pids = readdirSync(proc)
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    try {
      if (readFileSync(`${proc}/${pid}/comm`, 'latin1') === 'ksmd\n') return pid;
    } catch {
      // gone between readdir and read: next
    }
  }
  return undefined;
}
