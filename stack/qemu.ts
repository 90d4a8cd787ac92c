// strata's test VM: a real QEMU guest (Debian cloud kernel + busybox-static initramfs running the
// in-guest agent) that integration tests and `strata bench` boot to measure the vm and guest layers.
//
// Assets are built once into ~/.cache/strata/qemu (STRATA_CACHE_DIR overrides ~/.cache/strata):
//   kernel-<package>/vmlinuz + modules/*.ko   from `apt-get download linux-image-<ver>-cloud-amd64`
//   initramfs-<hash>.cpio.gz                  busybox + stack/qemu/init.sh + the guest agent + modules
// The initramfs name carries a hash of its inputs, so editing init.sh or the agent rebuilds it.
// See docs/vm.md for the recipe and the QEMU command line.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConnectionError, MissingPrerequisiteError, StrataError } from '../lib/errors.ts';
import { componentLogger } from '../lib/log.ts';

const execFileP = promisify(execFile);
const log = componentLogger('stack.qemu');
const here = path.dirname(fileURLToPath(import.meta.url));
const INIT_SCRIPT = path.join(here, 'qemu', 'init.sh');
const AGENT_SCRIPT = path.join(here, '..', 'collectors', 'guest', 'strata-guest-agent.sh');

/** Loaded in this order by /init: virtio_ring before virtio, the PCI transport before the drivers. */
export const GUEST_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'virtio_console',
  'virtio_blk',
  'virtio_balloon',
  // virtio_net needs the failover pair first (its modinfo depends=virtio_ring,virtio,net_failover).
  'failover',
  'net_failover',
  'virtio_net',
] as const;

const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';

export interface TestVmAssets {
  kernel: string;
  initramfs: string;
  /** The kernel package the assets came from, e.g. linux-image-6.1.0-56-cloud-amd64. */
  kernelPackage: string;
}

export function qemuCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.STRATA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'strata');
  return path.join(base, 'qemu');
}

async function which(cmd: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, cmd);
    try {
      await fs.access(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

async function requireTool(cmd: string, pkg: string): Promise<string> {
  const found = await which(cmd);
  if (!found) {
    throw new MissingPrerequisiteError(
      `${cmd} not found in PATH (${process.env.PATH}); install the Debian package ${pkg} ` +
        `(bash stack/install-apt.sh installs everything the stack needs)`,
    );
  }
  return found;
}

/** A statically linked busybox: the initramfs has no libc. */
async function findStaticBusybox(): Promise<string> {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox']) {
    try {
      const head = await fs.readFile(candidate);
      if (!isDynamicElf(head)) return candidate;
    } catch {}
  }
  throw new MissingPrerequisiteError(
    'no statically linked busybox at /bin/busybox or /usr/bin/busybox; install busybox-static ' +
      '(apt-get install busybox-static, or bash stack/install-apt.sh)',
  );
}

/** True when the ELF has a PT_INTERP program header (needs a dynamic loader). */
function isDynamicElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return true;
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) break;
    if (buf.readUInt32LE(off) === 3) return true; // PT_INTERP
  }
  return false;
}

