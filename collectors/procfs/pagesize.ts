// The kernel's base page size, for turning page counts (KSM's, /proc/PID/ksm_stat's) into bytes.
// Node has no sysconf(_SC_PAGESIZE); the first mapping of /proc/self/smaps states it
// (`KernelPageSize:`), and the agent runs on the kernel it measures, so its own view is the host's.
import { closeSync, openSync, readSync } from 'node:fs';

/** 4 KiB: x86-64, and arm64's usual configuration; used when smaps cannot be read. */
export const DEFAULT_PAGE_SIZE = 4096;

let cached: number | undefined;

/** `KernelPageSize:` of the first mapping in an smaps text, in bytes. */
export function parseKernelPageSize(text: string): number | undefined {
  const m = /^KernelPageSize:\s+(\d+) kB/m.exec(text);
  const kb = m ? Number(m[1]) : Number.NaN;
  return kb > 0 && kb <= 1 << 20 ? kb * 1024 : undefined;
}

/** The page size, read once per process (only the head of /proc/self/smaps: one mapping's block). */
export function kernelPageSize(smaps = '/proc/self/smaps'): number {
  if (cached !== undefined && smaps === '/proc/self/smaps') return cached;
  let found: number | undefined;
  try {
    const fd = openSync(smaps, 'r');
    try {
      const buf = Buffer.alloc(4096);
      const n = readSync(fd, buf, 0, buf.length, 0);
      found = parseKernelPageSize(buf.toString('latin1', 0, n));
    } finally {
      closeSync(fd);
    }
  } catch {
    found = undefined;
  }
  const size = found ?? DEFAULT_PAGE_SIZE;
  if (smaps === '/proc/self/smaps') cached = size;
  return size;
}
