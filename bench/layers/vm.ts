// Layer `vm`: the workload inside the project's test VM (stack/qemu.ts: a Debian cloud kernel and a
// busybox-static initramfs under QEMU). The guest has no libc, so the bench bundles the host's
// workload binaries with every shared library `ldd` names and the dynamic loader into a tar file,
// attaches it as the VM's first virtio disk (/dev/vda) and unpacks it in the guest with busybox tar;
// each tool runs as `ld-linux --library-path /w/lib /w/real/<tool>`. A second virtio disk (/dev/vdb,
// a preallocated raw file on the same host disk as the native layer's files, cache=none so the
// host page cache does not serve it) is what the I/O workloads read.
// Network workloads: the guest's eth0 is virtio-net on a tap device the bench configures (host .1,
// guest .2 of a private /24; needs root), or QEMU user networking with one port forwarded from
// 127.0.0.1 (--vm-net user; slow, and it stalls under 50 concurrent connections here). Servers run in
// the guest, the client on the host, as for containers.
// CPU: the QEMU process's utime+stime (/proc/PID/stat) is the host's cost of the whole VM; the guest's
// own accounting of the workload (wrapper shell cutime+cstime inside the guest) is reported beside it.
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../../lib/errors.ts';
import { componentLogger } from '../../lib/log.ts';
import type { WorkloadCase } from '../workloads/index.ts';
import {
  freePort,
  pidCpuUsec,
  runProcess,
  sharedLibraries,
  shellQuote,
  takeStatMarker,
  which,
} from './common.ts';
import { type CounterProbe, vmCollectorProbe } from './probe.ts';
import { type BenchLayer, type CaseSession, LayerUnavailableError } from './types.ts';

const log = componentLogger('bench.vm');

export interface VmLayerOptions {
  accel: 'tcg' | 'kvm' | 'auto';
  /** Guest network for client-server workloads: a tap device (needs root) or QEMU user networking. */
  net: 'tap' | 'user';
  memoryMb: number;
  /** Working directory (bundle, disks, sockets): on the host disk, not tmpfs (cache=none needs O_DIRECT). */
  workDir: string;
  ioSizeMb: number;
  tools: Map<string, string>;
}

type TestVm = Awaited<ReturnType<typeof import('../../stack/qemu.ts')['startTestVm']>>;

export class VmLayer implements BenchLayer {
  readonly name = 'vm' as const;
  readonly info: Record<string, string> = {};
  private vm: TestVm | undefined;
  private probe: CounterProbe | undefined;
  /** Host port forwarded (QEMU user networking) to GUEST_PORT in the guest, when the guest has a network. */
  private hostPort: number | undefined;
  /** tap mode: the host tap device and the /24 (host .1, guest .2) on it. */
  private tap: { name: string; net: string } | undefined;
  /** Why network workloads cannot run in the guest (set during setup), if so. */
  private netError: string | undefined;
  /** Why servers that keep data (oltp) cannot run: no filesystem on the guest's I/O disk. */
  private dataError: string | undefined;

  constructor(private readonly opts: VmLayerOptions) {}

  private unavailable(reason: string): never {
    throw new LayerUnavailableError('vm', reason);
  }