/** The concrete kernel package the cloud meta-package currently depends on. */
async function resolveKernelPackage(): Promise<string> {
  const lookup = async () => {
    try {
      const { stdout } = await execFileP('apt-cache', ['depends', KERNEL_META_PACKAGE]);
      return /Depends:\s*(linux-image-[\w.+-]+-cloud-amd64)\b/.exec(stdout)?.[1];
    } catch {
      return undefined;
    }
  };
  let pkg = await lookup();
  if (!pkg && process.getuid?.() === 0) {
    log.info('apt-cache does not know the cloud kernel; running apt-get update');
    await execFileP('apt-get', ['update', '-qq']);
    pkg = await lookup();
  }
  if (!pkg) {
    throw new MissingPrerequisiteError(
      `apt-cache depends ${KERNEL_META_PACKAGE} named no kernel package; run apt-get update ` +
        '(needs a Debian bookworm-or-later apt source), or set STRATA_VM_KERNEL_PACKAGE to e.g. ' +
        'linux-image-6.1.0-56-cloud-amd64',
    );
  }
  return pkg;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

async function fetchKernel(cacheDir: string, pkg: string): Promise<string> {
  const dir = path.join(cacheDir, `kernel-${pkg}`);
  const complete = async () => {
    for (const f of ['vmlinuz', ...GUEST_MODULES.map((m) => `modules/${m}.ko`)]) {
      if (!(await exists(path.join(dir, f)))) return false;
    }
    return true;
  };
  if (await complete()) return dir;
  // A cache from an older module list: extract again.
  await fs.rm(dir, { recursive: true, force: true });
  await requireTool('apt-get', 'apt');
  await requireTool('dpkg', 'dpkg');
  const work = await fs.mkdtemp(path.join(cacheDir, '.kernel-'));
  try {
    log.info({ pkg, work }, 'downloading the test VM kernel');
    await execFileP('apt-get', ['download', pkg], { cwd: work });
    const deb = (await fs.readdir(work)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new MissingPrerequisiteError(`apt-get download ${pkg} produced no .deb in ${work}`);
    await execFileP('dpkg', ['-x', deb, 'x'], { cwd: work });
    const boot = path.join(work, 'x', 'boot');
    const vmlinuz = (await fs.readdir(boot)).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new StrataError(`${pkg} has no /boot/vmlinuz-*`);
    const stage = path.join(work, 'out');
    await fs.mkdir(path.join(stage, 'modules'), { recursive: true });
    await fs.copyFile(path.join(boot, vmlinuz), path.join(stage, 'vmlinuz'));
    const modRoot = path.join(work, 'x', 'lib', 'modules');
    const kos = await findFiles(modRoot, (f) => /\.ko(\.xz|\.zst)?$/.test(f));
    for (const mod of GUEST_MODULES) {
      const src = kos.find((f) => path.basename(f).replace(/\.ko(\.xz|\.zst)?$/, '') === mod);
      if (!src) throw new StrataError(`${pkg} has no module ${mod}.ko(.xz|.zst) under lib/modules`);
      const dst = path.join(stage, 'modules', `${mod}.ko`);
      if (src.endsWith('.xz')) {
        await execFileP('sh', ['-c', 'xz -dc "$1" > "$2"', 'sh', src, dst]);
      } else if (src.endsWith('.zst')) {
        await execFileP('sh', ['-c', 'zstd -qdc "$1" > "$2"', 'sh', src, dst]);
      } else {
        await fs.copyFile(src, dst);
      }
    }
    await fs.rename(stage, dir).catch(async (err) => {
      if (!(await complete())) throw err; // else another process won the race
    });
    return dir;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

async function findFiles(root: string, match: (f: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (match(e.name)) out.push(p);
    }
  };
  await walk(root);
  return out;
}

async function buildInitramfs(cacheDir: string, kernelDir: string, pkg: string): Promise<string> {
  const busybox = await findStaticBusybox();
  await requireTool('cpio', 'cpio');
  const [init, agent, bb] = await Promise.all([
    fs.readFile(INIT_SCRIPT),
    fs.readFile(AGENT_SCRIPT),
    fs.readFile(busybox),
  ]);
  const hash = createHash('sha256')
    .update(init)
    .update(agent)
    .update(bb)
    .update(pkg)
    .update(GUEST_MODULES.join(','))
    .digest('hex');
  const out = path.join(cacheDir, `initramfs-${hash.slice(0, 16)}.cpio.gz`);
  if (await exists(out)) return out;
  const work = await fs.mkdtemp(path.join(cacheDir, '.initramfs-'));
  try {
    const root = path.join(work, 'root');
    for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib/modules']) {
      await fs.mkdir(path.join(root, d), { recursive: true });
    }
    await fs.writeFile(path.join(root, 'bin', 'busybox'), bb, { mode: 0o755 });
    await fs.writeFile(path.join(root, 'init'), init, { mode: 0o755 });
    await fs.writeFile(path.join(root, 'strata-guest-agent.sh'), agent, { mode: 0o755 });
    for (const mod of GUEST_MODULES) {
      await fs.copyFile(
        path.join(kernelDir, 'modules', `${mod}.ko`),
        path.join(root, 'lib/modules', `${mod}.ko`),
      );
    }
    await fs.writeFile(path.join(root, 'lib/modules/order'), `${GUEST_MODULES.join('\n')}\n`);
    const tmpOut = path.join(work, 'initramfs.cpio.gz');
    await execFileP('sh', [
      '-c',
      'cd "$1" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -6 > "$2"',
      'sh',
      root,
      tmpOut,
    ]);
    await fs.rename(tmpOut, out);
    log.info({ initramfs: out }, 'built the test VM initramfs');
    return out;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Downloads the kernel and builds the initramfs once; later calls return the cached files. */
export async function ensureTestVmAssets(
  opts: { cacheDir?: string; kernelPackage?: string } = {},
): Promise<TestVmAssets> {
  const cacheDir = opts.cacheDir ?? qemuCacheDir();
  await fs.mkdir(cacheDir, { recursive: true });
  let pkg = opts.kernelPackage ?? process.env.STRATA_VM_KERNEL_PACKAGE;
  if (!pkg) {
    // Reuse any kernel already in the cache before asking apt (works offline).
    const cached = (await fs.readdir(cacheDir)).filter((d) => d.startsWith('kernel-')).sort();
    pkg = cached.length ? cached[cached.length - 1]!.slice('kernel-'.length) : await resolveKernelPackage();
  }
  const kernelDir = await fetchKernel(cacheDir, pkg);
  const initramfs = await buildInitramfs(cacheDir, kernelDir, pkg);
  return { kernel: path.join(kernelDir, 'vmlinuz'), initramfs, kernelPackage: pkg };
}

export interface TestVmOptions {
  /** Guest RAM; keep it small on shared machines. */
  memoryMb?: number;
  /** vCPUs. */
  cpus?: number;
  /** QMP socket path (a unix socket QEMU listens on). */
  qmpSocket: string;
  /** Host end of the virtio-serial port `strata.agent` (the in-guest agent writes records to it). */
  agentSocket: string;
  /** Host end of the control port `strata.ctl` (commands run inside the guest); default beside agentSocket. */
  ctlSocket?: string;
  /** Raw disk image for virtio-blk; default: a sparse file of diskMb made with truncate in workDir. */
  diskImage?: string;
  diskMb?: number;
  /** Where the default disk and serial log go; default a fresh dir under the OS temp dir. */
  workDir?: string;
  /** QEMU -name. */
  name?: string;
  /** QEMU -uuid (the vm collector uses it as the VM id when non-zero). */
  uuid?: string;
  /** tcg by default: /dev/kvm on the dev machines is nested KVM, which does not boot stock kernels (docs/vm.md). */
  accel?: 'tcg' | 'kvm';
  /**
   * Host tap device to create and attach as a virtio-net NIC (eth0 in the guest). Needs
   * CAP_NET_ADMIN; QEMU creates the tap (-netdev tap,ifname=...,script=no). The vm collector finds
   * it by that ifname on the command line.
   */
  tap?: string;
  /**
   * With `tap`: open the tap the way libvirt does instead. A python3 wrapper opens /dev/net/tun,
   * TUNSETIFF(tap, IFF_TAP|IFF_NO_PI), brings the link up, and execs QEMU (same pid) with the fd
   * inherited: `-netdev {"type":"tap","id":"net0","fd":"N"}`, no ifname on the command line. The tap
   * is not persistent: it goes away with QEMU. `args` then shows the fd as @TAPFD@.
   */
  tapFd?: boolean;
  /** The in-guest agent's interval in seconds. */
  agentIntervalS?: number;
  /**
   * Start a busy loop in the guest's cgroup /strata-test/busy at boot (kernel argument
   * strata.cgbusy=1); default: a sleeping process there, like in /strata-test/idle.
   */
  cgroupBusyLoop?: boolean;
  /**
   * Pure cgroup v1 instead of v2 (kernel argument strata.cgv1=1): /init mounts a tmpfs on
   * /sys/fs/cgroup and the cpu,cpuacct, memory, blkio and pids hierarchies, no cgroup2.
   */
  cgroupV1?: boolean;
  /** Wait until the guest's /init reports ready (default true). */
  waitReady?: boolean;
  bootTimeoutMs?: number;
  extraArgs?: string[];
  assets?: TestVmAssets;
}

export interface TestVm {
  pid: number;
  qmpSocket: string;
  agentSocket: string;
  ctlSocket: string;
  diskImage: string;
  serialLog: string;
  accel: 'tcg' | 'kvm';
  args: string[];
  /** From spawn to "strata-init: ready" on the serial console, when waited for. */
  bootMs?: number;
  waitReady(timeoutMs?: number): Promise<number>;
  /** Runs one shell command line inside the guest; resolves with its exit status and output. */
  exec(command: string, opts?: { timeoutMs?: number }): Promise<{ code: number; output: string }>;
  /** SIGTERM, then SIGKILL after 3 s; safe to call twice. */
  stop(): Promise<void>;
}

/** argv: tap, ip, qemu, qemu args...; opens the tap, sets it up, execs QEMU with the fd (@TAPFD@). */
const TAP_FD_WRAPPER = `
import fcntl, os, struct, subprocess, sys
tap, ip, qemu, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454CA, struct.pack('16sH', tap.encode(), 0x0002 | 0x1000))
subprocess.run([ip, 'link', 'set', 'dev', tap, 'up'], check=True)
os.set_inheritable(fd, True)
os.execv(qemu, [qemu] + [a.replace('@TAPFD@', str(fd)) for a in args])
`;

const live = new Set<number>();
let exitHookInstalled = false;
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of live) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  });
}

