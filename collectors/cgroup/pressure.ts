// A container's PSI files (cpu/io/memory.pressure) are 3 of the ≈ 8 cgroup files read per container
// per tick, ≈ 4.2–4.5 µs of kernel time each at 1 Hz on the development VM. Most of the time their
// totals cannot have changed, and the system-wide PSI file proves it: a task stalled in any cgroup is
// stalled in every ancestor, up to the root group that /proc/pressure/<resource> shows. So while
// the system's `some` total for a resource has not moved, no container's `some` or `full` total
// for it has moved either (`full` stalls are `some` stalls), and a container's file read since
// that total last moved still holds what it held at that read.
//
// Only the totals are sent (`total=`, not the kernel's avg10 averages), and the kernel computes a
// total on each read of the file: it adds the per-CPU stall time up to that instant, a stall still
// in progress included. A total therefore has no delay to settle (unlike avg10, folded in every
// 2 s and decaying without any stall), so a read is reusable from the first tick of the system's
// still stretch: the stretch began with a system read made before this container read, and the
// system total not moving since means no stall anywhere since, so none after this read either. A
// reused file is still read at least every PSI_MAX_AGE ticks.
//
// What a reuse can get wrong, and why it does not matter: a stall that begins between this tick's
// read of the system file and the container's own read is not seen this tick; the system total
// has moved by the next tick, so the container is read then and the stall is counted one tick
// late. The kernel also weighs each CPU's stall time by its non-idle jiffies when it adds it to a
// total, so a stall of under a jiffy on an otherwise idle CPU can be missing from the system
// total but not from a container's: that shows at the container's next read (PSI_MAX_AGE).
// Totals are cumulative, so nothing is lost.

import { KernelFile, sharedBuffer } from '../procfs/fileio.ts';
import { PSI_NAMES, parsePressure } from '../procfs/parsers.ts';
import { pressureBytes } from './bytes.ts';
import { PRESSURE_FILES, pressureNames } from './files.ts';

export type PsiResource = 'cpu' | 'io' | 'memory';
export const PSI_RESOURCES: readonly PsiResource[] = ['cpu', 'io', 'memory'];

/** A reused PSI file is read again at least every this many ticks. */
export const PSI_MAX_AGE = 10;

type PsiNames = readonly [string, string];

/** A container's PSI names per resource, from files.ts (parsePressure, the string fallback, writes the same: a test checks). */
const PSI_FILE_NAMES: Record<PsiResource, PsiNames> = {
  cpu: pressureNames(PRESSURE_FILES.cpu),
  io: pressureNames(PRESSURE_FILES.io),
  memory: pressureNames(PRESSURE_FILES.memory),
};

/** parsePressure writes no gauge; it is given this object for its signature's sake. */
const NO_GAUGES: Record<string, number> = {};

/** One container's PSI file and what its last read allows to reuse. */
export interface PsiFile {
  file: KernelFile;
  resource: PsiResource;
  /** [some total, full total] */
  names: PsiNames;
  /** The system's still stretch (SystemPressure.stretch) the last clean read was made in; -1: read next tick. */
  stretch: number;
  countdown: number;
  someTotal: number | undefined;
  fullTotal: number | undefined;
}

export function psiFile(file: KernelFile, resource: PsiResource): PsiFile {
  return {
    file,
    resource,
    names: PSI_FILE_NAMES[resource],
    stretch: -1,
    countdown: 0,
    someTotal: undefined,
    fullTotal: undefined,
  };
}

/** The system-wide `some` totals (HOST_PROC/pressure/*), read once per tick before the containers. */
export class SystemPressure {
  private readonly files: Partial<Record<PsiResource, KernelFile>> = {};
  private readonly last: Record<PsiResource, number | undefined> = {
    cpu: undefined,
    io: undefined,
    memory: undefined,
  };
  /** Per resource: which still stretch this is (+1 each time the total moves); -1: unknown (no reuse). */
  readonly stretch: Record<PsiResource, number> = { cpu: -1, io: -1, memory: -1 };
  private stretches = 0;
  private readonly counters: Record<string, number> = {};

  constructor(proc: string) {
    // single_open seq_files: one read(2) returns the whole file
    for (const r of PSI_RESOURCES) this.files[r] = new KernelFile(`${proc}/pressure/${r}`, true);
  }

  /** Reads the three files; any failure (no PSI, unreadable, garbage) turns reuse off for that resource this tick. */
  refresh(): void {
    for (const r of PSI_RESOURCES) {
      const total = this.readSome(r);
      if (total === undefined) {
        this.stretch[r] = -1;
      } else if (total !== this.last[r] || this.stretch[r] < 0) {
        // A new stretch: its own id, since two ticks can fall in the same millisecond.
        this.stretch[r] = this.stretches++;
      }
      this.last[r] = total;
    }
  }

  private readSome(r: PsiResource): number | undefined {
    const f = this.files[r];
    if (!f) return undefined;
    const counters = this.counters;
    const name = PSI_NAMES[r].some;
    delete counters[name];
    try {
      const len = f.readShared();
      if (!pressureBytes(sharedBuffer(), len, [PSI_NAMES[r].some, PSI_NAMES[r].full], counters)) {
        return undefined;
      }
    } catch {
      // No PSI (kernel without it, psi=0), or not readable: the containers' files are read every tick.
      f.close();
      delete this.files[r];
      return undefined;
    }
    return counters[name];
  }

  close(): void {
    for (const f of Object.values(this.files)) f.close();
  }
}

/**
 * Puts a container's PSI totals into the sample, read from its file or reused (true). `read` reads
 * the file into sharedBuffer() and returns its length, or -1.
 */
export function readPsi(
  p: PsiFile,
  system: SystemPressure | undefined,
  read: (f: KernelFile) => number,
  counters: Record<string, number>,
  problems: string[],
): boolean {
  const stretch = system ? system.stretch[p.resource] : -1;
  if (p.stretch >= 0 && p.stretch === stretch && --p.countdown > 0) {
    // The file's own key order: some, then full.
    if (p.someTotal !== undefined) counters[p.names[0]] = p.someTotal;
    if (p.fullTotal !== undefined) counters[p.names[1]] = p.fullTotal;
    return true;
  }
  p.stretch = -1;
  const len = read(p.file);
  if (len < 0) return false;
  const before = problems.length;
  if (!pressureBytes(sharedBuffer(), len, p.names, counters)) {
    parsePressure(sharedBuffer().toString('latin1', 0, len), p.resource, problems, {
      counters,
      gauges: NO_GAUGES,
    });
  }
  // Reusable: a clean read made in the system's current still stretch (header comment).
  if (stretch < 0 || problems.length !== before) return false;
  p.someTotal = counters[p.names[0]];
  p.fullTotal = counters[p.names[1]];
  if (p.someTotal === undefined) return false;
  p.stretch = stretch;
  p.countdown = PSI_MAX_AGE;
  return false;
}