  async setup(cases: readonly WorkloadCase[]): Promise<void> {
    if (!(await which('qemu-system-x86_64'))) {
      this.unavailable('qemu-system-x86_64 is not on PATH; install it with: apt-get install qemu-system-x86');
    }
    let qemu: typeof import('../../stack/qemu.ts');
    try {
      qemu = await import('../../stack/qemu.ts');
    } catch (err) {
      this.unavailable(`the test-VM builder stack/qemu.ts does not load: ${errorMessage(err)}`);
    }
    await fs.mkdir(this.opts.workDir, { recursive: true });
    const wantNet = cases.some((c) => c.kind === 'client-server');
    let assetsEarly: Awaited<ReturnType<typeof qemu.ensureTestVmAssets>> | undefined;
    let netModules: string[] = [];
    if (wantNet) {
      try {
        assetsEarly = await qemu.ensureTestVmAssets();
        // Newer test-VM builders load virtio_net themselves; older ones need the modules bundled.
        if (!(qemu.GUEST_MODULES as readonly string[]).includes('virtio_net')) {
          netModules = await fetchNetModules(assetsEarly.kernelPackage);
        }
        if (this.opts.net === 'tap') {
          this.tap = { name: `sbench${randomBytes(3).toString('hex')}`, net: `10.213.${1 + randomInt(253)}` };
        } else this.hostPort = await freePort();
      } catch (err) {
        this.netError = `could not get the guest's virtio-net modules: ${errorMessage(err).slice(0, 300)}`;
      }
    }
    const bundle = await this.buildBundle(cases, netModules);
    const ioDisk = path.join(this.opts.workDir, 'vm-io.raw');
    await preallocate(ioDisk, this.opts.ioSizeMb);
    let assets: Awaited<ReturnType<typeof qemu.ensureTestVmAssets>>;
    try {
      assets = assetsEarly ?? (await qemu.ensureTestVmAssets());
    } catch (err) {
      this.unavailable(`cannot build the test VM's kernel and initramfs: ${errorMessage(err)}`);
    }
    const kvmUsable = await fs
      .access('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK)
      .then(() => true)
      .catch(() => false);
    if (this.opts.accel === 'kvm' && !kvmUsable) {
      this.unavailable(
        '--vm-accel kvm, but /dev/kvm is missing or not read-writable (use --vm-accel tcg or auto)',
      );
    }
    const tries: ('kvm' | 'tcg')[] =
      this.opts.accel === 'auto' ? (kvmUsable ? ['kvm', 'tcg'] : ['tcg']) : [this.opts.accel];
    if (this.opts.accel === 'auto' && !kvmUsable) this.info.kvm = 'no usable /dev/kvm';
    for (const accel of tries) {
      const dir = path.join(this.opts.workDir, `vm-${accel}`);
      // Fresh: a serial.log left from an earlier boot would read as "ready" at once.
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true });
      try {
        this.vm = await qemu.startTestVm({
          name: 'strata-bench',
          accel,
          memoryMb: this.opts.memoryMb,
          cpus: 1,
          workDir: dir,
          qmpSocket: path.join(dir, 'qmp.sock'),
          agentSocket: path.join(dir, 'agent.sock'),
          diskImage: bundle,
          assets,
          bootTimeoutMs: accel === 'kvm' && tries.length > 1 ? 30_000 : 240_000,
          ...(this.tap ? { tap: this.tap.name } : {}),
          extraArgs: [
            // User-mode networking restricted to one forwarded port on 127.0.0.1: the guest can
            // reach nothing, the host-side client reaches the guest's server through QEMU.
            ...(this.hostPort
              ? [
                  '-netdev',
                  `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${this.hostPort}-:${GUEST_PORT}`,
                  '-device',
                  'virtio-net-pci,netdev=n0,id=nic0',
                ]
              : []),
            '-drive',
            `file=${ioDisk},format=raw,if=none,id=disk1,cache=none,aio=threads`,
            '-device',
            'virtio-blk-pci,drive=disk1,id=vd1',
          ],
        });
        break;
      } catch (err) {
        if (accel === 'kvm' && tries.length > 1) {
          this.info.kvm = `tried, guest did not boot: ${errorMessage(err).split(/[;\n]/)[0]}`;
          log.warn({ err: errorMessage(err) }, 'KVM guest did not boot; falling back to TCG');
          continue;
        }
        this.unavailable(`the test VM did not start (${accel}): ${errorMessage(err).slice(0, 600)}`);
      }
    }
    const vm = this.vm!;
    this.info.accel = vm.accel;
    this.info.kernel = assets.kernelPackage;
    this.info.guest = `busybox initramfs, ${this.opts.memoryMb} MiB, 1 vCPU; tools bundled with their host libraries`;
    this.info.disk = `virtio-blk raw file, cache=none, aio=threads, ${this.opts.ioSizeMb} MiB`;
    if (vm.bootMs !== undefined) this.info.boot_ms = String(vm.bootMs);
    const unpack = await vm.exec('mkdir -p /w && cd /w && tar xf /dev/vda && ls /w/bin | tr "\\n" " "', {
      timeoutMs: 120_000,
    });
    if (unpack.code !== 0)
      this.unavailable(`unpacking the tool bundle in the guest failed: ${unpack.output}`);
    if ((this.hostPort || this.tap) && !this.netError) {
      const guestIp = this.tap ? `${this.tap.net}.2/24` : '10.0.2.15/24';
      const up = await vm.exec(
        'for m in failover net_failover virtio_net; do grep -q "^$m " /proc/modules || insmod /w/mod/$m.ko || exit 1; done; ' +
          'i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; ' +
          `ip link set lo up && ip link set eth0 up && ip addr add ${guestIp} dev eth0`,
        { timeoutMs: 60_000 },
      );
      if (up.code !== 0) {
        this.netError = `bringing up the guest network failed: ${up.output.trim().slice(0, 300)}`;
      } else if (this.tap) {
        const a = await runProcess(['ip', 'addr', 'add', `${this.tap.net}.1/24`, 'dev', this.tap.name], {
          timeoutMs: 10_000,
        });
        const b = await runProcess(['ip', 'link', 'set', this.tap.name, 'up'], { timeoutMs: 10_000 });
        if (a.code !== 0 || b.code !== 0)
          this.netError = `configuring tap ${this.tap.name} failed: ${a.stderr}${b.stderr}`;
        else
          this.info.network = `tap ${this.tap.name} + virtio-net (no vhost), host ${this.tap.net}.1 <-> guest ${this.tap.net}.2`;
      } else {
        this.info.network = `QEMU user networking (slirp), virtio-net, 127.0.0.1:${this.hostPort} -> guest:${GUEST_PORT}`;
      }
    }
    if (this.netError) this.info.network = `none: ${this.netError}`;
    // Host paths the cases read (data template, message files) at the same paths in the guest.
    const files = [...new Set(cases.flatMap((c) => c.files ?? []))];
    if (files.length) {
      const links = files
        .map(
          (f) =>
            `mkdir -p ${shellQuote([path.dirname(f)])} && ln -sfn /w/files${shellQuote([f])} ${shellQuote([f])}`,
        )
        .join(' && ');
      const l = await vm.exec(links, { timeoutMs: 30_000 });
      if (l.code !== 0) this.unavailable(`linking the bundled files in the guest failed: ${l.output}`);
    }
    if (cases.some((c) => c.kind === 'client-server' && c.io)) {
      // A server's data goes to the guest's virtio disk like the I/O workloads' reads: an ext2
      // filesystem made by busybox mke2fs, mounted with the kernel's ext4 driver (fio reads the
      // device underneath it, read-only, so both share the disk).
      const mk = await vm.exec(
        'mke2fs -q -F /dev/vdb >/dev/null 2>&1 || mke2fs -F /dev/vdb; mkdir -p /mnt/data && ' +
          '(mount -t ext4 /dev/vdb /mnt/data || mount -t ext2 /dev/vdb /mnt/data) && grep " /mnt/data " /proc/mounts',
        { timeoutMs: 120_000 },
      );
      if (mk.code !== 0)
        this.dataError = `no filesystem on the guest's I/O disk: ${mk.output.trim().slice(-300)}`;
      else this.info.data_fs = mk.output.trim().split('\n').pop() ?? '';
    }
    try {
      this.probe = await vmCollectorProbe(vm.qmpSocket);
    } catch (err) {
      log.warn(
        { err: errorMessage(err) },
        'collectors/vm failed; reading the QEMU process /proc/PID/stat directly',
      );
    }
    this.info.cpu_from = this.probe ? 'collectors/vm' : `/proc/${vm.pid}/stat`;
    const sizes = await vm.exec('cat /sys/block/vdb/size', { timeoutMs: 10_000 });
    if (Number(sizes.output.trim()) * 512 !== this.opts.ioSizeMb * 1024 * 1024) {
      this.unavailable(`the guest's /dev/vdb is not the ${this.opts.ioSizeMb} MiB I/O disk: ${sizes.output}`);
    }
  }

  /** tar of real/<tool>, lib/<every ldd library>, bin/<tool> launcher scripts. */
  private async buildBundle(cases: readonly WorkloadCase[], netModules: string[]): Promise<string> {
    const root = path.join(this.opts.workDir, 'bundle');
    await fs.rm(root, { recursive: true, force: true });
    for (const d of ['real', 'lib', 'bin', 'mod']) await fs.mkdir(path.join(root, d), { recursive: true });
    for (const m of netModules) await fs.copyFile(m, path.join(root, 'mod', path.basename(m)));
    const tools = new Set<string>();
    for (const c of cases) {
      if (c.kind === 'client-server' && this.netError) continue;
      for (const b of c.binaries) tools.add(b);
    }
    let loader = '';
    for (const t of tools) {
      const host = this.opts.tools.get(t);
      if (!host) continue;
      await fs.copyFile(await fs.realpath(host), path.join(root, 'real', t));
      for (const lib of await sharedLibraries(host)) {
        const base = path.basename(lib);
        if (/^ld-linux/.test(base)) loader = base;
        await fs.copyFile(await fs.realpath(lib), path.join(root, 'lib', base));
      }
    }
    for (const t of tools) {
      const script = `#!/bin/sh\nexec /w/lib/${loader} --library-path /w/lib /w/real/${t} "$@"\n`;
      await fs.writeFile(path.join(root, 'bin', t), script, { mode: 0o755 });
    }
    for (const f of new Set(cases.flatMap((c) => c.files ?? []))) {
      const dst = path.join(root, 'files', f);
      await fs.mkdir(path.dirname(dst), { recursive: true });
      await fs.cp(f, dst, { recursive: true });
    }
    const tar = path.join(this.opts.workDir, 'bundle.tar');
    const r = await runProcess(['tar', '-cf', tar, '-C', root, '.'], { timeoutMs: 60_000 });
    if (r.code !== 0) this.unavailable(`tar of the guest tool bundle failed: ${r.stderr}`);
    const size = (await fs.stat(tar)).size;
    this.info.bundle_mb = (size / 1024 / 1024).toFixed(1);
    return tar;
  }

  unsupported(_c: WorkloadCase): string | undefined {
    return undefined;
  }

  async open(c: WorkloadCase): Promise<CaseSession> {
    const vm = this.vm;
    if (!vm) this.unavailable('not set up');
    if (c.kind === 'client-server' && (this.netError || !(this.hostPort || this.tap))) {
      this.unavailable(this.netError ?? 'the guest has no network');
    }
    if (c.kind === 'client-server' && c.io && this.dataError) this.unavailable(this.dataError);
    const server = this.tap
      ? { host: `${this.tap.net}.2`, port: GUEST_PORT }
      : { host: '127.0.0.1', port: this.hostPort ?? 0 };
    return {
      ioPath: '/dev/vdb',
      ioIsDevice: true,
      dataDir: '/mnt/data',
      cpuSource: this.probe
        ? `${this.probe.source}; guest view from the guest's /proc`
        : `/proc/${vm.pid}/stat of the QEMU process (utime+stime); guest view from the guest's /proc`,
      hostCpuUsec: async () =>
        this.probe ? (await this.probe.read())?.cpu_usage_usec_total : pidCpuUsec(vm.pid),
      ...(this.probe ? { vcpuUsec: async () => (await this.probe?.read())?.vcpu_usec_total } : {}),
      exec: async (argv, o) => {
        const line =
          `cd /tmp; PATH=/w/bin:$PATH; export PATH; ${shellQuote(argv)}; rc=$?; ` +
          'read -r s < /proc/$$/stat; echo "STRATA-STAT $s"; exit $rc';
        const started = performance.now();
        const r = await vm.exec(line, { timeoutMs: o.timeoutMs });
        const wallMs = performance.now() - started;
        const { text, cpuUsec } = takeStatMarker(r.output);
        return {
          code: r.code,
          output: text,
          wallMs,
          ...(cpuUsec !== undefined ? { procCpuUsec: cpuUsec } : {}),
        };
      },
      startServer: async (makeArgv) => {
        const argv = makeArgv({ bind: '0.0.0.0', port: GUEST_PORT, dataDir: '/mnt/data' });
        const r = await vm.exec(
          `cd /tmp; PATH=/w/bin:$PATH; export PATH; ${shellQuote(argv)} >/tmp/server.log 2>&1 & echo $!`,
          { timeoutMs: 30_000 },
        );
        const pid = r.output.trim();
        // QEMU accepts forwarded connections before the guest listens: ask the guest instead.
        // A database starting under TCG (InnoDB recovery, buffer pool) takes tens of seconds.
        const deadline = Date.now() + 180_000;
        for (;;) {
          const l = await vm.exec(`netstat -ltn | grep -q ':${GUEST_PORT} '`, { timeoutMs: 10_000 });
          if (l.code === 0) break;
          if (Date.now() > deadline) {
            const logText = await vm.exec('cat /tmp/server.log', { timeoutMs: 10_000 });
            throw new Error(
              `${argv[0]} in the guest did not listen on ${GUEST_PORT}: ${logText.output.slice(-400)}`,
            );
          }
          await new Promise((res) => setTimeout(res, 300));
        }
        return {
          host: server.host,
          port: server.port,
          // The server, the guest kernel and slirp all run inside the QEMU process: hostCpuUsec has them.
          cpuUsec: async () => undefined,
          stop: async () => {
            // Wait until it is gone: the next case's server binds the same port.
            await vm
              .exec(
                `kill ${pid}; i=0; while kill -0 ${pid} 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`,
                {
                  timeoutMs: 90_000,
                },
              )
              .catch(() => {});
          },
        };
      },
      close: async () => {},
    };
  }

  async close(): Promise<void> {
    await this.probe?.close();
    this.probe = undefined;
    await this.vm?.stop();
    this.vm = undefined;
  }
}

