// Shared by stack/qemu/capture-cgroup-v2.ts and capture-cgroup-v1.ts: reading files out of the test
// VM over its control port, the writer/CPU worker in /strata-capture, and the two snapshots
// (step0, step1, 1 s apart) written as a mirror rooted like the host (as testdata/capture.sh):
// proc/self/mountinfo, proc/<pid>/net/dev (first pid of each cgroup), sys/dev/block/*/uevent and
// every readable file of each captured cgroup in each hierarchy, sys/fs/cgroup/<hierarchy>/<cgroup>/*
// (v2: one hierarchy, /sys/fs/cgroup itself), plus the symlinks of /sys/fs/cgroup (v1: cpu, cpuacct).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestVm } from '../qemu.ts';

export const CAPTURE_CGROUP = 'strata-capture';
export const CAPTURED_CGROUPS = [CAPTURE_CGROUP, 'strata-test', 'strata-test/busy', 'strata-test/idle'];

/**
 * Reads the guest files the glob list matches with one guest command: the shell lists the regular
 * files ([ -f ] is a builtin) and one awk prints "=== <path> <bytes>\n<bytes>" per readable file,
 * so a step costs two processes, not two forks per file (≈ 20 ms each under TCG). Returns path →
 * contents. Kernel text files end with a newline; awk re-adds one after each line it read.
 */
export async function readGuestFiles(vm: TestVm, globs: string): Promise<Map<string, string>> {
  // At nice -20: the busy loop and the workers share the one vCPU with this shell, which would
  // otherwise get a quarter of it and spread one step's reads over seconds.
  const cmd =
    'renice -n -20 -p $$ >/dev/null 2>&1; ' +
    `for f in ${globs}; do [ -f "$f" ] && echo "$f"; done | ` +
    'awk \'{ f = $0; b = ""; while ((r = (getline l < f)) > 0) b = b l "\\n"; close(f); ' +
    'if (r == 0) printf "=== %s %d\\n%s", f, length(b), b }\'';
  const { code, output } = await vm.exec(cmd);
  if (code !== 0) throw new Error(`capture command failed (${code}): ${output.slice(0, 500)}`);
  const buf = Buffer.from(output, 'utf8');
  const files = new Map<string, string>();
  let p = 0;
  while (p < buf.length) {
    const nl = buf.indexOf(10, p);
    const m = /^=== (\S+)\s+(\d+)\s*$/.exec(buf.subarray(p, nl).toString('utf8'));
    if (!m) throw new Error(`unexpected capture output at ${p}: ${buf.subarray(p, p + 80).toString()}`);
    const len = Number(m[2]);
    files.set(m[1]!, buf.subarray(nl + 1, nl + 1 + len).toString('utf8'));
    p = nl + 1 + len;
  }
  return files;
}

/** The guest's cgroup hierarchy directories: its v1 mounts (fstype cgroup), or the cgroup2 mount. */
export async function guestHierarchies(vm: TestVm, fstype: 'cgroup' | 'cgroup2'): Promise<string[]> {
  const { code, output } = await vm.exec(`awk '$3=="${fstype}"{print $2}' /proc/mounts`);
  const dirs = output.split('\n').filter(Boolean);
  if (code !== 0 || dirs.length === 0) throw new Error(`no ${fstype} mount in the guest: ${output}`);
  return dirs;
}

/**
 * Starts the worker in /strata-capture of every hierarchy: direct 4 KiB writes to /dev/vda (200 per
 * dd) and a shell counting loop (CPU), forever, like testdata/capture.sh on the host.
 */
export async function startCaptureWorker(
  vm: TestVm,
  hierarchies: readonly string[],
  cgroup = CAPTURE_CGROUP,
): Promise<void> {
  const dirs = hierarchies.map((h) => `${h}/${cgroup}`);
  const worker =
    `mkdir -p ${dirs.join(' ')} && sh -c 'for d in ${dirs.join(' ')}; do echo $$ >$d/cgroup.procs; done; ` +
    'while :; do dd if=/dev/zero of=/dev/vda bs=4k count=200 oflag=direct 2>/dev/null; ' +
    "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done' >/dev/null 2>&1 </dev/null &";
  const w = await vm.exec(worker);
  if (w.code !== 0) throw new Error(`worker: ${w.output}`);
}

export interface SnapshotOptions {
  /** Cgroup paths below each hierarchy root; default CAPTURED_CGROUPS. */
  cgroups?: readonly string[];
  /** More guest files (a glob list) to copy, e.g. "/sys/block/vda/stat". */
  extraFiles?: string;
}

async function snapshot(
  vm: TestVm,
  dest: string,
  hierarchies: readonly string[],
  { cgroups = CAPTURED_CGROUPS, extraFiles = '' }: SnapshotOptions,
): Promise<void> {
  // One guest command for the cgroup files, so the step is as close to one moment as the guest allows.
  const cg = await readGuestFiles(
    vm,
    hierarchies.flatMap((h) => cgroups.map((c) => `${h}/${c}/*`)).join(' '),
  );
  const other = await readGuestFiles(vm, `/proc/self/mountinfo /sys/dev/block/*/uevent ${extraFiles}`);
  const pids = new Set<string>();
  for (const c of cgroups) {
    const first = cg.get(`${hierarchies[0]}/${c}/cgroup.procs`)?.split('\n')[0]?.trim();
    if (first) pids.add(first);
  }
  const net = pids.size
    ? await readGuestFiles(vm, [...pids].map((p) => `/proc/${p}/net/dev`).join(' '))
    : new Map<string, string>();
  for (const [p, text] of [...cg, ...other, ...net]) {
    const out = path.join(dest, p);
    await fs.mkdir(path.dirname(out), { recursive: true });
    await fs.writeFile(out, text);
  }
  // Symlinks directly under /sys/fs/cgroup ("cpu -> cpu,cpuacct" on v1), so the mirror looks the same.
  const { output } = await vm.exec(
    'for l in /sys/fs/cgroup/*; do [ -L "$l" ] && echo "$(basename "$l") $(readlink "$l")"; done; true',
  );
  for (const line of output.split('\n').filter(Boolean)) {
    const [name, target] = line.split(' ');
    await fs.symlink(target!, path.join(dest, 'sys/fs/cgroup', name!));
  }
}

/** Replaces `out` with step0 and, 1 s later, step1. */
export async function snapshotSteps(
  vm: TestVm,
  out: string,
  hierarchies: readonly string[],
  opts: SnapshotOptions = {},
): Promise<void> {
  await fs.rm(out, { recursive: true, force: true });
  for (const step of ['step0', 'step1']) {
    if (step === 'step1') await new Promise((r) => setTimeout(r, 1000));
    const t0 = performance.now();
    await snapshot(vm, path.join(out, step), hierarchies, opts);
    console.log(`${step}: read in ${Math.round(performance.now() - t0)} ms`);
  }
}
