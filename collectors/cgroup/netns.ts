// A container's interfaces: /proc/PID/net/dev of one of its processes, read in its own network
// namespace. Which pid, whether the namespace is the host's (then its interfaces are the host's,
// reported by the host layer), and which containers share one namespace are decided here, at
// discovery (and again when the chosen pid exits).
import { existsSync, statSync } from 'node:fs';
import { isGone, KernelFile, readOnce } from '../procfs/fileio.ts';
import type { Target } from './target.ts';

/** A network namespace's identity: the inode (and nsfs device) of its /proc/PID/ns/net. */
export interface NetnsId {
  ino: number;
  dev: number;
}

function netnsIdentity(path: string): NetnsId | undefined {
  try {
    const st = statSync(path);
    return { ino: st.ino, dev: st.dev };
  } catch {
    return undefined;
  }
}

/**
 * The network namespace that counts as "the host's" (a container in it has no interfaces of its
 * own: they are the host's, reported by the host layer). In order:
 *  1. HOST_PROC/1/ns/net, the host's init, when readable;
 *  2. else the agent's own, HOST_PROC/self/ns/net: /proc/1/ns/net is often unreadable (a
 *     restricted PID 1, a user namespace, this development VM), and the agent runs in the host's
 *     network namespace (natively, or in a container with host networking, as deploy/ does).
 *     HOST_PROC/self exists when HOST_PROC is the host's /proc seen from the agent's own PID
 *     namespace (the default /proc, or a mounted host /proc with hostPID);
 *  3. else unknown (e.g. a captured tree): every container's /proc/PID/net/dev is read.
 * Compared by inode and st_dev (the nsfs device), from stat, never by readlink text.
 */
export function hostNetnsIdentity(proc: string): NetnsId | undefined {
  return netnsIdentity(`${proc}/1/ns/net`) ?? netnsIdentity(`${proc}/self/ns/net`);
}

/** Picks the first live pid of the cgroup and opens its /proc/PID/net/dev (own netns only). */
export function openNetdev(t: Target, proc: string, hostNetns: NetnsId | undefined): void {
  t.netdev?.close();
  t.netdev = undefined;
  let procs: string;
  try {
    procs = readOnce(`${t.primaryDir}/cgroup.procs`);
  } catch {
    return;
  }
  for (const line of procs.split('\n')) {
    const pid = line.trim();
    if (!pid) continue;
    const base = `${proc}/${pid}`;
    if (hostNetns !== undefined) {
      let ns: NetnsId | undefined;
      try {
        const st = statSync(`${base}/ns/net`);
        ns = { ino: st.ino, dev: st.dev };
      } catch (err) {
        if (isGone(err)) continue; // that pid just exited: try the next
        // unreadable (EACCES): cannot tell, read its net/dev as when the host's netns is unknown
      }
      if (ns && ns.ino === hostNetns.ino && ns.dev === hostNetns.dev) {
        t.ownNetns = false; // host networking: its interfaces are the host's, reported there
        t.netnsKey = undefined;
        return;
      }
      t.netnsKey = ns ? `${ns.dev}:${ns.ino}` : undefined;
    }
    if (existsSync(`${base}/net/dev`)) {
      t.ownNetns = true;
      t.netdev = new KernelFile(`${base}/net/dev`);
      return;
    }
  }
}

/**
 * Containers that share one network namespace (the containers of a Kubernetes pod, which all
 * join the pod sandbox's; `docker run --network container:X`) would each report the same
 * interfaces: summed per node or per pod, the traffic would count once per container. The
 * namespace's interfaces are read and reported once, by the first container of the group in
 * cgroup path order (stable across ticks); the others report none and carry the label
 * `netns_shared_with` = that container's cgroup path. One /proc/PID/net/dev read per namespace
 * per tick instead of one per container. Regrouped at every discovery (a vanished reporter makes
 * the next tick rescan). `reopen` opens the net/dev of a container that reports again.
 */
export function groupSharedNetns(targets: Iterable<Target>, reopen: ((t: Target) => void) | undefined): void {
  const reporter = new Map<string, Target>();
  const sorted = [...targets].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const t of sorted) {
    const key = t.netnsKey;
    const first = key === undefined ? undefined : reporter.get(key);
    if (key === undefined || first === undefined) {
      if (key !== undefined) reporter.set(key, t);
      if (t.labels.netns_shared_with !== undefined) {
        // It reports its namespace again (the former reporter went away): reopen its net/dev.
        delete t.labels.netns_shared_with;
        reopen?.(t);
      }
      continue;
    }
    t.netdev?.close();
    t.netdev = undefined;
    t.labels.netns_shared_with = first.path;
  }
}