export async function startTestVm(opts: TestVmOptions): Promise<TestVm> {
  const qemu = await requireTool('qemu-system-x86_64', 'qemu-system-x86');
  const assets = opts.assets ?? (await ensureTestVmAssets());
  const workDir = opts.workDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'strata-vm-')));
  await fs.mkdir(workDir, { recursive: true });
  const diskImage = opts.diskImage ?? path.join(workDir, 'disk.raw');
  if (!opts.diskImage) {
    const fh = await fs.open(diskImage, 'w');
    await fh.truncate((opts.diskMb ?? 64) * 1024 * 1024);
    await fh.close();
  }
  const serialLog = path.join(workDir, 'serial.log');
  // QEMU appends to an existing file: a "ready" line left by an earlier boot in the same workDir
  // would make waitReady() return before this guest has booted.
  await fs.rm(serialLog, { force: true });
  const ctlSocket = opts.ctlSocket ?? opts.agentSocket.replace(/(\.sock)?$/, '.ctl.sock');
  for (const s of [opts.qmpSocket, opts.agentSocket, ctlSocket]) {
    await fs.mkdir(path.dirname(s), { recursive: true });
    await fs.rm(s, { force: true });
  }
  const accel = opts.accel ?? 'tcg';
  const interval = opts.agentIntervalS ?? 1;
  const args = [
    ...(opts.name ? ['-name', opts.name] : []),
    ...(opts.uuid ? ['-uuid', opts.uuid] : []),
    '-accel',
    accel,
    '-m',
    String(opts.memoryMb ?? 192),
    '-smp',
    String(opts.cpus ?? 1),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-serial',
    `file:${serialLog}`,
    '-kernel',
    assets.kernel,
    '-initrd',
    assets.initramfs,
    '-append',
    `console=ttyS0 panic=-1 quiet strata.interval=${interval}${opts.cgroupBusyLoop ? ' strata.cgbusy=1' : ''}${opts.cgroupV1 ? ' strata.cgv1=1' : ''}`,
    '-qmp',
    `unix:${opts.qmpSocket},server=on,wait=off`,
    '-device',
    'virtio-serial-pci,id=vser0',
    '-chardev',
    `socket,id=ag,path=${opts.agentSocket},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=ag,name=strata.agent',
    '-chardev',
    `socket,id=ctl,path=${ctlSocket},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=ctl,name=strata.ctl',
    '-drive',
    `file=${diskImage},format=raw,if=none,id=disk0`,
    '-device',
    'virtio-blk-pci,drive=disk0,id=vd0',
    '-device',
    'virtio-balloon-pci,id=balloon0',
    ...(opts.tap
      ? [
          '-netdev',
          opts.tapFd
            ? '{"type":"tap","id":"net0","fd":"@TAPFD@"}'
            : `tap,id=net0,ifname=${opts.tap},script=no,downscript=no`,
          '-device',
          'virtio-net-pci,netdev=net0,id=nic0',
        ]
      : []),
    ...(opts.extraArgs ?? []),
  ];
  const child =
    opts.tap && opts.tapFd
      ? spawn(
          await requireTool('python3', 'python3'),
          ['-c', TAP_FD_WRAPPER, opts.tap, await requireTool('ip', 'iproute2'), qemu, ...args],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        )
      : spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  let exited: { code: number | null; signal: string | null } | undefined;
  const exitPromise = once(child, 'exit').then(([code, signal]) => {
    exited = { code, signal };
    if (child.pid) live.delete(child.pid);
  });
  await Promise.race([once(child, 'spawn'), exitPromise]);
  if (!child.pid || exited) {
    throw new StrataError(`qemu-system-x86_64 failed to start: ${stderr.trim() || JSON.stringify(exited)}`);
  }
  const pid = child.pid;
  live.add(pid);
  killAllOnExit();
  const started = Date.now();
  log.info({ pid, accel, qmpSocket: opts.qmpSocket, serialLog }, 'test VM started');

  let ctl: CtlClient | undefined;
  const vm: TestVm = {
    pid,
    qmpSocket: opts.qmpSocket,
    agentSocket: opts.agentSocket,
    ctlSocket,
    diskImage,
    serialLog,
    accel,
    args,
    async waitReady(timeoutMs = opts.bootTimeoutMs ?? 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (exited) {
          throw new StrataError(
            `test VM exited during boot (${JSON.stringify(exited)}): ${stderr.trim()}; serial log ${serialLog}`,
          );
        }
        const text = await fs.readFile(serialLog, 'utf8').catch(() => '');
        if (text.includes('strata-init: ready')) return Date.now() - started;
        if (Date.now() > deadline) {
          throw new StrataError(
            `test VM not ready after ${timeoutMs} ms (no "strata-init: ready" in ${serialLog}); last console lines:\n` +
              text.split('\n').slice(-15).join('\n'),
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async exec(command, execOpts = {}) {
      if (exited) throw new StrataError(`test VM ${pid} is not running`);
      ctl ??= new CtlClient(ctlSocket);
      return ctl.exec(command, execOpts.timeoutMs ?? 60_000);
    },
    async stop() {
      ctl?.close();
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exitPromise;
        clearTimeout(timer);
      }
      await fs.rm(opts.qmpSocket, { force: true });
      await fs.rm(opts.agentSocket, { force: true });
      await fs.rm(ctlSocket, { force: true });
    },
  };
  if (opts.waitReady ?? true) {
    try {
      vm.bootMs = await vm.waitReady();
    } catch (err) {
      await vm.stop();
      throw err;
    }
  }
  return vm;
}

/** The host end of the test VM's control port (protocol in stack/qemu/init.sh). One command at a time. */
class CtlClient {
  private sock: net.Socket | undefined;
  private buf = Buffer.alloc(0);
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private waiter: (() => void) | undefined;

  constructor(private readonly socketPath: string) {}

  private async connect(): Promise<net.Socket> {
    if (this.sock && !this.sock.destroyed) return this.sock;
    const sock = net.createConnection(this.socketPath);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', (err) =>
        reject(
          new ConnectionError(`test VM control socket ${this.socketPath}: ${err.message}`, { cause: err }),
        ),
      );
    });
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    sock.on('error', () => {});
    sock.on('close', () => this.waiter?.());
    this.sock = sock;
    return sock;
  }

  exec(command: string, timeoutMs: number): Promise<{ code: number; output: string }> {
    if (command.includes('\n')) throw new StrataError('test VM commands are one line (use ; or &&)');
    const run = this.chain.then(() => this.run(command, timeoutMs));
    this.chain = run.catch(() => {});
    return run;
  }

  private async run(command: string, timeoutMs: number): Promise<{ code: number; output: string }> {
    const sock = await this.connect();
    const id = `c${++this.seq}`;
    sock.write(`${id} ${command}\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.buf.toString('latin1');
      const m = new RegExp(`STRATA-DONE ${id} (\\d+) (\\d+)\\n`).exec(text);
      if (m) {
        const start = m.index + m[0].length;
        const len = Number(m[2]);
        if (this.buf.length >= start + len) {
          const output = this.buf.subarray(start, start + len).toString('utf8');
          this.buf = this.buf.subarray(start + len);
          return { code: Number(m[1]), output };
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || sock.destroyed) {
        throw new StrataError(
          `command "${command}" in the test VM did not finish within ${timeoutMs} ms` +
            (sock.destroyed ? ' (control socket closed)' : ''),
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.sock?.destroy();
  }
}