/** The port servers listen on inside the guest (forwarded from an ephemeral 127.0.0.1 port). */
const GUEST_PORT = 7000;

/**
 * failover, net_failover and virtio_net .ko of the guest kernel (the test VM's initramfs has no
 * network drivers): extracted once from the same Debian kernel package into the bench's cache.
 */
async function fetchNetModules(pkg: string): Promise<string[]> {
  const { qemuCacheDir } = await import('../../stack/qemu.ts');
  const dir = path.join(qemuCacheDir(), `bench-netmods-${pkg}`);
  const names = ['failover', 'net_failover', 'virtio_net'];
  const want = names.map((n) => path.join(dir, `${n}.ko`));
  const have = await Promise.all(
    want.map((f) =>
      fs.access(f).then(
        () => true,
        () => false,
      ),
    ),
  );
  if (have.every(Boolean)) return want;
  const work = await fs.mkdtemp(path.join(qemuCacheDir(), '.netmods-'));
  try {
    const dl = await runProcess(['apt-get', 'download', pkg], { timeoutMs: 300_000, cwd: work });
    if (dl.code !== 0) throw new Error(`apt-get download ${pkg} failed: ${dl.stderr.trim().slice(-300)}`);
    const deb = (await fs.readdir(work)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb`);
    const x = await runProcess(['dpkg', '-x', deb, 'x'], { timeoutMs: 120_000, cwd: work });
    if (x.code !== 0) throw new Error(`dpkg -x ${deb} failed: ${x.stderr.trim()}`);
    const found = await runProcess(['find', path.join(work, 'x', 'lib', 'modules'), '-name', '*.ko*'], {
      timeoutMs: 60_000,
    });
    const stage = path.join(work, 'out');
    await fs.mkdir(stage);
    for (const n of names) {
      const src = found.stdout
        .split('\n')
        .find((f) => path.basename(f).replace(/\.ko(\.xz|\.zst)?$/, '') === n);
      if (!src) throw new Error(`${pkg} has no ${n}.ko`);
      const dst = path.join(stage, `${n}.ko`);
      if (src.endsWith('.xz'))
        await runProcess(['sh', '-c', 'xz -dc "$1" > "$2"', 'sh', src, dst], { timeoutMs: 60_000 });
      else if (src.endsWith('.zst'))
        await runProcess(['sh', '-c', 'zstd -qdc "$1" > "$2"', 'sh', src, dst], { timeoutMs: 60_000 });
      else await fs.copyFile(src, dst);
    }
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(stage, dir);
    return want;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** A raw disk file of `mb` MiB with every block written (a sparse hole would read without any I/O). */
async function preallocate(file: string, mb: number): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  if (st && st.size === mb * 1024 * 1024) return;
  const fh = await fs.open(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    for (let i = 0; i < mb; i++) await fh.write(chunk, 0, chunk.length, i * chunk.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
