// Finding QMP sockets and the QEMU process behind each one.
import fs from 'node:fs/promises';
import path from 'node:path';
import { globToRegExp } from '../procfs/glob.ts';

/** Expands a path glob (`*`, `?`, `[..]` within a segment) against the filesystem; sockets only. */
export async function expandSocketGlob(pattern: string): Promise<string[]> {
  const abs = path.resolve(pattern);
  const segments = abs.split('/').filter(Boolean);
  let dirs = ['/'];
  for (const seg of segments) {
    const next: string[] = [];
    const wild = /[*?[]/.test(seg);
    for (const dir of dirs) {
      if (!wild) {
        next.push(path.join(dir, seg));
        continue;
      }
      const re = globToRegExp(seg);
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch {
        continue; // directory absent on this host (no libvirt, no Proxmox): nothing to find
      }
      for (const n of names) if (re.test(n)) next.push(path.join(dir, n));
    }
    dirs = next;
  }
  const out: string[] = [];
  for (const p of dirs) {
    try {
      if ((await fs.stat(p)).isSocket()) out.push(p);
    } catch {}
  }
  return out.sort();
}

export async function discoverQmpSockets(patterns: readonly string[]): Promise<string[]> {
  const all = await Promise.all(patterns.map(expandSocketGlob));
  return [...new Set(all.flat())].sort();
}

/**
 * The PID of the QEMU process serving `socket`, tried in order:
 * 1. a pid file beside it (`<dir>/<base>.pid`: Proxmox's /var/run/qemu-server/<vmid>.pid);
 * 2. libvirt's /run/libvirt/qemu/<name>.pid for /var/lib/libvirt/qemu/domain-<n>-<name>/monitor.sock
 *    (libvirt passes the monitor as an fd, so the path is not on the command line);
 * 3. the process whose /proc/PID/cmdline names the socket path.
 */
export async function findQemuPid(socket: string, proc: string): Promise<number | undefined> {
  const dir = path.dirname(socket);
  const base = path.basename(socket).replace(/\.[^.]+$/, '');
  const candidates = [path.join(dir, `${base}.pid`)];
  const libvirt = /\/domain-\d+-(.+)$/.exec(dir);
  if (libvirt) candidates.push(`/run/libvirt/qemu/${libvirt[1]}.pid`);
  for (const file of candidates) {
    try {
      const pid = Number((await fs.readFile(file, 'utf8')).trim());
      if (Number.isInteger(pid) && pid > 0 && (await isAlive(proc, pid))) return pid;
    } catch {}
  }
  return scanCmdlines(socket, proc);
}

async function isAlive(proc: string, pid: number): Promise<boolean> {
  try {
    await fs.access(`${proc}/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/** Reads every /proc/PID/cmdline once; called only when a new VM appears or its PID went away. */
export async function scanCmdlines(needle: string, proc: string): Promise<number | undefined> {
  let entries: string[];
  try {
    entries = await fs.readdir(proc);
  } catch {
    return undefined;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = await fs.readFile(`${proc}/${e}/cmdline`, 'latin1');
      if (!cmd.includes('qemu') && !cmd.includes('kvm')) continue;
      // The path appears as an argument or inside one ("unix:/x/qmp.sock,server=on").
      if (cmd.split('\0').some((arg) => arg === needle || hasPath(arg, needle))) return Number(e);
    } catch {}
  }
  return undefined;
}

function hasPath(arg: string, p: string): boolean {
  const i = arg.indexOf(p);
  if (i < 0) return false;
  const before = i === 0 ? '' : arg[i - 1];
  const after = arg[i + p.length] ?? '';
  return (before === '' || before === ':' || before === '=') && (after === '' || after === ',');
}
