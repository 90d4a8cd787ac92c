// A container's PSI files (cpu/io/memory.pressure) are 3 of the ≈ 8 cgroup files read per container
// per tick, ≈ 4.2–4.5 µs of kernel time each at 1 Hz on the development VM. Most of the time they
// cannot have changed, and the system-wide PSI file proves it: a task stalled in any cgroup is
// stalled in every ancestor, up to the root group that /proc/pressure/<resource> shows. So while
// the system's `some` total for a resource has not moved, no container's total for it has moved
// either, and a container whose averages read 0.00 still reads exactly what it read last time.
//
// The averages are the subtle part. The kernel folds stall time into avg10 at most every 2 s
// (PSI_FREQ), on its worker or on a read, so a container's avg10 can turn non-zero up to ≈ 2 s after
// its stall ended, with no further stall anywhere. A read is therefore only reused when it was
// made PSI_SETTLE_MS into a quiet stretch of the system total (every stall before the stretch already
// folded), and never when one of its avg10 values was above 0 (a decaying average changes every
// 2 s without any stall). A reused file is still read at least every PSI_MAX_AGE ticks.
//
// What a reuse can get wrong, and why it does not matter: a stall that begins between this tick's
// read of the system file and the container's own read is not seen this tick; the system total
// has moved by the next tick, so the container is read then and the stall is counted one tick
// late. Totals are cumulative, so nothing is lost.

import { KernelFile, sharedBuffer } from '../procfs/fileio.ts';
import { PSI_NAMES, parsePressure } from '../procfs/parsers.ts';
import { pressureBytes } from './bytes.ts';
import { PRESSURE_FILES, pressureNames } from './files.ts';

export type PsiResource = 'cpu' | 'io' | 'memory';
export const PSI_RESOURCES: readonly PsiResource[] = ['cpu', 'io', 'memory'];

/** How long the system total must have been still before a container's read can be reused (ms). */
export const PSI_SETTLE_MS = 5000;
/** A reused PSI file is read again at least every this many ticks. */
export const PSI_MAX_AGE = 10;

type PsiNames = readonly (readonly [string, string])[];

/** A container's PSI names per resource, from files.ts (parsePressure, the string fallback, writes the same: a test checks). */
const PSI_FILE_NAMES: Record<PsiResource, PsiNames> = {
  cpu: pressureNames(PRESSURE_FILES.cpu),
  io: pressureNames(PRESSURE_FILES.io),
  memory: pressureNames(PRESSURE_FILES.memory),
};

/** One container's PSI file and what its last read allows to reuse. */
export interface PsiFile {
  file: KernelFile;
  resource: PsiResource;
  names: PsiNames;
  /** The system's still stretch (SystemPressure.stretch) the last clean all-zero read was made in; -1: read next tick. */
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
  /** Per resource: the time of the first read that showed the current total (ms); -1: unknown (no reuse). */
  readonly quietSince: Record<PsiResource, number> = { cpu: -1, io: -1, memory: -1 };
  /** Per resource: which still stretch this is (+1 each time the total moves); -1: unknown. */
  readonly stretch: Record<PsiResource, number> = { cpu: -1, io: -1, memory: -1 };
  private stretches = 0;
  private readonly scratch = { counters: {} as Record<string, number>, gauges: {} as Record<string, number> };

  constructor(proc: string) {
    // single_open seq_files: one read(2) returns the whole file
    for (const r of PSI_RESOURCES) this.files[r] = new KernelFile(`${proc}/pressure/${r}`, true);
  }

  /** Reads the three files; any failure (no PSI, unreadable, garbage) turns reuse off for that resource this tick. */
  refresh(now: number): void {
    for (const r of PSI_RESOURCES) {
      const total = this.readSome(r);
      if (total === undefined) {
        this.quietSince[r] = this.stretch[r] = -1;
      } else if (total !== this.last[r] || this.stretch[r] < 0) {
        // A new stretch: its own id, since two ticks can fall in the same millisecond.
        this.quietSince[r] = now;
        this.stretch[r] = this.stretches++;
      }
      this.last[r] = total;
    }
  }

  private readSome(r: PsiResource): number | undefined {
    const f = this.files[r];
    if (!f) return undefined;
    const { counters, gauges } = this.scratch;
    const name = PSI_NAMES[r].some[0];
    delete counters[name];
    try {
      const len = f.readShared();
      if (!pressureBytes(sharedBuffer(), len, [PSI_NAMES[r].some, PSI_NAMES[r].full], counters, gauges)) {
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
 * Puts a container's PSI values into the sample, read from its file or reused (true). `read` reads
 * the file into sharedBuffer() and returns its length, or -1.
 */
export function readPsi(
  p: PsiFile,
  system: SystemPressure | undefined,
  now: number,
  read: (f: KernelFile) => number,
  counters: Record<string, number>,
  gauges: Record<string, number>,
  problems: string[],
): boolean {
  const stretch = system ? system.stretch[p.resource] : -1;
  if (p.stretch >= 0 && p.stretch === stretch && --p.countdown > 0) {
    // The file's own key order: some, then full.
    if (p.someTotal !== undefined) {
      counters[p.names[0]![0]] = p.someTotal;
      gauges[p.names[0]![1]] = 0;
    }
    if (p.fullTotal !== undefined) {
      counters[p.names[1]![0]] = p.fullTotal;
      gauges[p.names[1]![1]] = 0;
    }
    return true;
  }
  p.stretch = -1;
  const len = read(p.file);
  if (len < 0) return false;
  const before = problems.length;
  if (!pressureBytes(sharedBuffer(), len, p.names, counters, gauges)) {
    parsePressure(sharedBuffer().toString('latin1', 0, len), p.resource, problems, { counters, gauges });
  }
  // Reusable: a clean read, made settled into the system's quiet stretch, with both averages at 0.
  const quietSince = system ? system.quietSince[p.resource] : -1;
  if (stretch < 0 || now - quietSince < PSI_SETTLE_MS || problems.length !== before) return false;
  const [some, full] = p.names as [readonly [string, string], readonly [string, string]];
  const someAvg = gauges[some[1]];
  const fullAvg = gauges[full[1]];
  if ((someAvg !== undefined && someAvg !== 0) || (fullAvg !== undefined && fullAvg !== 0)) return false;
  p.someTotal = counters[some[0]];
  p.fullTotal = counters[full[0]];
  if (p.someTotal === undefined) return false;
  p.stretch = stretch;
  p.countdown = PSI_MAX_AGE;
  return false;
}
