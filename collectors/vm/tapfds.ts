// Tap devices a QEMU process holds as file descriptors, from the kernel's side: however the tap
// was opened (QEMU itself with ifname=, or libvirt/another manager passing `fd=N`), each queue is
// an fd on /dev/net/tun whose fdinfo names the interface. Read once per PID lookup, not per tick:
// one readdir of /proc/PID/fd, one readlink per fd, one fdinfo read per tun fd.
import fs from 'node:fs/promises';
import { errorCode } from '../../lib/errors.ts';
import { parseTunFdinfo } from './parsers.ts';

export interface TunFdScan {
  /** Interface names, deduplicated (a multiqueue tap has one fd per queue), in fd order. */
  taps: string[];
  /** Fds looked at (readlink calls). */
  fds: number;
  /** Of those, fds on /dev/net/tun. */
  tunFds: number;
}

/**
 * Scans `${proc}/${pid}/fd`. Throws when the directory cannot be listed (not root, hidepid, another
 * user's process, the process gone): the caller falls back to the command line's names. An fd
 * closed between the listing and its readlink/fdinfo read is skipped.
 */
export async function tunFdTaps(proc: string, pid: number): Promise<TunFdScan> {
  const dir = `${proc}/${pid}/fd`;
  const names = await fs.readdir(dir);
  const taps = new Set<string>();
  let tunFds = 0;
  for (const fd of names) {
    let target: string;
    try {
      target = await fs.readlink(`${dir}/${fd}`);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') continue;
      throw err;
    }
    if (target !== '/dev/net/tun') continue;
    tunFds++;
    let info: string;
    try {
      info = await fs.readFile(`${proc}/${pid}/fdinfo/${fd}`, 'latin1');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') continue;
      throw err;
    }
    const name = parseTunFdinfo(info);
    if (name) taps.add(name);
  }
  return { taps: [...taps], fds: names.length, tunFds };
}
