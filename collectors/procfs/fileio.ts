// Cheap repeated reads of small kernel files (/proc, /sys, cgroupfs). A collector reads the same
// files every tick; opening, reading and closing each one costs three syscalls and a new Buffer.
// Here each file stays open and is re-read with pread(2) at position 0 into one shared, growing
// Buffer: /proc and cgroupfs files are seq_files that regenerate their content on a read at 0.
// Reads are synchronous on purpose: these files live in memory, and a sync read costs a few µs
// where an async one costs a thread-pool round trip of tens of µs.
import { closeSync, openSync, readSync } from 'node:fs';

let shared = Buffer.allocUnsafe(64 * 1024);

/**
 * Reads the whole file behind `fd` from position 0 as latin1 (kernel files are ASCII).
 * `singleRecord`: the file is a seq_file with one record (every cgroupfs/kernfs attribute file,
 * PSI files), whose first read returns all of it when the buffer is large enough: a short read is
 * then the end, and the second read(2) that would return 0 is saved. Multi-record seq_files
 * (/proc/PID/net/dev, /proc/diskstats) may return a page at a time and are read until 0.
 */
export function preadAll(fd: number, singleRecord = false): string {
  const length = preadShared(fd, singleRecord);
  return shared.toString('latin1', 0, length);
}

/**
 * preadAll without the string: the file's bytes are left at the start of sharedBuffer() and their
 * count is returned. They stay valid until the next read of any file through this module, so a
 * caller parses them at once (the cgroup collector's byte parsers: no string per file per tick).
 */
export function preadShared(fd: number, singleRecord = false): number {
  let length = 0;
  for (;;) {
    if (length === shared.length) {
      // Bounded: a kernel text file larger than 16 MiB is not something a collector should read.
      if (shared.length >= 16 * 1024 * 1024) throw new Error('file larger than 16 MiB');
      const bigger = Buffer.allocUnsafe(shared.length * 2);
      shared.copy(bigger, 0, 0, length);
      shared = bigger;
    }
    const room = shared.length - length;
    const n = readSync(fd, shared, length, room, length);
    if (n === 0) break;
    length += n;
    if (singleRecord && n < room) break;
  }
  return length;
}

/** The buffer preadShared() and KernelFile.readShared() leave a file's bytes in (it may be replaced by a larger one). */
export function sharedBuffer(): Buffer {
  return shared;
}

// Bounded: at most this many files stay open across all KernelFiles (2000 containers × 10 files
// would otherwise meet a 20 000 RLIMIT_NOFILE). Beyond it, files are opened, read and closed per
// read: correct, two syscalls dearer.
let keptOpenLimit = 8192;
let keptOpen = 0;

/** Sets the budget of kept-open kernel files (default 8192). */
export function setKeptOpenLimit(n: number): void {
  keptOpenLimit = n;
}

/** How many kernel files are kept open now (for tests and self-metrics). */
export function keptOpenCount(): number {
  return keptOpen;
}

/** One kernel file kept open between reads. `read()` throws the fs error (ENOENT, ENODEV...). */
export class KernelFile {
  private fd = -1;
  /** `singleRecord`: see preadAll (cgroupfs files: one read(2) per read instead of two). */
  constructor(
    readonly path: string,
    private readonly singleRecord = false,
  ) {}

  read(): string {
    const length = this.readShared();
    return shared.toString('latin1', 0, length);
  }

  /**
   * Reads the file into sharedBuffer() and returns its length (see preadShared: parse the bytes
   * before the next read). Same errors as read().
   */
  readShared(): number {
    if (this.fd < 0) {
      if (keptOpen >= keptOpenLimit) return readOnceShared(this.path, this.singleRecord);
      try {
        this.fd = openSync(this.path, 'r');
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 'EMFILE' || code === 'ENFILE') return readOnceShared(this.path, this.singleRecord);
        throw err;
      }
      keptOpen++;
    }
    try {
      return preadShared(this.fd, this.singleRecord);
    } catch (err) {
      // The file may have gone (cgroup removed: ENODEV/ENOENT); reopen on the next read.
      this.close();
      throw err;
    }
  }

  /** Reads or returns undefined when the file does not exist (ENOENT/ENODEV/ESRCH), other errors throw. */
  readIfPresent(): string | undefined {
    try {
      return this.read();
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  close(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed or invalid: nothing to release
      }
      this.fd = -1;
      keptOpen--;
    }
  }
}

/** Errors that mean "the thing went away", not "something is broken". */
export function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENODEV' || code === 'ESRCH';
}

/** Reads a file once (open/read/close) with the shared buffer; for discovery-time reads. */
export function readOnce(path: string): string {
  const fd = openSync(path, 'r');
  try {
    return preadAll(fd);
  } finally {
    closeSync(fd);
  }
}

function readOnceShared(path: string, singleRecord: boolean): number {
  const fd = openSync(path, 'r');
  try {
    return preadShared(fd, singleRecord);
  } finally {
    closeSync(fd);
  }
}
