// v1 blkio: a container's blkio.throttle.io_serviced and io_service_bytes are 2 of the ≈ 8 cgroup
// files read per container per tick (≈ 2.6 µs of kernel time each at 1 Hz on the development VM),
// and on most ticks most containers did no I/O. The root's blkio.throttle.io_serviced_recursive
// proves it with one read: it is the sum, per disk and direction, of every cgroup's counters, which
// only grow. While its bytes are exactly those of the last tick, no container's counters moved,
// and the last read of each container's files is parsed again instead of re-read. (A cgroup
// removed while others do I/O could only hide that I/O if it took away exactly as many ops in every
// field of every disk as they added; the forced read below bounds even that.) A reused read is
// still read again at least every BLKIO_MAX_AGE ticks. I/O counted between the root's read and a
// container's own read shows one tick late, when the root has moved: never lost, the counters are
// cumulative. Bytes need no check of their own: a bio adds to both files, so bytes never move
// without ops. cgroup v2's io.stat is one file and read every tick.
import { KernelFile, sharedBuffer } from '../procfs/fileio.ts';

/** A container's blkio files are read again at least every this many ticks. */
export const BLKIO_MAX_AGE = 10;

/** The root's recursive ops file, read once per tick before the containers. */
export class SystemBlkio {
  private file: KernelFile | undefined;
  private last: Buffer = Buffer.alloc(0);
  private lastLen = -1;
  /** Which still stretch this is (+1 each time the bytes change; not a time: two ticks can share a millisecond); -1: unknown (no reuse). */
  stretch = -1;
  private stretches = 0;

  constructor(root: string) {
    this.file = new KernelFile(`${root}/blkio.throttle.io_serviced_recursive`, true);
  }

  refresh(): void {
    let len: number;
    try {
      if (!this.file) throw new Error('closed');
      len = this.file.readShared();
    } catch {
      // Kernels without the _recursive files, or unreadable: containers' files are read every tick.
      this.file?.close();
      this.file = undefined;
      this.stretch = -1;
      return;
    }
    const buf = sharedBuffer();
    if (len !== this.lastLen || buf.compare(this.last, 0, len, 0, len) !== 0 || this.stretch < 0) {
      this.stretch = this.stretches++;
      this.last = keep(this.last, buf, len);
      this.lastLen = len;
    }
  }

  close(): void {
    this.file?.close();
    this.file = undefined;
  }
}

/** What a container's last clean blkio read keeps: its two files' bytes (ops, then bytes). */
export interface BlkioLastRead {
  /** SystemBlkio.stretch when read; -1: read next tick. */
  stretch: number;
  countdown: number;
  copies: [Buffer, Buffer];
  lens: [number, number];
}

/** Copies the first `len` bytes of `from` into `into` (reallocated only when too small). */
export function keep(into: Buffer, from: Buffer, len: number): Buffer {
  const out = into.length >= len ? into : Buffer.allocUnsafe(Math.max(len, 256));
  from.copy(out, 0, 0, len);
  return out;
}
